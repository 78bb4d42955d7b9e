"""Scale: resuming an interrupted run, and sharding chunks over several (forced CPU) devices.

Both must give the same numbers as one uninterrupted single-device run (the session fixture
``small_trial``: 14 patients, chunks of 7)."""

import tomllib

import h5py
import numpy as np
import pytest
from conftest import SMALL_TRIAL

from popsim import config as cfg
from popsim import run as run_mod
from popsim import store
from popsim.run import RunError, run_cohort

VOLATILE = {"created", "completed"}  # timestamps: the only attributes allowed to differ


def _contents(path):
    with h5py.File(path) as f:
        data = {k: f[k][...] for k in f}
        attrs = {k: f.attrs[k] for k in f.attrs if k not in VOLATILE}
    return data, attrs


def _assert_same_file(a, b, skip_attrs=()):
    da, aa = _contents(a)
    db, ab = _contents(b)
    assert sorted(da) == sorted(db)
    for k in da:
        np.testing.assert_array_equal(da[k], db[k], err_msg=k)
    for k in set(aa) | set(ab):
        if k not in skip_attrs:
            assert str(aa.get(k)) == str(ab.get(k)), k


@pytest.fixture(scope="module")
def conf():
    return cfg.parse_config(tomllib.loads(SMALL_TRIAL))


class _Killed(Exception):
    pass


def test_resume_finishes_interrupted_run_identically(small_trial, conf, tmp_path, monkeypatch):
    reference, _ = small_trial
    out = tmp_path / "trial.h5"
    real = run_mod._run_chunk
    calls = []

    def dies_on_second_chunk(job, c, *args, **kw):
        if c == 1:
            raise _Killed
        calls.append(c)
        return real(job, c, *args, **kw)

    monkeypatch.setattr(run_mod, "_run_chunk", dies_on_second_chunk)
    with pytest.raises(_Killed):
        run_cohort(conf, SMALL_TRIAL, out, chunk_size=7, progress=False)
    assert not store.is_complete(out)
    assert store.chunks_done(out).tolist() == [True, False]

    calls.clear()
    monkeypatch.setattr(run_mod, "_run_chunk",
                        lambda job, c, *a, **k: (calls.append(c),
                                                          real(job, c, *a, **k)))
    run_cohort(conf, SMALL_TRIAL, out, chunk_size=7, progress=False, resume=True)
    assert calls == [1]  # the finished chunk is not recomputed
    assert store.is_complete(out)
    _assert_same_file(out, reference)


@pytest.mark.parametrize(("kw", "message"), [
    (dict(seed=6), "seed differs"),
    (dict(size=15), "n_patients differs"),
    (dict(chunk_size=5), "chunk_size differs"),
    (dict(text=SMALL_TRIAL.replace("days = 10", "days = 11")), "config text differs"),
    (dict(params=True), "parameters differs"),
])
@pytest.mark.slow
def test_resume_refuses_a_different_job(conf, tmp_path, monkeypatch, kw, message):
    out = tmp_path / "trial.h5"
    real = run_mod._run_chunk

    def dies(job, c, *a, **k):
        if c == 1:
            raise _Killed
        return real(job, c, *a, **k)

    monkeypatch.setattr(run_mod, "_run_chunk", dies)
    with pytest.raises(_Killed):
        run_cohort(conf, SMALL_TRIAL, out, chunk_size=7, progress=False)
    before = out.read_bytes()
    text = kw.pop("text", SMALL_TRIAL)
    c = cfg.parse_config(tomllib.loads(text))
    if kw.pop("params", False):
        import dataclasses

        from popsim.parameters.io import ParameterSet, default_parameters

        d = default_parameters()
        kw["params"] = ParameterSet(dataclasses.replace(d.params, mg_dct_half_load=0.1), d.cvs,
                                    "other.toml", {})
    kw.setdefault("chunk_size", 7)
    with pytest.raises(RunError, match=message):
        run_cohort(c, text, out, progress=False, resume=True, **kw)
    assert out.read_bytes() == before  # untouched


