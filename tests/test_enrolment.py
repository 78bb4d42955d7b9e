"""Enrolment: inclusion/exclusion criteria validated at config time; candidates screened at
their baseline steady state until `size` are enrolled, the same whatever the block (chunk) size
or device count; the screening recorded in the cohort file; resume still bit for bit."""

import json
import tomllib

import jax
import numpy as np
import pytest
from conftest import HYPOKALAEMIA_TRIAL

from popsim import config as cfg
from popsim import store
from popsim.criteria import Criterion, parse_criterion
from popsim.parameters.io import default_parameters
from popsim.population import sample_cohort
from popsim.screening import ScreeningError, screen, wilson_upper
from popsim.solve import SolverSettings


def _pop(**population):
    return cfg.parse_config({"population": {"size": 10, **population}}).population


@pytest.mark.parametrize(("population", "message"), [
    ({"inclusion": {"serum_kk": {"max": 3.5}}},
     r"population\.inclusion\.serum_kk: unknown covariate or output 'serum_kk' \(did you mean "
     r"'serum_k'\?\)"),
    ({"inclusion": {"serum_k": {"min": 4.0, "max": 3.5}}},
     r"population\.inclusion\.serum_k: min \(4\) must be below max \(3\.5\)"),
    ({"exclusion": {"sex": "femal"}},
     r"population\.exclusion\.sex: 'femal' is not a category of sex \(did you mean 'female'\?\)"
     r"; allowed: female, male"),
    ({"inclusion": {"diuretic": ["none", "potassium_sparing"]}},
     r"'potassium_sparing' is not a category of diuretic.*allowed: none, loop, thiazide"),
    ({"inclusion": {"sex": {"max": 1}}}, r"population\.inclusion\.sex: sex is categorical"),
    ({"inclusion": {"egfr": "high"}}, r"population\.inclusion\.egfr: egfr is continuous"),
    ({"inclusion": {"egfr": {"mn": 30}}}, r"unknown key 'mn' \(did you mean 'min'\?\)"),
    ({"inclusion": {"egfr": {}}}, r"population\.inclusion\.egfr: give min, max or both"),
    ({"inclusion": {"egfr": {"min": 30}}, "max_screened": 5},
     r"population: max_screened \(5\) is below size \(10\)"),
])
def test_bad_criteria_are_one_line_config_errors(population, message):
    with pytest.raises(cfg.ConfigError, match=message) as e:
        _pop(**population)
    assert "\n" not in str(e.value)


def test_criteria_evaluate_codes_labels_and_inclusive_bounds():
    k = parse_criterion("serum_k", {"max": 3.5})
    assert k.meets(np.array([3.4, 3.5, 3.6, np.nan])).tolist() == [True, True, False, False]
    band = parse_criterion("egfr", {"min": 30, "max": 60})
    assert band.meets(np.array([29.9, 30.0, 60.0, 60.1])).tolist() == [False, True, True, False]
    d = parse_criterion("diuretic", ["none", "thiazide"])
    assert d.meets(np.array([0, 1, 2], np.int8)).tolist() == [True, False, True]  # codes
    assert d.meets(np.array(["none", "loop", "thiazide"])).tolist() == [True, False, True]
    assert isinstance(d, Criterion) and d.describe() == "diuretic in (none, thiazide)"
    assert k.describe() == "serum_k <= 3.5 mmol/L"


def _covariate_screen(pop, block, size=12, devices=None, settings=SolverSettings()):
    ps = default_parameters()
    with jax.enable_x64(True):
        return screen(pop, 7, size, ps, settings, jax.numpy.float64, block, devices)


@pytest.mark.slow
def test_covariate_screening_is_the_same_whatever_the_block_and_enrols_exactly_the_passes():
    pop = _pop(inclusion={"sex": "female", "egfr": {"min": 90}},
               exclusion={"diuretic": ["loop", "thiazide"]})
    a, b = (_covariate_screen(pop, block) for block in (12, 6))
    np.testing.assert_array_equal(a.candidates, b.candidates)
    assert (a.n_screened, a.failures) == (b.n_screened, b.failures)
    # every candidate below n_screened is enrolled exactly when it meets every criterion
    # (drawn in blocks of 12, a shape the screening compiled)
    blocks = [sample_cohort(pop, 7, s, 12) for s in range(0, a.n_screened, 12)]
    sex, egfr, diuretic = (np.concatenate([np.asarray(d.covariates[k]) for d in blocks])
                           [: a.n_screened] for k in ("sex", "egfr", "diuretic"))
    passes = (sex == 0) & (egfr >= 90) & (diuretic == 0)
    np.testing.assert_array_equal(np.flatnonzero(passes), a.candidates)
    assert a.n_screened == a.candidates[-1] + 1 and a.candidates.size == 12
    assert a.failures["inclusion: sex = female"] == int((sex != 0).sum())
    assert a.failures["exclusion: diuretic in (loop, thiazide)"] == int((diuretic != 0).sum())
    assert a.screen_failure_fraction == pytest.approx(1 - 12 / a.n_screened)


@pytest.mark.slow
def test_criteria_that_enrol_almost_no_one_stop_early_with_the_observed_fraction(tmp_path):
    pop = _pop(inclusion={"egfr": {"min": 149}})  # eGFR is drawn below 150 mL/min/1.73 m2
    with pytest.raises(ScreeningError, match=r"of the first 1,000 candidates meet the criteria "
                                             r"\(enrolment fraction .*%.*max_screened = 50,000"):
        _covariate_screen(pop, 12, size=1000)
    # a run with such criteria writes nothing and leaves an existing file alone
    from popsim.run import RunError, run_cohort

    text = "[population]\nsize = 1000\n[population.inclusion]\negfr = { min = 149 }\n"
    out = tmp_path / "nobody.h5"
    out.write_bytes(b"an earlier result")
    with pytest.raises(RunError, match="enrolment fraction"):
        run_cohort(cfg.parse_config(tomllib.loads(text)), text, out, chunk_size=12,
                   force=True, progress=False)
    assert out.read_bytes() == b"an earlier result"


