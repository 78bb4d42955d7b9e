"""The dense linear solver of every popsim program: LU without LAPACK.

:class:`SmallLU` is a lineax solver (:class:`lineax.AbstractLinearSolver`) that factorises a small
dense square matrix by LU with partial pivoting written out in array operations, and solves with
it by forward and back substitution (also transposed). popsim uses it wherever it solves a linear
system: the Rosenbrock time course (:mod:`popsim.rosenbrock`, one factorisation per step), the
steady-state Newton (optimistix) and the implicit stages of the steady-state fallback (diffrax).

Why not lineax's ``LU``: that calls LAPACK (``getrf``/``trsm`` custom calls). Under ``vmap`` it
becomes jaxlib's batched LAPACK kernel, which splits the batch into tasks on XLA's CPU thread pool
and blocks its own pool thread until they are done. Two such kernels running at once (two host
devices, or two independent batches on one device) leave every pool thread waiting for tasks none
can run: a deadlock of XLA's CPU thread pool (``docs/DESIGN.md``, Solver). :class:`SmallLU` is
plain elementwise XLA: under ``vmap`` each of its operations is one vector instruction over the
batch, it never waits on the thread pool, and a patient's arithmetic does not depend on the size
of the batch it is solved in.

It unrolls the elimination into ``O(n^3)`` operations at trace time, so it is meant for the small
systems of this model (16 unknowns, 20 with the mass-balance columns).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx


def _factor(M):
    """LU with partial pivoting of a small dense matrix by unrolled row operations.

    Returns ``(LU, perm)`` with ``LU`` packed as LAPACK's (unit lower triangle below the
    diagonal, upper triangle on and above it) and ``perm`` such that ``M[perm] = L U``."""
    n = M.shape[0]
    A = M
    perm = jnp.arange(n)
    for k in range(n - 1):
        col = jnp.abs(A[k:, k])
        p = k + jnp.argmax(col)
        # swap rows k and p
        rk, rp = A[k], A[p]
        A = A.at[k].set(rp).at[p].set(rk)
        ik, ip = perm[k], perm[p]
        perm = perm.at[k].set(ip).at[p].set(ik)
        piv = A[k, k]
        lcol = A[k + 1:, k] / piv
        A = A.at[k + 1:, k + 1:].add(-lcol[:, None] * A[k, k + 1:][None, :])
        A = A.at[k + 1:, k].set(lcol)
    return A, perm


def _solve(fac, r):
    """Solve ``M x = r`` from :func:`_factor`'s ``M[perm] = L U``: ``L z = r[perm]`` (forward,
    unit diagonal), ``U x = z`` (backward), column by column: once ``x_j`` is final, it is
    eliminated from every later row in one vector operation. Each ``x_i`` accumulates
    ``r_i - A_i0 x_0 - A_i1 x_1 - ...`` in the same order as the textbook row-by-row loop, with
    ``O(n)`` traced operations instead of ``O(n^2)``."""
    A, perm = fac
    n = A.shape[0]
    x = r[perm]
    for j in range(n - 1):  # forward: unit lower
        x = x.at[j + 1:].set(x[j + 1:] - A[j + 1:, j] * x[j])
    for j in range(n - 1, -1, -1):  # backward: upper
        x = x.at[j].set(x[j] / A[j, j])
        if j:
            x = x.at[:j].set(x[:j] - A[:j, j] * x[j])
    return x


def _solve_transposed(fac, r):
    """Solve ``M^T x = r`` from :func:`_factor`'s ``M[perm] = L U``: ``U^T z = r`` (forward),
    ``L^T w = z`` (backward, unit diagonal), ``x[perm] = w``; column by column as
    :func:`_solve`."""
    A, perm = fac
    n = A.shape[0]
    z = r
    for j in range(n):  # forward: U^T is lower triangular
        z = z.at[j].set(z[j] / A[j, j])
        if j < n - 1:
            z = z.at[j + 1:].set(z[j + 1:] - A[j, j + 1:] * z[j])
    for j in range(n - 1, 0, -1):  # backward: L^T is unit upper triangular
        z = z.at[:j].set(z[:j] - A[j, :j] * z[j])
    return jnp.zeros_like(r).at[perm].set(z)


class _SmallLUState(eqx.Module):
    lu: jax.Array
    perm: jax.Array
    transposed: bool = eqx.field(static=True)


class SmallLU(lx.AbstractLinearSolver):
    """LU with partial pivoting of a small dense square operator, in array operations, without
    LAPACK (see the module docstring for why); for vectors (1-D arrays).

    ``init`` factorises once; ``compute`` then solves for one right-hand side, ``M x = b`` or,
    after ``transpose``, ``M^T x = b`` (the implicit-function-theorem gradient of the steady
    state needs the transposed solve). The factorisation is exact up to rounding for any
    nonsingular matrix; a singular one gives non-finite solutions, which the callers treat as a
    failed step or a failed Newton iteration.
    """

    def init(self, operator, options):
        del options
        if operator.in_size() != operator.out_size():
            raise ValueError("SmallLU needs a square operator")
        lu, perm = _factor(operator.as_matrix())
        return _SmallLUState(lu, perm, False)

    def compute(self, state, vector, options):
        del options
        solve = _solve_transposed if state.transposed else _solve
        return solve((state.lu, state.perm), vector), lx.RESULTS.successful, {}

    def transpose(self, state, options):
        del options
        return _SmallLUState(state.lu, state.perm, not state.transposed), {}

    def conj(self, state, options):
        del options
        return _SmallLUState(state.lu.conj(), state.perm, state.transposed), {}

    def assume_full_rank(self):
        return True
