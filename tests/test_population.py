"""Virtual population: US-adult defaults, reproducibility, truncation."""

import numpy as np
import pytest

from popsim import config as cfg
from popsim.population import sample_cohort


@pytest.fixture(scope="module")
def us_adults():
    conf, _ = cfg.load_config("configs/us_adults.toml")
    c = sample_cohort(conf.population, 7, 0, 20000)
    return conf, {k: np.asarray(v) for k, v in c.covariates.items()}, c


def test_about_half_of_adults_below_mg_ear(us_adults):
    _, cov, _ = us_adults
    ear = np.where(cov["sex"] == 1, 350.0, 265.0)  # IOM 1997, adults >= 31 y
    below = np.mean(cov["mg_intake"] < ear)
    assert 0.45 <= below <= 0.65, below  # ~48-60% (Moshfegh 2009; Workinger 2018)


def test_ckd_prevalence_and_diuretic_use(us_adults):
    _, cov, _ = us_adults
    stage3 = np.mean((cov["egfr"] >= 30) & (cov["egfr"] < 60))
    assert 0.03 <= stage3 <= 0.10  # 4-8% (Coresh 2003; Castro & Coresh 2009)
    assert 0.0005 <= np.mean(cov["egfr"] < 30) <= 0.01
    assert np.mean(cov["diuretic"] == 2) == pytest.approx(0.10, abs=0.01)
    assert np.mean(cov["diuretic"] == 1) == pytest.approx(0.03, abs=0.005)
    # eGFR falls with age
    assert np.corrcoef(cov["age"], cov["egfr"])[0, 1] < -0.5


def test_intakes_by_sex(us_adults):
    _, cov, _ = us_adults
    men, women = cov["sex"] == 1, cov["sex"] == 0
    assert np.median(cov["na_intake"][men]) == pytest.approx(174, rel=0.05)
    assert np.median(cov["na_intake"][women]) == pytest.approx(123, rel=0.05)
    assert np.median(cov["body_weight"][men]) > np.median(cov["body_weight"][women])


def test_same_patients_whatever_the_chunking(us_adults):
    conf, cov, whole = us_adults
    part = sample_cohort(conf.population, 7, 13, 9)
    for name, values in part.covariates.items():
        np.testing.assert_array_equal(np.asarray(values), cov[name][13:22])
    for name in whole.varying:
        np.testing.assert_array_equal(np.asarray(getattr(part.params, name)),
                                      np.asarray(getattr(whole.params, name))[13:22])


def test_seed_changes_the_cohort(us_adults):
    conf, cov, _ = us_adults
    other = sample_cohort(conf.population, 8, 0, 100)
    assert not np.allclose(np.asarray(other.covariates["mg_intake"]), cov["mg_intake"][:100])


def test_truncation_and_between_patient_variability():
    conf = cfg.parse_config({"population": {"size": 10, "covariates": {
        "egfr": {"distribution": "normal", "mean": 60, "sd": 40, "min": 30, "max": 90}},
        "variability": {"scale": 1.0, "cv": {"mg_dct_half_load": 0.2}}}})
    c = sample_cohort(conf.population, 1, 0, 5000)
    egfr = np.asarray(c.covariates["egfr"])
    assert egfr.min() >= 30 and egfr.max() <= 90
    assert np.mean(egfr < 31) < 0.02  # truncation, not clipping: no pile-up at the bound
    half = np.asarray(c.params.mg_dct_half_load)
    cv = np.std(np.log(half)) / 1.0
    assert cv == pytest.approx(np.sqrt(np.log1p(0.2**2)), rel=0.05)
    assert np.median(half) == pytest.approx(0.154, rel=0.02)  # typical value is the median


def test_no_variability_when_scale_zero():
    conf = cfg.parse_config({"population": {"size": 10, "variability": {"scale": 0.0}}})
    c = sample_cohort(conf.population, 1, 0, 50)
    assert c.varying == ()
    assert np.ptp(np.asarray(c.params.nka_vmax)) == 0.0


def test_populations_share_one_draw_program_and_keep_their_distributions():
    """The covariate distributions are arguments of the compiled draw program: a population
    that differs in every number, and in which covariates are given by sex, draws with the
    program the first compiled (evidence studies and runs reuse it) and still gets its own
    distributions."""
    from popsim.compilation import CompileCounter
    from popsim.population import sample_draws

    names = ("k_setpoint",)
    first = cfg.Population(size=400)  # US adults: weight and intakes by sex
    other = cfg.Population.model_validate({"size": 400, "covariates": {
        "age": {"distribution": "uniform", "low": 60, "high": 70},
        "sex": {"distribution": "fixed", "value": "male"},
        "body_weight": {"distribution": "fixed", "value": 81.5},
        "egfr": {"distribution": "normal", "mean": 30, "sd": 5, "min": 15, "max": 45},
        "mg_intake": {"distribution": "lognormal", "median": 500, "gsd": 1.1},
        "k_intake": {"female": {"distribution": "fixed", "value": 10},
                     "male": {"distribution": "fixed", "value": 20}},
        "diuretic": {"distribution": "categorical", "values": ["thiazide", "loop"],
                     "probabilities": [0.25, 0.75]}}})
    sample_draws(first, 1, 0, 400, names)
    with CompileCounter() as counter:
        _, cov, _ = sample_draws(other, 1, 0, 400, names)
    assert counter.compilations == 0 and counter.cache_hits == 0, counter.programs
    cov = {k: np.asarray(v) for k, v in cov.items()}
    assert cov["age"].min() >= 60 and cov["age"].max() <= 70
    assert np.all(cov["sex"] == 1) and np.all(cov["body_weight"] == 81.5)
    assert np.all(cov["k_intake"] == 20.0)  # every patient male: the male value
    assert 15 <= cov["egfr"].min() and cov["egfr"].max() <= 45
    assert abs(np.median(cov["mg_intake"]) - 500) < 15
    assert set(np.unique(cov["diuretic"])) == {1, 2}
    assert abs(np.mean(cov["diuretic"] == 1) - 0.75) < 0.07


def test_parameters_are_only_ever_added_at_the_end_of_the_table():
    """A parameter's between-patient random stream is its position in the table, so a parameter
    declared anywhere but last would give every later parameter another patient's draw: the
    table's order must extend the pinned one (append new names to the file)."""
    from pathlib import Path

    from popsim.parameters import parameter_specs

    pinned = [line for line in (Path(__file__).parent / "data" / "parameter_order.txt")
              .read_text().splitlines() if line and not line.startswith("#")]
    names = [s.name for s in parameter_specs()]
    moved = [f"position {i}: {a!r}, pinned {b!r}"
             for i, (a, b) in enumerate(zip(names, pinned, strict=False)) if a != b]
    assert names[:len(pinned)] == pinned, (moved or ["parameters were removed"])[0]
