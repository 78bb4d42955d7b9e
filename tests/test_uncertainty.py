"""Parameter uncertainty: fit records, replicate draws, replicate runs (``popsim run
--uncertainty FIT --replicates R``), their file, resume, and the prediction bands of the report.

The runs are the session trial's config with 8 patients x 3 replicates (10 days, two arms), in
chunks of 7 lanes (chunks that span replicates), so they share compiled programs with the other
cohort tests (batches of 7 and 14)."""

import csv
import json
import math
import re
import shutil
import tomllib

import h5py
import numpy as np
import pytest
import xarray as xr
from conftest import SMALL_TRIAL, readme_command, run_readme_command

from popsim import config as cfg
from popsim import run as run_mod
from popsim import store
from popsim._version import MODEL_VERSION
from popsim.cli import main
from popsim.facts import Status
from popsim.observables import OUTPUTS
from popsim.parameters.io import fingerprint, load_params_file, write_params_file
from popsim.parameters.uncertainty import (
    MAX_REPLICATES,
    MIN_REPLICATES,
    FitRecordError,
    load_fit,
)
from popsim.run import RunError, run_cohort

FIT = "tests/data/fit"
N, R, CHUNK = 8, 3, 7


@pytest.fixture(scope="module")
def conf():
    return cfg.parse_config(tomllib.loads(SMALL_TRIAL))


@pytest.fixture(scope="module")
def fit():
    return load_fit(FIT)


def _run(conf, fit, out, **kw):
    kw.setdefault("chunk_size", CHUNK)
    return run_cohort(conf, SMALL_TRIAL, out, uncertainty=fit, replicates=R, size=N,
                      progress=False, **kw)


@pytest.fixture(scope="module")
def replicate_run(conf, fit, tmp_path_factory):
    """The replicate file (chunks of 7 lanes) and its run's result."""
    out = tmp_path_factory.mktemp("replicates") / "replicates.h5"
    return out, _run(conf, fit, out)


# --- the fit record and the draws (no JAX) ----------------------------------------------------


def test_draws_are_reproducible_and_follow_the_covariance(fit):
    a, b = fit.draw(5, seed=7), fit.draw(5, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[1:], fit.draw(5, seed=8)[1:])
    np.testing.assert_array_equal(a[0], fit.point)  # replicate 0: the point estimate
    assert fit.point.tolist() == [8.0, 0.154, 0.08]
    n = 40_000
    draws = fit.draw(n + 1, seed=3)[1:]
    u = fit.transformed(draws)
    for j, name in enumerate(fit.names):
        lo, hi = fit.bounds[name]
        assert np.all((draws[:, j] >= lo) & (draws[:, j] <= hi))
    c = fit.covariance
    se = np.sqrt((np.outer(np.diag(c), np.diag(c)) + c**2) / n)  # SE of a sample covariance
    assert np.all(np.abs(np.cov(u.T) - c) < 5 * se), (np.cov(u.T), c)
    assert np.all(np.abs(u.mean(axis=0) - fit.mean) < 5 * np.sqrt(np.diag(c) / n))


def test_the_transforms_are_those_of_the_calibration(fit):
    """``log``: v = exp(ln lo + (ln hi - ln lo) sigmoid(u)); ``logit``: v = lo + (hi - lo)
    sigmoid(u); the record's mean maps to its values (to the 1e-6 the record rounds to)."""
    u = np.array([[0.0, 0.0, 0.0], [2.0, -1.0, 3.0]])
    s = 1 / (1 + np.exp(-u))
    v = fit.physical(u)
    np.testing.assert_allclose(v[:, 0], 2.0 * 6.0 ** s[:, 0], rtol=1e-14)
    np.testing.assert_allclose(v[:, 1], 0.05 * 5.0 ** s[:, 1], rtol=1e-14)
    np.testing.assert_allclose(v[:, 2], 0.3 * s[:, 2], rtol=1e-14)
    np.testing.assert_allclose(fit.transformed(v), u, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fit.physical(fit.mean), [8.0, 0.154, 0.08], rtol=1e-6)
    assert fit.transforms == {"mg_gut_km": "log", "mg_dct_half_load": "log",
                              "cv.mg_dct_half_load": "logit"}


def _spoiled(tmp_path, change):
    d = tmp_path / "fit"
    shutil.copytree(FIT, d)
    data = json.loads((d / "fit.json").read_text())
    change(data, d)
    (d / "fit.json").write_text(json.dumps(data))
    return d


def _rename(data, old, new):
    data["names"] = [new if n == old else n for n in data["names"]]
    for key in ("transform", "parameters"):
        data[key][new] = data[key].pop(old)


