"""The replicate axis of the cohort file (popsim.store.replicates), without JAX: lanes written in
chunks that span replicates land where they belong, xarray reads the layout, and a write killed
at any moment leaves a file that resumes to the uninterrupted one (the sweep of test_store.py,
on a replicate file)."""

import h5py
import numpy as np
import pytest
import xarray as xr
from test_store import ARMS, ATTRS, STATUS, TIMES, _Snapshots, layout

from popsim import store
from popsim.store import Replicates, StoreError

N, R, CHUNK = 5, 3, 4  # 15 lanes: chunks of 4, 4, 4 and 3, two of them spanning replicates
NAMES, UNITS = ("k_abs", "cv.k_abs"), ("1/day", "1")


def replicate_layout(values=None) -> store.CohortLayout:
    values = np.array([[1.0, 0.2], [1.1, 0.25], [0.9, 0.18]]) if values is None else values
    rep = Replicates(NAMES, UNITS, values, descriptions={"k_abs": "absorption rate"},
                     records={"fit_record": ('{"names": ["k_abs"]}', "the fit record")})
    return layout(n_patients=N, chunk_size=CHUNK, replicates=rep)


def full_data(seed=0):
    """What a whole run writes, by replicate: outputs (R, arm, N, T), status (R, arm, N),
    parameters (R, N); covariates (N,)."""
    rng = np.random.default_rng(seed)
    na, nt = len(ARMS), len(TIMES)
    return {
        "outputs": {name: rng.normal(1.0, 0.1, (R, na, N, nt)).astype(np.float32)
                    for name in ("serum_mg", "pth", "fe_mg")},
        "covariates": {"age": rng.uniform(18, 90, N), "sex": rng.integers(0, 2, N),
                       "diuretic": rng.integers(0, 3, N)},
        "parameters": {"k_abs": rng.lognormal(0, 0.3, (R, N))},
        "status": rng.choice([0, 0, 0, 1, 2], (R, na, N)).astype(np.int8),
    }


def write_lanes(path, data, c):
    """Chunk ``c``: lanes ``c * CHUNK ..``, lane ``r * N + p`` being patient ``p`` of replicate
    ``r``."""
    lanes = np.arange(c * CHUNK, min((c + 1) * CHUNK, R * N))
    r, p = lanes // N, lanes % N
    store.write_chunk(
        path, c, int(lanes[0]),
        covariates={k: v[p] for k, v in data["covariates"].items()},
        parameters={k: v[r, p] for k, v in data["parameters"].items()},
        outputs={k: np.moveaxis(v[r, :, p], 0, 1) for k, v in data["outputs"].items()},
        status=data["status"][r, :, p].T)


def _written(tmp_path, order=range(4)):
    path = tmp_path / "replicates.h5"
    store.create(path, replicate_layout(), ATTRS, status_meanings=STATUS)
    data = full_data()
    for c in order:
        write_lanes(path, data, c)
    store.finalize(path)
    return path, data


@pytest.mark.parametrize("order", [range(4), (3, 0, 2, 1)])
def test_lanes_land_in_their_replicate(tmp_path, order):
    path, data = _written(tmp_path, order)
    coh = store.open_cohort(path)
    assert coh.n_replicates == R and store.chunks_done(path).size == 4
    for name, v in data["outputs"].items():
        np.testing.assert_array_equal(coh.output(name), v)
        for r in range(R):
            np.testing.assert_array_equal(coh.output(name, replicate=r), v[r])
            np.testing.assert_array_equal(coh.select(r).output(name, arm=1, time=2),
                                          v[r, 1, :, 2])
    np.testing.assert_array_equal(coh.status, data["status"])
    np.testing.assert_array_equal(coh.select(2).status, data["status"][2])
    np.testing.assert_array_equal(coh.parameter("k_abs"), data["parameters"]["k_abs"])
    np.testing.assert_array_equal(coh.covariate("age"), data["covariates"]["age"])
    assert coh.drawn_names == NAMES and coh.drawn_units == UNITS
    np.testing.assert_array_equal(coh.drawn_values, replicate_layout().replicates.values)
    assert coh.record("fit_record") == '{"names": ["k_abs"]}'
    with pytest.raises(StoreError, match="no replicate 3"):
        coh.select(3)


