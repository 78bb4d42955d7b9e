"""Each flux function alone: shapes of the published functional forms, with numbers."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from popsim.parameters import Params
from popsim.physiology import cells, gut, kidney, parathyroid
from popsim.units import mg_to_mmol_mg

P = Params()


def absorbed_fraction(mg_per_day):
    intake = mg_to_mmol_mg(mg_per_day)
    return gut.mg_absorption(intake, P.mg_gut_vmax, P.mg_gut_km,
                             P.mg_gut_paracellular_fraction) / intake


def test_gut_mg_absorbed_fraction_matches_balance_studies():
    # 75% on low-Mg and 25% on high-Mg diets (Schwartz 1984); ~40% at 300 mg/day (renal atlas)
    assert absorbed_fraction(50.0) > 0.6
    assert 0.3 < absorbed_fraction(300.0) < 0.5
    assert absorbed_fraction(1000.0) < 0.3


@given(st.floats(1.0, 5000.0), st.floats(1.01, 3.0))
def test_gut_mg_absorbed_fraction_falls_and_amount_rises_with_intake(mg, factor):
    assert absorbed_fraction(mg * factor) < absorbed_fraction(mg)
    assert absorbed_fraction(mg * factor) * mg * factor > absorbed_fraction(mg) * mg


@given(st.floats(0.05, 40.0), st.floats(1.0, 40.0), st.floats(0.01, 2.0), st.floats(0.0, 30.0))
def test_cell_mg_buffer_inverts(total, capacity, kd, weak):
    free = float(cells.mg_free_from_total(jnp.float64(total), capacity, kd, weak))
    assert 0 < free <= total
    assert free * (1 + weak) + capacity * free / (kd + free) == pytest.approx(total, rel=1e-9)


@given(st.floats(0.05, 2.0), st.floats(0.05, 2.0))
def test_romk_opens_as_cell_mg_falls(mg_low, dm):
    def open_(mg):
        return float(1.0 / (1.0 + (mg / P.romk_mg_kd) ** P.romk_mg_hill))

    assert open_(mg_low) > open_(mg_low + dm)


def test_pump_slows_with_low_cell_mg():
    def pump(mg_free):
        return float(cells.nka_k_uptake(28.0, P.nka_vmax, 12.0, 4.2, mg_free, P.nka_km_na,
                                        P.nka_km_k, P.nka_km_mg, P.mg_free_ref,
                                        P.nka_mg_dependence, 1.0))

    assert pump(0.3) < 0.9 * pump(0.6)
    # Na_i and K_o raise the pump (Luo-Rudy, Stadt 2022)
    base = pump(0.6)
    assert float(cells.nka_k_uptake(28.0, P.nka_vmax, 18.0, 4.2, 0.6, P.nka_km_na, P.nka_km_k,
                                    P.nka_km_mg, P.mg_free_ref, P.nka_mg_dependence,
                                    1.0)) > base


def _mg_urine(mg_p, gfr=144.0, nephron=1.0, loop=0.0, thiazide=0.0):
    return float(kidney.magnesium_handling(
        gfr, P.mg_ultrafilterable_fraction * mg_p, P.mg_ionized_fraction * mg_p, nephron,
        P.mg_pt_fraction, P.mg_tal_max_fraction, P.mg_tal_casr_ki, P.mg_tal_casr_hill,
        P.mg_tal_ckd_exponent, P.mg_loop_coupling, P.mg_dct_tm, P.mg_dct_min_excretion,
        P.mg_dct_width, P.mg_thiazide_trpm6, loop, thiazide).urine)


def test_renal_mg_threshold():
    """Normal FEMg ~2-5%; < 1% below 0.7 mmol/L; > 10% above 1.0 (tubular maximum)."""
    def fe(mg_p):
        return 100 * _mg_urine(mg_p) / (144.0 * P.mg_ultrafilterable_fraction * mg_p)

    assert 2.0 < fe(0.85) < 5.5
    assert fe(0.65) < 1.5
    assert fe(1.05) > 10.0
    assert np.all(np.diff([_mg_urine(x) for x in np.linspace(0.4, 1.6, 25)]) > 0)


def test_diuretics_raise_urinary_mg_acutely():
    base = _mg_urine(0.85)
    assert _mg_urine(0.85, loop=0.5) > 2 * base
    assert _mg_urine(0.85, thiazide=0.5) > base


def test_pth_secretion_falls_with_ca_and_collapses_in_severe_mg_deficiency():
    def target(ca, mg):
        return float(parathyroid.pth_target(ca, mg, P.pth_max, P.pth_basal_fraction,
                                            P.pth_ca_setpoint, P.pth_ca_hill,
                                            P.pth_mg_casr_potency, P.pth_mg_secretion_k,
                                            P.pth_mg_secretion_hill))

    assert target(1.05, 0.53) > 2 * target(1.20, 0.53)  # hypocalcaemia stimulates
    assert target(1.05, 0.15) < 0.2 * target(1.05, 0.53)  # Mg < ~0.25 mM total: no secretion
    assert target(1.15, 1.5) < target(1.15, 0.53)  # hypermagnesaemia suppresses PTH


def test_egfr_to_gfr():
    assert float(kidney.gfr_l_per_day(100.0)) == pytest.approx(144.0)


def test_parameter_table_doc_is_current():
    """docs/PARAMETERS.md is generated from the parameter table; regenerate with
    `python scripts/parameter_table.py` after changing a parameter."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "scripts/parameter_table.py", "--check"])
    assert r.returncode == 0, "docs/PARAMETERS.md is stale: run python scripts/parameter_table.py"


def test_every_parameter_has_unit_and_source():
    from popsim.parameters import parameter_specs

    for s in parameter_specs():
        assert s.unit and s.source and s.description, s.name
        assert s.lower <= s.value <= s.upper, s.name