def _set(path_keys, value):
    def change(data, _):
        target = data
        for k in path_keys[:-1]:
            target = target[k]
        target[path_keys[-1]] = value
    return change


def _toml_value(value):
    def change(_, d):
        toml = d / "parameters.toml"
        toml.write_text(toml.read_text().replace("value = 8.0", f"value = {value}"))
    return change


@pytest.mark.parametrize(("change", "message"), [
    (lambda d, _: d.pop("covariance_transformed"), "missing field 'covariance_transformed'"),
    (lambda d, _: _rename(d, "mg_dct_half_load", "mg_dct_half_loadm"),
     r"names\[1\] = 'mg_dct_half_loadm' is not a parameter of the model "
     r"\(did you mean 'mg_dct_half_load'"),
    (lambda d, _: _rename(d, "cv.mg_dct_half_load", "cv.nonsense"),
     r"names\[2\] = 'cv.nonsense' is not a parameter of the model"),
    (_set(["versions", "model"], "0.9"),
     rf"a fit of model version '0.9'; this popsim runs model version '{re.escape(MODEL_VERSION)}'"),
    (_set(["popsim_fit_record"], 2), "popsim_fit_record = 2; this popsim reads format 1"),
    (_set(["transform_definitions", "log"], "v = exp(u)"),
     r"transform_definitions.log = 'v = exp\(u\)'; this popsim reads log as"),
    (_set(["transform", "mg_gut_km"], "sqrt"),
     "transform.mg_gut_km = 'sqrt'; allowed: log, logit$"),
    (_set(["parameters", "mg_gut_km", "lower"], -1.0),
     r"bounds of mg_gut_km = \[-1, 12\] must be finite, increasing and inside the "
     "parameter's limits"),
    (_set(["parameters", "cv.mg_dct_half_load", "upper"], 3.0),
     r"inside the parameter's limits 0..2$"),
    (_set(["parameters", "mg_dct_half_load", "unit"], "mg/dL"),
     "parameters.mg_dct_half_load.unit = 'mg/dL'; the model's unit is 'mmol/L'"),
    (_set(["covariance_transformed", 0, 1], 0.5), "covariance_transformed is not symmetric"),
    (lambda d, _: d["covariance_transformed"].__setitem__(
        0, [-0.09, -0.036, 0.0]), "covariance_transformed is not positive semi-definite"),
    (lambda d, _: d["covariance_transformed"].pop(),
     "covariance_transformed must be a 3x3 matrix"),
    (lambda d, _: d["mean_transformed"].pop(), "mean_transformed must be a list of 3 numbers"),
    (_set(["mean_transformed", 1], "x"), r"mean_transformed\[1\] must be a number"),
    (_set(["parameters", "mg_gut_km", "value"], 6.0),
     r"parameters.mg_gut_km = 6 is not the value of mean_transformed\[0\]"),
    (_toml_value(6.0), "parameters.mg_gut_km = 8 differs from parameters.toml's 6"),
    (lambda d, _: d["parameters"].pop("mg_dct_half_load"), "parameters.mg_dct_half_load: missing"),
])
def test_a_bad_fit_record_is_one_line_naming_the_field(tmp_path, change, message):
    with pytest.raises(FitRecordError, match=message) as e:
        load_fit(_spoiled(tmp_path, change))
    assert "\n" not in str(e.value) and str(e.value).startswith("--uncertainty ")


def test_the_reader_takes_values_with_top_level_bounds_and_no_parameter_file(fit, tmp_path):
    """The other form of ``parameters`` (values, with ``bounds`` beside), and a record without
    ``parameters.toml`` nor optional fields: the same point estimate and draws."""
    def change(data, d):
        data["bounds"] = {n: [p["lower"], p["upper"]] for n, p in data["parameters"].items()}
        data["parameters"] = {n: p["value"] for n, p in data["parameters"].items()}
        for key in ("popsim_fit_record", "versions", "transform_definitions"):
            data.pop(key)
        (d / "parameters.toml").unlink()
    other = load_fit(_spoiled(tmp_path, change) / "fit.json")
    assert other.params_text == "" and other.bounds == fit.bounds
    assert fingerprint(other.base.params, other.base.cvs) == \
        fingerprint(fit.base.params, fit.base.cvs)
    np.testing.assert_array_equal(other.draw(4, seed=1), fit.draw(4, seed=1))


def test_a_missing_fit_record(tmp_path):
    with pytest.raises(FitRecordError, match="no such fit record"):
        load_fit(tmp_path / "nowhere")


# --- the replicate run --------------------------------------------------------------------------