def test_replicate_file_opens_in_xarray(tmp_path):
    path, data = _written(tmp_path)
    ds = xr.open_dataset(path, engine="h5netcdf")
    assert ds["serum_mg"].dims == ("replicate", "arm", "patient", "time")
    assert ds["param_k_abs"].dims == ("replicate", "patient")
    assert ds["drawn_cv_k_abs"].dims == ("replicate",)
    assert ds["drawn_cv_k_abs"].attrs["units"] == "1"
    assert ds["drawn_k_abs"].attrs["long_name"] == "absorption rate"
    assert ds["fit_record"].values.item() == '{"names": ["k_abs"]}'
    np.testing.assert_array_equal(ds["pth"].values, data["outputs"]["pth"])
    with h5py.File(path) as f:
        assert f["serum_mg"].chunks == (1, 1, CHUNK, len(TIMES))
        assert f["chunk_done"].attrs["lanes"].startswith("replicate-major")


def test_a_chunk_of_lanes_is_checked_before_writing(tmp_path):
    path = tmp_path / "replicates.h5"
    store.create(path, replicate_layout(), ATTRS, status_meanings=STATUS)
    data = full_data()
    with pytest.raises(StoreError, match=r"chunk 3 holds lanes 12..14, got 3 lanes from 11"):
        args = dict(covariates={k: v[:3] for k, v in data["covariates"].items()},
                    parameters={"k_abs": np.ones(3)},
                    outputs={k: v[0, :, :3] for k, v in data["outputs"].items()},
                    status=data["status"][0, :, :3])
        store.write_chunk(path, 3, 11, **args)
    assert not store.chunks_done(path).any()


@pytest.mark.parametrize(("values", "match"), [
    (np.ones((3, 3)), r"values must be \(R >= 1, 2\)"),
    (np.array([[1.0, np.nan]]), "finite"),
])
def test_a_bad_replicate_axis_writes_nothing(tmp_path, values, match):
    with pytest.raises(StoreError, match=match):
        store.create(tmp_path / "c.h5", replicate_layout(values), ATTRS, status_meanings=STATUS)
    assert list(tmp_path.iterdir()) == []


def _contents(path):
    with h5py.File(path) as f:
        return ({k: f[k][...] for k in f},
                {k: str(f.attrs[k]) for k in f.attrs if k != "completed"})


def test_a_kill_at_any_write_leaves_a_resumable_replicate_file(tmp_path, monkeypatch):
    """Points at which a SIGKILL can land while the four chunks are written and the file
    finalized (every sixth, and the last: test_store.py sweeps every point of the same
    journal) leave a file that opens, holds exactly the chunks it marks, and
    resumes to the uninterrupted file."""
    (tmp_path / "ref").mkdir()
    reference_path, data = _written(tmp_path / "ref")
    reference = _contents(reference_path)
    path = tmp_path / "run" / "c.h5"
    path.parent.mkdir()
    store.create(path, replicate_layout(), ATTRS, status_meanings=STATUS)
    rec = _Snapshots(path)
    with monkeypatch.context() as m:
        m.setattr(store.journal, "os", rec)
        for c in range(4):
            write_lanes(path, data, c)
        store.finalize(path)
    assert len(rec.states) > 50  # a state before every write of five write sessions
    seen = set()
    for i in sorted({*range(0, len(rec.states), 6), len(rec.states) - 1}):
        main, journal = rec.states[i]
        p = tmp_path / f"kill{i}" / "c.h5"
        p.parent.mkdir()
        p.write_bytes(main)
        if journal is not None:
            store.journal_path(p).write_bytes(journal)
        done = store.chunks_done(p)
        coh = store.open_cohort(p)
        lanes = coh.output("serum_mg").reshape(R, len(ARMS), N, -1).transpose(0, 2, 1, 3)
        lanes = lanes.reshape(R * N, len(ARMS), -1)
        for c in range(4):
            got = lanes[c * CHUNK:(c + 1) * CHUNK]
            assert np.isfinite(got).all() if done[c] else np.isnan(got).all()
        for c in np.flatnonzero(~done):
            write_lanes(p, data, c)
        if not coh.complete:
            store.finalize(p)
        got_data, got_attrs = _contents(p)
        assert sorted(got_data) == sorted(reference[0]) and got_attrs == reference[1]
        for k, v in reference[0].items():
            np.testing.assert_array_equal(got_data[k], v, err_msg=k)
        seen.add("".join("1" if d else "0" for d in done) + ("c" if coh.complete else ""))
    assert seen == {"0000", "1000", "1100", "1110", "1111"}, seen
