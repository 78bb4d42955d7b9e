"""The cohort file (popsim.store): layout readable by xarray/h5netcdf, chunked writes with resume
marks, refusal to clobber, clear errors for bad files and mismatched chunks."""

import os
from collections import Counter
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
    with pytest.raises(StoreError, match="pass force=True") as e:
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

    monkeypatch.setattr(store.schema, "_build", failing_build)
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


# --- crash safety: a process killed at any moment ----------------------------------------------

VOLATILE = {"completed"}  # timestamp of finalize


class _Snapshots:
    """Stands in for ``os`` inside popsim.store.journal (every write, truncation, creation and
    deletion of the file or its journal): before every call that changes a file it records the
    cohort file and its journal as they are on disk, which is what a process killed just before
    that call (SIGKILL: no cleanup of any kind) leaves behind."""

    MUTATING = ("write", "pwrite", "ftruncate", "unlink", "open")

    def __init__(self, path):
        self.path, self.states, self.ops = path, [], []

    def __getattr__(self, name):
        real = getattr(os, name)
        if name not in self.MUTATING:
            return real

        def call(*args, **kw):
            if name != "open" or args[1] & os.O_CREAT:
                journal = store.journal_path(self.path)
                self.states.append((self.path.read_bytes(),
                                    journal.read_bytes() if journal.exists() else None))
                self.ops.append(name)
            return real(*args, **kw)

        return call


def _contents(path):
    with h5py.File(path) as f:
        return ({k: f[k][...] for k in f},
                {k: str(f.attrs[k]) for k in f.attrs if k not in VOLATILE})


def _crash_states(tmp_path, monkeypatch, journal=True):
    """Every state a kill can leave while chunks 0, 1, 2 are written and the file finalized, and
    the moments of that run: how often each file-changing call of popsim.store.journal ran
    (``_Snapshots.ops``), and how many writes and truncations HDF5 itself asked for (counted
    where HDF5 makes them, in ``_UndoFile``)."""
    path = tmp_path / "run" / "c.h5"
    path.parent.mkdir()
    make(path)
    data = full_data()
    rec = _Snapshots(path)
    moments = Counter()
    real_write, real_truncate = store._UndoFile.write, store._UndoFile.truncate

    def hdf5_write(self, b):
        moments["hdf5 write"] += memoryview(b).nbytes > 0  # an empty write changes nothing
        return real_write(self, b)

    def hdf5_truncate(self, size=None):
        moments["hdf5 truncate"] += 1
        return real_truncate(self, size)

    with monkeypatch.context() as m:
        m.setattr(store.journal, "os", rec)
        m.setattr(store._UndoFile, "write", hdf5_write)
        m.setattr(store._UndoFile, "truncate", hdf5_truncate)
        if not journal:  # the control: HDF5 without the undo journal
            m.setattr(store._UndoFile, "_save", lambda self, a, b: None)
        for c in range(3):
            write(path, data, c)
        store.finalize(path)
    moments.update(rec.ops)
    if not journal:  # what HDF5 alone leaves: the file before each of its writes
        states = [(main, None) for (main, _), op in zip(rec.states, rec.ops, strict=True)
                  if op in ("pwrite", "ftruncate")]
        return states, data, _contents(path), moments
    states = list(rec.states)
    # a kill in the middle of an append to the journal (its header or a record): the append is
    # torn and the write it protects has not started
    torn = [(main, j[:-5]) for (main, j), op in zip(rec.states[1:], rec.ops, strict=False)
            if op == "write" and j is not None]
    moments["torn"] = len(torn)
    return states + torn, data, _contents(path), moments


def _check_crash_state(where, main, journal, data, reference):
    """The file opens, says which chunks are done, holds exactly those, and resumes to the
    uninterrupted file. Returns the done pattern and completeness, or raises AssertionError."""
    where.mkdir()
    p = where / "c.h5"
    p.write_bytes(main)
    if journal is not None:
        store.journal_path(p).write_bytes(journal)
    done = store.chunks_done(p)  # undoes an interrupted write session first
    assert not store.journal_path(p).exists()
    coh = store.open_cohort(p)
    for c in range(3):
        lo, hi = c * CHUNK, min((c + 1) * CHUNK, N)
        got = coh.output("serum_mg")[:, lo:hi]
        if done[c]:  # all of the chunk ...
            np.testing.assert_array_equal(got, data["outputs"]["serum_mg"][:, lo:hi])
            np.testing.assert_array_equal(coh.status[:, lo:hi], data["status"][:, lo:hi])
        else:  # ... or none of it
            assert np.isnan(got).all() and (coh.status[:, lo:hi] == -1).all()
    complete = coh.complete
    assert not complete or done.all()
    for c in np.flatnonzero(~done):  # --resume
        write(p, data, c)
    if not complete:
        store.finalize(p)
    got_data, got_attrs = _contents(p)
    ref_data, ref_attrs = reference
    assert sorted(got_data) == sorted(ref_data) and got_attrs == ref_attrs
    for k, v in ref_data.items():
        np.testing.assert_array_equal(got_data[k], v, err_msg=k)
    return "".join("1" if d else "0" for d in done) + ("c" if complete else "")


