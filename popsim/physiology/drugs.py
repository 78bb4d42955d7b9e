"""Diuretic action: dose (fraction of the maximal effect, 0..1) to transporter
block."""

from __future__ import annotations


def transporter_block(dose, max_block):
    """Fraction of the target transporter (NKCC2 for loop, NCC for thiazide) blocked, 0..1.

    The configured ``dose`` is already the fraction of the maximal effect (the config's unit,
    docs/CONFIG.md), so the block is linear in it: ``dose * max_block``; ``max_block`` is the
    block at the maximal effect.
    """
    return dose * max_block
