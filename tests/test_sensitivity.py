"""Global sensitivity (popsim.sensitivity): SALib's Sobol' indices against the Ishigami function's
analytic values, the model question on a small instance (one compilation), the README's command
on the same compiled program, and the command's bad input."""

import io
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import readme_command, run_readme_command

from popsim import config as cfg
from popsim import sensitivity as sa

# --- the generic estimator --------------------------------------------------------------------

ISHIGAMI_S1 = (0.3139, 0.4424, 0.0)  # a = 7, b = 0.1 (SALib's test_functions.Ishigami)
ISHIGAMI_ST = (0.5576, 0.4424, 0.2437)


def ishigami(x, a=7.0, b=0.1):
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


@pytest.fixture(scope="module")
def ishigami_result():
    return sa.sobol(ishigami, ["x1", "x2", "x3"], [(-np.pi, np.pi)] * 3, n=2**13, seed=42)


@pytest.mark.parametrize("index, true", [("S1", ISHIGAMI_S1), ("ST", ISHIGAMI_ST)])
def test_ishigami_indices_within_their_bootstrap_intervals(ishigami_result, index, true):
    r = ishigami_result
    est, conf = getattr(r, index)[:, 0], getattr(r, f"{index}_conf")[:, 0]
    assert r.n_evaluations == 2**13 * 5 and r.n_failed == 0
    assert np.all(conf < 0.05), conf  # the intervals say something
    assert np.all(np.abs(est - np.array(true)) <= np.maximum(conf, 0.005)), (est, conf)


def test_ishigami_is_reproducible_and_ranked(ishigami_result):
    again = sa.sobol(ishigami, ["x1", "x2", "x3"], [(-np.pi, np.pi)] * 3, n=2**13, seed=42,
                     n_bootstrap=10)
    assert np.array_equal(again.ST, ishigami_result.ST)
    assert ishigami_result.ranked(0) == [0, 1, 2]


def test_nonfinite_outputs_refused_or_their_base_points_dropped():
    def f(x):
        y = x[:, 0] + 2 * x[:, 1]
        y[::37] = np.nan
        return np.column_stack([y, np.ones(len(y))])

    with pytest.raises(sa.SensitivityError, match="non-finite"):
        sa.sobol(f, ["a", "b"], [(0, 1), (0, 1)], n=256)
    r = sa.sobol(f, ["a", "b"], [(0, 1), (0, 1)], n=256, drop_nonfinite=True,
                 output_names=["y", "one"])
    assert r.n_failed == len(range(0, 256 * 4, 37)) and 0 < r.n_dropped <= r.n_failed
    assert r.ST[1, 0] > r.ST[0, 0] > 0.1
    assert r.constant == ("one",) and not r.ST[:, 1].any()
    with pytest.raises(sa.SensitivityError, match="power of 2"):
        sa.sobol(f, ["a", "b"], [(0, 1), (0, 1)], n=100)


# --- the model --------------------------------------------------------------------------------

MG_DEPLETION = (Path(__file__).resolve().parents[1] / "configs" / "mg_depletion.toml").read_text(
    ).replace("days = 180", "days = 90").replace("end_day = 180", "end_day = 90").replace(
    "output_interval_days = 1.0", "output_interval_days = 45")
"""configs/mg_depletion.toml, the README's sensitivity question (a Mg-free diet, no diuretic),
cut to 90 days saved every 45: the library tests and the README's command solve its last arm in
one compiled program (a batch of 512 patients, 3 saved days)."""
PARAMETERS = ["mg_tal_casr_hill", "mg_dct_half_load", "loop_max_block"]
IRRELEVANT = "loop_max_block"  # the block of a loop diuretic: nobody takes one here
ST_ZERO_BOUND = 0.01


@pytest.fixture(scope="module")
def model_result():
    """320 virtual patients (N = 64, 3 parameters x0.67..x1.5), 90 days of a Mg-free diet."""
    config = cfg.parse_config(tomllib.loads(MG_DEPLETION))
    setup = sa.model_setup(config, ["serum_mg", "serum_k"], day=90, parameters=PARAMETERS)
    return sa.model_sobol(setup, n=64, seed=1)


def test_model_indices(model_result):
    r = model_result
    assert r.context["arm"] == "mg_free_diet" and r.context["day"] == 90.0  # the last arm
    assert r.context["patient"]["diuretic"] == "none"
    assert r.n_evaluations == 64 * 5 and r.n_failed == 0
    assert r.compile_seconds > 0 and r.run_seconds > 0
    for a in (r.S1, r.ST):
        assert np.all((a >= -0.1) & (a <= 1.1)), a
    assert np.all(r.S1 <= r.ST + r.S1_conf + r.ST_conf)
    i = PARAMETERS.index(IRRELEVANT)
    assert np.all(r.ST[i] < ST_ZERO_BOUND) and np.all(np.abs(r.S1[i]) < ST_ZERO_BOUND)
    # the Mg handling of the kidney sets serum Mg on a Mg-free diet
    assert r.ST[:2, 0].sum() > 0.5


