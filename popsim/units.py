"""Unit constants and converters, used at the boundaries (config, CLI, reports) only."""

from __future__ import annotations

MG_MG_PER_MMOL = 24.305  # molar mass of Mg, mg/mmol (1 mmol = 2 mEq)


def mg_to_mmol_mg(mg_per_day):
    """Elemental Mg, mg/day -> mmol/day."""
    return mg_per_day / MG_MG_PER_MMOL
