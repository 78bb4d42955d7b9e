"""Several devices: a batch cut into contiguous parts along the patient axis, one per device,
each running the same one-device program a one-device run compiles, so every patient gets the
same bits whatever the device count (a program partitioned by XLA, ``jit`` over a
``NamedSharding`` or ``shard_map``, is compiled differently and changes the last bits, differently
for each device count; measurements in ``benchmarks/results/throughput_devices.md``).

Every part is placed on its device before any part is started (slicing a device-resident batch is
itself a computation on that device, and queued behind device 0's running solve it would hold
back device 1), then each device's program is dispatched from one thread; JAX runs them
asynchronously, so the devices compute at once. That needs programs that return at once
(:mod:`popsim.batch`) and no host sync between dispatches. The steady-state fallback for
Newton's failures runs for all parts together on the first device
(:func:`parts_steady_states`), and :func:`compile_ahead` compiles every program before a run's
first chunk.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

from popsim import batch, compilation, model
from popsim.model import Patient
from popsim.options import Message, Option
from popsim.parameters import Params
from popsim.population import batch_size, padded
from popsim.protocols import Protocol
from popsim.solve import SolverSettings


class DeviceError(ValueError):
    """A device request that cannot be met (``--devices``), in one line."""


def patient_devices(devices: int | str | None) -> list | None:
    """The local devices a chunk is split over along the patient axis (``--devices``), or
    ``None`` for one device."""
    if devices is None:
        return None
    local = jax.local_devices()
    n = len(local) if devices == "all" else int(devices)
    if not 1 <= n <= len(local):
        raise DeviceError(Message(Option("devices", devices), f": must be 1..{len(local)} "
                                  f"(local devices: {len(local)} "
                                  f"{local[0].platform.upper()}) or 'all'"))
    return None if n == 1 else local[:n]


def simulate_arms(cohort, protocols: list[Protocol], ts, settings: SolverSettings,
                  dtype=jnp.float64, track_balance: bool = False, devices=None, phases=None,
                  needed: int | None = None):
    """Steady states of a sampled cohort (:class:`popsim.population.Cohort`), then every arm from
    them, on one device or split over ``devices`` along the patient axis.

    Returns ``(outputs, status)``: a dict of NumPy arrays ``(arm, patient, time)`` and the
    status codes ``(arm, patient)``; a patient without a steady state has status 1 in every arm
    and NaN outputs. Every device's Newton starts before any result is waited for, the Newton
    failures of all parts are retried together (:func:`parts_steady_states`), then every
    device's time courses start before any is collected.

    ``phases`` (a :class:`popsim.progress.Phases`): adds the wall time until the steady states
    are known (``"steady_state"``) and until the outputs are on the host (``"time_course"``:
    integration and outputs, one program per arm).

    The cohort is computed padded to :func:`popsim.population.batch_size` (copies of its
    last patient, dropped from the results). ``needed``: only the first ``needed`` patients are
    wanted (the others, e.g. a run's padding draws, are computed but their failed steady
    states not retried).
    """
    timed = phases if phases is not None else _untimed
    compilation.make_room_for_programs()
    n = cohort.size if needed is None else needed
    inputs = [part.inputs(dtype) for part in batch_parts(cohort, devices)]
    with timed("steady_state"):
        starts = parts_steady_states(inputs, settings, needed=n)
    with timed("time_course"):
        results = [batch.arms(p, pts, y0, ok, protocols, ts, settings, track_balance)
                   for (p, pts), (y0, ok) in zip(inputs, starts, strict=True)]
        results = [jax.tree.map(np.asarray, r) for r in results]  # every device has started
    if len(results) > 1:
        results = [jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *results)]
    return jax.tree.map(lambda x: x[:, :cohort.size], results[0])


@contextlib.contextmanager
def _untimed(name: str):
    yield


FALLBACK_BUCKET = 32
"""Newton failures are retried in batches of this many patients, whatever the cohort's size
(padded by repeating the last failure): one fallback program serves every run and cohort."""


def steady_states_with_fallback(params: Params, patients: Patient, settings: SolverSettings,
                                newton=None):
    """Batched steady states: Newton, then pseudo-transient continuation for Newton's failures
    (:func:`parts_steady_states` with one part). Returns ``(y0, ok)``.

    ``newton``: the ``(y0, ok)`` of :func:`popsim.batch.steady_states_jit` if already
    started."""
    return parts_steady_states([(params, patients)], settings,
                               None if newton is None else [newton])[0]


FIT_FALLBACK_STEPS = 2_000
"""Step limit of the pseudo-transient continuation when a fit looks for steady states
(:func:`fit_steady_states`): a reference adult needs 33-91 steps (and patients on 2-15 mg/day of
Mg with a loop diuretic 56-68), and an optimiser's trial point can put patients where they have
no steady state, on which a cohort run's limit (20,000 steps per bucket of 32) would spend ten
times the steps before giving up, at every such point of the fit, unless their pools collapse
first (:data:`popsim.solve.COLLAPSED`)."""


def fit_steady_states(params: Params, patients: Patient, settings: SolverSettings):
    """Steady states for a calibration's warm start, in float64: Newton, then pseudo-transient
    continuation stopped after :data:`FIT_FALLBACK_STEPS` steps (patients still unsolved keep
    ``ok`` False, and the fit masks them). Returns ``(y0, ok)``."""
    settings = dataclasses.replace(settings, fallback_max_steps=FIT_FALLBACK_STEPS)
    with jax.enable_x64(True):
        return steady_states_with_fallback(params, patients, settings)


def parts_steady_states(parts, settings: SolverSettings, newtons=None,
                        needed: int | None = None) -> list:
    """Steady states of a batch cut into parts (one per device): ``parts`` is a list of
    ``(params, patients)``; returns one ``(y0, ok)`` per part, on the part's device.

    Newton runs on every part (started on all before any is waited for, unless ``newtons``, their
    :func:`popsim.batch.steady_states_jit` results, are given). The failures of all parts (checked
    on the host once) are retried together by pseudo-transient continuation on the first part's
    device, in batches of :data:`FALLBACK_BUCKET` patients taken in patient order (padded by
    repeating the last), so the slow fallback runs only for the few patients that need it (~0.6%),
    is compiled for one device only, and sees the same batches however the patients are split over
    devices. The patients' inputs are gathered on the host (a fixed-shape batch
    whatever the number of failures: nothing recompiles), and each part's results are merged on
    its own device. ``needed``: only the first ``needed`` patients' steady states are wanted
    (the others pad the batch, :func:`popsim.population.batch_size`); the others' failures
    are not retried.
    """
    if newtons is None:
        newtons = [batch.steady_states_jit(p, pt, settings) for p, pt in parts]
    oks = [np.asarray(ok) for _, ok in newtons]
    failed = np.flatnonzero(~np.concatenate(oks))
    if needed is not None:
        failed = failed[failed < needed]
    if not failed.size:
        return list(newtons)
    sizes = [ok.size for ok in oks]
    offsets = np.cumsum([0, *sizes])
    b = FALLBACK_BUCKET
    # the whole batch's inputs on the host (a few hundred kB per 1,000 patients)
    host = jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]),
                        *[tuple(part) for part in parts])
    home = _fallback_device(parts)
    results = [list(r) for r in newtons]
    for k in range(0, failed.size, b):
        idx = failed[k:k + b]
        take = np.concatenate([idx, np.full(b - idx.size, idx[-1])])
        bucket = jax.device_put(jax.tree.map(lambda x, take=take: x[take], host), home)
        y_fb, ok_fb = batch.steady_states_fallback_jit(*bucket, settings)
        for i, (lo, hi) in enumerate(zip(offsets[:-1], offsets[1:], strict=True)):
            mine = (idx >= lo) & (idx < hi)
            if not mine.any():
                continue
            # rows of other parts and the padding go to index ``size``, past the end, and are
            # dropped: fixed shapes, so the merge compiles once
            dest = np.concatenate([np.where(mine, idx - lo, hi - lo),
                                   np.full(b - idx.size, hi - lo)])
            y0, ok = results[i]
            fb = (y_fb, ok_fb)
            if home is not None:
                fb = jax.device_put(fb, jax.tree.leaves(y0)[0].device)
            results[i] = _merge_fallback(y0, ok, *fb, dest)
    # a patient without a steady state is reported as such; start its (discarded) time course
    # from the textbook state so it cannot hold up the rest of the batch
    return [(batch.reference_if_failed(y0, ok, *part), ok)
            for (y0, ok), part in zip(results, parts, strict=True)]


def _fallback_device(parts):
    """Where :func:`parts_steady_states` runs the fallback: the first part's device (``None``,
    JAX's default device, for one part, whose arrays may not be committed to a device)."""
    return jax.tree.leaves(parts[0])[0].device if len(parts) > 1 else None


