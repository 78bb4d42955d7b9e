"""The notebook API: popsim.simulate / popsim.open_dataset against the file's raw HDF5 datasets,
decoded categories, CKD stages, masking of failed patients, the crash journal, Cohort.output by
day, [output] variables, and errors worded for Python (keyword arguments) or the command line
(flags)."""

import shutil
import tomllib

import h5py
import numpy as np
import pytest
from conftest import SMALL_TRIAL

import popsim
from popsim import store
from popsim.dataset import ckd_stage, open_dataset
from popsim.options import Message, Option, cli_text
from popsim.outputs import OUTPUT_SPECS
from popsim.run import RunError


def _raw(path):
    with h5py.File(path, "r") as f:
        return {k: (v[...], dict(v.attrs)) for k, v in f.items()}


def test_simulate_returns_the_file_as_a_dataset(api_cohort):
    path, ds = api_cohort
    raw = _raw(path)
    assert dict(ds.sizes) == {"arm": 2, "patient": 14, "day": 11}
    assert list(ds.arm.values) == ["control", "magnesium"]
    np.testing.assert_array_equal(ds.day.values, np.arange(11.0))
    status = raw["status"][0]
    assert (status == 0).all()  # every patient solved: the values are the file's, unmasked
    stored = [k for k, (v, _) in raw.items() if v.ndim == 3]
    assert sorted(stored) == sorted(OUTPUT_SPECS)
    for name in stored:
        np.testing.assert_array_equal(ds[name].values, raw[name][0], err_msg=name)
        assert ds[name].attrs["units"] == raw[name][1]["units"] == OUTPUT_SPECS[name][0]
        assert ds[name].dims == ("arm", "patient", "day")
    for name in ("age", "egfr", "mg_intake"):
        np.testing.assert_array_equal(ds[name].values, raw[name][0])
        assert ds[name].attrs["units"] == raw[name][1]["units"]
    for name in ds.variables:
        assert ds[name].attrs.get("units"), name
    assert ds.attrs["seed"] == 5 and ds.attrs["config"] == SMALL_TRIAL


def test_categories_are_decoded_from_the_stored_codes(api_cohort):
    path, ds = api_cohort
    raw = _raw(path)
    for name in ("sex", "diuretic"):
        codes, attrs = raw[name]
        labels = np.array(str(attrs["flag_meanings"]).split())
        assert ds[name].values.tolist() == labels[codes].tolist()
    assert set(ds.sex.values) <= {"female", "male"}
    assert ds.status.values.tolist() == [["ok"] * 14] * 2


def test_ckd_stage_boundaries():
    egfr = [200, 90, 89.99, 60, 59.99, 45, 44.99, 30, 29.99, 15, 14.99, 3, np.nan]
    assert ckd_stage(egfr).tolist() == ["G1", "G1", "G2", "G2", "G3a", "G3a", "G3b", "G3b",
                                        "G4", "G4", "G5", "G5", ""]


def test_ckd_stage_coordinate_follows_egfr(api_cohort):
    _, ds = api_cohort
    egfr = ds.egfr.values
    expected = np.select([egfr >= 90, egfr >= 60, egfr >= 45, egfr >= 30, egfr >= 15],
                         ["G1", "G2", "G3a", "G3b", "G4"], "G5")
    assert ds.ckd_stage.values.tolist() == expected.tolist()
    assert len(set(expected)) >= 3  # eGFR uniform on 20-120: several stages present
    assert ds.serum_mg.coords["ckd_stage"].dims == ("patient",)  # travels with the outputs


def test_failed_patients_are_masked_and_their_status_kept(api_cohort, tmp_path):
    path, _ = api_cohort
    copy = tmp_path / "failed.h5"
    shutil.copy(path, copy)
    with h5py.File(copy, "r+") as f:
        f["status"][1, 3] = 2  # solver_failed in the second arm only
        f["status"][:, 5] = 1  # no steady state: both arms
    raw = _raw(copy)
    ds = open_dataset(copy)
    for name in ("serum_mg", "urine_k"):
        values = ds[name].values
        assert np.isnan(values[1, 3]).all() and np.isnan(values[:, 5]).all()
        keep = np.ones((2, 14), bool)
        keep[1, 3] = keep[:, 5] = False
        np.testing.assert_array_equal(values[keep], raw[name][0][keep])
        assert np.isfinite(raw[name][0][1, 3]).all()  # the file's values were finite
    meanings = dict(zip(raw["status"][1]["flag_values"].tolist(),
                        str(raw["status"][1]["flag_meanings"]).split(), strict=True))
    assert ds.status.values[1, 3] == meanings[2] == "solver_failed"
    assert ds.status.values[0, 5] == ds.status.values[1, 5] == meanings[1]
    assert ds.status.values[0, 3] == "ok"


