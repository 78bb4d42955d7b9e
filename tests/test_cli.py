"""End to end: `popsim run` writes a cohort file that xarray reads; bad input exits 2 cleanly."""

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from conftest import SMALL_TRIAL

from popsim import config as cfg
from popsim import store
from popsim.cli import main
from popsim.observables import OUTPUTS
from popsim.run import run_cohort

SMALL = SMALL_TRIAL


@pytest.fixture(scope="module")
def small_runs(small_trial, tmp_path_factory):
    """The session trial (chunk size 7) and the same config run with chunk size 100."""
    path7, a = small_trial
    d = tmp_path_factory.mktemp("runs")
    conf = cfg.parse_config(__import__("tomllib").loads(SMALL))
    b = run_cohort(conf, SMALL, d / "chunk100.h5", chunk_size=100, progress=False)
    return {"chunk7": path7, "chunk100": d / "chunk100.h5"}, a, b


def test_cohort_file_opens_in_xarray_with_dims_and_units(small_runs):
    paths, a, _ = small_runs
    ds = xr.open_dataset(paths["chunk7"], engine="h5netcdf")
    for o in OUTPUTS:
        assert ds[o.name].dims == ("arm", "patient", "time")
        assert ds[o.name].attrs["units"] == o.unit
        assert ds[o.name].dtype == np.float32
    assert list(ds["arm"].values) == ["control", "magnesium"]
    assert ds.sizes["patient"] == 14 and ds.sizes["time"] == 11
    assert ds["time"].attrs["units"] == "day"
    for name in ("age", "body_weight", "egfr", "mg_intake", "k_intake", "na_intake"):
        assert ds[name].dims == ("patient",) and "units" in ds[name].attrs
    assert ds["status"].dims == ("arm", "patient")
    assert (ds["status"].values == 0).all()
    assert ds.attrs["complete"] == 1 and ds.attrs["seed"] == 5
    assert "oral_magnesium" in ds.attrs["config"]
    assert ds.attrs["model_version"] and ds.attrs["popsim_version"]
    # every variable has units
    for name, var in ds.variables.items():
        if name != "arm":
            assert "units" in var.attrs, name
    # the supplement raised serum Mg during the intervention, and only then in that arm
    mg = ds["serum_mg"].values
    assert np.all(mg[1, :, 7] > mg[0, :, 7])
    np.testing.assert_allclose(mg[1, :, 0], mg[0, :, 0], rtol=0)


def test_same_seed_same_numbers_whatever_the_chunk_size(small_runs):
    paths, _, _ = small_runs
    x = store.open_cohort(paths["chunk7"])
    y = store.open_cohort(paths["chunk100"])
    for o in OUTPUTS:
        np.testing.assert_array_equal(x.output(o.name), y.output(o.name), err_msg=o.name)
    for name in x.covariate_names:
        np.testing.assert_array_equal(x.covariate(name), y.covariate(name))
    for name in x.parameter_names:
        np.testing.assert_array_equal(x.parameter(name), y.parameter(name))


def test_summary_counts(small_runs):
    _, a, _ = small_runs
    assert [s.name for s in a.arms] == ["control", "magnesium"]
    assert all(s.n_ok == 14 and s.n_failed == 0 for s in a.arms)
    assert 0.6 < a.arms[0].medians["serum_mg"] < 1.1


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "popsim.cli", *args], capture_output=True,
                          text=True, timeout=600)


def test_refuses_to_overwrite_without_force(small_runs, tmp_path):
    target = tmp_path / "existing.h5"
    target.write_bytes(b"precious results")
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    r = run_cli("run", str(config), "--out", str(target))
    assert r.returncode == 2
    assert "exists; pass --force" in r.stderr
    assert "Traceback" not in r.stderr
    assert target.read_bytes() == b"precious results"


