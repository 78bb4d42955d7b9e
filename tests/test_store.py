"""The cohort file (popsim.store): layout readable by xarray/h5netcdf, chunked writes with resume
marks, refusal to clobber, clear errors for bad files and mismatched chunks."""

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr  # noqa: E402

from popsim import store
from popsim.store import CohortLayout, StoreError

ARMS = ("baseline", "mg_400")
N, CHUNK = 10, 4  # three chunks: 4, 4 and a short last one of 2
TIMES = np.array([0.0, 0.5, 7.0, 365.0])
STATUS = {0: "ok", 1: "no_steady_state", 2: "solver_failed"}
SEX = ("female", "male")
DIURETIC = ("none", "loop", "thiazide")


def layout(**kw) -> CohortLayout:
    base = dict(
        arms=ARMS, n_patients=N, times=TIMES,
        outputs={"serum_mg": "mmol/L", "pth": "pmol/L", "fe_mg": "%"},
        covariates={"age": ("float", "years"), "sex": ("category", "1"),
                    "diuretic": ("category", "1")},
        categories={"sex": SEX, "diuretic": DIURETIC},
        parameters={"k_abs": "1/day"}, chunk_size=CHUNK,
        descriptions={"serum_mg": "total serum magnesium", "param_k_abs": "absorption rate"})
    base.update(kw)
    return CohortLayout(**base)


ATTRS = {"config": "[population]\nsize = 10\n", "seed": 123, "popsim_version": "0.1.0",
         "model_version": "1.0", "rtol": 1e-5, "created": "2026-01-01T00:00:00+00:00"}


def make(path, **kw):
    store.create(path, layout(), ATTRS, status_meanings=STATUS, **kw)


def full_data(seed=0):
    """What a whole run would write: every array over all N patients."""
    rng = np.random.default_rng(seed)
    na, nt = len(ARMS), len(TIMES)
    return {
        "outputs": {name: rng.normal(1.0, 0.1, (na, N, nt)).astype(np.float32)
                    for name in ("serum_mg", "pth", "fe_mg")},
        "covariates": {"age": rng.uniform(18, 90, N), "sex": rng.integers(0, 2, N),
                       "diuretic": rng.integers(0, 3, N)},
        "parameters": {"k_abs": rng.lognormal(0, 0.3, N)},
        "status": rng.choice([0, 0, 0, 1, 2], (na, N)).astype(np.int8),
    }


def chunk_args(data, c):
    lo, hi = c * CHUNK, min((c + 1) * CHUNK, N)
    return dict(
        covariates={k: v[lo:hi] for k, v in data["covariates"].items()},
        parameters={k: v[lo:hi] for k, v in data["parameters"].items()},
        outputs={k: v[:, lo:hi] for k, v in data["outputs"].items()},
        status=data["status"][:, lo:hi])


def write(path, data, c, **override):
    args = chunk_args(data, c)
    args.update(override)
    store.write_chunk(path, c, c * CHUNK, **args)


@pytest.fixture
def written(tmp_path):
    path = tmp_path / "cohort.h5"
    make(path)
    data = full_data()
    for c in range(3):
        write(path, data, c)
    store.finalize(path)
    return path, data


def test_full_file_round_trips_through_xarray(written):
    path, data = written
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds.serum_mg.dims == ("arm", "patient", "time")
        assert ds.status.dims == ("arm", "patient")
        assert ds.age.dims == ("patient",) and ds.param_k_abs.dims == ("patient",)
        assert ds.chunk_done.dims == ("chunk",)
        assert dict(ds.sizes) == {"arm": 2, "patient": N, "time": len(TIMES), "chunk": 3}
        assert {"arm", "patient", "time"} <= set(ds.coords)
        assert list(ds.arm.values) == list(ARMS)
        np.testing.assert_array_equal(ds.patient.values, np.arange(N))
        np.testing.assert_array_equal(ds.time.values, TIMES)
        assert ds.time.dtype == np.float64 and ds.time.attrs["units"] == "day"
        for name in ds.variables:
            assert ds[name].attrs.get("units"), f"{name} has no units"
            assert ds[name].attrs.get("long_name"), f"{name} has no long_name"
        assert ds.serum_mg.attrs["units"] == "mmol/L"
        assert ds.serum_mg.attrs["long_name"] == "total serum magnesium"
        assert ds.pth.attrs["long_name"] == "pth"  # fallback: the name
        assert ds.param_k_abs.attrs["units"] == "1/day"
        assert ds.param_k_abs.attrs["parameter"] == "k_abs"
        for name, values in data["outputs"].items():
            assert ds[name].dtype == np.float32
            np.testing.assert_array_equal(ds[name].values, values)
        assert ds.status.dtype == np.int8
        np.testing.assert_array_equal(ds.status.values, data["status"])
        assert list(ds.status.attrs["flag_values"]) == [0, 1, 2]
        assert ds.status.attrs["flag_meanings"] == "ok no_steady_state solver_failed"
        assert ds.sex.attrs["flag_meanings"] == "female male"
        np.testing.assert_array_equal(ds.sex.values, data["covariates"]["sex"])
        np.testing.assert_array_equal(ds.age.values, data["covariates"]["age"])
        np.testing.assert_array_equal(ds.chunk_done.values, [1, 1, 1])
        assert ds.attrs["complete"] == 1 and ds.attrs["seed"] == 123
        assert ds.attrs["config"] == ATTRS["config"]
        assert ds.attrs["popsim_format"] == store.FORMAT
        v = ds.serum_mg.sel(arm="mg_400", time=365.0).values
        np.testing.assert_array_equal(v, data["outputs"]["serum_mg"][1, :, 3])