def _synthetic(path, config: str, arms=("baseline",), n=4):
    layout = store.CohortLayout(arms=arms, n_patients=n, times=np.array([0.0, 1.0]),
                                outputs={"serum_mg": "mmol/L"},
                                covariates={"egfr": ("float", "mL/min/1.73 m2")},
                                categories={}, parameters={}, chunk_size=n)
    store.create(path, layout, {"config": config, "seed": 0},
                 status_meanings={0: "ok", 2: "solver_failed"})
    values = np.arange(len(arms) * n * 2, dtype=np.float32).reshape(len(arms), n, 2)
    store.write_chunk(path, 0, 0, {"egfr": np.array([95.0, 61, 20, 10])[:n]}, {},
                      {"serum_mg": values}, np.zeros((len(arms), n), np.int8))
    store.finalize(path)
    return values


def test_the_arm_dimension_is_dropped_only_without_configured_arms(tmp_path):
    values = _synthetic(tmp_path / "one.h5", "[population]\nsize = 4\n")
    ds = open_dataset(tmp_path / "one.h5")
    assert ds.serum_mg.dims == ("patient", "day") and "arm" not in ds.dims
    np.testing.assert_array_equal(ds.serum_mg.values, values[0])
    assert ds.ckd_stage.values.tolist() == ["G1", "G2", "G4", "G5"]
    _synthetic(tmp_path / "arm.h5", '[population]\nsize = 4\n[[arm]]\nname = "baseline"\n')
    assert open_dataset(tmp_path / "arm.h5").serum_mg.dims == ("arm", "patient", "day")


def test_open_dataset_undoes_a_killed_write_session_first(tmp_path):
    """The state of a process killed inside a write session (file changed, journal present)
    reads as the file before the session."""
    from popsim.store.journal import _writing

    path = tmp_path / "c.h5"
    values = _synthetic(path, "[population]\nsize = 4\n")
    killed = tmp_path / "killed.h5"
    with pytest.raises(RuntimeError), _writing(path, "a test change") as f:
        f["serum_mg"][...] = 99.0
        f.flush()
        shutil.copy(path, killed)  # what a kill at this moment leaves on disk
        shutil.copy(store.journal_path(path), store.journal_path(killed))
        raise RuntimeError("stop")
    with h5py.File(killed, "r") as f:
        assert (f["serum_mg"][...] == 99.0).all()  # changed on disk: the journal must undo it
    ds = open_dataset(killed)
    np.testing.assert_array_equal(ds.serum_mg.values, values[0])
    assert not store.journal_path(killed).exists()


def test_cohort_output_by_day(api_cohort):
    path, _ = api_cohort
    coh = store.open_cohort(path)
    raw = _raw(path)["serum_k"][0]
    np.testing.assert_array_equal(coh.output("serum_k", day=4), raw[:, :, 4])
    np.testing.assert_array_equal(coh.output("serum_k", arm="magnesium", day=10), raw[1, :, 10])
    with pytest.raises(store.StoreError, match=r"day 4.5 is not a saved day \(saved: 0 to 10, "
                                               r"every 1 days\)"):
        coh.output("serum_k", day=4.5)
    with pytest.raises(store.StoreError, match=r"no output 'serum_kk' \(did you mean 'serum_k'"):
        coh.output("serum_kk", day=4)


def test_output_variables_choose_what_is_saved(api_cohort, tmp_path):
    path, full = api_cohort
    config = tomllib.loads(SMALL_TRIAL)
    config["output"] = {"variables": ["urine_mg", "serum_mg"]}
    ds = popsim.simulate(config, out=tmp_path / "two.h5", chunk_size=7, progress=False)
    coh = store.open_cohort(tmp_path / "two.h5")
    assert coh.output_names == ("serum_mg", "urine_mg")  # the model's order
    assert [v for v in ds.data_vars if not v.startswith("param_")] == \
        ["serum_mg", "urine_mg", "status"]
    np.testing.assert_array_equal(ds.serum_mg.values, full.serum_mg.values)
    summary = popsim.summarize(tmp_path / "two.h5")
    assert set(summary[0].medians) == {"serum_mg"}
    assert set(summary[0].prevalence) == {"hypomagnesemia", "hypermagnesemia"}