_COMPILED: list = []  # names of the programs XLA compiled while _LISTENING
_LISTENING: list = []


def _on_event(event, duration, **kw):
    if _LISTENING and event == "/jax/core/compile/backend_compile_duration":
        _COMPILED.append(kw.get("fun_name"))


def test_sharded_over_4_devices_same_numbers(small_trial, conf, tmp_path):
    """Chunks of 7 padded to 8 and split over 4 forced host devices give bit-identical results.
    Each device's programs are requested from XLA once (ahead: no second request when the
    chunks run), the steady-state fallback at most once (on the first device); XLA compiles
    each program at most once, for one device, and the others load it from the compile cache
    (keyed without the device)."""
    import jax
    import jax.monitoring

    from popsim.compilation import CompileCounter, programs_shared_between_devices

    assert jax.local_device_count() >= 4
    assert programs_shared_between_devices()
    reference, _ = small_trial
    out = tmp_path / "sharded.h5"
    jax.monitoring.register_event_duration_secs_listener(_on_event)
    _LISTENING.append(True)
    try:
        with CompileCounter() as counter:
            run_cohort(conf, SMALL_TRIAL, out, chunk_size=7, progress=False, devices=4)
    finally:
        _LISTENING.clear()
    _assert_same_file(out, reference)
    for name in ("jit(simulate_observe_in_groups)", "jit(steady_states)"):
        assert _COMPILED.count(name) == 4, name  # requested once per device
        assert counter.programs.count(name) <= 1, name  # compiled for one of them at most
    assert _COMPILED.count("jit(steady_states_fallback)") <= 1


@pytest.mark.slow
def test_devices_out_of_range(conf, tmp_path):
    with pytest.raises(RunError, match=r"^devices=64: must be 1\.\."):
        run_cohort(conf, SMALL_TRIAL, tmp_path / "x.h5", devices=64, progress=False)
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--sizes", "0"], "--sizes must be positive"),
    (["--sizes", "ten"], "--sizes must be comma-separated whole numbers"),
    (["--rtol", "0.5"], "--rtol 0.5: must be in (0, 0.01)"),
    (["--out", "/no/such/dir/x.json"], "directory /no/such/dir does not exist"),
])
def test_bench_bad_input_exits_2(args, message, capsys):
    from popsim.cli import main

    with pytest.raises(SystemExit) as e:
        code = main(["bench", *args])
        raise SystemExit(code)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err, err


