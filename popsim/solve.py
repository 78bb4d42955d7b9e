"""Steady states and time courses, for one patient and for a batch (jit + vmap).

Single-patient functions know nothing about cohorts; the batched entry points add the patient axis
with ``jax.vmap`` at one boundary and compile once per shape. A patient whose steady state or time
course fails gets a :class:`Status` code; it never stops the batch (``throw=False``).

Numerics (see README "Solver"):

* Steady state: Newton (``optimistix.Newton``) on the state normalised by the patient's
  reference pools, from a textbook-normal state scaled to the patient. Patients where Newton
  fails (~1%) are retried, per chunk, by pseudo-transient continuation: an implicit (L-stable)
  diffrax solve with loose tolerances until a steady-state event, then the same Newton polish.
  Converged to ``|dy/dt| / y_ref < ss_atol`` per day.
* Time courses: Rodas5P (:mod:`popsim.rosenbrock`, a Rosenbrock method written as a diffrax
  solver: one Jacobian and one factorisation per step, no Newton iterations) with a PID
  step-size controller on the state normalised by the patient's reference pools, clipped at
  every protocol breakpoint (``jump_ts``). It is the default because it is faster than the
  ESDIRK solvers with Newton stages at a smaller error (``benchmarks/throughput_variants.py``);
  its outputs agree with SciPy's Radau at rtol 1e-10 within the SPEC's 1e-4 relative
  (``tests/test_rodas_reference.py``; measurements in ``benchmarks/RESULTS.md`` and
  ``benchmarks/results/``).
* Linear systems, in the time course and the steady states alike: :class:`popsim.linear.SmallLU`
  (LU in array operations, no LAPACK; see :mod:`popsim.linear` for why).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from popsim import model, observables, rosenbrock
from popsim.linear import SmallLU
from popsim.model import Inputs, Patient
from popsim.parameters import Params
from popsim.protocols import Protocol


class Status(enum.IntEnum):
    """Per-patient outcome code stored in the cohort file (``status``)."""

    OK = 0
    STEADY_STATE_FAILED = 1  # no steady state found for the baseline covariates
    SOLVER_FAILED = 2  # the time-course solve failed (e.g. step size collapsed)
    MAX_STEPS = 3  # the time-course solve hit max_steps
    NONFINITE = 4  # non-finite outputs
    PADDING = 9  # not a patient (padding of the last chunk); never stored


STATUS_DESCRIPTIONS = {s.value: s.name.lower() for s in Status}


@dataclass(frozen=True)
class SolverSettings:
    """Tolerances and limits (static: changing them recompiles)."""

    rtol: float = 1e-5  # output accuracy: see CONTROLLER_TOLERANCE_SCALE
    atol: float = 1e-7  # on states normalised by the patient's reference pools (~1)
    solver: str = "rodas5p"
    newton_rtol: float = 1e-4  # stage equations of the implicit solver
    newton_atol: float = 1e-6
    max_steps: int = 20_000
    dt0: float = 1e-3  # days
    ss_rtol: float = 1e-10
    ss_atol: float = 1e-10  # on dy/dt relative to the reference pools, 1/day
    ss_max_steps: int = 64
    fallback_max_steps: int = 20_000
    adjoint: str = "recursive"  # "recursive" (reverse mode) or "forward" (jvp/jacfwd, few inputs)
    pcoeff: float = 0.0  # PID step-size controller coefficients (diffrax's defaults: I control)
    icoeff: float = 1.0


IMPLICIT_SOLVERS = {"kvaerno3": dfx.Kvaerno3, "kvaerno4": dfx.Kvaerno4, "kvaerno5": dfx.Kvaerno5}
EXPLICIT_SOLVERS = {"tsit5": dfx.Tsit5, "dopri5": dfx.Dopri5}
ROSENBROCK_SOLVERS = {"rodas4": rosenbrock.Rodas4, "rodas4p": rosenbrock.Rodas4P,
                      "rodas5p": rosenbrock.Rodas5P}
SOLVERS = tuple(sorted(IMPLICIT_SOLVERS) + sorted(ROSENBROCK_SOLVERS) + sorted(EXPLICIT_SOLVERS))

CONTROLLER_TOLERANCE_SCALE = {"rodas4": 0.3, "rodas4p": 0.1, "rodas5p": 0.1}
"""The step-size controller runs at ``rtol`` and ``atol`` times this (1 for solvers not listed),
so that one ``rtol`` gives about the same accuracy of the outputs whatever the solver.

