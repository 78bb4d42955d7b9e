"""The README's code as written: every `popsim` command parses with the CLI's own parser and
names shipped files that exist; the TOML examples are valid configs; the Python example uses
public names only and runs; the outputs table is complete; the commands that need no
simulation run and exit 0; the cohort pipeline (run, report, vpop select, SBML export) and the
tour's trial, the calibration example and the runs after it run as written with smaller sizes
(slow). `validate` and `evidence run` run as written in tests/test_validation.py."""

import ast
import json
import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import README, readme_blocks, readme_command, readme_commands, run_readme_command

from popsim import config as cfg
from popsim import store
from popsim.calibration import evidence_fit
from popsim.cli import main
from popsim.cli.args import build_parser
from popsim.parameters.io import load_params_file

ROOT = Path(__file__).resolve().parents[1]
_blocks = readme_blocks
COMMANDS = readme_commands()


def test_the_readme_shows_the_commands():
    assert {c[0] for c in COMMANDS} >= {"run", "check", "report", "validate", "evidence",
                                         "calibrate", "sensitivity", "vpop", "cache",
                                         "export-sbml"}


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c)[:60] for c in COMMANDS])
def test_every_command_parses_and_its_shipped_files_exist(argv):
    build_parser().parse_args(argv)  # an unknown flag or a bad choice exits 2 here
    for word in argv:
        if word.startswith("configs/"):
            assert (ROOT / word).is_file(), f"{word} is not shipped"


def test_the_toml_examples_are_valid_configs():
    trial, enrolment = _blocks("toml")
    base = tomllib.loads(trial)
    conf = cfg.parse_config(base)
    assert [a.name for a in conf.arms] == ["placebo", "mg_400"]
    # the enrolment and dosing fragment, in the trial's population
    fragment = tomllib.loads(enrolment)
    merged = {**base, "population": {**base["population"], **fragment["population"]},
              "arm": fragment["arm"]}
    conf = cfg.parse_config(merged)
    assert conf.arms[0].intervention[0].titrate is not None


def test_the_python_example_uses_public_names():
    import popsim

    [code] = _blocks("python")
    tree = ast.parse(code)
    used = {n.attr for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.value.id == "popsim"}
    assert used and used <= set(popsim.__all__), used - set(popsim.__all__)


@pytest.mark.parametrize("argv", [c for c in COMMANDS if c[0] in ("check", "evidence")
                                  and c[1:2] != ["run"] or c[:2] == ["cache", "info"]],
                         ids=lambda c: " ".join(c))