def test_bench_table_ratios():
    """The Markdown table shows each method's tolerance and rate, its ratios to libRoadRunner
    (at the same rtol, at equal accuracy) and to the best SciPy method, and its error against
    the tight reference; a sentence gives the ratio at equal accuracy per tolerance."""
    from popsim.bench_report import markdown

    rows = [{"method": "popsim", "patients": 100, "patient_days_per_s": 50_000.0,
             "compile_seconds": 10.0, "steady_state_seconds": 0.1,
             "steps_per_patient_median": 280.0, "ratio_to_best_scipy": 12.5,
             "ratio_to_libroadrunner": 0.5, "ratio_at_equal_accuracy": 4.0,
             "max_relative_error": 2.5e-5},
            {"method": "popsim", "rtol": 1e-4, "patients": 100, "patient_days_per_s": 90_000.0,
             "compile_seconds": None, "steady_state_seconds": 0.1,
             "steps_per_patient_median": 70.0, "ratio_to_best_scipy": 22.5,
             "ratio_to_libroadrunner": 0.9, "ratio_at_equal_accuracy": 11.25,
             "max_relative_error": 3e-6},
            {"method": "libroadrunner", "patients": 20, "patient_days_per_s": 100_000.0,
             "ratio_to_best_scipy": 25.0, "ratio_to_libroadrunner": 1.0},
            {"method": "scipy_lsoda", "patients": 4, "patient_days_per_s": 4_000.0,
             "ratio_to_best_scipy": 1.0, "ratio_to_libroadrunner": 0.04}]
    result = {"machine": {"platform": "p", "cpu_count": 2, "backend": "cpu",
                          "device_kind": "cpu", "device_count": 1}, "dtype": "float64",
              "solver": "s", "rtol": 1e-6, "atol_relative_to_reference_pools": 1e-8,
              "peak_rss_mb": 800.0, "created": "now", "rows": rows}
    table = markdown(result)
    assert ("| popsim | 1e-06 | 100 | 50,000 | 0.50 | 4.00 | 12.5 | 2.5e-05 | 10.0 | 0.10 | 280 |"
            in table)
    assert ("| popsim | 0.0001 | 100 | 90,000 | 0.90 | 11.25 | 22.5 | 3.0e-06 | - | 0.10 | 70 |"
            in table)
    assert "| libroadrunner | 1e-06 | 20 | 100,000 | 1.00 | - | 25.0 | - | - | - | - |" in table
    assert "| scipy_lsoda | 1e-06 | 4 | 4,000 | 0.04 | - | 1.0 | - | - | - | - |" in table
    assert "× libRoadRunner on 2 cores, same rtol" in table
    assert ("4.0x at rtol 1e-06 (error 2.5e-05, 50,000 patient-days/s); 11.2x at rtol 0.0001"
            in table)
    # the speed-target sentence speaks of the bench's own tolerance, not the looser row
    assert "popsim's best here: 50,000 patient-days/s" in table
    rows[0]["ratio_to_best_scipy"] = float("nan")  # SciPy not timed (--quick)
    assert "| 0.50 | 4.00 | - | 2.5e-05 |" in markdown(result)


def test_libroadrunner_ratio_is_against_all_cores():
    """popsim uses every core; libRoadRunner runs one patient after another in one process, so
    the ratio divides by its rate times the core count (perfect scaling, its best case)."""
    from popsim.bench import _ratios

    rows = [{"method": "popsim", "patient_days_per_s": 50_000.0},
            {"method": "libroadrunner", "patient_days_per_s": 10_000.0},
            {"method": "scipy_lsoda", "patient_days_per_s": 2_000.0}]
    assert _ratios(rows, cores=2) == 20_000.0
    assert [r["ratio_to_libroadrunner"] for r in rows] == [2.5, 0.5, 0.1]
    assert [r["ratio_to_best_scipy"] for r in rows] == [25.0, 5.0, 1.0]


def test_ratio_at_equal_accuracy_reads_libroadrunner_at_popsims_error():
    """With libRoadRunner measured at several tolerances, a popsim row's ratio at equal accuracy
    divides by libRoadRunner's rate (times the cores) interpolated in log-log at popsim's error
    between the two libRoadRunner points that bracket it; outside the curve it is not
    extrapolated. The same-rtol ratio uses the libRoadRunner row at the bench's rtol."""
    from popsim.bench import _ratios

    rr = [{"method": "libroadrunner", "rtol": 1e-6, "patient_days_per_s": 20_000.0,
           "max_relative_error": 1e-4},
          {"method": "libroadrunner", "rtol": 1e-8, "patient_days_per_s": 5_000.0,
           "max_relative_error": 1e-6}]
    inside = {"method": "popsim", "rtol": 1e-6, "patient_days_per_s": 60_000.0,
              "max_relative_error": 1e-5}
    outside = {"method": "popsim", "rtol": 1e-7, "patient_days_per_s": 30_000.0,
               "max_relative_error": 1e-7}
    assert _ratios([inside, outside, *rr[::-1]], cores=2, rtol=1e-6) == 40_000.0
    # error 1e-5 lies halfway (in log) between 1e-6 and 1e-4: rate sqrt(5,000 x 20,000) = 10,000
    assert inside["roadrunner_rate_at_same_error"] == pytest.approx(20_000.0)
    assert inside["ratio_at_equal_accuracy"] == pytest.approx(3.0)
    assert inside["ratio_to_libroadrunner"] == pytest.approx(1.5)
    assert outside["ratio_at_equal_accuracy"] is None