At equal controller tolerances the Rosenbrock methods' outputs are less accurate than
Kvaerno3's: their steps are longer, and the error of the 4th-order embedded solution that
controls Rodas5P's steps lets more error through than Kvaerno3's 2nd-order one (a coarser bound
on its 3rd-order solution). The factors are calibrated on the scenarios of
``benchmarks/solver_choice.py`` so that every listed solver's max error is at most Kvaerno3's
at the same ``rtol`` (1e-5 to 1e-7); the measurements are in
``benchmarks/results/solver_choice.json``.
"""


def rms_norm(x) -> jax.Array:
    """The RMS norm of the step-size controller (diffrax's default norm), summed in a fixed
    order by elementwise operations.

    diffrax's ``rms_norm`` is a ``jnp.dot``; batched by ``vmap`` it becomes an XLA dot whose
    summation order depends on the batch size, so the accepted step sizes, and so every output,
    of a patient changed in the last bits with the size of the batch it was solved in (chunk
    size, device count, sub-batches). With this norm each patient's arithmetic is the same in
    any batch. No derivative: the controller's decisions are not differentiated.
    """
    v = jnp.concatenate([jnp.ravel(leaf) for leaf in jax.tree.leaves(x)])
    v = jax.lax.stop_gradient(v)
    total = v[0] * v[0]
    for i in range(1, v.shape[0]):
        total = total + v[i] * v[i]
    return jnp.sqrt(total / v.shape[0])


def _make_solver(s: SolverSettings):
    """The diffrax solver for ``s.solver``; the ones that solve linear systems do so with
    :class:`popsim.linear.SmallLU`.

    Rosenbrock solvers leave out the ``d_i h df/dt`` terms (``time_derivative=False``): the
    vector field depends on ``t`` only through piecewise-constant protocol inputs, and every
    step ends at a protocol breakpoint, so ``df/dt = 0`` within a step. Implicit (Kvaerno)
    stages are solved with full Newton (``optimistix.Newton``, Jacobian at every iteration)
    instead of diffrax's default chord method, which on this model diverges at large steps and
    has many steps rejected, for the same error (``benchmarks/solver_choice.py``).
    """
    if s.solver in IMPLICIT_SOLVERS:  # SmallLU, not LAPACK: see popsim.linear
        newton = optx.Newton(rtol=s.newton_rtol, atol=s.newton_atol, linear_solver=SmallLU())
        return IMPLICIT_SOLVERS[s.solver](root_finder=newton)
    if s.solver in ROSENBROCK_SOLVERS:
        return ROSENBROCK_SOLVERS[s.solver](time_derivative=False, linear_solver=SmallLU())
    if s.solver in EXPLICIT_SOLVERS:
        return EXPLICIT_SOLVERS[s.solver]()
    raise ValueError(f"solver {s.solver!r} is not one of {list(SOLVERS)}")


def _scaled_residual(x, args):
    p, pt, u, scale = args
    return jnp.stack(model.derivatives(x * scale, p, pt, u)) / scale


def _newton(x0, p, pt, u, scale, s: SolverSettings):
    """Newton on the state normalised by the patient's reference pools (all entries ~1).

    (In log coordinates the pump-leak and Hill terms made Newton diverge for ~65% of patients;
    in these linear normalised coordinates ~1%, who go to the fallback.)
    """
    newton = optx.Newton(rtol=s.ss_rtol, atol=s.ss_atol, linear_solver=SmallLU())
    sol = optx.root_find(_scaled_residual, newton, x0,
                         args=(p, pt, u, scale), max_steps=s.ss_max_steps, throw=False)
    y = sol.value * scale
    ok = (sol.result == optx.RESULTS.successful) & jnp.all(jnp.isfinite(y)) & jnp.all(y > 0)
    return y, ok


def steady_state(p: Params, pt: Patient, s: SolverSettings = SolverSettings(), u=None,
                 y_start=None):
    """Steady state of one patient under constant inputs ``u`` (default: baseline), by Newton
    from ``y_start`` (default: the textbook state). Differentiable in ``p`` and ``pt`` by the
    implicit function theorem (optimistix ``ImplicitAdjoint``).

    Returns ``(y, ok)``: the state (model units) and whether Newton converged.
    """
    u = model.baseline_inputs(pt) if u is None else u
    scale = model.reference_state(p, pt)
    x0 = jnp.ones_like(scale) if y_start is None else y_start / scale
    return _newton(x0, p, pt, u, scale, s)


def steady_state_fallback(p: Params, pt: Patient, s: SolverSettings = SolverSettings(), u=None):
    """Pseudo-transient continuation: relax towards the steady state with an L-stable implicit
    solver (loose tolerances, steps growing to years) until a steady-state event, then Newton."""
    u = model.baseline_inputs(pt) if u is None else u
    scale = model.reference_state(p, pt)

    def vf(t, x, args):
        return jnp.stack(model.derivatives(x * scale, p, pt, u)) / scale

    # the stage equations' chord iterations factorise with SmallLU, not lineax's LU: jaxlib's
    # batched LAPACK kernels wait on XLA's thread pool for their own tasks, and two at once
    # (two fallback batches, or two devices) left every pool thread waiting: a deadlock
    chord = dfx.with_stepsize_controller_tols(dfx.VeryChord)(linear_solver=SmallLU())
    sol = dfx.diffeqsolve(
        dfx.ODETerm(vf), dfx.Kvaerno3(root_finder=chord), 0.0, 1e6, 1e-4, jnp.ones_like(scale),
        stepsize_controller=dfx.PIDController(rtol=1e-4, atol=1e-6),
        event=dfx.Event(dfx.steady_state_event(rtol=1e-7, atol=1e-9)),
        max_steps=s.fallback_max_steps, throw=False)
    return _newton(sol.ys[-1], p, pt, u, scale, s)


def simulate(p: Params, pt: Patient, protocol: Protocol, y0, ts,
             s: SolverSettings = SolverSettings(), track_balance: bool = False):
    """Time course of one patient from state ``y0`` at ``ts[0]``, saved at ``ts`` (days).

    Returns ``(ys, status, num_steps)``: ``ys`` of shape ``(time, state)`` in model units (with
    ``track_balance``, three more columns: the cumulative net external gain of Mg, K and Na in
    mmol since ``ts[0]``, see :func:`popsim.observables.balance_rates`).
    """
    scale = model.reference_state(p, pt)
    if track_balance:
        scale = jnp.concatenate([scale, jnp.stack([scale[model.MG_ECF], scale[model.K_ECF],
                                                   scale[model.NA_ECF]])])

    def vf(t, x, args):
        y = x[: model.N_STATES] * scale[: model.N_STATES]
        u = protocol.inputs(t, pt)
        dy = jnp.stack(model.derivatives(y, p, pt, u))
        if track_balance:
            dy = jnp.concatenate([dy, jnp.stack(observables.balance_rates(y, p, pt, u))])
        return dy / scale

    x0 = y0 / scale[: model.N_STATES]
    if track_balance:
        x0 = jnp.concatenate([x0, jnp.zeros(3, x0.dtype)])
    k = CONTROLLER_TOLERANCE_SCALE.get(s.solver, 1.0)
    controller = dfx.ClipStepSizeController(dfx.PIDController(rtol=k * s.rtol, atol=k * s.atol,
                                                              pcoeff=s.pcoeff, icoeff=s.icoeff,
                                                              norm=rms_norm),
                                            jump_ts=protocol.jump_times())
    sol = dfx.diffeqsolve(
        dfx.ODETerm(vf), _make_solver(s), ts[0], ts[-1], s.dt0, x0,
        saveat=dfx.SaveAt(ts=ts), stepsize_controller=controller, max_steps=s.max_steps,
        adjoint=dfx.ForwardMode() if s.adjoint == "forward" else dfx.RecursiveCheckpointAdjoint(),
        throw=False)
    ys = sol.ys * scale
    status = jnp.where(
        sol.result == dfx.RESULTS.successful,
        jnp.where(jnp.all(jnp.isfinite(ys)), Status.OK, Status.NONFINITE),
        jnp.where(sol.result == dfx.RESULTS.max_steps_reached, Status.MAX_STEPS,
                  Status.SOLVER_FAILED))
    return ys, status.astype(jnp.int8), sol.stats["num_steps"]


def observe_series(p: Params, pt: Patient, protocol: Protocol, ts, ys) -> dict:
    """Every output of :mod:`popsim.observables` along a time course: dict of ``(time,)`` arrays."""

    def one(t, y):
        return observables.observe(y, p, pt, protocol.inputs(t, pt))

    return jax.vmap(one)(ts, ys[:, : model.N_STATES])


# --- batched entry points (the patient axis is added here and only here) ----------------------

def _vmap(fn, *batch):
    """``jax.vmap(fn)(*batch)``; a batch of one patient is solved as two copies of it, because
    XLA compiles a batch of one as scalar code with other roundings: with this, a patient's
    results are the same bits in a batch of any size."""
    if jax.tree.leaves(batch)[0].shape[0] != 1:
        return jax.vmap(fn)(*batch)
    twice = jax.tree.map(lambda x: jnp.concatenate([x, x]), batch)
    return jax.tree.map(lambda x: x[:1], jax.vmap(fn)(*twice))


@functools.partial(jax.jit, static_argnames=("settings",))
def batched_steady_state(params: Params, patients: Patient, settings: SolverSettings):
    """Steady states of a batch: ``params`` and ``patients`` carry a leading patient axis.
    Returns ``(y0, ok)`` at once (``jax.jit``, asynchronous; see
    :func:`batched_simulate_observe`)."""
    return _vmap(lambda p, pt: steady_state(p, pt, settings), params, patients)


def batched_steady_state_fallback(params: Params, patients: Patient, settings: SolverSettings):
    """:func:`steady_state_fallback` of a batch; like :func:`batched_simulate_observe`, compiled
    with ``jax.jit`` and without host callbacks (returns at once)."""
    with _checks_without_callbacks():
        return _batched_steady_state_fallback(params, patients, settings)


@functools.partial(jax.jit, static_argnames=("settings",))
def _batched_steady_state_fallback(params, patients, settings):
    return _vmap(lambda p, pt: steady_state_fallback(p, pt, settings), params, patients)


BALANCE_OUTPUTS = ("net_gain_mg", "net_gain_k", "net_gain_na")
"""With ``track_balance``: cumulative net external gain since ``ts[0]``, mmol."""


def batched_simulate_observe(params: Params, patients: Patient, protocol: Protocol, y0, ts,
                             settings: SolverSettings, track_balance: bool = False):
    """Simulate and observe a batch under one protocol (one compiled region: solve + outputs).

    Returns ``(outputs, status, num_steps)`` with outputs a dict of ``(patient, time)`` arrays;
    with ``track_balance`` it also holds :data:`BALANCE_OUTPUTS`.

    Returns at once (JAX's asynchronous dispatch): compiled with ``jax.jit`` and without host
    callbacks (see :func:`_checks_without_callbacks`), so that several devices' chunks run at
    once (:func:`split_over_devices`).
    """
    with _checks_without_callbacks():
        return _batched_simulate_observe(params, patients, protocol, y0, ts, settings,
                                         track_balance)


@contextlib.contextmanager
def _checks_without_callbacks():
    """While tracing: Equinox's runtime checks (``eqx.error_if``) give NaN instead of raising.

    diffeqsolve checks its time span and saved times with ``eqx.error_if``, which by default
    (``EQX_ON_ERROR=raise``) compiles to a Python host callback; JAX's CPU client runs a program
    that has a host callback synchronously, so with two devices the second device's chunk did not
    start until the first's had finished (no speed-up from ``--devices 2``, measured). popsim
    validates those inputs at the boundary (config) and solves with ``throw=False``; a check that
    failed anyway gives NaN outputs, i.e. status NONFINITE. Equinox reads the mode from the
    module global ``equinox._errors.EQX_ON_ERROR`` when tracing; it is set here for popsim's own
    traces only and restored (an Equinox without it just keeps its callbacks; tests/test_scale.py
    checks that the compiled time course has none).
    """
    try:
        from equinox import _errors
    except ImportError:  # pragma: no cover - a future Equinox layout
        yield
        return
    old = getattr(_errors, "EQX_ON_ERROR", None)
    if old is None or old == "breakpoint":  # a user debugging with breakpoints keeps them
        yield
        return
    _errors.EQX_ON_ERROR = "nan"
    try:
        yield
    finally:
        _errors.EQX_ON_ERROR = old


@functools.partial(jax.jit, static_argnames=("settings", "track_balance"))
def _batched_simulate_observe(params, patients, protocol, y0, ts, settings, track_balance):
    # jax.jit, not eqx.filter_jit: a top-level eqx.filter_jit call waits for its result (Equinox
    # blocks to turn runtime errors into readable ones), which would also serialise the devices
    def one(p, pt, y):
        ys, status, steps = simulate(p, pt, protocol, y, ts, settings, track_balance)
        out = observe_series(p, pt, protocol, ts, ys)
        if track_balance:
            for j, name in enumerate(BALANCE_OUTPUTS):
                out[name] = ys[:, model.N_STATES + j]
        return out, status, steps

    return _vmap(one, params, patients, y0)


FALLBACK_BUCKET = 32  # Newton failures are retried in fixed-size batches (one compilation)


def steady_states_with_fallback(params: Params, patients: Patient, settings: SolverSettings,
                                newton=None):
    """Batched steady states: Newton, then pseudo-transient continuation for Newton's failures
    (:func:`parts_steady_states` with one part). Returns ``(y0, ok)``.

    ``newton``: the ``(y0, ok)`` of :func:`batched_steady_state` if already started."""
    return parts_steady_states([(params, patients)], settings,
                               None if newton is None else [newton])[0]


def parts_steady_states(parts, settings: SolverSettings, newtons=None) -> list:
    """Steady states of a batch cut into parts (one per device): ``parts`` is a list of
    ``(params, patients)``; returns one ``(y0, ok)`` per part, on the part's device.

    Newton runs on every part (started on all before any is waited for, unless ``newtons``,
    their :func:`batched_steady_state` results, are given). The failures of all parts (checked
    on the host once) are retried together by pseudo-transient continuation on the first part's
    device, in batches of :data:`FALLBACK_BUCKET` patients taken in patient order (padded by
    repeating the last), so the slow fallback runs only for the few patients that need it
    (~0.6%), is compiled for one device only, and sees the same batches however the patients
    are split over devices. The patients' inputs are gathered on the host (a fixed-shape batch
    whatever the number of failures: nothing recompiles), and each part's results are merged on
    its own device.
    """
    if newtons is None:
        newtons = [batched_steady_state(p, pt, settings) for p, pt in parts]
    oks = [np.asarray(ok) for _, ok in newtons]
    failed = np.flatnonzero(~np.concatenate(oks))
    if not failed.size:
        return list(newtons)
    sizes = [ok.size for ok in oks]
    offsets = np.cumsum([0, *sizes])
    b = min(FALLBACK_BUCKET, int(offsets[-1]))
    # the whole batch's inputs on the host (a few hundred kB per 1,000 patients)
    host = jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]),
                        *[tuple(part) for part in parts])
    home = _fallback_device(parts)
    results = [list(r) for r in newtons]
    for k in range(0, failed.size, b):
        idx = failed[k:k + b]
        take = np.concatenate([idx, np.full(b - idx.size, idx[-1])])
        bucket = jax.device_put(jax.tree.map(lambda x, take=take: x[take], host), home)
        y_fb, ok_fb = batched_steady_state_fallback(*bucket, settings)
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
    return [(_reference_if_failed(y0, ok, *part), ok)
            for (y0, ok), part in zip(results, parts, strict=True)]


def _fallback_device(parts):
    """Where :func:`parts_steady_states` runs the fallback: the first part's device (``None``,
    JAX's default device, for one part, whose arrays may not be committed to a device)."""
    return jax.tree.leaves(parts[0])[0].device if len(parts) > 1 else None


@jax.jit
def _merge_fallback(y0, ok, y_fb, ok_fb, dest):
    y0 = y0.at[dest].set(jnp.where(ok_fb[:, None], y_fb, y0.at[dest].get(mode="clip")),
                         mode="drop")
    return y0, ok.at[dest].set(ok_fb, mode="drop")


@jax.jit
def _reference_if_failed(y0, ok, params, patients):
    return jnp.where(ok[:, None], y0, jax.vmap(model.reference_state)(params, patients))


def compile_ahead(parts, protocols, ts, settings: SolverSettings, track_balance: bool = False,
                  fallback: bool = True, workers: int | None = None) -> None:
    """Compile a chunk's programs for every device before the chunk runs, in parallel threads.

    ``parts``: one ``(params, patients)`` per device, arrays with the patient axis already on
    their device and of the solve's dtype (what :func:`batched_steady_state` and
    :func:`batched_simulate_observe` will be called with); ``protocols``: the arms' protocols
    (one program per distinct shape). Compiles the Newton and the time course for each device,
    and the fallback for the first device (unless ``fallback`` is false; see
    :func:`parts_steady_states`). Each program is traced once, in this thread (the device a
    batch is committed to does not change the trace), and compiled by XLA in ``workers`` threads
    (default: one per core) while the next one is traced. The later calls find these executables
    in JAX's cache and do not compile again; they are the programs a call would have compiled,
    so results do not change.

    Measured (``configs/scale_year.toml``, 2 host devices, 2 cores): time to the first chunk on
    disk 78-85 s when each device compiled its programs as its calls came, with a second trace
    per device; 53-59 s with one trace, this, and the fallback compiled for one device only
    (XLA's CPU compiler already keeps ~1.5 cores busy per compilation, so the threads mostly
    overlap compilations with tracing, not with each other).
    """
    shapes, prots = set(), []
    for prot in protocols:  # arms with the same number of segments share one program
        key = (jax.tree.structure(prot),
               tuple((np.shape(x), jnp.result_type(x)) for x in jax.tree.leaves(prot)))
        if key not in shapes:
            shapes.add(key)
            prots.append(prot)
    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="popsim-compile") as pool:
        futures = []

        def submit(jitted, *args):
            futures.append(pool.submit(jitted.trace(*args).lower().compile))

        for p, pt in parts:
            submit(batched_steady_state, p, pt, settings)
        if fallback:  # on the first part's device only (parts_steady_states)
            n = sum(jax.tree.leaves(p)[0].shape[0] for p, _ in parts)
            b = min(FALLBACK_BUCKET, n)
            bucket = jax.device_put(  # as parts_steady_states makes it
                jax.tree.map(lambda x: np.resize(np.asarray(x), (b, *x.shape[1:])), parts[0]),
                _fallback_device(parts))
            with _checks_without_callbacks():
                submit(_batched_steady_state_fallback, *bucket, settings)
        with _checks_without_callbacks():
            for p, pt in parts:
                leaf = jax.tree.leaves(p)[0]
                y0 = jax.device_put(jnp.zeros((leaf.shape[0], model.N_STATES), leaf.dtype),
                                    leaf.sharding)
                for prot in prots:
                    submit(_batched_simulate_observe, p, pt, prot, y0, ts, settings,
                           track_balance)
        for f in futures:
            f.result()


