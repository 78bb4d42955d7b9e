"""The README's calibration and prediction-band commands, run as written in order in one folder
with only their sizes cut: a fit to a published study, a cohort run with the fitted parameter
file and a run with parameter replicates drawn from the fit. (`popsim report bands.h5` runs in
tests/test_uncertainty.py, on its replicate file.)

The fit (one population study at its steady state, 8 virtual patients) compiles its own
programs; the two runs reuse those of the README's other tests (tests/test_readme.py): the run
with the fitted file has the tour's cohort size (24 patients of `configs/us_adults.toml`) and
the replicate run the Python example's batch (8 lanes of `configs/mg_supplementation_trial.toml`:
4 patients x 2 replicates)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import readme_command, run_readme_command

from popsim import store
from popsim.calibration import evidence_fit
from popsim.parameters.io import load_params_file

ROOT = Path(__file__).resolve().parents[1]


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
    argv = _cut(readme_command("run", "configs/mg_supplementation_trial.toml"),
                {"--size": "4", "--replicates": "2"})
    assert _option(argv, "--uncertainty").rstrip("/") == fit_dir.name
    status, _ = run_readme_command([*argv, "--quiet"], tmp_path)
    assert status == 0
    bands = tmp_path / _option(argv, "--out")
    coh = store.open_cohort(bands)
    assert coh.n_replicates == 2 and coh.n_patients == 4 and coh.complete
    assert list(coh.drawn_names) == names
    np.testing.assert_allclose(coh.drawn_values[0], [result.values[n] for n in names],
                               rtol=1e-6)  # replicate 0: the point estimate