def test_two_processes_write_shards_and_a_virtual_master(small_trial, tmp_path):
    """Two `popsim run` processes under jax.distributed each write their chunks to a shard
    file; the master file (HDF5 virtual datasets) reads, in h5py and in xarray, exactly as the
    single-process run."""
    import socket
    import subprocess
    import sys

    import xarray as xr

    reference, _ = small_trial
    (tmp_path / "trial.toml").write_text(SMALL_TRIAL)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen(
        [sys.executable, "-m", "popsim.cli", "run", "trial.toml", "--out", "trial.h5",
         "--chunk-size", "7", "--quiet", "--coordinator", f"127.0.0.1:{port}",
         "--num-processes", "2", "--process-id", str(i)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)]
    for p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, out[-2000:]
    master = tmp_path / "trial.h5"
    shards = [tmp_path / "trial.part0of2.h5", tmp_path / "trial.part1of2.h5"]
    assert all(s.exists() for s in shards)
    with h5py.File(master) as f:
        assert f["serum_mg"].is_virtual
        assert f.attrs["shards"] == "trial.part0of2.h5,trial.part1of2.h5"
    for k, s in enumerate(shards):  # each shard holds only its own chunk
        assert store.chunks_done(s).tolist() == [k == 0, k == 1]
    _assert_same_file(master, reference, skip_attrs={"shards", "n_processes"})
    ds = xr.open_dataset(master, engine="h5netcdf")
    ref = xr.open_dataset(reference, engine="h5netcdf")
    np.testing.assert_array_equal(ds["serum_k"].values, ref["serum_k"].values)
    assert ds["serum_k"].dims == ("arm", "patient", "time")
    assert ds["serum_k"].attrs["units"] == "mmol/L"


def test_processes_meet_at_coordination_barriers_not_device_collectives(tmp_path, monkeypatch):
    """At the end of a multi-process run the processes wait for each other at barriers of
    JAX's coordination service (one name per wait, a day's timeout), never at a device
    collective: gloo's set-up of one gives up after 30 s, and a process that finished its
    chunks 30 s before the other failed the run so."""
    from jax._src import distributed
    from jax.experimental import multihost_utils

    from popsim import devices

    calls = []

    class Client:
        def wait_at_barrier(self, name, timeout_in_ms):
            calls.append((name, timeout_in_ms))

    monkeypatch.setattr(distributed.global_state, "client", Client())
    monkeypatch.setattr(multihost_utils, "sync_global_devices",
                        lambda name: pytest.fail("a device collective as a barrier"))
    monkeypatch.setattr(store, "stitch", lambda *a, **kw: calls.append("stitch"))
    run_mod._stitch_when_all_done(tmp_path / "x.h5", 2, 0)
    (first, t1), stitched, (second, t2) = calls
    assert stitched == "stitch" and first != second
    assert t1 == t2 == devices.BARRIER_TIMEOUT_S * 1000 >= 3600 * 1000


def test_coarser_output_interval_stores_the_daily_values_exactly(small_trial, tmp_path):
    """`output_interval_days = 3` on the 10-day trial saves days 0, 3, 6, 9 and 10 (the end of
    the simulation is always saved): bit for bit the daily run's values on those days, the same
    patients, status and attributes otherwise, in a smaller file."""
    reference, _ = small_trial
    text = SMALL_TRIAL.replace("output_interval_days = 1.0", "output_interval_days = 3.0")
    assert text != SMALL_TRIAL
    out = tmp_path / "every3.h5"
    run_cohort(cfg.parse_config(tomllib.loads(text)), text, out, chunk_size=7, progress=False)
    days = [0, 3, 6, 9, 10]
    with h5py.File(out) as f, h5py.File(reference) as ref:
        np.testing.assert_array_equal(f["time"][...], days)
        np.testing.assert_array_equal(ref["time"][days], days)
        assert sorted(f) == sorted(ref)
        for name in ref:
            if name == "time":
                continue
            expected = ref[name][...]
            if ref[name].ndim == 3:  # (arm, patient, time)
                expected = expected[..., days]
                assert f[name].chunks == (1, 7, len(days))
            np.testing.assert_array_equal(f[name][...], expected, err_msg=name)
        mg = f["serum_mg"][1]  # the Mg arm moves between the saved days
        assert np.all(np.abs(np.diff(mg, axis=1)).max(axis=1) > 1e-3)
        assert f.attrs["config"] == text
        assert f["serum_mg"].id.get_storage_size() < ref["serum_mg"].id.get_storage_size()