def test_replicate_file_layout_and_provenance(replicate_run, fit):
    path, result = replicate_run
    coh = store.open_cohort(path)
    assert coh.n_replicates == R and coh.n_patients == N and coh.complete
    assert coh.drawn_names == fit.names
    assert coh.drawn_units == ("mmol/day", "mmol/L", "1")
    np.testing.assert_array_equal(coh.drawn_values, fit.draw(R, seed=5))  # the config's seed
    assert coh.record("fit_record") == fit.text
    assert coh.record("fit_parameters") == fit.params_text
    assert coh.attrs["n_replicates"] == R
    assert coh.attrs["uncertainty_fingerprint"] == fit.fingerprint()
    assert coh.attrs["params_fingerprint"] == fingerprint(fit.base.params, fit.base.cvs)
    assert (coh.status == Status.OK).all() and coh.status.shape == (R, 2, N)
    assert store.chunks_done(path).size == math.ceil(R * N / CHUNK)
    ds = xr.open_dataset(path, engine="h5netcdf")
    for o in OUTPUTS:
        assert ds[o.name].dims == ("replicate", "arm", "patient", "time")
    assert ds["status"].dims == ("replicate", "arm", "patient")
    assert ds["param_mg_dct_half_load"].dims == ("replicate", "patient")
    assert ds["age"].dims == ("patient",)
    assert ds["drawn_mg_gut_km"].attrs["units"] == "mmol/day"
    assert ds["drawn_cv_mg_dct_half_load"].attrs["drawn_parameter"] == "cv.mg_dct_half_load"
    assert result.extra == {"replicates": R}
    assert all(a.replicates == R and a.n_ok == R * N for a in result.arms)


def test_each_replicate_is_the_run_of_its_parameter_file(replicate_run, conf, fit, tmp_path):
    """Replicate r's patients are those of a plain run with --params set to replicate r's
    parameters (written as a parameter file and read back), bit for bit."""
    path, _ = replicate_run
    coh = store.open_cohort(path)
    for r in range(R):
        ps = fit.parameter_set(coh.drawn_values[r])
        typical = {n: (getattr(ps.params, n),) * 2 for n in ("mg_gut_km", "mg_dct_half_load")}
        params_file = tmp_path / f"replicate{r}.toml"
        write_params_file(params_file, typical, {k: (v, v) for k, v in ps.cvs.items()}, {}, [])
        loaded = load_params_file(params_file)
        assert fingerprint(loaded.params, loaded.cvs) == fingerprint(ps.params, ps.cvs)
        plain = store.open_cohort(run_cohort(conf, SMALL_TRIAL, tmp_path / f"plain{r}.h5",
                                             params=loaded, size=N, chunk_size=CHUNK,
                                             progress=False).path)
        for name in plain.output_names:
            np.testing.assert_array_equal(coh.output(name, replicate=r), plain.output(name),
                                          err_msg=f"replicate {r}: {name}")
        assert plain.parameter_names == coh.parameter_names
        for name in plain.parameter_names:
            np.testing.assert_array_equal(coh.parameter(name, replicate=r),
                                          plain.parameter(name), err_msg=name)
        for name in plain.covariate_names:
            np.testing.assert_array_equal(coh.covariate(name), plain.covariate(name))
        np.testing.assert_array_equal(coh.status[r], plain.status)
    # the replicates differ where their parameters do
    assert not np.array_equal(coh.output("serum_mg", replicate=1),
                              coh.output("serum_mg", replicate=2))


def _datasets(path):
    with h5py.File(path) as f:
        return {k: f[k][...] for k in f if k not in ("chunk", "chunk_done")}


@pytest.mark.slow  # a batch of 14 lanes: one more compilation
def test_the_same_whatever_the_chunk_size(replicate_run, conf, fit, tmp_path):
    path, _ = replicate_run
    other = _run(conf, fit, tmp_path / "chunk14.h5", chunk_size=14).path
    a, b = _datasets(path), _datasets(other)
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


class _Killed(Exception):
    pass