def test_commands_without_a_simulation_run_as_written(argv, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(ROOT)
    assert main(list(argv)) == 0
    assert capsys.readouterr().out.strip()


PIPELINE = [c for c in COMMANDS
            if c[:2] == ["run", "configs/us_adults.toml"]
            and "--params" not in c and "--uncertainty" not in c
            or c[0] == "report" and c[1] == "cohort.h5" or c[:2] == ["vpop", "select"]
            or c[0] == "export-sbml"]


@pytest.mark.slow
def test_the_cohort_commands_run_as_written_at_a_small_size(monkeypatch, tmp_path, capsys):
    """The README's cohort pipeline, run in order with only the cohort size cut (to 24): run
    with a figure, report, virtual-population selection, SBML of the reference adult and of
    patient 17. Each exits 0 and writes what the README says it writes. Then the README's
    Python example runs beside that cohort file, its simulation cut to the same 24 patients
    (whose numbers must be the file's). The other commands run as written in
    tests/test_validation.py (validate, evidence run), the last test of this file (calibrate
    and the runs after it), tests/test_sensitivity.py, tests/test_uncertainty.py (report of a
    replicate file) and tests/test_compile_cache.py."""
    assert [c[0] for c in PIPELINE] == ["run", "report", "vpop", "export-sbml", "export-sbml"]
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    for argv in PIPELINE:
        argv = ["24" if a == "1000" and argv[0] == "run" else a for a in argv]
        assert main([*argv, "--quiet"] if argv[0] == "run" else argv) == 0, argv
        out = argv[argv.index("--out") + 1] if "--out" in argv else None
        if out is not None:
            assert (tmp_path / out).stat().st_size > 0, out
    assert (tmp_path / "cohort.png").stat().st_size > 10_000
    assert "serum" in capsys.readouterr().out
    # then the Python example beside the cohort.h5 just written, its simulation cut to the same
    # 24 US adults (the same compiled programs): the same numbers as the command line's run
    [code] = _blocks("python")
    assert 'simulate("configs/us_adults.toml", size=1000)' in code
    scope: dict = {}
    first, rest = code.split("ds = popsim.open_dataset")
    exec(compile(first.replace("size=1000", "size=24"), "README.md", "exec"), scope)
    simulated = scope["ds"]
    exec(compile("ds = popsim.open_dataset" + rest, "README.md", "exec"), scope)
    assert simulated.sizes["patient"] == 24 and scope["coh"].n_patients == 24
    np.testing.assert_array_equal(simulated.serum_k.values, scope["ds"].serum_k.values)


def test_the_outputs_table_lists_every_output_with_its_unit():
    """The README's outputs table names every output once, each with the unit it is stored in
    (:data:`popsim.outputs.OUTPUT_SPECS`): a new output or a changed unit must be shown."""
    from popsim.outputs import OUTPUT_SPECS

    table = README.split("| group | outputs (unit) |")[1].split("\n\n")[0]
    shown, pending = {}, []
    for row in table.splitlines()[2:]:
        for name, unit in re.findall(r"`(\w+)`|\(([^)]*)\)", row.split("|")[2]):
            if name:
                pending.append(name)
            else:
                for n in pending:
                    assert n not in shown, f"{n} shown twice"
                    shown[n] = unit.split(",")[0].strip()
                pending = []
        assert not pending, f"no unit after {pending}"
    assert shown == {name: unit for name, (unit, _) in OUTPUT_SPECS.items()}


@pytest.mark.slow
def test_the_tour_trial_runs_as_written_at_a_small_size(hypokalaemia_trial, monkeypatch,
                                                        tmp_path):
    """The tour's trial command on `configs/trial_hypokalaemia.toml` cut to 12 patients for 4
    weeks (the `hypokalaemia_trial` fixture's config), in chunks of 4 where the fixture used 6
    (both padded to the same compiled batch of 8): the same screened and enrolled patients and
    the same numbers as the fixture's run through the Python API, whatever the chunk size;
    every one hypokalaemic and Mg deficient at baseline; a figure with both arms."""
    from conftest import HYPOKALAEMIA_TRIAL

    import popsim

    argv = readme_command("run", "configs/trial_hypokalaemia.toml")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "trial_hypokalaemia.toml").write_text(HYPOKALAEMIA_TRIAL)
    monkeypatch.chdir(tmp_path)
    argv = [("12" if i and argv[i - 1] == "--size" else a) for i, a in enumerate(argv)]
    assert main([*argv, "--chunk-size", "4", "--quiet"]) == 0
    ds = popsim.open_dataset(tmp_path / argv[argv.index("--out") + 1])
    fixture = popsim.open_dataset(hypokalaemia_trial[0])
    for name in ("serum_k", "serum_mg", "dose_oral_potassium", "egfr"):
        np.testing.assert_array_equal(ds[name].values, fixture[name].values)
    out = tmp_path / argv[argv.index("--out") + 1]
    assert popsim.screening_summary(out) == popsim.screening_summary(hypokalaemia_trial[0])
    baseline = ds.isel(day=0)
    assert float(baseline.serum_k.max()) <= 3.5 and float(baseline.serum_mg.max()) <= 0.70
    figure = tmp_path / argv[argv.index("--figure") + 1]
    assert figure.stat().st_size > 10_000 and set(ds.arm.values) == {"k_alone", "mg_plus_k"}