@pytest.mark.slow
def test_a_population_without_variability_runs_with_the_typical_values(tmp_path):
    """``variability.scale = 0``: no parameter varies, so patients of the same covariates get
    the same results, at a reference steady state (before, nothing had a patient axis and the
    run stopped with an IndexError)."""
    config = tomllib.loads(SMALL_TRIAL)
    fixed = {"age": 45.0, "sex": "female", "body_weight": 70.0, "egfr": 95.0,
             "mg_intake": 320.0, "k_intake": 75.0, "na_intake": 150.0, "diuretic": "none",
             "hypertension": "no"}
    config["population"]["variability"] = {"scale": 0.0}
    config["population"]["covariates"] = {k: {"distribution": "fixed", "value": v}
                                          for k, v in fixed.items()}
    ds = popsim.simulate(config, out=tmp_path / "typical.h5", chunk_size=7, progress=False)
    assert (ds.status.values == "ok").all()
    assert not [v for v in ds.data_vars if v.startswith("param_")]
    for name in ("serum_k", "serum_mg", "serum_na"):
        values = ds[name].values
        np.testing.assert_array_equal(values, np.broadcast_to(values[:, :1], values.shape),
                                      err_msg=name)
    assert 3.5 < float(ds.serum_k.isel(arm=0, patient=0, day=0)) < 5.0
    assert 0.70 < float(ds.serum_mg.isel(arm=0, patient=0, day=0)) < 1.00


def test_output_variables_are_validated():
    config = tomllib.loads(SMALL_TRIAL)
    config["output"] = {"variables": ["serum_mg", "urine_kk"]}
    with pytest.raises(popsim.ConfigError, match=r"^output.variables: unknown output 'urine_kk' "
                                                 r"\(did you mean 'urine_k'\?\)"):
        popsim.parse_config(config)
    config["output"] = {"variables": []}
    with pytest.raises(popsim.ConfigError, match="output.variables: name at least one"):
        popsim.parse_config(config)


def test_errors_name_keyword_arguments_in_python_and_flags_on_the_command_line(api_cohort,
                                                                                tmp_path):
    path, _ = api_cohort
    with pytest.raises(RunError) as e:
        popsim.simulate(SMALL_TRIAL, out=path, progress=False)
    assert str(e.value) == f"out={str(path)!r}: file exists; pass force=True to overwrite it"
    assert cli_text(e.value) == f"--out {path}: file exists; pass --force to overwrite it"
    with pytest.raises(RunError) as e:
        popsim.simulate(SMALL_TRIAL, size=0, progress=False)
    assert str(e.value) == "size=0: must be a positive number of patients"
    assert cli_text(e.value) == "--size 0: must be a positive number of patients"
    with pytest.raises(RunError, match=r"^chunk_size=-1: must be"):
        popsim.simulate(SMALL_TRIAL, chunk_size=-1, progress=False)
    assert not list(tmp_path.iterdir())


def test_option_wording():
    m = Message(Option("chunk_size", 5), " and ", Option("force", True), ", ",
                Option("--max-failed-fraction"))
    assert str(m) == "chunk_size=5 and force=True, max_failed_fraction"
    assert m.render(cli=True) == "--chunk-size 5 and --force, --max-failed-fraction"
    assert cli_text(ValueError("plain text")) == "plain text"


def test_config_forms_are_equivalent(tmp_path):
    from popsim.api import _config_from

    path = tmp_path / "c.toml"
    path.write_text(SMALL_TRIAL)
    from_path = _config_from(path)
    assert _config_from(str(path)) == from_path
    assert _config_from(SMALL_TRIAL) == from_path
    assert _config_from(tomllib.loads(SMALL_TRIAL))[0] == from_path[0]
    with pytest.raises(popsim.ConfigError, match="no such config file"):
        _config_from(str(tmp_path / "missing.toml"))
    with pytest.raises(popsim.ConfigError, match="population.size: required key is missing"):
        _config_from({"population": {}})


def test_a_parameter_file_that_floors_the_mg_balance_warns_from_python(tmp_path):
    """The Python API gives the command line's balance warning as a ``UserWarning`` naming the
    parameter and its value, and loads the set all the same."""
    import warnings

    from popsim.api import _params_from

    bad = tmp_path / "bad.toml"
    bad.write_text("[parameters.mg_tal_max_fraction]\nvalue = 0.5\n")
    with pytest.warns(UserWarning, match="mg_tal_max_fraction = 0.5 is below"):
        ps = _params_from(bad)
    assert ps.params.mg_tal_max_fraction == 0.5
    good = tmp_path / "good.toml"
    good.write_text("[parameters.mg_tal_max_fraction]\nvalue = 0.95\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _params_from(good).params.mg_tal_max_fraction == 0.95