@pytest.mark.parametrize("text, args, message", [
    ("[population]\nsize = 0\n", [], "population.size"),
    ("[population]\nsize = 5\nsead = 3\n", [], "did you mean 'seed'"),
    ("[population]\nsize = 5\n[population.covariates.mg_intake]\ndistribution = \"gamma\"\n",
     [], "unknown distribution 'gamma'"),
    ("[population]\nsize = 5\n", ["--size", "0"], "--size must be positive"),
    ("[population]\nsize = 5\n", ["--seed", "abc"], "--seed must be a whole number"),
    ("[population]\nsize = 5\n", ["--out", "/nonexistent/dir/x.h5"], "does not exist"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, text, args, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    out_args = [] if "--out" in args else ["--out", str(tmp_path / "out.h5")]
    r = run_cli("run", str(config), *out_args, *args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "out.h5").exists()


def test_main_returns_2_for_missing_config(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    assert "no such config file" in capsys.readouterr().err


def test_unwritable_directory(tmp_path, monkeypatch):
    """The check runs before anything is computed (tests run as root, so os.access is faked)."""
    import os

    from popsim.run import RunError

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path)
                        else real_access(p, mode))
    conf = cfg.parse_config({"population": {"size": 3}})
    with pytest.raises(RunError, match=r"directory .* is not writable"):
        run_cohort(conf, "", tmp_path / "x.h5", progress=False)
    assert not (tmp_path / "x.h5").exists()


def test_output_path_is_a_directory(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[population]\nsize = 3\n")
    r = run_cli("run", str(config), "--out", str(tmp_path))
    assert r.returncode == 2 and "is a directory" in r.stderr


def test_report_and_validate_bad_input_exit_2(tmp_path):
    r = run_cli("report", str(tmp_path / "missing.h5"))
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    notes = tmp_path / "notes.txt"
    notes.write_text("not a cohort")
    r = run_cli("report", str(notes))
    assert r.returncode == 2 and "not a popsim cohort" in r.stderr
    r = run_cli("validate", "--scenario", "bogus", "--out", str(tmp_path / "v"))
    assert r.returncode == 2 and "unknown; allowed: antacid_ckd" in r.stderr
    assert not (tmp_path / "v").exists()
    r = run_cli("report", str(notes), "--days", "a,b")
    assert r.returncode == 2 and "--days must be comma-separated numbers" in r.stderr


FLOORED_BALANCES = [
    # (parameter file, text the warning names, the consequence it states)
    ("[parameters.mg_tal_max_fraction]\nvalue = 0.5\n", "mg_tal_max_fraction = 0.5 ",
     "serum_mg_ref"),
    ("[parameters.na_cd_max_fraction]\nvalue = 0.5\n", "na_cd_max_fraction = 0.5 ",
     "ECF volume"),
    ("[parameters]\nk_proximal_fraction = 0.5\nk_loop_fraction = 0.2\n"
     "k_cd_reabsorption = 0.0\n", "k_cd_reabsorption = 0 ", "below k_setpoint"),
    ("[parameters]\nrenin_md_gain = 10.0\n", "renin_md_gain = 10,", "a gain of 1.2"),
]


@pytest.mark.parametrize("text, names, consequence", FLOORED_BALANCES,
                         ids=["mg_tal", "na_cd", "k_secretion", "md_loop"])
def test_a_parameter_file_that_floors_a_balance_is_warned_about(tmp_path, capsys, text, names,
                                                               consequence):
    """A parameter file that leaves no balancing constant for the reference adult (the TAL's
    Mg share, the collecting duct's Na share, the distal K secretion) still runs (the balance
    floors it), and so does one whose macula densa loop cannot hold a steady state, so the
    command line says so on stderr in one line, naming the parameter, its value and what
    follows; a file inside the balanced region gets no warning."""
    from popsim.cli.commands import _load_params

    bad, good = tmp_path / "bad.toml", tmp_path / "good.toml"
    bad.write_text(text)
    good.write_text("[parameters.mg_tal_max_fraction]\nvalue = 0.95\n")
    ps, err = _load_params(bad)
    assert ps is not None and err is None
    line = capsys.readouterr().err.strip()
    assert line.startswith("popsim: warning:") and names in line
    assert "\n" not in line and consequence in line
    ps, err = _load_params(good)
    assert ps is not None and capsys.readouterr().err == ""