def test_a_kill_at_any_write_leaves_a_resumable_file(tmp_path, monkeypatch):
    """Exhaustive: every point at which a SIGKILL can land while three chunks are written and the
    file finalized (before each write, truncation, creation or deletion of the file or its
    journal, plus torn appends to the journal) leaves a file that opens, marks exactly the chunks it
    holds, holds nothing of the others, and resumes to the same contents as an uninterrupted
    run."""
    states, data, reference, moments = _crash_states(tmp_path, monkeypatch)
    # the sweep covers the whole run, whatever HDF5's number of writes: a state before each of
    # HDF5's writes and truncations, before the creation and the deletion of the journal in each
    # of the 4 write sessions, and before and in the middle of each append to the journal
    assert moments["pwrite"] >= moments["hdf5 write"] > 0
    assert moments["ftruncate"] == moments["hdf5 truncate"]
    assert moments["open"] == moments["unlink"] == 4
    assert moments["write"] > 4  # appends to the journal: 4 headers, then undo records
    seen = {}
    for i, (main, journal) in enumerate(states):
        pattern = _check_crash_state(tmp_path / f"kill{i}", main, journal, data, reference)
        seen[pattern] = seen.get(pattern, 0) + 1
    # every committed state is reached, and nothing else
    assert set(seen) == {"000", "100", "110", "111"}, seen


def test_without_the_journal_some_kills_damage_the_file(tmp_path, monkeypatch):
    """The control for the test above: without undo records the same kill points damage files
    (HDF5 writes its metadata in no crash-safe order, e.g. chunk addresses before the end of
    file address that covers them)."""
    states, data, reference, moments = _crash_states(tmp_path, monkeypatch, journal=False)
    assert moments["pwrite"] >= moments["hdf5 write"] > 0  # a state before each of HDF5's writes
    assert len(states) == moments["pwrite"] + moments["ftruncate"]
    damaged = 0  # cannot be opened, read or resumed
    for i, (main, journal) in enumerate(states):
        try:
            _check_crash_state(tmp_path / f"kill{i}", main, journal, data, reference)
        except (StoreError, OSError):
            damaged += 1
        except AssertionError:  # a half-written chunk: resume rewrites it
            pass
    # at least one kill damages a file that has no journal: the journal is needed (if HDF5 ever
    # writes in a crash-safe order, this fails and says so)
    assert damaged > 0, f"none of the {len(states)} kills damaged a file without the journal"


@pytest.mark.parametrize(("fail_at", "error"), [
    (0, OSError(28, "No space left on device")), (3, OSError(28, "No space left on device")),
    (12, OSError(28, "No space left on device")), (-3, OSError(28, "No space left on device")),
    (-3, KeyboardInterrupt()),
])
def test_a_failed_write_leaves_the_file_as_it_was(tmp_path, monkeypatch, fail_at, error):
    """An error in the middle of a chunk's write (the disk fills up, or Ctrl-C, at the n-th of
    its writes, the last ones being HDF5's metadata) is undone: the file keeps its bytes, and no
    journal is left."""
    path = tmp_path / "c.h5"
    make(path)
    data = full_data()
    write(path, data, 0)
    before = path.read_bytes()
    counting = _Snapshots(path)
    with monkeypatch.context() as m:  # how many writes a chunk takes
        m.setattr(store.journal, "os", counting)
        write(path, data, 1)
    n_writes = counting.ops.count("pwrite")
    path.write_bytes(before)
    k = fail_at % n_writes
    calls = []

    def pwrite(fd, buf, offset):
        calls.append(offset)
        if len(calls) == k + 1:
            raise error
        return os.pwrite(fd, buf, offset)

    proxy = type("os", (), {"__getattr__": lambda self, name: getattr(os, name),
                            "pwrite": staticmethod(pwrite)})()  # os, with a disk that fills up
    expected = KeyboardInterrupt if isinstance(error, KeyboardInterrupt) else StoreError
    with monkeypatch.context() as m:
        m.setattr(store.journal, "os", proxy)
        with pytest.raises(expected) as e:
            write(path, data, 1)
    if isinstance(error, OSError):
        assert str(e.value) == f"{path}: cannot write chunk 1 (No space left on device)"
    assert path.read_bytes() == before
    assert not store.journal_path(path).exists()
    assert store.chunks_done(path).tolist() == [True, False, False]


def test_no_undo_while_the_writer_lives(tmp_path):
    """A journal beside a file that another process (here: another open file description)
    holds locked belongs to a live write session: readers refuse rather than undo it."""
    import fcntl

    path = tmp_path / "c.h5"
    make(path)
    journal = store.journal_path(path)
    journal.write_bytes(b"popsim-journal/1 and a session in progress")
    before = path.read_bytes()
    with open(path, "rb+") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)
        with pytest.raises(StoreError, match="is open in another process") as e:
            store.chunks_done(path)
        assert str(path) in str(e.value)
        assert journal.exists() and path.read_bytes() == before
    assert store.chunks_done(path).tolist() == [False, False, False]  # writer gone: undone
    assert not journal.exists() and path.read_bytes() == before  # (a torn header: no change)


def test_force_over_a_killed_run_leaves_no_journal(tmp_path, monkeypatch):
    states, *_ = _crash_states(tmp_path, monkeypatch)
    main, journal = next(s for s in states if s[1] is not None and len(s[1]) > 100)
    path = tmp_path / "c.h5"
    path.write_bytes(main)
    store.journal_path(path).write_bytes(journal)
    make(path, force=True)
    assert not store.journal_path(path).exists()
    assert store.chunks_done(path).tolist() == [False, False, False]
    write(path, full_data(), 0)
    assert store.chunks_done(path).tolist() == [True, False, False]