def test_open_cohort_reads_values_and_category_labels(written):
    path, data = written
    coh = store.open_cohort(path)
    assert coh.arms == ARMS and coh.n_patients == N and coh.complete
    np.testing.assert_array_equal(coh.times, TIMES)
    assert set(coh.output_names) == {"serum_mg", "pth", "fe_mg"}
    assert set(coh.covariate_names) == {"age", "sex", "diuretic"}
    assert coh.parameter_names == ("k_abs",)
    assert coh.units("fe_mg") == "%" and coh.units("k_abs") == "1/day"
    assert coh.units("time") == "day"
    out = coh.output("serum_mg")
    assert out.dtype == np.float32 and out.shape == (2, N, len(TIMES))
    np.testing.assert_array_equal(out, data["outputs"]["serum_mg"])
    np.testing.assert_array_equal(coh.output("pth", arm="mg_400", time=-1),
                                  data["outputs"]["pth"][1, :, -1])
    np.testing.assert_array_equal(coh.covariate("sex"),
                                  np.array(SEX)[data["covariates"]["sex"]])
    np.testing.assert_array_equal(coh.covariate("diuretic"),
                                  np.array(DIURETIC)[data["covariates"]["diuretic"]])
    np.testing.assert_array_equal(coh.covariate("age"), data["covariates"]["age"])
    np.testing.assert_array_equal(coh.parameter("k_abs"), data["parameters"]["k_abs"])
    assert coh.status.dtype == np.int8
    np.testing.assert_array_equal(coh.status, data["status"])
    assert coh.status_meanings == STATUS
    assert coh.attrs["seed"] == 123 and coh.attrs["model_version"] == "1.0"
    with pytest.raises(StoreError, match="no output 'nope'"):
        coh.output("nope")


def test_every_dataset_is_chunked_by_patient_compressed_and_checksummed(written):
    path, _ = written
    with h5py.File(path) as f:
        for name in ("serum_mg", "pth", "fe_mg"):
            ds = f[name]
            assert ds.chunks == (1, CHUNK, len(TIMES))
            assert ds.dtype == np.float32 and np.isnan(ds.fillvalue)
        assert f["status"].fillvalue == -1 and f["status"].chunks == (1, CHUNK)
        for name, ds in f.items():
            assert ds.compression == "gzip" and ds.compression_opts == 4, name
            assert ds.shuffle, name
            # HDF5 refuses Fletcher-32 on variable-length strings (the arm names)
            assert ds.fletcher32 == (name != "arm"), name


def test_unwritten_values_are_fill_values(tmp_path):
    path = tmp_path / "c.h5"
    make(path)
    coh = store.open_cohort(path)
    assert np.isnan(coh.output("serum_mg")).all()
    assert (coh.status == -1).all()
    assert np.isnan(coh.covariate("age")).all() and np.isnan(coh.parameter("k_abs")).all()
    assert (coh.covariate("sex") == "").all()  # not the last label


def test_incomplete_file_reports_missing_chunks(tmp_path):
    path = tmp_path / "c.h5"
    make(path)
    assert not store.is_complete(path)
    assert store.read_attrs(path)["complete"] == 0
    write(path, full_data(), 0)
    assert not store.is_complete(path)
    done = store.chunks_done(path)
    assert done.dtype == bool and done.tolist() == [True, False, False]
    with pytest.raises(StoreError, match="2 of 3 chunks"):
        store.finalize(path)
    assert not store.is_complete(path)
    assert not store.open_cohort(path).complete


def test_chunks_can_be_written_in_any_order_and_resumed(tmp_path):
    path = tmp_path / "c.h5"
    make(path)
    data = full_data(1)
    write(path, data, 2)
    assert store.chunks_done(path).tolist() == [False, False, True]
    for c in (0, 1):
        write(path, data, c)
    store.finalize(path)
    assert store.is_complete(path)
    np.testing.assert_array_equal(store.open_cohort(path).output("fe_mg"),
                                  data["outputs"]["fe_mg"])


def test_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "c.h5"
    make(path)
    write(path, full_data(), 0)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="--force") as e:
        make(path)
    assert str(path) in str(e.value)
    assert path.read_bytes() == before
    make(path, force=True)
    assert store.chunks_done(path).tolist() == [False, False, False]
    assert not (tmp_path / "c.h5.tmp").exists()


