"""Steady states and time courses of one patient: the numerics, with no patient axis.

These functions know nothing about cohorts; :mod:`popsim.batch` adds the patient axis with
``jax.vmap`` at one boundary. A patient whose steady state or time course fails gets a
:class:`Status` code; it never stops a batch (``throw=False``).

Numerics:

* Steady state: Newton (``optimistix.Newton``) on the state normalised by the patient's
  reference pools, from a textbook-normal state scaled to the patient. Patients where Newton
  fails (~1%) are retried, per chunk, by pseudo-transient continuation: a Rodas5P solve with
  loose tolerances until a steady-state event, then the same Newton polish.
  Converged to ``|dy/dt| / y_ref < ss_atol`` per day.
* Time courses: Rodas5P (:mod:`popsim.rosenbrock`, a Rosenbrock method written as a diffrax
  solver: one Jacobian and one factorisation per step, no Newton iterations) with a PID
  step-size controller on the state normalised by the patient's reference pools, clipped at
  every protocol breakpoint (``jump_ts``). It is the default because it is faster than the
  ESDIRK solvers with Newton stages at a smaller error (``benchmarks/throughput_variants.py``);
  its outputs agree with SciPy's Radau at rtol 1e-10 within the 1e-4 relative accuracy target
  (``tests/test_rodas_reference.py``; measurements in ``benchmarks/RESULTS.md`` and
  ``benchmarks/results/``).
* Linear systems, in the time course and the steady states alike: :class:`popsim.linear.SmallLU`
  (LU in array operations, no LAPACK; see :mod:`popsim.linear` for why).
"""

from __future__ import annotations

from dataclasses import dataclass

import diffrax as dfx
import jax
import jax.numpy as jnp
import optimistix as optx

from popsim import model, observables, rosenbrock
from popsim.config import SOLVERS
from popsim.facts import STATUS_MEANINGS, Status
from popsim.linear import SmallLU
from popsim.model import Patient
from popsim.parameters import Params
from popsim.protocols import Protocol

__all__ = ["Status", "SolverSettings", "steady_state", "steady_state_fallback", "simulate",
           "simulate_titrated", "observe_series", "BALANCE_OUTPUTS"]


STATUS_DESCRIPTIONS = STATUS_MEANINGS


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

    @classmethod
    def from_simulation(cls, sim, extra_steps: int = 0) -> SolverSettings:
        """The settings of a config's ``[simulation]`` section
        (:class:`popsim.config.Simulation`); ``extra_steps`` are added to its default step
        budget (e.g. for periodic doses, :meth:`popsim.config.RunConfig.extra_steps`)."""
        budget = sim.step_budget if sim.max_steps is not None else sim.step_budget + extra_steps
        return cls(rtol=sim.rtol, atol=sim.atol, solver=sim.solver, max_steps=budget)