def test_the_budget_caps_screening():
    pop = _pop(size=5, inclusion={"egfr": {"min": 135}}, max_screened=50)
    with pytest.raises(ScreeningError, match=r"of the first 50 candidates.*max_screened = 50"):
        _covariate_screen(pop, 6, size=5)


def test_wilson_upper_bound():
    """The Wilson bound u of k/m solves (u - k/m)^2 = z^2 u (1 - u) / m, above k/m."""
    assert wilson_upper(0, 1000) == pytest.approx(3.29**2 / (1000 + 3.29**2))
    for k, m in ((100, 1000), (3, 50), (40, 60)):
        u = wilson_upper(k, m)
        assert u > k / m
        assert (u - k / m) ** 2 == pytest.approx(3.29**2 * u * (1 - u) / m, rel=1e-9)
    assert wilson_upper(1000, 1000) == pytest.approx(1.0, abs=1e-12)


def test_output_screening_is_the_same_on_one_device_or_two(hypokalaemia_trial):
    """Criteria on outputs need the steady states: blocks of 6 on one device and of 12 split
    over two devices (6 each: the same compiled shapes as the trial's chunks of 6) enrol the
    same candidates, those the trial enrolled."""
    path, _ = hypokalaemia_trial
    conf = cfg.parse_config(tomllib.loads(HYPOKALAEMIA_TRIAL))
    s = SolverSettings.from_simulation(conf.simulation, conf.extra_steps)  # the run's
    pop, ps = conf.population, default_parameters()
    with jax.enable_x64(True):
        one, two = (screen(pop, pop.seed, 6, ps, s, jax.numpy.float64, block, d)
                    for block, d in ((6, None), (12, jax.local_devices()[:2])))
    np.testing.assert_array_equal(one.candidates, two.candidates)
    assert (one.n_screened, one.failures) == (two.n_screened, two.failures)
    np.testing.assert_array_equal(one.candidates, store.open_cohort(path).candidates[:6])


def test_every_enrolled_patient_meets_the_criteria_at_baseline(hypokalaemia_trial):
    path, result = hypokalaemia_trial
    coh = store.open_cohort(path)
    for a in range(len(coh.arms)):
        assert np.all(coh.output("serum_k", arm=a, time=0) <= np.float32(3.5))
        assert np.all(coh.output("serum_mg", arm=a, time=0) <= np.float32(0.70))
    assert np.all(coh.covariate("egfr") > 30)
    # recorded: candidate indices, counts, criteria; the run summary has them
    attrs = coh.attrs
    cand = coh.candidates
    assert cand.dtype == np.int64 and np.all(np.diff(cand) > 0)
    assert int(attrs["n_screened"]) == cand[-1] + 1 and int(attrs["n_enrolled"]) == cand.size
    assert float(attrs["screen_failure_fraction"]) == pytest.approx(1 - cand.size / (cand[-1] + 1))
    assert json.loads(attrs["screening_criteria"]) == [
        "inclusion: serum_k <= 3.5 mmol/L", "inclusion: serum_mg <= 0.7 mmol/L",
        "exclusion: egfr <= 30 mL/min/1.73 m2"]
    assert json.loads(attrs["inclusion"])["serum_k"]["max"] == 3.5
    assert result.screening["n_screened"] == int(attrs["n_screened"])
    # the enrolled patients are the population's patients of those indices
    drawn = sample_cohort(cfg.parse_config(tomllib.loads(HYPOKALAEMIA_TRIAL)).population,
                          int(attrs["seed"]), 0, 0, index=cand)
    np.testing.assert_array_equal(np.asarray(drawn.covariates["egfr"]), coh.covariate("egfr"))


def test_the_run_summary_prints_the_screening(hypokalaemia_trial):
    from rich.console import Console

    from popsim.report import print_run_summary

    _, result = hypokalaemia_trial
    console = Console(record=True, width=200)
    print_run_summary(result, console)
    text = console.export_text()
    assert f"screening: {result.screening['n_screened']:,} candidates" in text
    assert "inclusion: serum_k <= 3.5 mmol/L" in text


def test_resume_of_a_screened_run_gives_the_same_file(hypokalaemia_trial, tmp_path,
                                                      monkeypatch):
    from test_scale import _assert_same_file

    from popsim import run as run_mod

    path, _ = hypokalaemia_trial
    conf = cfg.parse_config(tomllib.loads(HYPOKALAEMIA_TRIAL))
    out = tmp_path / "resumed.h5"
    real = run_mod._run_chunk

    class Killed(Exception):
        pass

    def dies_on_second_chunk(job, c, *a, **k):
        if c == 1:
            raise Killed
        return real(job, c, *a, **k)

    monkeypatch.setattr(run_mod, "_run_chunk", dies_on_second_chunk)
    with pytest.raises(Killed):
        run_mod.run_cohort(conf, HYPOKALAEMIA_TRIAL, out, chunk_size=6, progress=False)
    screened = []
    monkeypatch.setattr(run_mod, "_run_chunk", real)
    monkeypatch.setattr(run_mod, "_screen", lambda *a: screened.append(1))
    run_mod.run_cohort(conf, HYPOKALAEMIA_TRIAL, out, chunk_size=6, progress=False,
                       resume=True)
    assert not screened  # the candidates come from the file
    _assert_same_file(out, path)