def test_failed_creation_keeps_the_existing_file(tmp_path, monkeypatch):
    path = tmp_path / "c.h5"
    make(path)
    before = path.read_bytes()

    def failing_build(tmp, *args):
        tmp.write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "_build", failing_build)
    with pytest.raises(StoreError, match="No space left") as e:
        make(path, force=True)
    assert str(path) in str(e.value)
    assert path.read_bytes() == before
    assert not (tmp_path / "c.h5.tmp").exists()


def test_unwritable_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    target = ro / "c.h5"
    if os.geteuid() == 0:  # root ignores permission bits; sysfs refuses new files regardless
        target = Path("/sys/popsim_store_test.h5")
    try:
        with pytest.raises(StoreError) as e:
            make(target)
        assert str(target) in str(e.value) and "\n" not in str(e.value)
        assert not target.exists()
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("where", ["missing_dir", "parent_is_file"])
def test_missing_directory(tmp_path, where):
    if where == "missing_dir":
        target = tmp_path / "no" / "such" / "c.h5"
    else:
        (tmp_path / "f").write_text("x")
        target = tmp_path / "f" / "c.h5"
    with pytest.raises(StoreError) as e:
        make(target)
    assert str(target) in str(e.value)


def _rename_output(a):
    a["outputs"]["serum_mgX"] = a["outputs"].pop("serum_mg")


def _short_time(a):
    a["outputs"]["serum_mg"] = a["outputs"]["serum_mg"][..., :-1]


def _other_parameter(a):
    a["parameters"] = {"k_other": a["parameters"]["k_abs"]}


@pytest.mark.parametrize("spoil", [
    _rename_output,
    lambda a: a["outputs"].pop("pth"),  # missing output
    _short_time,  # wrong time length
    lambda a: a["outputs"].update(pth=a["outputs"]["pth"][:1]),  # one arm only
    lambda a: a["covariates"].update(age=a["covariates"]["age"][:-1]),
    lambda a: a["covariates"].update(sex=np.array([0, 1, 2, 0])),  # code outside the labels
    lambda a: a["covariates"].update(sex=np.array([0, 1, 0.5, 0])),  # not a code
    lambda a: a["covariates"].pop("diuretic"),
    _other_parameter,
    lambda a: a.update(status=np.zeros((2, 3), np.int8)),  # wrong number of patients
    lambda a: a.update(status=np.full((2, 4), 7, np.int8)),  # unknown status code
    lambda a: a.update(start=1),  # chunk 0 starts at patient 0
])
def test_mismatched_chunk_raises_and_is_not_marked_done(tmp_path, spoil):
    path = tmp_path / "c.h5"
    make(path)
    args = {"start": 0, **chunk_args(full_data(), 0)}
    spoil(args)
    with pytest.raises(StoreError) as e:
        store.write_chunk(path, 0, **args)
    assert str(path) in str(e.value)
    assert not store.chunks_done(path).any()
    coh = store.open_cohort(path)
    assert (coh.status == -1).all() and np.isnan(coh.output("serum_mg")).all()  # nothing written


def test_wrong_chunk_index_raises(tmp_path):
    path = tmp_path / "c.h5"
    make(path)
    with pytest.raises(StoreError, match="chunk index 3"):
        store.write_chunk(path, 3, 12, **chunk_args(full_data(), 2))
    with pytest.raises(StoreError, match="chunk 2 holds patients 8..9"):  # last chunk is short
        store.write_chunk(path, 2, 8, **chunk_args(full_data(), 0))
    assert not store.chunks_done(path).any()


def test_not_a_cohort_file(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("x", data=np.arange(3))
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    for p in (other, text, tmp_path):
        with pytest.raises(StoreError, match="not a popsim cohort") as e:
            store.open_cohort(p)
        assert str(p) in str(e.value)
    for fn in (store.is_complete, store.chunks_done, store.read_attrs, store.finalize):
        with pytest.raises(StoreError, match="not a popsim cohort"):
            fn(text)
    with pytest.raises(StoreError, match="not a popsim cohort"):
        store.write_chunk(other, 0, 0, **chunk_args(full_data(), 0))
    with pytest.raises(StoreError, match="no such file"):
        store.open_cohort(tmp_path / "missing.h5")


@pytest.mark.parametrize("kw, attrs, match", [
    (dict(outputs={"serum_mg": ""}), ATTRS, "unit must be a non-empty"),
    (dict(outputs={"status": "1"}), ATTRS, "reserved"),
    (dict(covariates={"sex": ("category", "1")}, categories={}), ATTRS, "no labels"),
    (dict(times=np.array([0.0, 2.0, 1.0])), ATTRS, "strictly increasing"),
    ({}, {**ATTRS, "complete": 1}, "reserved"),
    ({}, {**ATTRS, "note": None}, "'note'"),
])
def test_invalid_layout_or_attrs_writes_nothing(tmp_path, kw, attrs, match):
    path = tmp_path / "c.h5"
    with pytest.raises(StoreError, match=match):
        store.create(path, layout(**kw), attrs, status_meanings=STATUS)
    assert list(tmp_path.iterdir()) == []