@jax.jit
def _merge_fallback(y0, ok, y_fb, ok_fb, dest):
    y_fb = y_fb.astype(y0.dtype)  # a float32 run's states stay float32 (no promoting scatter)
    y0 = y0.at[dest].set(jnp.where(ok_fb[:, None], y_fb, y0.at[dest].get(mode="clip")),
                         mode="drop")
    return y0, ok.at[dest].set(ok_fb, mode="drop")


FALLBACK_AHEAD = 1000
"""A run of at least this many patients (per process) compiles the steady-state fallback with
its other programs (:func:`compile_ahead`): Newton fails for a few patients per 1,000, so such a
run very likely needs it."""


def compile_ahead(parts, protocols, ts, settings: SolverSettings, track_balance: bool = False,
                  fallback: bool = True, workers: int | None = None) -> None:
    """Compile a chunk's programs for every device before the chunk runs, in parallel threads.

    ``parts``: one ``(params, patients)`` per device, arrays with the patient axis already on their
    device and of the solve's dtype (what :func:`popsim.batch.steady_states_jit` and
    :func:`popsim.batch.simulate_observe_jit` will be called with); ``protocols``: the arms'
    protocols (one program per distinct shape). Compiles the Newton and the time course for each
    device, and the fallback for the first device (unless ``fallback`` is false; see
    :func:`parts_steady_states`). Each program is traced once, in this thread (the device a
    batch is committed to does not change the trace), and compiled by XLA in ``workers`` threads
    (default: one per core) while the next one is traced. When the compile cache is keyed
    without the device (:func:`popsim.compilation.programs_shared_between_devices`), the first
    device's programs are compiled first and the other devices then load them from the cache
    instead of compiling copies. The later calls find these executables in JAX's cache and do
    not compile again; they are the programs a call would have compiled, so results do not
    change.
    """
    compilation.make_room_for_programs()
    shapes, prots = set(), []
    for prot in protocols:  # arms with the same number of segments share one program
        key = (jax.tree.structure(prot),
               tuple((np.shape(x), jnp.result_type(x)) for x in jax.tree.leaves(prot)))
        if key not in shapes:
            shapes.add(key)
            prots.append(prot)
    waves = [parts[:1], parts[1:]] if compilation.programs_shared_between_devices() else [parts]
    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="popsim-compile") as pool:
        for k, wave in enumerate(waves):
            futures = []

            def submit(jitted, *args, futures=futures):
                futures.append(pool.submit(jitted.trace(*args).lower().compile))

            for p, pt in wave:
                submit(batch.steady_states_jit, p, pt, settings)
            if fallback and k == 0:  # on the first part's device only (parts_steady_states)
                bucket = jax.device_put(  # as parts_steady_states makes it
                    jax.tree.map(lambda x: np.resize(np.asarray(x),
                                                     (FALLBACK_BUCKET, *x.shape[1:])),
                                 parts[0]),
                    _fallback_device(parts))
                submit(batch.steady_states_fallback_jit, *bucket, settings)
            for p, pt in wave:
                leaf = jax.tree.leaves(p)[0]
                # placed as the steady states will be, committed to the part's device (the
                # outputs of a stored program are committed, and an argument's placement is
                # part of what a jit program is compiled for)
                y0 = jax.device_put(jnp.zeros((leaf.shape[0], model.N_STATES), leaf.dtype),
                                    leaf.sharding)
                for prot in prots:
                    submit(batch.simulate_observe_jit, p, pt, prot, y0, ts, settings,
                           track_balance)
            for f in futures:  # the first device's programs are in the cache before the others
                f.result()


