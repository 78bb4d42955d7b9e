"""Results never silently wrong: every bad input is a one-line error that touches no file, failed
patients are NaN and change the exit code, fluxes on the last day include interventions that run
to the end, tables are whole in logs, long work is never silent."""

import io
import math
import os
import shutil
import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st
from conftest import SMALL_TRIAL
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from popsim import config as cfg
from popsim import store
from popsim.cli import EXIT_BAD_INPUT, EXIT_FAILED_PATIENTS, build_parser, main
from popsim.population import sample_cohort, truncated_draw


def listing(path):
    """Every file under ``path`` with its size and modification time."""
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            s = os.stat(p)
            out[p] = (s.st_size, s.st_mtime_ns)
    return out


def run_main(capsys, *argv):
    """``popsim ARGV`` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code, err, *fragments):
    assert code == EXIT_BAD_INPUT, err
    assert err.count("\n") == 1 and err.startswith("popsim: error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, (f, err)


# --- 1. covariate distributions -------------------------------------------------------------

BAD_COVARIATES = [
    ("mg_intake", {"distribution": "normal", "mean": 300, "sd": 50, "min": 5000, "max": 6000},
     ["mg_intake", "normal(mean 300, sd 50)", "[5000, 6000]"]),
    ("egfr", {"distribution": "uniform", "low": 500, "high": 900},
     ["egfr.low = 500", "3..200"]),
    ("mg_intake", {"distribution": "lognormal", "median": 300, "gsd": 1.2, "min": 2000,
                   "max": 3000}, ["lognormal(median 300, gsd 1.2)", "1.2e-25", "[2000, 3000]"]),
    ("body_weight", {"distribution": "uniform", "low": 1, "high": 10},
     ["body_weight.low = 1", "25..300 kg"]),
    ("body_weight", {"distribution": "fixed", "value": 10}, ["body_weight.value = 10"]),
    ("egfr", {"distribution": "normal", "mean": 30, "sd": 2, "age_slope": -2, "min": 20,
              "max": 40}, ["at age 18 (age_slope -2)"]),
]


@pytest.mark.parametrize("name, spec, fragments", BAD_COVARIATES)
def test_impossible_covariates_are_refused_naming_key_bounds_and_mass(tmp_path, capsys, name,
                                                                     spec, fragments):
    import tomli_w

    config = tmp_path / "c.toml"
    config.write_text(tomli_w.dumps({"population": {"size": 5, "covariates": {name: spec}}}))
    before = listing(tmp_path)
    code, _, err = run_main(capsys, "run", config, "--out", tmp_path / "out.h5")
    assert_one_line_error(code, err, "population.covariates", *fragments)
    assert listing(tmp_path) == before


def _bounded_specs():
    """Random valid truncated specs: (kind, location, spread, lo, hi)."""
    def normal(draw):
        mean = draw(hs.floats(-50, 300))
        sd = draw(hs.floats(0.1, 80))
        a = draw(hs.floats(-6, 4))
        w = draw(hs.floats(0.05, 6))
        return ("normal", mean, sd, mean + a * sd, mean + (a + w) * sd)

    def lognormal(draw):
        med = draw(hs.floats(1, 3000))
        gsd = draw(hs.floats(1.05, 3))
        a = draw(hs.floats(-6, 4))
        w = draw(hs.floats(0.05, 6))
        s = math.log(gsd)
        return ("lognormal", med, gsd, med * math.exp(a * s), med * math.exp((a + w) * s))

    def uniform(draw):
        low = draw(hs.floats(0, 500))
        high = low + draw(hs.floats(0.5, 500))
        lo = draw(hs.floats(low - 100, high - 0.25))
        hi = draw(hs.floats(max(lo, low) + 0.2, high + 100))
        return ("uniform", low, high, lo, hi)

    return hs.composite(lambda draw: draw(hs.sampled_from([normal, lognormal, uniform]))(draw))()


@jax.jit
def _draws(u, location, spread, lo, hi):
    return {k: truncated_draw(u, k, location, spread, lo, hi)
            for k in ("normal", "lognormal", "uniform")}


def _cdf(kind, location, spread, lo, hi):
    if kind == "normal":
        d = st.norm(location, spread)
    elif kind == "lognormal":
        d = st.lognorm(math.log(spread), scale=location)
    else:
        lo, hi = max(lo, location), min(hi, spread)
        return lambda x: np.clip((x - lo) / (hi - lo), 0, 1)
    a, b = d.cdf(lo), d.cdf(hi)
    sa, sb = d.sf(lo), d.sf(hi)
    # the survival side is exact where the window lies in the upper tail
    return lambda x: np.where(sa < 0.5, (sa - d.sf(x)) / (sa - sb), (d.cdf(x) - a) / (b - a))


@given(_bounded_specs())
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
def test_truncated_draws_lie_inside_bounds_and_follow_the_truncated_law(spec):
    kind, location, spread, lo, hi = spec
    u = jax.random.uniform(jax.random.key(1), (4000,), jnp.float64)
    x = np.asarray(_draws(u, location, spread, lo, hi)[kind])
    assert np.all(x >= lo) and np.all(x <= hi), (x.min(), x.max(), lo, hi)
    assert len(np.unique(x)) > 3900  # a real draw, not a clamp onto the bounds
    p = st.kstest(x, _cdf(kind, location, spread, lo, hi)).pvalue
    assert p > 1e-6, (spec, p)


def test_a_far_tail_window_is_sampled_not_clamped():
    """Bounds 4-5 SD above the mean (3e-5 of the mass) are sampled as a truncated normal."""
    conf = cfg.parse_config({"population": {"size": 200, "covariates": {
        "mg_intake": {"distribution": "normal", "mean": 300, "sd": 50, "min": 500,
                      "max": 550}}}})
    x = np.asarray(sample_cohort(conf.population, 3, 0, 200).covariates["mg_intake"])
    assert x.min() >= 500 and x.max() <= 550 and np.unique(x).size == 200
    # truncated normal far in the tail: close to an exponential with rate 4/50 per mg
    assert 505 < np.median(x) < 513


# --- 2. failed patients -----------------------------------------------------------------------

FAILING = """
[population]
size = 3
seed = 1
[simulation]
days = 60
max_steps = 3
"""


@pytest.mark.slow
def test_a_run_where_every_patient_fails_exits_3_with_nan_outputs(tmp_path, capsys):
    config = tmp_path / "fail.toml"
    config.write_text(FAILING)
    out = tmp_path / "fail.h5"
    code, stdout, err = run_main(capsys, "run", config, "--out", out, "--quiet")
    assert code == EXIT_FAILED_PATIENTS, err
    assert "3 of 3 patient-arms not solved" in err and "max_steps" in err
    assert "Traceback" not in err
    coh = store.open_cohort(out)
    assert coh.complete
    assert np.all(coh.status == 3)
    for name in ("serum_k", "serum_mg", "urine_k"):
        assert np.all(np.isnan(coh.output(name))), name


def test_params_that_break_every_steady_state_exit_3(tmp_path, capsys, small_trial):
    params = tmp_path / "bad_params.toml"
    # a collecting duct that reabsorbs at most 5% of the Na reaching it, where the reference
    # adult's Na balance needs ~76%: floored, the CD runs at its maximum, and still no patient
    # has a Na balance, so none has a steady state
    params.write_text("[parameters.na_cd_max_fraction]\nvalue = 0.05\n")
    config = tmp_path / "trial.toml"
    config.write_text(SMALL_TRIAL)
    out = tmp_path / "t.h5"
    code, _, err = run_main(capsys, "run", config, "--out", out, "--params", params,
                            "--chunk-size", 7, "--quiet")
    assert code == EXIT_FAILED_PATIENTS, err
    coh = store.open_cohort(out)
    failed = coh.status != 0
    assert failed.mean() > 0.5
    assert np.all(np.isnan(coh.output("urine_k")[failed]))
    assert np.all(np.isfinite(coh.output("urine_k")[~failed]))


def test_failure_fraction_threshold(small_trial):
    from popsim.cli import _failure_exit
    from popsim.report import ArmSummary
    from popsim.run import RunResult

    def result(n_failed):
        arm = ArmSummary("a", 100 - n_failed, n_failed, {}, {},
                         {"steady_state_failed": n_failed} if n_failed else {})
        return RunResult(small_trial[0], 100, 10.0, [arm], 1.0)

    assert _failure_exit(result(0), 0.01) == 0
    assert _failure_exit(result(1), 0.01) == 0  # 1% is not more than 1%
    assert _failure_exit(result(2), 0.01) == EXIT_FAILED_PATIENTS
    assert _failure_exit(result(2), 0.05) == 0


# --- 3. fluxes at interventions' start, middle and end -----------------------------------------

ALL_KINDS = [
    ({"kind": "oral_magnesium", "dose": 400}, "mg_organic"),  # citrate
    ({"kind": "oral_potassium", "dose": 40}, "k_oral"),
    ({"kind": "iv_magnesium", "dose": 12}, "mg_iv"),
    ({"kind": "diet", "mg_intake": 50, "k_intake": 20, "na_intake": 60}, "na_oral"),
    ({"kind": "loop_diuretic", "dose": 0.5}, "loop_dose"),
    ({"kind": "thiazide_diuretic", "dose": 0.5}, "thiazide_dose"),
]


@pytest.mark.parametrize("intervention, channel", ALL_KINDS)
def test_inputs_at_start_middle_and_end_of_every_kind(intervention, channel):
    """Right limit at a breakpoint: on at start_day, off at an end_day inside the run; on at the
    last saved time when the intervention lasts to the end of the simulation."""
    from conftest import patients

    from popsim.run import protocols_for

    days = 10.0
    arms = [{"name": "mid", "intervention": [{**intervention, "start_day": 2, "end_day": 5}]},
            {"name": "to_end", "intervention": [{**intervention, "start_day": 2}]},
            {"name": "explicit_end", "intervention": [{**intervention, "start_day": 2,
                                                      "end_day": days}]}]
    conf = cfg.parse_config({"population": {"size": 1}, "simulation": {"days": days},
                             "arm": arms})
    _, pt = patients(n=1)
    pt = jax.tree.map(lambda x: x[0], pt)
    mid, to_end, explicit = protocols_for(conf.arms, days, jnp.float64)

    def value(prot, t):
        return float(getattr(prot.inputs(jnp.float64(t), pt), channel))

    base = value(mid, 0.0)
    assert value(mid, 1.999) == base
    assert value(mid, 2.0) != base  # on from start_day (right limit)
    assert value(mid, 4.999) == value(mid, 2.0)
    assert value(mid, 5.0) == base  # off on end_day
    for prot in (to_end, explicit):
        assert value(prot, days) == value(prot, 2.0) != base  # on at the last saved time


def test_last_day_fluxes_keep_an_intervention_that_runs_to_the_end(tmp_path, small_trial):
    from popsim.run import run_cohort

    text = SMALL_TRIAL.replace("end_day = 8\n", "")
    conf = cfg.parse_config(tomllib.loads(text))
    coh = store.open_cohort(run_cohort(conf, text, tmp_path / "end.h5", chunk_size=7,
                                       progress=False).path)
    absorbed = coh.output("mg_absorbed_net")  # (arm, patient, time), days 0..10
    assert np.all(absorbed[1, :, 10] > absorbed[0, :, 10] + 1.0)  # 400 mg/day still absorbed
    np.testing.assert_allclose(absorbed[1, :, 10], absorbed[1, :, 9], rtol=0.05)


# --- 4. inputs are never destroyed ------------------------------------------------------------

def test_out_equal_to_an_input_is_refused_even_with_force(tmp_path, capsys):
    config = tmp_path / "x.toml"
    config.write_text("[population]\nsize = 3\n")
    text = config.read_text()
    code, _, err = run_main(capsys, "run", config, "--out", config, "--force")
    assert_one_line_error(code, err, "is an input of this command")
    assert config.read_text() == text
    link = tmp_path / "link.h5"
    link.symlink_to(config)
    code, _, err = run_main(capsys, "run", config, "--out", link, "--force")
    assert_one_line_error(code, err, "is an input")
    assert config.read_text() == text
    params = tmp_path / "p.toml"
    params.write_text("")
    code, _, err = run_main(capsys, "run", config, "--params", params, "--out",
                            tmp_path / "o.h5", "--figure", params, "--force")
    assert_one_line_error(code, err, "--figure", "is an input")


@pytest.mark.parametrize("name", ["out.toml", "out.txt", "out"])
def test_cohort_file_suffix(tmp_path, capsys, name):
    config = tmp_path / "x.toml"
    config.write_text("[population]\nsize = 3\n")
    code, _, err = run_main(capsys, "run", config, "--out", tmp_path / name)
    assert_one_line_error(code, err, "must end in .h5, .hdf5, .nc")
    assert not (tmp_path / name).exists()


def test_bench_writes_only_where_told(tmp_path, capsys):
    args = build_parser().parse_args(["bench"])
    assert args.out is None and args.table is None
    existing = tmp_path / "r.json"
    existing.write_text("{}")
    code, _, err = run_main(capsys, "bench", "--out", existing, "--sizes", "1")
    assert_one_line_error(code, err, "file exists; pass --force")
    assert existing.read_text() == "{}"
    code, _, err = run_main(capsys, "bench", "--out", tmp_path / "r.txt")
    assert_one_line_error(code, err, "must end in .json")


def test_bench_without_roadrunner_says_so_before_compiling(tmp_path, capsys, monkeypatch):
    """libRoadRunner is in the [dev] extra only: without it `popsim bench` stops at once (nothing
    compiled, nothing written) with the install command and the option that skips it."""
    import sys

    from popsim import bench

    def compiled(*args, **kwargs):
        raise AssertionError("compiled before checking for libRoadRunner")

    monkeypatch.setitem(sys.modules, "roadrunner", None)  # what an absent module looks like
    monkeypatch.setattr(bench, "popsim_rate", compiled)
    out = tmp_path / "r.json"
    for quick in ([], ["--quick"]):
        code, stdout, err = run_main(capsys, "bench", *quick, "--sizes", "2", "--out", out)
        assert_one_line_error(code, err, "libRoadRunner", "pip install 'popsim[dev]'",
                              "--roadrunner-patients 0")
        assert stdout == "" and list(tmp_path.iterdir()) == []
    with pytest.raises(bench.BenchError, match=r"roadrunner_patients=0"):
        bench.run_benchmark(sizes=(2,), out=out)
    with pytest.raises(AssertionError, match="compiled before"):  # 0: no libRoadRunner needed
        run_main(capsys, "bench", "--roadrunner-patients", "0", "--sizes", "2")


# --- 5. no tracebacks, nothing half-written ----------------------------------------------------

def _corrupt_output(path):
    """Flip bytes inside the compressed chunks of ``serum_k`` (caught by Fletcher-32)."""
    import h5py

    with h5py.File(path, "r") as f:
        ds = f["serum_k"]
        offsets = [ds.id.get_chunk_info(i).byte_offset for i in range(ds.id.get_num_chunks())]
        size = ds.id.get_chunk_info(0).size
    with open(path, "r+b") as fh:
        for off in offsets:
            fh.seek(off + size // 2)
            fh.write(b"\xff\x00\xff\x00")


def test_report_on_corrupted_data_is_one_line_and_leaves_nothing(tmp_path, capsys,
                                                                small_trial):
    bad = tmp_path / "bad.h5"
    shutil.copy(small_trial[0], bad)
    _corrupt_output(bad)
    out = tmp_path / "rep"
    code, _, err = run_main(capsys, "report", bad, "--out", out)
    assert_one_line_error(code, err, "cannot read serum_k")
    assert sorted(os.listdir(tmp_path)) == ["bad.h5"]


def test_report_and_validate_refuse_an_existing_file_as_out(tmp_path, capsys, small_trial):
    f = tmp_path / "notes.txt"
    f.write_text("mine")
    code, _, err = run_main(capsys, "report", small_trial[0], "--out", f)
    assert_one_line_error(code, err, "exists and is not a directory")
    code, _, err = run_main(capsys, "validate", "--out", f)
    assert_one_line_error(code, err, "exists and is not a directory")
    assert f.read_text() == "mine"


def test_report_keeps_an_earlier_report_without_force(tmp_path, capsys, small_trial):
    out = tmp_path / "rep"
    code, _, _ = run_main(capsys, "report", small_trial[0], "--out", out)
    assert code == 0
    first = listing(out)
    code, _, err = run_main(capsys, "report", small_trial[0], "--out", out)
    assert_one_line_error(code, err, "not empty; pass --force")
    assert listing(out) == first
    code, _, _ = run_main(capsys, "report", small_trial[0], "--out", out, "--force")
    assert code == 0 and sorted(listing(out)) == sorted(first)


# --- 6. no silent substitutions -------------------------------------------------------------

@pytest.mark.parametrize("days, fragment", [("1000", "--days 1000: not a saved day"),
                                            ("5.4", "--days 5.4: not a saved day"),
                                            ("2,10.5", "--days 10.5")])
def test_report_days_must_be_saved_days(tmp_path, capsys, small_trial, days, fragment):
    code, _, err = run_main(capsys, "report", small_trial[0], "--out", tmp_path / "r",
                            "--days", days)
    assert_one_line_error(code, err, fragment, "saved: 0 to 10, every 1 days")
    assert not (tmp_path / "r").exists()


# --- 7. whole tables when not on a terminal -----------------------------------------------------

def test_tables_are_whole_when_stdout_is_a_file(tmp_path, capsys, small_trial):
    code, out, _ = run_main(capsys, "report", small_trial[0], "--out", tmp_path / "r")
    assert code == 0
    assert "…" not in out
    import re

    assert re.search(r"\(1[34]\d\.\d-1[34]\d\.\d\)", out)  # a whole serum Na 5-95% cell
    from popsim.progress import console

    c = console()
    assert c.width >= 1000  # pytest's capture is not a terminal


def test_validate_table_keeps_observation_names_whole():
    from popsim.evidence import Observation
    from popsim.evidence.statistics import Evaluated
    from popsim.progress import console
    from popsim.validation import ValidationReport, print_report

    long_id = "a_rather_long_observation_identifier_that_would_wrap_in_eighty_columns"
    o = Observation(id=long_id, output="serum_k", day=0, statistic="median", unit="mmol/L",
                    expected=[3.5, 5.0], source="a source " * 20)
    buf = io.StringIO()
    c = console()
    c.file = buf
    print_report(ValidationReport([Evaluated("refractory_hypokalemia", o, 4.1, 10)]), console=c)
    assert long_id in buf.getvalue()


# --- 8. never silent -------------------------------------------------------------------------

def test_plain_progress_lines_name_the_compile_phase():
    from popsim.progress import Progress

    buf = io.StringIO()
    with Progress("simulating", 10, "patients", stream=buf, interval=0.02) as bar:
        bar.phase("compiling XLA programs")
        import time

        time.sleep(0.1)
        bar.advance(4)
        time.sleep(0.05)
    lines = buf.getvalue().splitlines()
    assert any("simulating: compiling XLA programs… " in x and x.endswith(" s") for x in lines)
    assert any("4/10 patients" in x for x in lines)
    assert lines[-1].endswith("(done)") and "10" in lines[-1]


def test_cli_hides_xla_c_log_by_default(monkeypatch, capsys):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    main(["run", "/nonexistent.toml"])
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    main(["run", "/nonexistent.toml"])
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"  # a user's own setting is kept
    capsys.readouterr()