def test_a_killed_replicate_run_resumes_to_the_same_file(replicate_run, conf, fit, tmp_path,
                                                         monkeypatch):
    """Killed after two of four chunks (the third spans replicates 1 and 2): --resume computes
    the other two only and gives the uninterrupted run's file bit for bit."""
    reference, _ = replicate_run
    out = tmp_path / "killed.h5"
    real = run_mod._run_chunk
    calls = []

    def dies_at_third(job, c, *a, **k):
        if c == 2 and not calls:
            raise _Killed
        return real(job, c, *a, **k)

    monkeypatch.setattr(run_mod, "_run_chunk", dies_at_third)
    with pytest.raises(_Killed):
        _run(conf, fit, out)
    assert store.chunks_done(out).tolist() == [True, True, False, False]
    before = out.read_bytes()
    with pytest.raises(RunError, match="the interrupted run had parameter replicates"):
        run_cohort(conf, SMALL_TRIAL, out, size=N, chunk_size=CHUNK, progress=False,
                   resume=True)
    scaled = load_fit(_scaled_fit(tmp_path, 4.0))
    with pytest.raises(RunError, match="the fit record differs"):
        _run(conf, scaled, out, resume=True)
    with pytest.raises(RunError, match=r"n_replicates differs .*file: 3, now: 4"):
        run_cohort(conf, SMALL_TRIAL, out, uncertainty=fit, replicates=4, size=N,
                   chunk_size=CHUNK, progress=False, resume=True)
    assert out.read_bytes() == before
    monkeypatch.setattr(run_mod, "_run_chunk",
                        lambda job, c, *a, **k: (calls.append(c), real(job, c, *a, **k)))
    _run(conf, fit, out, resume=True)
    assert calls == [2, 3]
    a, b = _datasets(reference), _datasets(out)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert store.is_complete(out)


# --- the report ---------------------------------------------------------------------------------


def _scaled_fit(tmp_path, factor):
    """The fixture fit record with its covariance times ``factor``."""
    d = tmp_path / f"fit_x{factor:g}"
    if not d.exists():
        shutil.copytree(FIT, d)
        data = json.loads((d / "fit.json").read_text())
        data["covariance_transformed"] = (factor * np.array(data["covariance_transformed"])
                                          ).tolist()
        (d / "fit.json").write_text(json.dumps(data))
    return d


