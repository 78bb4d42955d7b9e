"""The compiled functions of one evidence problem: objective, gradient, optimiser step,
Hessian and report, each compiled once per problem shape, and the robust warm start.

Gradient modes: ``reverse`` (``jax.value_and_grad``; diffrax recursive checkpointing) and
``forward`` (``jax.jacfwd``; diffrax ``ForwardMode``, cheaper with a handful of parameters).
The Hessian is central differences of the JAX gradient (no extra compiled program) or, on
request, forward over forward (``jacfwd(jacfwd)``) on a copy of the problem solved in forward
mode, exact whatever the gradient mode.
"""

from __future__ import annotations

import copy
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from popsim import devices
from popsim.calibration import forward as fw
from popsim.calibration.problem import Problem

HESSIAN_STEP = 5e-3
"""Step of the central differences of the gradient in the transformed coordinates (whose
scale is 1: the logit of the position between the bounds)."""
HESSIANS = ("differences", "exact")


def _value_and_grad(problem: Problem):
    """``(data, u, y) -> ((nll, aux), grad)`` in the problem's gradient mode."""
    if problem.settings.adjoint == "forward":
        def vg(data, u, y):
            def f(v):
                val, aux = fw.nll(problem, data, v, y)
                return val, (val, aux)

            grad, (val, aux) = jax.jacfwd(f, has_aux=True)(u)
            return (val, aux), grad

        return vg
    return lambda data, u, y: jax.value_and_grad(
        lambda v: fw.nll(problem, data, v, y), has_aux=True)(u)


def make_optimizer(name: str, learning_rate: float):
    """L-BFGS (its own line search), or adam with its learning rate in the optimiser state, so
    that a step can be retried shorter without compiling again (:func:`shorter`)."""
    if name == "lbfgs":
        return optax.lbfgs()
    return optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)


def shorter(state, factor: float = 0.5):
    """``state`` with its learning rate times ``factor``, or ``None`` for an optimiser without
    one in its state (L-BFGS)."""
    hyper = getattr(state, "hyperparams", None)
    if not isinstance(hyper, dict) or "learning_rate" not in hyper:
        return None
    return state._replace(hyperparams={**hyper,
                                       "learning_rate": hyper["learning_rate"] * factor})