# --- the calibration example and the runs after it ------------------------------------------
# The README's calibration and prediction-band commands, run as written in order in one folder
# with only their sizes cut: a fit to a published study, a cohort run with the fitted parameter
# file and a run with parameter replicates drawn from the fit (`popsim report bands.h5` runs in
# tests/test_uncertainty.py, on its replicate file). The fit (one population study at its
# steady state, 8 virtual patients) compiles its own programs; the two runs come after the
# cohort pipeline above in this file, so they load its programs: the run with the fitted file
# has its 24 patients of `configs/us_adults.toml`, the replicate run its batch (12 patients x
# 2 replicates).


def _cut(argv: list[str], sizes: dict[str, str]) -> list[str]:
    """``argv`` with the value of each flag in ``sizes`` replaced, and the flags it lacks
    added."""
    out = list(argv)
    for flag, value in sizes.items():
        if flag in out:
            out[out.index(flag) + 1] = value
        else:
            out += [flag, value]
    return out


def _option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


@pytest.mark.slow
def test_calibrate_then_run_with_the_fit_and_with_its_uncertainty(tmp_path, capsys):
    shutil.copytree(ROOT / "configs", tmp_path / "configs")

    # popsim calibrate --evidence STUDY --fit ... --profile NAME --out fit/
    argv = _cut(readme_command("calibrate", "--evidence"),
                {"--population-size": "8", "--starts": "1", "--steps": "2",
                 "--profile-points": "3"})
    status, got = run_readme_command([*argv, "--quiet"], tmp_path,
                                     ((evidence_fit, "fit_evidence"),))
    assert status == 0
    result = got["fit_evidence"]
    fit_dir = tmp_path / _option(argv, "--out")
    record = json.loads((fit_dir / "fit.json").read_text())
    studies = argv[argv.index("--evidence") + 1:argv.index("--fit")]
    names = [item.split("=")[0] for item in _option(argv, "--fit").split(",")]
    assert record["studies"] == studies and record["names"] == names
    assert record["population_size"] == 8 and len(record["starts_detail"]) == 1
    for name, value in result.values.items():
        assert record["parameters"][name]["value"] == pytest.approx(value, rel=1e-6), name
    loaded = load_params_file(fit_dir / "parameters.toml")  # its fitted claims checked
    for name in names:
        if not name.startswith("cv."):
            assert getattr(loaded.params, name) == pytest.approx(result.values[name], rel=1e-6)
    profiled = _option(argv, "--profile")
    assert {"observations.csv", f"profile_{profiled}.png"} <= {f.name for f in fit_dir.iterdir()}
    printed = capsys.readouterr().out
    assert "fitted parameters" in printed and f"wrote {fit_dir.name}/fit.json" in printed

    # popsim run configs/us_adults.toml --params fit/parameters.toml --out FILE
    argv = readme_command("run", "configs/us_adults.toml", "--params")
    assert "--size" not in argv
    status, _ = run_readme_command([*argv, "--size", "24", "--quiet"], tmp_path)
    assert status == 0
    fitted = store.open_cohort(tmp_path / _option(argv, "--out"))
    assert fitted.attrs["params_source"] == _option(argv, "--params")
    assert fitted.n_patients == 24 and fitted.complete

    # popsim run CONFIG --out bands.h5 --size N --uncertainty fit/ --replicates R
    argv = _cut(readme_command("run", "configs/us_adults.toml", "--out", "bands.h5"),
                {"--size": "12", "--replicates": "2"})
    assert _option(argv, "--uncertainty").rstrip("/") == fit_dir.name
    status, _ = run_readme_command([*argv, "--quiet"], tmp_path)
    assert status == 0
    bands = tmp_path / _option(argv, "--out")
    coh = store.open_cohort(bands)
    assert coh.n_replicates == 2 and coh.n_patients == 12 and coh.complete
    assert list(coh.drawn_names) == names
    np.testing.assert_allclose(coh.drawn_values[0], [result.values[n] for n in names],
                               rtol=1e-6)  # replicate 0: the point estimate
