"""Calibration: parameter recovery, gradients against finite differences, masking of failed
patients, reproducibility, and the config's bad-input errors.

Recovery: targets are computed by the model itself at the table values (the "truth") on a fixed
cohort; the fit starts 30-40% away and must come back within 5%. The fitted parameters are ones
these healthy adults' outputs inform although the balancing constants (popsim.balance) absorb
much of the model at the reference adult: net Mg absorption sets urinary Mg, the reference serum
Mg (to which the TAL's CaSR constant is balanced) sets serum Mg, and the nephron-mass power of K
secretion moves serum K through the cohort's eGFR spread.
"""

import dataclasses
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from popsim.calibration import build_problem, fit, parse_calibration
from popsim.calibration import targets as tg
from popsim.calibration.fitting import evaluate
from popsim.config import ConfigError
from popsim.parameters import Params

ROOT = Path(__file__).resolve().parent.parent
TRUTH = {"serum_mg_ref": Params().serum_mg_ref,
         "mg_gut_absorbed_ref": Params().mg_gut_absorbed_ref,
         "k_ckd_exponent": Params().k_ckd_exponent}
START = {"serum_mg_ref": 1.40, "mg_gut_absorbed_ref": 0.65, "k_ckd_exponent": 1.35}  # x truth
BOUNDS = {"serum_mg_ref": (0.5, 1.3), "mg_gut_absorbed_ref": (0.1, 0.9),
          "k_ckd_exponent": (0.2, 2.0)}
OUTPUTS = {"serum_mg": "mmol/L", "urine_mg": "mmol/day", "serum_k": "mmol/L"}


def _recovery_config(start: dict, target_values: dict | None, steps: int = 250) -> dict:
    return {
        "population_from": str(ROOT / "configs" / "reference_healthy.toml"),
        "optimizer": {"name": "adam", "learning_rate": 0.05, "schedule": "cosine",
                      "steps": steps, "cohort_size": 32, "seed": 11},
        "stopping": {"loss_below": 1e-12, "patience": 400},
        "parameter": [{"name": k, "lower": BOUNDS[k][0], "upper": BOUNDS[k][1],
                       "initial": start[k]} for k in TRUTH],
        "target": [{"output": o, "statistic": "median", "unit": u,
                    "value": 1.0 if target_values is None else target_values[o],
                    "scale": 0.001 * (1.0 if target_values is None else target_values[o])}
                   for o, u in OUTPUTS.items()],
    }


@pytest.fixture(scope="module")
def truth_targets():
    """Medians (smoothed, as the loss sees them) of the three outputs at the true parameters."""
    conf, pop = parse_calibration(_recovery_config(TRUTH, None))
    _, stats, ok, _, _ = evaluate(build_problem(conf, pop))
    assert np.asarray(ok).all()
    return dict(zip(OUTPUTS, np.asarray(stats).tolist(), strict=True))


@pytest.fixture(scope="module")
def recovery(truth_targets):
    start = {k: TRUTH[k] * START[k] for k in TRUTH}
    conf, pop = parse_calibration(_recovery_config(start, truth_targets))
    problem = build_problem(conf, pop)
    return problem, fit(problem, progress=False)


def test_parameter_recovery_within_5_percent(recovery):
    _, res = recovery
    values, _ = res.fitted
    for name, true in TRUTH.items():
        start = true * START[name]
        assert abs(start / true - 1) >= 0.3
    assert {k: values[k] for k in TRUTH} == pytest.approx(TRUTH, rel=0.05)