class Engine:
    """A problem, its data on the device, and its compiled functions."""

    def __init__(self, problem: Problem, optimizer: str = "adam", learning_rate: float = 0.1):
        self.problem = problem
        self.data = fw.arrays(problem)
        self.optimizer_name = optimizer
        self.opt = make_optimizer(optimizer, learning_rate)
        vg = _value_and_grad(problem)
        self._inputs = jax.jit(lambda d, u: fw.patient_inputs(problem, d, u))
        self._nll = jax.jit(lambda d, u, y: fw.nll(problem, d, u, y))
        self._vg = jax.jit(vg)
        self._report = jax.jit(lambda d, u, y: fw.report(problem, d, u, y))
        self._step = jax.jit(self._make_step(vg))
        self._hessian = None

    def _make_step(self, vg):
        opt, problem = self.opt, self.problem

        def step(data, u, state, y, free):
            (val, aux), grad = vg(data, u, y)
            bad = jnp.sum(~jnp.isfinite(grad) & (free > 0))
            grad = jnp.where(jnp.isfinite(grad), grad, 0.0) * free
            if self.optimizer_name == "lbfgs":
                fn = lambda v: fw.nll(problem, data, v, y)[0]  # noqa: E731
                updates, state = opt.update(grad, state, u, value=val, grad=grad, value_fn=fn)
            else:
                updates, state = opt.update(grad, state, u)
            new = optax.apply_updates(u, updates * free)
            return new, state, val, aux, grad, bad

        return step

    def with_observations(self, problem: Problem) -> Engine:
        """This engine's compiled functions on ``problem``: the same studies, patients and
        observations with other reported values or standard errors (the values are data, not
        part of the compiled programs). Raises ``ValueError`` for a problem of another
        structure."""
        def shape(p: Problem):
            return (p.names, p.n_patients, [(s.key, s.fitted, s.likelihood) for s in p.obs],
                    [(b.sid, b.n, b.arms, b.dynamic) for b in p.blocks])

        if shape(problem) != shape(self.problem):
            raise ValueError("with_observations: the problem differs in more than its "
                             "observed values")
        new = copy.copy(self)
        new.problem, new.data = problem, fw.arrays(problem)
        return new

    def warm_start(self, u) -> jax.Array:
        """Steady states at ``u`` found robustly (:func:`popsim.devices.fit_steady_states`:
        Newton, then a capped pseudo-transient continuation, outside the compiled step), the
        reference state where none is found; unsolved patients are masked as failed."""
        with jax.enable_x64(True):
            per, pts = self._inputs(self.data, jnp.asarray(u, jnp.float64))
        return devices.fit_steady_states(per, pts, self.problem.settings)[0]

    def init(self, u):
        return self.opt.init(jnp.asarray(u, jnp.float64))

    def shorter(self, state):
        """The optimiser state with half its learning rate (``None``: the optimiser has none)."""
        return shorter(state)

    def step(self, u, state, y, free):
        """One optimiser step: ``(new u, state, NLL at u, (per study, failed, warm), grad,
        number of free coordinates whose gradient was not finite)``. Non-finite components of
        the gradient are set to 0 for the update; the count lets the caller stop and say so
        rather than stand still."""
        with jax.enable_x64(True):
            return self._step(self.data, u, state, y, free)

    def value(self, u, y):
        with jax.enable_x64(True):
            return self._nll(self.data, jnp.asarray(u, jnp.float64), y)

    def value_and_grad(self, u, y):
        with jax.enable_x64(True):
            return self._vg(self.data, jnp.asarray(u, jnp.float64), y)

    def report(self, u, y):
        """``(values, Monte-Carlo SEs, patients counted, NLL terms)`` of every observation."""
        with jax.enable_x64(True):
            out = self._report(self.data, jnp.asarray(u, jnp.float64), y)
        return tuple(np.asarray(x) for x in out)

    def gradient(self, u, y) -> np.ndarray:
        """The NLL's gradient at ``u``, from the compiled optimiser step (no other program)."""
        u = jnp.asarray(u, jnp.float64)
        with jax.enable_x64(True):
            *_, grad, bad = self.step(u, self.init(u), y, jnp.ones_like(u))
        if int(bad):
            raise FloatingPointError(f"the NLL's gradient is not finite in {int(bad)} of "
                                     f"{u.size} coordinates at this point")
        return np.asarray(grad)

    def hessian(self, u, y, method: str = "differences") -> np.ndarray:
        """The Hessian of the NLL in the transformed coordinates. ``"differences"``: central
        differences (step :data:`HESSIAN_STEP`) of the JAX gradient, 2 x parameters gradient
        evaluations of the already compiled step; ``"exact"``: forward over forward
        (``jacfwd(jacfwd)``) on the problem solved in forward mode, one more compiled program
        (long to compile for time courses)."""
        if method == "differences":
            u = np.asarray(u, float)
            cols = []
            for j in range(len(u)):
                e = np.zeros_like(u)
                e[j] = HESSIAN_STEP
                cols.append((self.gradient(u + e, y) - self.gradient(u - e, y))
                            / (2 * HESSIAN_STEP))
            h = np.stack(cols, axis=1)
            return 0.5 * (h + h.T)
        if self._hessian is None:
            fwd = dataclasses.replace(self.problem, settings=dataclasses.replace(
                self.problem.settings, adjoint="forward"))
            self._hessian = jax.jit(lambda d, u, y: jax.jacfwd(jax.jacfwd(
                lambda v: fw.nll(fwd, d, v, y)[0]))(u))
        with jax.enable_x64(True):
            h = np.asarray(self._hessian(self.data, jnp.asarray(u, jnp.float64), y))
        if not np.all(np.isfinite(h)):
            raise FloatingPointError("the NLL's Hessian is not finite at this point")
        return h
