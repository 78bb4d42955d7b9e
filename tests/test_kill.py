"""A real `popsim run --out FILE` killed with SIGKILL in the middle of writing, then `--resume`d.

Two processes run the CLI on the small trial of conftest (14 patients, chunks of 7): the first is
killed while HDF5 rewrites the file's metadata at the end of chunk 1, the second (``--resume``)
while it marks the file complete; then ``run_cohort(..., resume=True)`` finishes in this process
(its compilation is the session fixture's). The file must say at each step which chunks are done,
hold exactly those, recompute none of them, and end identical to the uninterrupted run (the
session fixture ``small_trial``). Every other moment a kill can land is covered, without
processes, by ``test_store.py::test_a_kill_at_any_write_leaves_a_resumable_file``.
"""

import os
import signal
import subprocess
import sys
import time
import tomllib

import h5py
import numpy as np
import pytest
from conftest import SMALL_TRIAL

from popsim import config as cfg
from popsim import run as run_mod
from popsim import store

pytestmark = pytest.mark.slow  # a whole run (and its compile) in every test

# Runs `popsim run` (sys.argv[3:]) after wrapping three functions: chunk computations are
# printed, and in the write session named by sys.argv[1] ("chunk1" or "finalize") the process
# stops right after HDF5's second overwrite of existing bytes of the file (its metadata),
# creates the file sys.argv[2] and sleeps until the test kills it.
DRIVER = r'''
import sys
import time
from pathlib import Path

from popsim import cli, run, store

kill_in, ready = sys.argv[1], Path(sys.argv[2])
state = {"session": None, "overwrites": 0}

run_chunk = run._run_chunk
def counted_run_chunk(job, c, *args, **kw):
    print(f"computing chunk {c}", flush=True)
    return run_chunk(job, c, *args, **kw)
run._run_chunk = counted_run_chunk

write_chunk, finalize = store.write_chunk, store.finalize
def named_write_chunk(path, c, *args, **kw):
    state["session"] = f"chunk{c}"
    return write_chunk(path, c, *args, **kw)
def named_finalize(path):
    state["session"] = "finalize"
    return finalize(path)
store.write_chunk, store.finalize = named_write_chunk, named_finalize

write = store._UndoFile.write
def write_then_wait(self, data):
    overwrite = self.tell() < self._size
    n = write(self, data)
    if state["session"] == kill_in and overwrite:
        state["overwrites"] += 1
        if state["overwrites"] == 2:
            ready.write_text("")
            time.sleep(600)
    return n
store._UndoFile.write = write_then_wait

sys.exit(cli.main(sys.argv[3:]))
'''

VOLATILE = {"created", "completed"}


@pytest.fixture
def processes():
    """Processes started by a test; any still running at its end (a failure) is killed."""
    started = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _start(processes, tmp, kill_in, *args):
    env = {**os.environ,  # later processes load the first one's compilations
           "JAX_COMPILATION_CACHE_DIR": os.environ.get("JAX_COMPILATION_CACHE_DIR",
                                                       str(tmp / "jax-cache")),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
           "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    ready = tmp / f"ready-{kill_in}"
    proc = subprocess.Popen(
        [sys.executable, "driver.py", kill_in, str(ready), "run", "trial.toml", "--out",
         "trial.h5", "--chunk-size", "7", "--quiet", *args],
        cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    processes.append(proc)
    return proc, ready


def _sigkill_when_ready(proc, ready, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} before the kill:\n"
                                 f"{proc.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("no kill point reached in time")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return out


def _computed(output):
    return [int(line.split()[-1]) for line in output.splitlines()
            if line.startswith("computing chunk")]


def _contents(path):
    with h5py.File(path) as f:
        return ({k: f[k][...] for k in f},
                {k: str(f.attrs[k]) for k in f.attrs if k not in VOLATILE})


def test_sigkill_mid_write_then_resume_gives_the_uninterrupted_file(tmp_path, request,
                                                                    monkeypatch, processes):
    (tmp_path / "trial.toml").write_text(SMALL_TRIAL)
    (tmp_path / "driver.py").write_text(DRIVER)
    out, journal = tmp_path / "trial.h5", store.journal_path(tmp_path / "trial.h5")

    first, ready = _start(processes, tmp_path, "chunk1")
    reference, _ = request.getfixturevalue("small_trial")  # computed while `first` compiles
    ref_data, ref_attrs = _contents(reference)
    log = _sigkill_when_ready(first, ready)
    assert _computed(log) == [0, 1]
    assert journal.exists()  # killed inside chunk 1's write session
    assert store.chunks_done(out).tolist() == [True, False]  # undoes the half-written chunk 1
    assert not journal.exists() and not store.is_complete(out)
    coh = store.open_cohort(out)
    np.testing.assert_array_equal(coh.output("serum_mg")[:, :7], ref_data["serum_mg"][:, :7])
    assert np.isnan(coh.output("serum_mg")[:, 7:]).all() and (coh.status[:, 7:] == -1).all()

    second, ready = _start(processes, tmp_path, "finalize", "--resume")
    log = _sigkill_when_ready(second, ready)
    assert _computed(log) == [1]  # chunk 0 is not recomputed
    assert journal.exists()
    assert store.chunks_done(out).tolist() == [True, True]
    assert not store.is_complete(out) and store.read_attrs(out)["complete"] == 0

    computed = []
    real = run_mod._run_chunk
    monkeypatch.setattr(run_mod, "_run_chunk", lambda job, c, *a, **k: (
        computed.append(c), real(job, c, *a, **k)))
    run_mod.run_cohort(cfg.parse_config(tomllib.loads(SMALL_TRIAL)), SMALL_TRIAL, out,
                       chunk_size=7, progress=False, resume=True)
    assert computed == []
    assert store.is_complete(out) and not journal.exists()
    data, attrs = _contents(out)
    assert sorted(data) == sorted(ref_data) and attrs == ref_attrs
    for k, v in ref_data.items():
        np.testing.assert_array_equal(data[k], v, err_msg=k)