def solver_class(name: str) -> type:
    """The diffrax solver class of the solver ``name`` of :data:`popsim.config.SOLVERS` (the
    Rosenbrock ones are :mod:`popsim.rosenbrock`'s, the others diffrax's)."""
    if name not in SOLVERS:
        raise ValueError(f"solver {name!r} is not one of {list(SOLVERS)}")
    family, cls = SOLVERS[name]
    return getattr(rosenbrock if family == "rosenbrock" else dfx, cls)

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
    of a patient would change in the last bits with the size of the batch it is solved in (chunk
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
    cls = solver_class(s.solver)
    family = SOLVERS[s.solver][0]
    if family == "implicit":  # SmallLU, not LAPACK: see popsim.linear
        newton = optx.Newton(rtol=s.newton_rtol, atol=s.newton_atol, linear_solver=SmallLU())
        return cls(root_finder=newton)
    if family == "rosenbrock":
        return cls(time_derivative=False, linear_solver=SmallLU())
    return cls()


@jax.jit
def _derivatives(y, p: Params, pt: Patient, u, d):
    """:func:`popsim.model.derivatives` as one array, behind a ``jax.jit`` boundary.

    Every stage, Jacobian and Newton iterate of a program calls the same traced function, so
    the vector field is traced once per program instead of once per call site and XLA compiles
    it as one called computation: shorter tracing and compiling, the same bits (measured in
    benchmarks/RESULTS.md, "Time to first result")."""
    return jnp.stack(model.derivatives(y, p, pt, u, d))


def _scaled_residual(x, args):
    p, pt, u, scale, d = args
    return _derivatives(x * scale, p, pt, u, d) / scale


def _newton(x0, p, pt, u, scale, s: SolverSettings):
    """Newton on the state normalised by the patient's reference pools (all entries ~1).

    (In log coordinates the pump-leak and Hill terms made Newton diverge for ~65% of patients;
    in these linear normalised coordinates ~1%, who go to the fallback.)
    """
    newton = optx.Newton(rtol=s.ss_rtol, atol=s.ss_atol, linear_solver=SmallLU())
    sol = optx.root_find(_scaled_residual, newton, x0,
                         args=(p, pt, u, scale, model.derived(p)), max_steps=s.ss_max_steps,
                         throw=False)
    y = sol.value * scale
    ok = (sol.result == optx.RESULTS.successful) & jnp.all(jnp.isfinite(y)) & jnp.all(
        jnp.where(jnp.asarray(model.POSITIVE), y > 0, True))
    return y, ok


def steady_state(p: Params, pt: Patient, s: SolverSettings = SolverSettings(), u=None,
                 y_start=None):
    """Steady state of one patient under constant inputs ``u`` (default: baseline), by Newton
    from ``y_start`` (default: the textbook state). Differentiable in ``p`` and ``pt`` by the
    implicit function theorem (optimistix ``ImplicitAdjoint``).

    Returns ``(y, ok)``: the state (model units) and whether Newton converged.
    """
    u = model.baseline_inputs(pt) if u is None else u
    scale = model.state_scale(p, pt)
    start = model.reference_state(p, pt) if y_start is None else y_start
    return _newton(start / scale, p, pt, u, scale, s)


COLLAPSED = 1e-6
"""The pseudo-transient continuation gives up on a patient once a state that must be positive
falls below this fraction of its reference value (:func:`steady_state_fallback`)."""


def _collapsed(t, x, args, **kwargs):
    """Whether a normalised state has left the physiological region: a pool or hormone below
    :data:`COLLAPSED` of its reference, or a non-finite entry (a diffrax event condition)."""
    positive = jnp.asarray(model.POSITIVE)
    return jnp.any(positive & (x < COLLAPSED)) | ~jnp.all(jnp.isfinite(x))


def steady_state_fallback(p: Params, pt: Patient, s: SolverSettings = SolverSettings(), u=None):
    """Pseudo-transient continuation: relax towards the steady state with the Rosenbrock solver
    of the time courses (Rodas5P: stiffly accurate, so its steps can grow to years; loose
    tolerances) until a steady-state event, then Newton.

    A patient with no physiological steady state (parameters that let the ECF drain away, say)
    stops as soon as a pool or hormone has fallen a million-fold (:func:`_collapsed`), instead
    of spending the step limit on steps that shrink towards zero at an emptied state, and is
    reported as without a steady state."""
    u = model.baseline_inputs(pt) if u is None else u
    scale = model.state_scale(p, pt)

    d = model.derived(p)

    def vf(t, x, args):
        return _derivatives(x * scale, p, pt, u, d) / scale

    sol = dfx.diffeqsolve(
        dfx.ODETerm(vf), rosenbrock.Rodas5P(time_derivative=False, linear_solver=SmallLU()),
        0.0, 1e6, 1e-4, model.reference_state(p, pt) / scale,
        stepsize_controller=dfx.PIDController(rtol=1e-4, atol=1e-6),
        event=dfx.Event([dfx.steady_state_event(rtol=1e-7, atol=1e-9), _collapsed]),
        max_steps=s.fallback_max_steps, throw=False)
    assert sol.ys is not None and sol.event_mask is not None  # saved at t1; an event is set
    y, ok = _newton(sol.ys[-1], p, pt, u, scale, s)
    return y, ok & ~sol.event_mask[1]  # a collapsed patient has no steady state, whatever Newton


def _scales(p: Params, pt: Patient, track_balance: bool):
    """The state's scale (:func:`popsim.model.state_scale`; with ``track_balance`` the four
    cumulative gains scaled like the ECF pools)."""
    scale = model.state_scale(p, pt)
    if track_balance:
        scale = jnp.concatenate([scale, jnp.stack([scale[model.MG_ECF], scale[model.K_ECF],
                                                   scale[model.NA_ECF], scale[model.P_ECF]])])
    return scale


def _vector_field(p: Params, pt: Patient, protocol: Protocol, scale, track_balance: bool):
    """d(x)/dt of the normalised state ``x``; ``args`` is the titrated dose (or ``None``)."""
    d = model.derived(p)

    def vf(t, x, args):
        y = x[: model.N_STATES] * scale[: model.N_STATES]
        u = protocol.inputs(t, pt) if args is None else protocol.inputs(t, pt, args)
        dy = _derivatives(y, p, pt, u, d)
        if track_balance:
            dy = jnp.concatenate([dy, jnp.stack(observables.balance_rates(y, p, pt, u))])
        return dy / scale

    return vf


def _solve(vf, protocol: Protocol, t0, t1, x0, saveat, s: SolverSettings, args=None):
    """One diffrax solve of the normalised state from ``t0`` to ``t1`` (see the module
    docstring: the solver, its step-size controller stopping at every protocol breakpoint)."""
    k = CONTROLLER_TOLERANCE_SCALE.get(s.solver, 1.0)
    controller = dfx.ClipStepSizeController(dfx.PIDController(rtol=k * s.rtol, atol=k * s.atol,
                                                              pcoeff=s.pcoeff, icoeff=s.icoeff,
                                                              norm=rms_norm),
                                            jump_ts=protocol.jump_times())
    return dfx.diffeqsolve(
        dfx.ODETerm(vf), _make_solver(s), t0, t1, s.dt0, x0, args=args, saveat=saveat,
        stepsize_controller=controller, max_steps=s.max_steps,
        adjoint=dfx.ForwardMode() if s.adjoint == "forward" else dfx.RecursiveCheckpointAdjoint(),
        throw=False)


def _status(result, ys):
    """The :class:`Status` of one solve from diffrax's result and the saved states."""
    status = jnp.where(
        result == dfx.RESULTS.successful,
        jnp.where(jnp.all(jnp.isfinite(ys)), Status.OK, Status.NONFINITE),
        jnp.where(result == dfx.RESULTS.max_steps_reached, Status.MAX_STEPS,
                  Status.SOLVER_FAILED))
    return status.astype(jnp.int8)


def simulate(p: Params, pt: Patient, protocol: Protocol, y0, ts,
             s: SolverSettings = SolverSettings(), track_balance: bool = False):
    """Time course of one patient from state ``y0`` at ``ts[0]``, saved at ``ts`` (days).

    Returns ``(ys, status, num_steps)``: ``ys`` of shape ``(time, state)`` in model units (with
    ``track_balance``, four more columns: the cumulative net external gain of Mg, K, Na and ECF
    phosphate in mmol since ``ts[0]``, see :func:`popsim.observables.balance_rates`).
    """
    scale = _scales(p, pt, track_balance)
    vf = _vector_field(p, pt, protocol, scale, track_balance)
    x0 = y0 / scale[: model.N_STATES]
    if track_balance:
        x0 = jnp.concatenate([x0, jnp.zeros(len(BALANCE_OUTPUTS), x0.dtype)])
    sol = _solve(vf, protocol, ts[0], ts[-1], x0, dfx.SaveAt(ts=ts), s)
    assert sol.ys is not None  # saved at ts
    ys = sol.ys * scale
    return ys, _status(sol.result, ys), sol.stats["num_steps"]


def simulate_titrated(p: Params, pt: Patient, protocol: Protocol, y0, ts,
                      s: SolverSettings = SolverSettings(), track_balance: bool = False):
    """:func:`simulate` for an arm with a titrated dose (``protocol.titration``): solved from
    visit to visit in a ``lax.scan`` that carries the state and the patient's dose. At each
    visit the output is computed from the state there, under the dose in force, and the dose
    changes by the titration rule (:meth:`popsim.protocols.Titrated.adjust`); the new dose acts
    from the visit on (a saved time on a visit shows it).

    Returns ``(ys, doses, status, num_steps)``: ``doses`` ``(time,)`` is the titrated dose in
    force at each saved time (config units, per kg if weight-based); ``status`` the first
    failure of the visit intervals.
    """
    tt = protocol.titration
    assert tt is not None, "simulate_titrated needs a protocol with a titrated dose"
    scale = _scales(p, pt, track_balance)
    vf = _vector_field(p, pt, protocol, scale, track_balance)
    x0 = y0 / scale[: model.N_STATES]
    if track_balance:
        x0 = jnp.concatenate([x0, jnp.zeros(len(BALANCE_OUTPUTS), x0.dtype)])
    n = tt.visits.shape[0]
    starts = jnp.concatenate([ts[:1], tt.visits])
    ends = jnp.concatenate([tt.visits, ts[-1:]])

    def interval(carry, span):
        x, dose, status, steps, ys, doses = carry
        t0, t1, last = span
        # every saved time is saved in every interval (clipped into it), then the interval's
        # own are kept: static shapes whatever the visit days and the saved days; the last
        # saved time (the end, after every visit) clipped is t1, the state at the visit
        sol = _solve(vf, protocol, t0, t1, x, dfx.SaveAt(ts=jnp.clip(ts, t0, t1)), s, args=dose)
        assert sol.ys is not None  # saved at ts
        here, x1 = sol.ys * scale, sol.ys[-1]
        mine = (ts >= t0) & ((ts < t1) | last)
        ys = jnp.where(mine[:, None], here, ys)
        doses = jnp.where(mine, dose, doses)
        status = jnp.where(status == Status.OK, _status(sol.result, here), status)
        y1 = x1[: model.N_STATES] * scale[: model.N_STATES]
        value = observables.observe(y1, p, pt, protocol.inputs(t1, pt, dose))[tt.output]
        dose = jnp.where(last, dose, tt.adjust(dose, value))
        return (x1, dose, status, steps + sol.stats["num_steps"], ys, doses), None

    # a carry of fixed dtypes, each depending on the patient's state: under vmap every carry is
    # batched from the start, so the scan's batching rule batches its body once
    like = x0[0]
    init = tuple(jnp.where(jnp.isnan(like), v, v) for v in (
        x0, tt.first_dose.astype(x0.dtype), jnp.int8(Status.OK),
        jnp.zeros((), jnp.result_type(int)), jnp.zeros((ts.shape[0], x0.shape[0]), x0.dtype),
        jnp.zeros(ts.shape, x0.dtype)))
    last = jnp.arange(n + 1) == n
    (_, _, status, steps, ys, doses), _ = jax.lax.scan(interval, init, (starts, ends, last))
    return ys, doses, status, steps


def observe_series(p: Params, pt: Patient, protocol: Protocol, ts, ys, doses=None) -> dict:
    """Every output of :mod:`popsim.observables` along a time course, and the protocol's dose
    outputs (:meth:`popsim.protocols.Protocol.doses`): dict of ``(time,)`` arrays. ``doses``:
    the titrated dose at each saved time (:func:`simulate_titrated`)."""

    def one(t, y, dose=None):
        u = protocol.inputs(t, pt) if dose is None else protocol.inputs(t, pt, dose)
        return {**observables.observe(y, p, pt, u), **protocol.doses(t, pt, dose)}

    if doses is None:
        return jax.vmap(one)(ts, ys[:, : model.N_STATES])
    return jax.vmap(one)(ts, ys[:, : model.N_STATES], doses)


BALANCE_OUTPUTS = ("net_gain_mg", "net_gain_k", "net_gain_na", "net_gain_p")
"""With ``track_balance``: cumulative net external gain since ``ts[0]``, mmol."""
