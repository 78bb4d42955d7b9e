"""Virtual trials: protocols compile once, interventions act where and when configured, and
`popsim report` summarises a trial."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import patients

from popsim import batch, devices, solve
from popsim import config as cfg
from popsim.protocols import arm_protocol, protocols_for
from popsim.report import ReportError, report


def trial(*interventions, days=60.0):
    return cfg.parse_config({"population": {"size": 8}, "simulation": {"days": days},
                             "arm": [{"name": "control"},
                                     {"name": "treated", "intervention": list(interventions)}]})


def _arm(conf):
    """The treated arm's protocol of a :func:`trial` config."""
    return protocols_for(conf.arms, conf.simulation.days, jnp.float64)[1]


def test_protocol_inputs_follow_the_schedule():
    conf = trial({"kind": "oral_magnesium", "dose": 486.1, "start_day": 10, "end_day": 20},
                 {"kind": "diet", "k_intake": 20, "start_day": 15, "end_day": 30},
                 {"kind": "iv_magnesium", "dose": 10, "start_day": 40, "end_day": 45},
                 {"kind": "loop_diuretic", "dose": 0.5, "start_day": 50, "end_day": 60})
    _, pt = patients(n=1, mg_intake_mg=300.0, k_intake=80.0)
    one = type(pt)(**{k: getattr(pt, k)[0] for k in pt.__dataclass_fields__})
    prot = arm_protocol(conf.arms[1].intervention, 60.0, 16, jnp.float64)
    at = lambda t: prot.inputs(jnp.float64(t), one)  # noqa: E731
    assert float(at(5).mg_oral) == pytest.approx(300 / 24.305)
    assert float(at(12).mg_oral) == pytest.approx(300 / 24.305)  # food
    assert float(at(12).mg_organic) == pytest.approx(486.1 / 24.305)  # the citrate supplement
    assert float(at(5).mg_organic) == float(at(20).mg_organic) == 0.0
    assert float(at(20).mg_oral) == pytest.approx(300 / 24.305)  # end_day is exclusive
    assert float(at(16).k_oral) == pytest.approx(20.0)  # the diet replaces the intake
    assert float(at(31).k_oral) == pytest.approx(80.0)  # and the baseline returns
    assert float(at(42).mg_iv) == pytest.approx(2.0)  # 10 mmol over 5 days
    assert float(at(55).loop_dose) == pytest.approx(0.5)
    assert float(at(45).loop_dose) == 0.0
    jumps = np.asarray(prot.jump_times())
    for d in (10, 15, 20, 30, 40, 45, 50):
        assert d in jumps


def test_changing_doses_or_days_does_not_recompile(mixed_cohort):
    pb, pt, y0 = mixed_cohort
    ts = jnp.linspace(0.0, 60.0, 61)
    settings = solve.SolverSettings()
    a = _arm(trial({"kind": "oral_magnesium", "dose": 400, "start_day": 10,
                             "end_day": 40}))
    b = _arm(trial({"kind": "oral_potassium", "dose": 30, "start_day": 5,
                             "end_day": 55}))
    program = batch.simulate_observe_jit
    program(pb, pt, a, y0, ts, settings)
    size = program.signatures()
    out_b, status, _ = program(pb, pt, b, y0, ts, settings)
    assert program.signatures() == size  # the same traced (and compiled) program
    assert (np.asarray(status) == 0).all()
    # and the K arm really raised urinary K from day 5 to 55
    assert np.all(np.asarray(out_b["urine_k"])[:, 30] > np.asarray(out_b["urine_k"])[:, 2])


@pytest.fixture(scope="module")
def mixed_cohort():
    pb, pt = patients(egfr=[100, 60, 30, 110, 90, 75, 45, 120])
    y0, ok = devices.steady_states_with_fallback(pb, pt, solve.SolverSettings())
    return pb, pt, y0


def test_report_tables_figures_and_paired_differences(small_trial, tmp_path):
    path, _ = small_trial
    summary = report(path, tmp_path / "rep")
    assert summary["arms"] == ["control", "magnesium"]
    for f in ("time_courses.png", "distributions.png", "prevalence_by_mg_intake.png",
              "prevalence_by_egfr.png"):
        assert (tmp_path / "rep" / f).stat().st_size > 10_000
    saved = json.loads((tmp_path / "rep" / "summary.json").read_text())
    # day 6 is inside the supplement window (days 2-8): serum Mg higher in every patient
    mid = str(min(saved["days"], key=lambda d: abs(d - 5.0)))
    d = saved["paired_difference"]["magnesium"][mid]["serum_mg"]
    assert d["mean"] > 0 and d["ci95"][0] > 0 and d["unit"] == "mmol/L"
    t = saved["tables"]["control"][mid]["serum_mg"]
    assert t["p5"] <= t["median"] <= t["p95"]
    csv = (tmp_path / "rep" / "summary.csv").read_text().splitlines()
    assert csv[0] == "arm,day,variable,statistic,value,unit" and len(csv) > 50
    assert 0.0 <= saved["prevalence"]["control"][mid]["hypokalemia"] <= 1.0


def test_report_refuses_incomplete_and_foreign_files(small_trial, tmp_path):
    import shutil

    import h5py

    path, _ = small_trial
    partial = tmp_path / "partial.h5"
    shutil.copy(path, partial)
    with h5py.File(partial, "r+") as f:
        f.attrs["complete"] = 0
        f["chunk_done"][1] = 0
    with pytest.raises(ReportError, match="is incomplete .* popsim run --resume"):
        report(partial, tmp_path / "x")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(ReportError, match="not a popsim cohort"):
        report(other, tmp_path / "y")


@pytest.mark.slow
def test_a_smaller_cohort_reuses_the_programs_and_gives_the_same_bits(small_trial, tmp_path):
    """Batches are padded to a few fixed sizes (`popsim.population.batch_size`): a run of the
    first 5 patients of the small trial (a batch of 8, as the trial's chunks of 7) compiles none
    of the draw, steady-state, fallback or time-course programs again, and gives those
    patients' numbers bit for bit."""
    import tomllib

    import h5py
    from conftest import SMALL_TRIAL

    from popsim.compilation import CompileCounter
    from popsim.population import batch_size
    from popsim.run import run_cohort

    assert [batch_size(n) for n in (1, 5, 7, 8, 9, 200, 513, 1000, 1001)] == \
        [8, 8, 8, 8, 16, 256, 1000, 1000, 1001]
    assert batch_size(7, 4) == 8 and batch_size(7, 3) == 9
    reference, _ = small_trial
    out = tmp_path / "five.h5"
    with CompileCounter() as counted:
        run_cohort(cfg.parse_config(tomllib.loads(SMALL_TRIAL)), SMALL_TRIAL, out, size=5,
                   progress=False)
    solver = {"jit(draws)", "jit(steady_states)", "jit(steady_states_fallback)",
              "jit(simulate_observe_in_groups)"}
    assert not solver & set(counted.programs), counted.programs
    with h5py.File(reference) as a, h5py.File(out) as b:
        assert b["status"].shape == (2, 5) and (a["status"][:, :5] == 0).sum() > 0
        for name in ("serum_mg", "serum_k", "status", "egfr"):
            np.testing.assert_array_equal(b[name][...], a[name][..., :5, :] if
                                          a[name].ndim == 3 else a[name][..., :5], err_msg=name)