def test_loss_decreases(recovery):
    _, res = recovery
    losses = np.array(res.losses)
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 1e-4 * losses[0]
    # mostly monotone: a running minimum that keeps falling through the fit
    best = np.minimum.accumulate(losses)
    assert best[len(best) // 4] < 0.5 * losses[0]
    assert best[-1] < best[len(best) // 2]


def test_fit_is_reproducible_from_its_seed(recovery, truth_targets):
    problem, res = recovery
    again = fit(build_problem(problem.conf, problem.pop), progress=False)
    np.testing.assert_array_equal(np.asarray(again.u), np.asarray(res.u))
    assert again.losses == res.losses


def test_failed_patient_is_masked_not_nan(recovery):
    """A patient without a steady state (NaN body weight) drops out of every statistic: the
    loss equals that of the cohort without it, and loss and gradient stay finite. The other
    patients' outputs are those of the unbroken cohort at the same parameters (the fit's
    starting outputs), and the cohort-without-it loss is the targets' statistics of those."""
    problem, res = recovery
    cov = {k: np.array(v, copy=True) for k, v in problem.cov.items()}
    cov["body_weight"][0] = np.nan
    broken = dataclasses.replace(problem, cov=cov)  # the same compiled step, other data
    loss, _, ok, raw, grad = evaluate(broken, gradient=True)
    assert not bool(ok[0]) and bool(np.asarray(ok[1:]).all())
    assert np.isfinite(float(loss)) and np.all(np.isfinite(np.asarray(grad)))
    assert np.all(np.isnan(np.asarray(raw)[:, 0]))
    others = np.asarray(res.values_before)[:, 1:]
    np.testing.assert_allclose(np.asarray(raw)[:, 1:], others, rtol=1e-9)

    targets = problem.conf.target
    keep = jnp.ones(problem.n - 1, bool)
    loss_small = sum(t.weight * float(tg.loss_term(t, tg.statistic(t, jnp.asarray(x), keep)))
                     for t, x in zip(targets, others, strict=True)) / sum(t.weight for t in targets)
    assert float(loss) == pytest.approx(loss_small, rel=1e-8)


def test_problems_that_differ_only_in_numbers_share_one_compiled_step(recovery, truth_targets):
    """Another cohort (seed) and other target values are arguments of the compiled step, not
    constants in it: such a problem compiles nothing (its step comes from the compile cache)."""
    from popsim.compilation import CompileCounter

    problem, _ = recovery
    other = {o: 1.1 * v for o, v in truth_targets.items()}
    conf, pop = parse_calibration(_recovery_config(TRUTH, other))
    conf = conf.model_copy(update={"optimizer": conf.optimizer.model_copy(update={"seed": 12})})
    with CompileCounter() as counter:
        new = build_problem(conf, pop)
        loss, _, ok, _, _ = evaluate(new)
    assert not np.array_equal(new.cov["age"], problem.cov["age"])
    assert np.asarray(ok).all() and float(loss) > 0
    assert counter.requests > 0 and counter.compilations == 0, counter.programs


# --- gradients against central finite differences (float64), with a dynamic target -----------

GRAD_CONFIG = {
    "population_from": str(ROOT / "configs" / "reference_healthy.toml"),
    "optimizer": {"cohort_size": 8, "arm_cohort_size": 8, "seed": 3},
    "simulation": {"days": 5, "rtol": 1e-10, "atol": 1e-12},
    "arm": [{"name": "low_mg", "intervention": [{"kind": "diet", "mg_intake": 20,
                                                  "start_day": 0, "end_day": 5}]}],
    "parameter": [
        {"name": "mg_gut_absorbed_ref", "lower": 0.1, "upper": 0.9},
        {"name": "mg_dct_half_load", "lower": 0.03, "upper": 0.5},
        {"name": "k_ckd_exponent", "lower": 0.2, "upper": 2.0},
        {"name": "cv.mg_gut_absorbed_ref", "lower": 0.0, "upper": 0.5, "transform": "logit"},
    ],
    "target": [
        {"output": "serum_mg", "statistic": "median", "value": 0.95, "unit": "mmol/L"},
        {"output": "serum_k", "statistic": "quantile", "q": 0.9, "value": 4.9,
         "unit": "mmol/L"},
        {"output": "urine_mg", "statistic": "mean", "low": 4.5, "high": 6.0,
         "unit": "mmol/day"},
        {"output": "serum_mg", "statistic": "fraction_in_range", "low": 0.8, "high": 0.86,
         "fraction": 0.9, "unit": "1"},
        {"output": "serum_mg", "statistic": "median", "arm": "low_mg", "day": 5,
         "value": 0.6, "unit": "mmol/L"},
    ],
}


@pytest.fixture(scope="module")
def grad_problem():
    """The gradient problem in forward mode (its compiled program also gives the central
    differences' loss values)."""
    conf, pop = parse_calibration(GRAD_CONFIG)
    conf = conf.model_copy(update={"optimizer": conf.optimizer.model_copy(
        update={"gradient": "forward"})})
    return build_problem(conf, pop)


@pytest.fixture(scope="module")
def central_differences(grad_problem):
    """The loss's central differences at u0 (shared by the forward and reverse tests)."""
    return _central_differences(grad_problem)


def _central_differences(problem, h=1e-5):
    """Central differences of the loss (the primal value of ``problem``'s gradient program,
    which is compiled anyway: no separate loss-only program)."""
    u0 = np.asarray(problem.u0())
    fd = []
    for i in range(u0.size):
        e = np.zeros_like(u0)
        e[i] = h
        lp = float(evaluate(problem, jnp.asarray(u0 + e), gradient=True)[0])
        lm = float(evaluate(problem, jnp.asarray(u0 - e), gradient=True)[0])
        fd.append((lp - lm) / (2 * h))
    return np.array(fd)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_gradient_matches_central_differences(grad_problem, central_differences, mode):
    problem = grad_problem
    if mode == "reverse":
        conf = problem.conf
        conf = conf.model_copy(update={"optimizer": conf.optimizer.model_copy(
            update={"gradient": mode})})
        problem = build_problem(conf, grad_problem.pop)
    assert problem.conf.optimizer.gradient == mode
    loss, _, ok, _, grad = evaluate(problem, gradient=True)
    assert np.asarray(ok).all() and float(loss) > 0
    grad = np.asarray(grad)
    fd = central_differences
    assert np.all(np.abs(fd) > 1e-6 * np.abs(fd).max())  # every parameter matters
    np.testing.assert_allclose(grad, fd, rtol=1e-3, atol=1e-6 * np.abs(fd).max())


# --- bad input: one line, exit 2, nothing written ---------------------------------------------

GOOD = """
population_from = "{pop}"
[optimizer]
steps = 2
cohort_size = 4
[[parameter]]
name = "{name}"
lower = {lower}
upper = {upper}
[[target]]
output = "{output}"
statistic = "median"
low = {low}
high = 1.0
unit = "mmol/L"
"""


def _cal_text(**kw):
    fields = dict(pop=ROOT / "configs" / "reference_healthy.toml", name="mg_dct_half_load",
                  lower=0.05, upper=0.3, output="serum_mg", low=0.7)
    fields.update(kw)
    return GOOD.format(**fields)


@pytest.mark.parametrize(("kw", "message"), [
    (dict(name="mg_dct_half_loads"),
     "unknown parameter 'mg_dct_half_loads' (did you mean 'mg_dct_half_load'?)"),
    (dict(lower=0.2, upper=0.3), "bounds 0.2..0.3 exclude the current value 0.154"),
    (dict(output="serum_magnesium"), "unknown output 'serum_magnesium'"),
    (dict(low=1.2), "infeasible range: low (1.2) must be below high (1)"),
    (dict(low="nan"), "target.1.low"),
    (dict(upper="nan"), "parameter.1.upper"),
])
def test_bad_calibration_config_one_line_exit_2(tmp_path, capsys, kw, message):
    from popsim.cli import main

    path = tmp_path / "cal.toml"
    path.write_text(_cal_text(**kw))
    out = tmp_path / "params.toml"
    assert main(["calibrate", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err, err
    assert not out.exists() and not list(tmp_path.glob("params*"))


def test_parse_errors_name_field_value(tmp_path):
    import tomllib

    with pytest.raises(ConfigError, match="optimizer.learning_rate"):
        parse_calibration({**tomllib.loads(_cal_text()), "optimizer": {"learning_rate": -1}})


def test_calibrate_refuses_to_overwrite(tmp_path, capsys):
    from popsim.cli import main

    path = tmp_path / "cal.toml"
    path.write_text(_cal_text())
    out = tmp_path / "params.toml"
    out.write_text("keep me")
    assert main(["calibrate", str(path), "--out", str(out), "--quiet"]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert out.read_text() == "keep me"


# --- parameter files: popsim run --params, and the shipped default -----------------------------

def test_run_with_params_file_uses_it_and_records_it(small_trial, tmp_path, capsys):
    """A parameter file raising the osmotic Na set-point by 4 mmol/L raises every patient's
    serum Na by about that much; the cohort file names the parameter file."""
    import h5py
    from conftest import SMALL_TRIAL

    from popsim.cli import main
    from popsim.parameters.io import default_parameters, write_params_file

    pfile = tmp_path / "params.toml"
    write_params_file(pfile, {"na_osmotic_setpoint": (144.0, 140.0)}, {}, {"seed": 0}, [])
    conf = tmp_path / "trial.toml"
    conf.write_text(SMALL_TRIAL)
    out = tmp_path / "trial.h5"
    assert main(["run", str(conf), "--out", str(out), "--params", str(pfile), "--quiet",
                 "--chunk-size", "7"]) == 0
    base_path, _ = small_trial
    with h5py.File(out) as f, h5py.File(base_path) as g:
        assert f.attrs["params_source"] == str(pfile)
        assert g.attrs["params_source"] == default_parameters().source
        shift = f["serum_na"][0, :, 0] - g["serum_na"][0, :, 0]
    assert np.all((shift > 3.0) & (shift < 5.0)), shift


def test_params_table_is_the_table_and_a_file_named_table_is_a_file(tmp_path, monkeypatch):
    """``--params table`` names the parameter table without the shipped fit (what fits start
    from); a file called ``table`` is still read as a file when given as a path."""
    from popsim.cli.args import build_parser
    from popsim.cli.commands import _load_params
    from popsim.parameters.io import write_params_file

    def loaded(value):
        args = build_parser().parse_args(["validate", "--params", value, "--out", "v"])
        return _load_params(args.params)

    ps, err = loaded("table")
    assert err is None and ps.source == "table" and ps.params == Params() and ps.cvs == {}
    monkeypatch.chdir(tmp_path)
    write_params_file(tmp_path / "table", {"na_osmotic_setpoint": (144.0, 140.0)}, {}, {}, [])
    ps, err = loaded("./table")
    assert err is None and ps.params.na_osmotic_setpoint == 144.0


@pytest.mark.parametrize(("text", "message"), [
    ("[parameters.mg_dct_half_loads]\nvalue = 0.1\n",
     "unknown parameter (did you mean 'mg_dct_half_load'?)"),
    ("[parameters.mg_dct_half_load]\nvalue = nan\n", "must be a finite number"),
    ("[parameters.mg_dct_half_load]\nvalue = 0.1\nunit = \"mg/L\"\n",
     "the model uses 'mmol/L'"),
    ("[variability.mg_dct_half_load]\ncv = -1\n", "cv must be a number in 0..2"),
    ("not toml [", "not valid TOML"),
])
def test_run_with_bad_params_file_exits_2(tmp_path, capsys, text, message):
    from conftest import SMALL_TRIAL

    from popsim.cli import main

    pfile = tmp_path / "params.toml"
    pfile.write_text(text)
    conf = tmp_path / "trial.toml"
    conf.write_text(SMALL_TRIAL)
    out = tmp_path / "trial.h5"
    assert main(["run", str(conf), "--out", str(out), "--params", str(pfile), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err, err
    assert not out.exists()


def test_reference_range_calibration_config_names_parameters_the_model_has():
    """configs/calibration_reference.toml (the reference-range example) loads: every parameter
    it names exists, with bounds around its value."""
    from popsim.calibration.config import load_calibration

    conf, _, _ = load_calibration(ROOT / "configs" / "calibration_reference.toml")
    assert len(conf.parameter) >= 5


def _fit_script():
    import importlib.util
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        spec = importlib.util.spec_from_file_location("fit_blood_pressure",
                                                      ROOT / "scripts" / "fit_blood_pressure.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return module


def test_shipped_parameters_are_the_committed_evidence_fit(capsys):
    """The default parameter set is what scripts/fit_blood_pressure.py --ship installed: its
    studies, held-out studies and fitted names are the script's, no reserved study was read,
    the fit record's command is the script's, and every fitted value is the record's and inside
    the script's bounds. Every other parameter keeps its table value."""
    import json
    import tomllib

    from popsim import evidence
    from popsim.parameters.io import SHIPPED, default_parameters

    script = _fit_script()
    assert SHIPPED == script.SHIPPED
    ps = default_parameters()
    assert ps.source == "popsim/parameters/reference_calibration.toml"
    shipped = tomllib.loads(SHIPPED.read_text())
    meta = shipped["meta"]
    assert meta["script"] == "scripts/fit_blood_pressure.py"
    assert meta["base_parameters"] == "table"
    assert tuple(meta["studies"]) == script.STUDIES
    assert tuple(meta["held_out"]) == script.HOLDOUT
    reserved = {i for i, s in evidence.catalogue().items() if s.study.reserved}
    assert reserved and not reserved & {*meta["studies"], *meta["held_out"]}
    record = json.loads((SHIPPED.parent / meta["fit_record"]).read_text())
    assert script.main(["--dry-run", "--out", "OUT"]) == 0
    command = capsys.readouterr().out.strip()
    assert record["command"].split("--out")[0].removeprefix("popsim ") == \
        command.split("--out")[0].removeprefix("popsim ")
    bounds = {n.split("=")[0]: tuple(map(float, n.split("=")[1].split(":")))
              for n in script.FIT}
    assert set(shipped["parameters"]) == set(bounds) == set(record["names"])
    table = Params()
    for name, entry in shipped["parameters"].items():
        assert entry["status"] == "fitted"
        assert getattr(ps.params, name) == entry["value"] == record["parameters"][name]["value"]
        assert bounds[name][0] <= entry["value"] <= bounds[name][1]
    for f in dataclasses.fields(Params):
        if f.name not in bounds:
            assert getattr(ps.params, f.name) == getattr(table, f.name), f.name


def test_validate_with_bad_params_file_exits_2(tmp_path, capsys):
    from popsim.cli import main

    pfile = tmp_path / "params.toml"
    pfile.write_text("[parameters.k_aldo_exponent]\nvalue = -1\n")
    assert main(["validate", "--params", str(pfile), "--out", str(tmp_path / "v"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "k_aldo_exponent.value = -1 is outside" in err, err
    assert not (tmp_path / "v").exists()