def test_model_table_ranks_by_total_index_and_files(model_result, tmp_path):
    from rich.console import Console

    buf = io.StringIO()
    sa.print_table(model_result, Console(file=buf, width=200))
    text = buf.getvalue()
    assert "serum Mg (mmol/L) at day 90, arm mg_free_diet" in text
    for j, output in enumerate(model_result.outputs):
        block = text.split("Sobol' indices: ")[j + 1]
        order = [model_result.names[i] for i in model_result.ranked(output)]
        assert sorted(order, key=block.index) == order, (output, block)
        assert np.all(np.diff(model_result.ST[model_result.ranked(j), j]) <= 0)
    out = sa.write_results(model_result, tmp_path / "sens")
    data = json.loads((out / "sobol.json").read_text())
    assert [row["parameter"] for row in data["indices"]["serum_k"]] == \
        [model_result.names[i] for i in model_result.ranked("serum_k")]
    assert len((out / "sobol.csv").read_text().splitlines()) == 1 + 2 * 3
    assert (out / "sobol.png").stat().st_size > 10_000


def test_default_parameters_exist():
    from popsim.parameters import parameter_specs

    names = {s.name for s in parameter_specs()}
    assert set(sa.DEFAULT_PARAMETERS) <= names


# --- the command ------------------------------------------------------------------------------

def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "popsim.cli", "sensitivity", *args],
                          capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("args, message", [
    (["--outputs", "serum_k,serum_kk", "--day", "90"],
     "unknown output 'serum_kk' (did you mean 'serum_k'?); allowed: serum_mg,"),
    (["--outputs", "serum_k", "--day", "90", "--params", "nka_km_mg,bogus"],
     "unknown parameter 'bogus'; allowed: serum_mg_ref,"),
    (["--outputs", "serum_k", "--day", "10"],
     "day 10 is not a saved day of the config; saved days: 0, 45, 90"),
    (["--outputs", "serum_k", "--day", "90", "--arm", "placebo"],
     "unknown arm 'placebo'; allowed: usual_diet, mg_free_diet"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, message):
    config = tmp_path / "mg_depletion.toml"
    config.write_text(MG_DEPLETION)
    r = run_cli(str(config), *args, "--out", str(tmp_path / "sens"))
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "sens").exists() and r.stdout == ""


@pytest.mark.slow
def test_the_readme_command_writes_what_it_computed(model_result, tmp_path, capsys):
    """The README's `popsim sensitivity configs/mg_depletion.toml ...` as written, on the config
    cut to 90 days (:data:`MG_DEPLETION`) with --samples cut to 64: 64 x (5 + 2) = 448 patients,
    solved in the batch of 512 that ``model_result`` compiled. It asks what the README says (its
    outputs, day, parameters, the last arm), prints a table per output and writes into `sens/`
    the indices :func:`popsim.sensitivity.model_sobol` returned."""
    argv = readme_command("sensitivity")
    argv[argv.index("--samples") + 1] = "64"
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "mg_depletion.toml").write_text(MG_DEPLETION)
    status, got = run_readme_command([*argv, "--quiet"], tmp_path, ((sa, "model_sobol"),))
    assert status == 0
    r = got["model_sobol"]
    option = lambda flag: argv[argv.index(flag) + 1]  # noqa: E731
    assert list(r.names) == option("--params").split(",")
    assert list(r.outputs) == option("--outputs").split(",")
    assert r.context["day"] == float(option("--day")) and r.context["arm"] == "mg_free_diet"
    assert r.n_evaluations == 64 * (len(r.names) + 2) and r.n_failed == 0
    out = tmp_path / option("--out")
    assert {f.name for f in out.iterdir()} >= {"sobol.json", "sobol.csv", "sobol.png"}
    data = json.loads((out / "sobol.json").read_text())
    for j, output in enumerate(r.outputs):
        st = {row["parameter"]: row["ST"] for row in data["indices"][output]}
        assert [st[p] for p in r.names] == pytest.approx(r.ST[:, j].tolist(), rel=0, abs=1e-12)
    printed = capsys.readouterr().out
    assert "Sobol' indices: serum K (mmol/L) at day 90, arm mg_free_diet" in printed
