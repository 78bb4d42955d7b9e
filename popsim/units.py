"""Unit constants and converters, used at the boundaries (config, CLI, reports) only."""

from __future__ import annotations

MG_MG_PER_MMOL = 24.305  # molar mass of Mg, mg/mmol (1 mmol = 2 mEq)
K_MG_PER_MMOL = 39.098  # molar mass of K, mg/mmol (1 mmol = 1 mEq)
NA_MG_PER_MMOL = 22.990  # molar mass of Na, mg/mmol (1 mmol = 1 mEq)
CA_MG_PER_MMOL = 40.078  # molar mass of Ca, mg/mmol

ML_PER_MIN_TO_L_PER_DAY = 1.44


def mg_to_mmol_mg(mg_per_day):
    """Elemental Mg, mg/day -> mmol/day."""
    return mg_per_day / MG_MG_PER_MMOL


def mmol_to_mg_mg(mmol_per_day):
    """Mg, mmol/day -> mg/day."""
    return mmol_per_day * MG_MG_PER_MMOL


def mg_mmol_per_l_to_mg_per_dl(mmol_per_l):
    """Serum Mg, mmol/L -> mg/dL (x 2.43)."""
    return mmol_per_l * MG_MG_PER_MMOL / 10.0


def ca_mmol_per_l_to_mg_per_dl(mmol_per_l):
    """Serum Ca, mmol/L -> mg/dL (x 4.008)."""
    return mmol_per_l * CA_MG_PER_MMOL / 10.0