def test_bands_are_ordered_with_units_at_every_saved_day(replicate_run, tmp_path, capsys):
    from popsim.bands import band_summary, print_band_table

    path, _ = replicate_run
    bands = band_summary(store.open_cohort(path), tmp_path)
    assert bands["replicates"] == R and bands["day"] == 10.0
    units = {o.name: o.unit for o in OUTPUTS}
    for arm, by_output in bands["arms"].items():
        assert list(by_output) == list(units)
        for name, b in by_output.items():
            assert b["p2_5"] <= b["median"] <= b["p97_5"], (arm, name, b)
            assert b["unit"] == units[name]
    with open(tmp_path / "prediction_bands.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 * len(OUTPUTS) * 11
    for row in rows:
        assert float(row["p2_5"]) <= float(row["median"]) <= float(row["p97_5"]), row
        assert row["unit"] == units[row["output"]]
    print_band_table(bands)
    printed = capsys.readouterr().out
    assert "cohort median across 3 parameter replicates" in printed and "mmol/L" in printed


@pytest.mark.slow  # six figures
def test_the_readme_report_of_a_replicate_file(replicate_run, tmp_path, capsys):
    """The README's `popsim report bands.h5` as written, on a copy of the replicate file: it
    writes the prediction bands (`prediction_bands.csv`/`.png`) into `bands_report/` beside the
    summary, and the patient tables are those of the point estimate."""
    from popsim import report as report_module

    path, _ = replicate_run
    argv = readme_command("report", "bands.h5")
    shutil.copy(path, tmp_path / argv[1])
    status, got = run_readme_command(argv, tmp_path, ((report_module, "report"),))
    assert status == 0
    summary, out = got["report"], tmp_path / "bands_report"
    assert summary["prediction_bands"]["replicates"] == R
    assert (out / "prediction_bands.png").stat().st_size > 10_000
    assert (out / "prediction_bands.csv").exists() and (out / "summary.json").exists()
    printed = capsys.readouterr().out
    assert "point estimate (replicate 0)" in printed
    assert "cohort median across 3 parameter replicates" in printed
    # the patient tables are replicate 0's
    coh = store.open_cohort(path)
    x = coh.output("serum_mg", arm=0, time=-1, replicate=0)
    assert summary["tables"]["control"]["10.0"]["serum_mg"]["median"] == \
        pytest.approx(float(np.median(x)))


def test_bands_widen_with_the_covariance(replicate_run, conf, fit, tmp_path):
    """The same replicates (same seed) from a fit record with 4x the covariance: every draw
    lies twice as far from the mean in the transformed space, and the bands widen."""
    from popsim.bands import prediction_band

    path, _ = replicate_run
    scaled = load_fit(_scaled_fit(tmp_path, 4.0))
    wide = _run(conf, scaled, tmp_path / "wide.h5").path
    offsets = fit.transformed(fit.draw(R, seed=5)) - fit.mean
    np.testing.assert_allclose(scaled.transformed(store.open_cohort(wide).drawn_values)[1:]
                               - fit.mean, 2 * offsets[1:], rtol=1e-12, atol=1e-12)
    for name in ("serum_mg", "urine_mg", "intracellular_mg_free"):
        narrow = np.diff(prediction_band(store.open_cohort(path), name, time=-1)[[0, 2]],
                         axis=0)
        broad = np.diff(prediction_band(store.open_cohort(wide), name, time=-1)[[0, 2]],
                        axis=0)
        assert np.all(broad > 1.5 * narrow) and np.all(narrow > 0), (name, narrow, broad)


def test_the_run_summary_mentions_the_replicates(replicate_run):
    from rich.console import Console

    from popsim.report import print_run_summary

    _, result = replicate_run
    console = Console(record=True, width=400)
    print_run_summary(result, console)
    text = " ".join(console.export_text().split())  # the title may wrap
    assert f"{N} patients x {R} parameter replicates" in text
    assert "patient-replicates solved" in text and "2.5-97.5% across replicates" in text
    for a in result.arms:
        lo, mid, hi = a.bands["serum_mg"]
        assert lo <= mid <= hi and lo < hi


def test_a_file_without_replicates_reads_as_before():
    coh = store.open_cohort("tests/data/reference_cohort.h5")
    assert coh.n_replicates is None and coh.drawn_names == ()
    assert coh.output("serum_mg").shape == (2, 6, 21) and coh.status.shape == (2, 6)
    with pytest.raises(store.StoreError, match="has no parameter replicates"):
        coh.select(0)


def test_lanes_split_into_replicate_pieces():
    from popsim.store.replicates import segments

    for start in range(0, 24):
        for n in range(1, 24 - start + 1):
            pieces = segments(start, n, 8)
            lanes = [r * 8 + p for r, i0, i1, p0, p1 in pieces for p in range(p0, p1)]
            assert lanes == list(range(start, start + n))
            assert [i for _, i0, i1, _, _ in pieces for i in range(i0, i1)] == list(range(n))


# --- command-line errors --------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--replicates", "3"], "--replicates needs --uncertainty FIT"),
    (["--uncertainty", FIT], "--uncertainty needs --replicates R"),
    (["--uncertainty", FIT, "--replicates", str(MAX_REPLICATES + 1)],
     f"--replicates {MAX_REPLICATES + 1}: must be a whole number "
     f"{MIN_REPLICATES}..{MAX_REPLICATES}"),
    (["--uncertainty", FIT, "--replicates", "3", "--params", f"{FIT}/parameters.toml"],
     "--params and --uncertainty exclude each other"),
    (["--uncertainty", "tests/data/nofit", "--replicates", "3"], "no such fit record"),
    (["--uncertainty", "BADFIT", "--replicates", "3"],
     "names[0] = 'mg_gut_kmx' is not a parameter of the model"),
    (["--uncertainty", "OLDFIT", "--replicates", "3"], "a fit of model version '0.9'"),
])
def test_bad_replicate_options_exit_2_with_one_line(tmp_path, capsys, args, message):
    config = tmp_path / "trial.toml"
    config.write_text(SMALL_TRIAL)
    spoil = {"BADFIT": lambda d, _: _rename(d, "mg_gut_km", "mg_gut_kmx"),
             "OLDFIT": _set(["versions", "model"], "0.9")}
    args = [str(_spoiled(tmp_path, spoil[a])) if a in spoil else a for a in args]
    out = tmp_path / "out.h5"
    assert main(["run", str(config), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_replicates_with_enrolment_criteria_are_refused(tmp_path, capsys):
    """Each replicate would enrol other patients: refused before anything is written."""
    config = tmp_path / "trial.toml"
    config.write_text(SMALL_TRIAL + "\n[population.inclusion]\negfr = { min = 30 }\n")
    out = tmp_path / "out.h5"
    assert main(["run", str(config), "--out", str(out), "--uncertainty", FIT,
                 "--replicates", "3"]) == 2
    err = capsys.readouterr().err
    assert "cannot be run with parameter replicates" in err and err.count("\n") == 1, err
    assert not out.exists()


@pytest.mark.parametrize("replicates", ["1", "0"])
def test_fewer_than_two_replicates_are_refused_by_the_parser(tmp_path, capsys, replicates):
    with pytest.raises(SystemExit) as e:
        main(["run", str(tmp_path / "c.toml"), "--uncertainty", FIT, "--replicates",
              replicates])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"--replicates must be >= 2, got {replicates}" in err and err.count("\n") == 1
