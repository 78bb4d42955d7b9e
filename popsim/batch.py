"""The one place where a patient axis is added: ``jax.vmap`` over the single-patient numerics of
:mod:`popsim.solve`, and the compiled (``jax.jit``) entry points that runs, validation,
calibration, sensitivity analyses and benchmarks call.

The vmapped functions (:func:`steady_states`, :func:`simulate_observe`) can be used inside a
larger traced computation (a calibration loss); the ``*_jit`` entry points compile once per
shape and return at once (JAX's asynchronous dispatch: no host callbacks, see below), so several
devices' batches run at the same time (:mod:`popsim.devices`).

Equinox's runtime checks inside diffrax (``eqx.error_if``, e.g. on the saved times) compile to
host callbacks unless the documented environment variable ``EQX_ON_ERROR`` is ``nan``; JAX's CPU
client runs a program with a host callback synchronously, which would serialise the devices.
popsim sets ``EQX_ON_ERROR=nan`` when it is imported (unless already set): the checked inputs are
validated at the boundary (config), solves run with ``throw=False``, and a check that fails
anyway gives NaN outputs, i.e. status NONFINITE.

Importing this module turns on the on-disk compile cache (:func:`popsim.compilation.enable`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from popsim import compilation, model, observables, solve
from popsim.facts import Status
from popsim.model import Patient
from popsim.parameters import Params
from popsim.programs import StoredProgram
from popsim.protocols import Protocol
from popsim.solve import BALANCE_OUTPUTS, SolverSettings

compilation.enable()  # the on-disk compile cache, before any program of popsim compiles


def _vmap(fn, *batch):
    """``jax.vmap(fn)(*batch)``; a batch of one patient is solved as two copies of it, because
    XLA compiles a batch of one as scalar code with other roundings: with this, a patient's
    results are the same bits in a batch of any size."""
    if jax.tree.leaves(batch)[0].shape[0] != 1:
        return jax.vmap(fn)(*batch)
    twice = jax.tree.map(lambda x: jnp.concatenate([x, x]), batch)
    return jax.tree.map(lambda x: x[:1], jax.vmap(fn)(*twice))


def steady_states(params: Params, patients: Patient, settings: SolverSettings, y_start=None):
    """Steady states of a batch (leading patient axis on every leaf) by Newton, from
    ``y_start`` (``(patient, state)``; default: each patient's textbook state). Returns
    ``(y0, ok)``. Differentiable (implicit function theorem)."""
    if y_start is None:
        return _vmap(lambda p, pt: solve.steady_state(p, pt, settings), params, patients)
    return _vmap(lambda p, pt, y: solve.steady_state(p, pt, settings, y_start=y), params,
                 patients, y_start)


def steady_states_fallback(params: Params, patients: Patient, settings: SolverSettings):
    """Pseudo-transient continuation then Newton for a batch (slow; for Newton's failures)."""
    return _vmap(lambda p, pt: solve.steady_state_fallback(p, pt, settings), params, patients)


def simulate_observe(params: Params, patients: Patient, protocol: Protocol, y0, ts,
                     settings: SolverSettings, track_balance: bool = False):
    """Simulate and observe a batch under one protocol (solve and outputs together).

    Returns ``(outputs, status, num_steps)``: outputs a dict of ``(patient, time)`` arrays (the
    protocol's dose outputs among them; with ``track_balance`` also
    :data:`popsim.solve.BALANCE_OUTPUTS`). An arm with a titrated dose is solved from visit to
    visit (:func:`popsim.solve.simulate_titrated`)."""
    def one(p, pt, y):
        if protocol.titration is None:
            doses = None
            ys, status, steps = solve.simulate(p, pt, protocol, y, ts, settings, track_balance)
        else:
            ys, doses, status, steps = solve.simulate_titrated(p, pt, protocol, y, ts, settings,
                                                               track_balance)
        out = solve.observe_series(p, pt, protocol, ts, ys, doses)
        if track_balance:
            for j, name in enumerate(BALANCE_OUTPUTS):
                out[name] = ys[:, model.N_STATES + j]
        return out, status, steps

    return _vmap(one, params, patients, y0)


LANE_GROUP_CPU = 128
"""Lanes per group of a compiled time course on CPU, at most
(:func:`simulate_observe_in_groups`)."""

LANE_ALIGN = 16
"""Every group's width is a multiple of this: XLA's CPU code runs the lanes of a batch in vector
instructions of up to 16 numbers (float32 in AVX-512) and the last few of a width that is not
a multiple, the tail, in scalar code whose transcendental functions can round differently, so
that a patient's last bits would depend on its place in the batch."""


def lane_groups(n: int, backend: str) -> tuple[int, int]:
    """``(groups, lanes per group)`` for a batch of ``n`` lanes: on CPU as few groups as keep
    each at most :data:`LANE_GROUP_CPU` lanes wide; on an accelerator two groups, as wide as it
    needs. Widths are rounded up to a multiple of :data:`LANE_ALIGN` (padding lanes), and there
    are never fewer than two groups: XLA compiles a loop of one iteration as straight-line
    code, with other roundings."""
    groups = 2 if backend != "cpu" else max(2, -(-n // LANE_GROUP_CPU))
    width = -(-n // groups)
    return groups, -(-width // LANE_ALIGN) * LANE_ALIGN


def simulate_observe_in_groups(params: Params, patients: Patient, protocol: Protocol, y0, ts,
                               settings: SolverSettings, track_balance: bool = False):
    """:func:`simulate_observe` of a batch solved in groups of lanes, one group after another
    (``jax.lax.map``), then put back in order; the compiled time course of runs, trials and
    benchmarks.

    A vmapped solve steps every lane until the slowest lane of its batch has finished and keeps
    every lane's working set (Jacobian, LU, stages, saved outputs) live at each step. On CPU
    the time course of a large batch is faster in groups of ~100 lanes (:func:`lane_groups`;
    benchmarks/RESULTS.md, "Lane groups"). A patient's numbers do not depend on the size of its
    group or batch: every operation of a lane is elementwise across lanes (no reduction over
    the batch), and every batch, of one group or many, is solved through the same
    ``lax.map`` in groups whose widths have no vector tail (:data:`LANE_ALIGN`). A padded
    batch repeats its last lane, whose copies are dropped."""
    n = y0.shape[0]
    groups, size = lane_groups(n, jax.default_backend())
    pad = groups * size - n

    def split(x):
        if pad:
            x = jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)])
        return x.reshape(groups, size, *x.shape[1:])

    def one_group(part):
        p, pt, y = part
        return simulate_observe(p, pt, protocol, y, ts, settings, track_balance)

    out = jax.lax.map(one_group, jax.tree.map(split, (params, patients, y0)))
    return jax.tree.map(lambda x: x.reshape(groups * size, *x.shape[2:])[:n], out)


def observe_baseline(params: Params, patients: Patient, y) -> dict:
    """Every output of a batch at states ``y`` under the patients' baseline inputs (e.g. at
    their steady states): dict of ``(patient,)`` arrays."""
    return _vmap(lambda p, pt, yy: observables.observe(yy, p, pt, model.baseline_inputs(pt)),
                 params, patients, y)


def simulate_observe_lanes(params: Params, patients: Patient, protocols: Protocol, y0, ts,
                           settings: SolverSettings):
    """:func:`simulate_observe` with a protocol and saved times per lane: ``protocols`` and
    ``ts`` carry the batch axis too (every lane its own arm and days; a calibration solves the
    arms of many studies in one batch). Returns ``(outputs, status, num_steps)``."""
    def one(p, pt, prot, y, t):
        ys, status, steps = solve.simulate(p, pt, prot, y, t, settings)
        return solve.observe_series(p, pt, prot, t, ys), status, steps

    return _vmap(one, params, patients, protocols, y0, ts)


def observe_lanes(params: Params, patients: Patient, protocols: Protocol, y, t) -> dict:
    """Every output of a batch at states ``y`` under each lane's protocol inputs at time ``t``
    (days; e.g. at the steady state, when an arm's interventions start at day 0)."""
    return _vmap(lambda p, pt, prot, yy: observables.observe(yy, p, pt, prot.inputs(t, pt)),
                 params, patients, protocols, y)


FALLBACK_COMPILER_OPTIONS: dict[str, object] = {"xla_backend_optimization_level": 0}


# --- compiled entry points (jax.jit: they return at once) ---------------------------------
# jax.jit, not eqx.filter_jit: a top-level eqx.filter_jit call waits for its result (Equinox
# blocks to turn runtime errors into readable ones), which would serialise the devices. The
# three large programs keep their traced form on disk (popsim.programs): a warm start neither
# traces nor compiles them.

steady_states_jit = StoredProgram(steady_states, static_argnames=("settings",))
# The fallback runs for ~0.6% of patients, so its code is optimised less (LLVM -O0): that
# saves compile time (docs/DESIGN.md, Compile cache) where run time does not matter.
steady_states_fallback_jit = StoredProgram(steady_states_fallback, static_argnames=("settings",),
                                           compiler_options=FALLBACK_COMPILER_OPTIONS)
simulate_observe_jit = StoredProgram(simulate_observe_in_groups,
                                     static_argnames=("settings", "track_balance"))
observe_baseline_jit = jax.jit(observe_baseline)


@jax.jit
def failed_as_nan(outputs: dict, status):
    """Outputs of patients not solved (``status != OK``) replaced by NaN: a failed patient's
    numbers are never plausible-looking values."""
    bad = (status != Status.OK)[:, None]
    return {k: jnp.where(bad, jnp.nan, v) for k, v in outputs.items()}


def arms(params: Params, patients: Patient, y0, ok, protocols: list[Protocol], ts,
         settings: SolverSettings, track_balance: bool = False):
    """Every arm's time course of one batch from its steady states ``y0`` (dispatched, not
    waited for). Returns ``(outputs, status)``: a dict of ``(arm, patient, time)`` arrays and
    ``(arm, patient)`` codes; a patient without a steady state (``~ok``) has status
    STEADY_STATE_FAILED, and every failed patient's outputs are NaN."""
    results = [simulate_observe_jit(params, patients, prot, y0, ts, settings, track_balance)
               for prot in protocols]
    return _arm_results([r[0] for r in results], [r[1] for r in results], ok)


@jax.jit
def _arm_results(outputs: list[dict], statuses: list, ok):
    """The arms' outputs stacked ``(arm, patient, time)``, with NaN and status
    STEADY_STATE_FAILED for patients without a steady state, in one compiled program whose call
    returns at once. Eager ``jnp.stack`` on an output still being computed waits for it, which
    would keep the next device's solve from starting until this one's ends (docs/DESIGN.md,
    "Large runs")."""
    statuses = [jnp.where(ok, s, Status.STEADY_STATE_FAILED) for s in statuses]
    outputs = [failed_as_nan(o, s) for o, s in zip(outputs, statuses, strict=True)]
    return ({k: jnp.stack([o[k] for o in outputs]) for k in outputs[0]},
            jnp.stack(statuses).astype(jnp.int8))


@jax.jit
def reference_if_failed(y0, ok, params, patients):
    """``y0`` with the textbook state of patients without a steady state, whose (discarded) time
    course then cannot hold up the rest of the batch."""
    return jnp.where(ok[:, None], y0, jax.vmap(model.reference_state)(params, patients))