def batch_parts(cohort, devices=None) -> list:
    """A cohort (:class:`popsim.population.Cohort`) as :func:`simulate_arms` computes it: padded
    to its :func:`popsim.population.batch_size` and cut into one part per device (what
    :func:`compile_ahead` must be given to compile the programs the solve will use)."""
    size = batch_size(cohort.size, len(devices) if devices else 1)
    return place_parts(padded(cohort, size), devices)


def place_parts(tree, devices=None) -> list:
    """``tree`` (a pytree whose leaves have a leading patient axis of a length divisible by
    ``len(devices)``) cut into equal contiguous parts, part ``i`` placed on ``devices[i]``.
    For one device (or ``None``): ``[tree]`` as it is, where JAX put it (the default device)."""
    if devices is None or len(devices) == 1:
        return [tree]
    n = len(devices)
    size = jax.tree.leaves(tree)[0].shape[0]
    if size % n:
        raise ValueError(f"batch of {size} does not split over {n} devices")
    k = size // n
    return [jax.device_put(jax.tree.map(lambda x, i=i: x[i * k:(i + 1) * k], tree), devices[i])
            for i in range(n)]


BARRIER_TIMEOUT_S = 24 * 3600
"""How long a process waits at the end of a multi-process run for the others to finish their
chunks (a process that dies ends the wait earlier: the coordination service reports it)."""


def barrier(name: str) -> None:
    """Wait until every process of the run reaches ``name``: a barrier of JAX's coordination
    service, not a device collective (whose CPU set-up, gloo, gives up after 30 s when one
    process reaches it that much later than another, e.g. while it still compiles)."""
    from jax._src import distributed  # the client JAX's own multi-host tools use

    client = distributed.global_state.client
    if client is not None:
        client.wait_at_barrier(name, int(BARRIER_TIMEOUT_S * 1000))