@pytest.mark.parametrize(("value", "message"), [
    ("0", "simulation.output_interval_days: Input should be greater than 0 (got 0)"),
    ("20", "simulation: output_interval_days (20) exceeds days (10); allowed: 0 < "
           "output_interval_days <= days"),
    ("1e-5", "simulation: output_interval_days (1e-05) splits 10 days into 1000000 intervals; "
             "allowed: at most 200000 (output_interval_days >= 5e-05)"),
])
def test_bad_output_interval_exits_2_and_keeps_the_file(tmp_path, capsys, value, message):
    from popsim.cli import main

    config = tmp_path / "trial.toml"
    config.write_text(SMALL_TRIAL.replace("output_interval_days = 1.0",
                                          f"output_interval_days = {value}"))
    out = tmp_path / "trial.h5"
    out.write_bytes(b"an earlier result")
    assert main(["run", str(config), "--out", str(out), "--force", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"popsim: error: {message}", err
    assert out.read_bytes() == b"an earlier result"


# --- devices really run at once -----------------------------------------------------------------

def _chunk_inputs(conf, n):
    """Parameters, patients, solver settings and the Mg arm's protocol of ``n`` patients."""
    import jax.numpy as jnp

    from popsim.population import sample_cohort
    from popsim.protocols import protocols_for
    from popsim.solve import SolverSettings

    p, q = sample_cohort(conf.population, 1, 0, n).inputs(jnp.float64)
    return p, q, SolverSettings.from_simulation(conf.simulation), protocols_for(
        conf.arms, conf.simulation.days, jnp.float64)[1]


def _custom_calls(lowered_text):
    import re

    return set(re.findall(r"custom_call @([A-Za-z0-9_]+)", lowered_text))


@pytest.mark.slow
def test_chunk_programs_have_no_host_callback_or_lapack_call(conf):
    """What keeps several devices computing at once: a host callback makes JAX's CPU client run
    a program synchronously (diffeqsolve's eqx.error_if checks compile to one unless
    EQX_ON_ERROR=nan, which popsim sets), and two batched LAPACK kernels at once deadlock XLA's
    CPU thread pool (popsim factorises with its own SmallLU). Every compiled entry point is a
    plain jax.jit (an eqx.filter_jit entry point would wait for its result)."""
    import jax
    import jax.numpy as jnp

    from popsim import batch
    from popsim.programs import StoredProgram

    for fn in (batch.steady_states_jit, batch.steady_states_fallback_jit,
               batch.simulate_observe_jit):  # called through a plain jax.jit
        assert isinstance(fn, StoredProgram), fn
    with jax.enable_x64(True):
        p, q, s, prot = _chunk_inputs(conf, 4)
        ts = jnp.asarray(conf.simulation.output_times)
        steady = batch.steady_states_jit.lower(p, q, s).as_text()
        y0, _ = batch.steady_states_jit(p, q, s)
        course = batch.simulate_observe_jit.lower(p, q, prot, y0, ts, s, False).as_text()
        fallback = batch.steady_states_fallback_jit.lower(p, q, s).as_text()
    assert _custom_calls(steady) == set()
    for program in (course, fallback):
        assert not any("callback" in name or "lapack" in name for name in _custom_calls(program))