def individual_inputs(pt: Patient) -> Inputs:
    return model.baseline_inputs(pt)



def place_parts(batch, devices=None) -> list:
    """``batch`` (a pytree whose leaves have a leading patient axis of a length divisible by
    ``len(devices)``) cut into equal contiguous parts, part ``i`` placed on ``devices[i]``.
    For one device (or ``None``): ``[batch]`` as it is, where JAX put it (the default device)."""
    if devices is None or len(devices) == 1:
        return [batch]
    n = len(devices)
    size = jax.tree.leaves(batch)[0].shape[0]
    if size % n:
        raise ValueError(f"batch of {size} does not split over {n} devices")
    k = size // n
    return [jax.device_put(jax.tree.map(lambda x, i=i: x[i * k:(i + 1) * k], batch), devices[i])
            for i in range(n)]


def split_over_devices(fn, batch, devices, axis: int = 0):
    """``fn(part)`` on equal contiguous parts of ``batch`` (a pytree whose leaves have a leading
    patient axis of a length divisible by ``len(devices)``), one part per device (dispatched
    asynchronously, so the devices run at once); returns the parts' results (pytrees of arrays)
    joined along their patient axis ``axis``. :func:`popsim.run.simulate_arms` does the same in
    stages (Newton on every device, the fallback once, then the time courses).

    Each device runs on its part (committed to it) the same one-device program that a one-device
    run with that part's batch size runs. Every patient therefore gets the same bits as in a
    one-device run: the per-patient arithmetic of the Rosenbrock solvers and of the steady-state
    Newton does not depend on the size of the batch (elementwise operations, no batched dot
    products in the time course), whereas a program partitioned by XLA (``jit`` over a
    ``NamedSharding``, or ``shard_map``) is compiled differently: ``shard_map`` over 1, 2 and 4
    host devices gave three different results (relative differences up to 1.4e-9), none the
    one-device program's. Speed on 2 host devices, 2,000 patients
    (``benchmarks/results/throughput_devices.md``): 558,686 patient-days/s, against 507,309 for
    ``jit`` over a ``NamedSharding`` and 661,217 for ``shard_map`` (18% faster, at the price of
    results that change with the device count) and 411,899 on one device.
    """
    # Every part is placed on its device before any part is started: slicing a device-resident
    # batch is itself a computation on that device, and queued behind device 0's running solve it
    # would hold back device 1 until device 0 had finished. Then each device's program is
    # dispatched from this thread; JAX runs it asynchronously, so the devices compute at once.
    # That needs programs that return at once: jax.jit rather than a top-level eqx.filter_jit
    # (which waits for its result), no host callbacks (see _checks_without_callbacks), and no
    # host sync in ``fn``. (Two batched LAPACK kernels running at once, as lineax's LU in the
    # steady-state Newton made them, deadlock XLA's CPU thread pool: see popsim.linear.SmallLU,
    # which every popsim program now uses instead.)
    results = [fn(part) for part in place_parts(batch, devices)]
    results = [jax.tree.map(np.asarray, r) for r in results]
    if len(results) == 1:
        return results[0]
    return jax.tree.map(lambda *xs: np.concatenate(xs, axis=axis), *results)
