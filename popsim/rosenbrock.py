"""Rosenbrock (linearly implicit) Runge-Kutta solvers for diffrax.

A Rosenbrock step solves ``s`` linear systems with one matrix ``I - h*gamma*J`` (``J`` the
Jacobian of the vector field at the start of the step): one Jacobian (``jax.linearize`` plus one
jvp per state), one factorisation and ``s`` right-hand sides per step, and no Newton iterations.
On small stiff systems such as one patient of :mod:`popsim.model` (10 states) a step is much
cheaper than one of an ESDIRK method whose stages are solved by Newton, and, batched with
``jax.vmap``, it has no inner while loops whose iteration count is set by the slowest patient.

Stage equations (Hairer & Wanner 1996, section IV.7, transformed variables ``k_i``)::

    (I/(h*gamma) - J) k_i = f(t0 + c_i*h, y0 + sum_j a_ij k_j) + sum_j (C_ij/h) k_j
                            + d_i * h * df/dt
    y1 = y0 + sum_i b_sol_i k_i,   error estimate = sum_i b_error_i k_i

The step multiplies through by ``h*gamma`` and solves ``(I - h*gamma*J) k_i = r_i`` with the
solver's ``linear_solver``: by default :class:`popsim.linear.SmallLU`, the LU without LAPACK that
every popsim program uses; any lineax solver for square operators works (e.g. ``lineax.LU()``).
The dense output is the method's own continuous extension
``y(theta) = (1-theta) y0 + theta (y1 + (1-theta)(q_1 + theta (q_2 + theta q_3)))`` with
``q = H k`` when the tableau has one (``H``), and otherwise cubic Hermite interpolation from the
vector field at both ends of the step.

Methods (coefficients as published, transcribed from the papers' tables as reproduced in
Hairer's RODAS code and in OrdinaryDiffEq.jl's Rosenbrock tableaus; ``tests/test_solve.py``
checks their orders of convergence): :class:`Rodas4`, :class:`Rodas4P`, :class:`Rodas5P` (the
default of :mod:`popsim.solve`) and :class:`Ros3P`.

The right-hand side's explicit time dependence enters through ``d_i * h * df/dt`` (one more jvp
per step). In :mod:`popsim` the vector field depends on time only through piecewise-constant
protocol inputs (``df/dt = 0`` inside every step, as the step-size controller stops at each
breakpoint), so popsim sets ``time_derivative=False``; keep the default ``True`` for vector
fields that vary smoothly in time.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, final

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from equinox import AbstractClassVar
from jax.flatten_util import ravel_pytree

from popsim.linear import SmallLU


@dataclass(frozen=True, eq=False)
class RosenbrockTableau:
    """Coefficients of an ``s``-stage Rosenbrock method in the transformed form of the module
    docstring (NumPy arrays; read at trace time, so they are constants of the compiled step).

    Checked on construction: every array has ``s = len(c)`` stages, ``a`` and ``C`` are strictly
    lower triangular, the first stage is at ``t0`` (``c_1 = 0``) and ``d_1 = gamma``, as the
    transformed form of any Rosenbrock method has.
    """

    gamma: float  # diagonal of the method: the matrix of every stage is I - h*gamma*J
    a: np.ndarray  # (s, s) strictly lower: stage arguments
    C: np.ndarray  # (s, s) strictly lower: coupling, divided by h
    c: np.ndarray  # (s,) stage times
    d: np.ndarray  # (s,) weights of h * df/dt
    b_sol: np.ndarray  # (s,) solution weights
    b_error: np.ndarray  # (s,) error weights
    H: np.ndarray | None  # (q, s) dense output, or None: cubic Hermite
    order: int  # of the solution (the error estimate is one order lower)
    num_stages: int = field(init=False)
    stiffly_accurate: bool = field(init=False)  # y1 is the last stage's argument plus k_s

    def __post_init__(self):
        s = len(self.c)
        problems = []
        # numpy's isscalar (a TypeIs) narrows the float to complex | str | ..., which have no >
        if not (np.isscalar(self.gamma) and self.gamma > 0):  # pyright: ignore[reportOperatorIssue]
            problems.append(f"gamma {self.gamma!r} is not a positive number")
        if np.shape(self.c) != (s,) or s < 1:
            problems.append(f"c has shape {np.shape(self.c)}, not (s,) with s >= 1")
        for name in ("a", "C"):
            m = getattr(self, name)
            if np.shape(m) != (s, s):
                problems.append(f"{name} has shape {np.shape(m)}, not {(s, s)}")
            elif np.any(np.triu(m) != 0):
                problems.append(f"{name} is not strictly lower triangular")
        for name in ("d", "b_sol", "b_error"):
            if np.shape(getattr(self, name)) != (s,):
                problems.append(f"{name} has shape {np.shape(getattr(self, name))}, not {(s,)}")
        if self.H is not None and (np.ndim(self.H) != 2 or np.shape(self.H)[1] != s):
            problems.append(f"H has shape {np.shape(self.H)}, not (q, {s})")
        if not problems and (self.c[0] != 0 or not np.isclose(self.d[0], self.gamma)):
            problems.append("the first stage is not at t0 with d_1 = gamma")
        if not (isinstance(self.order, int) and self.order >= 1):
            problems.append(f"order {self.order!r} is not a positive integer")
        if problems:
            raise ValueError("Rosenbrock tableau: " + "; ".join(problems))
        object.__setattr__(self, "num_stages", s)
        object.__setattr__(self, "stiffly_accurate", bool(
            self.c[-1] == 1 and self.b_sol[-1] == 1
            and np.array_equal(self.b_sol[:-1], self.a[-1, :-1])))


def _lower(rows, s):
    out = np.zeros((s, s))
    for i, row in enumerate(rows, start=1):
        out[i, : len(row)] = row
    return out


def _rodas(gamma, a_rows, C_rows, c, d, H, order):
    """A tableau of the RODAS family: the last stages are evaluated at ``t0 + h`` with arguments
    ``u_{i+1} = u_i + k_i`` (``a_rows`` lists the stages with their own argument), the solution
    is ``u_s + k_s`` (stiffly accurate) and the error estimate is ``k_s``."""
    s = len(C_rows) + 1
    a = _lower(a_rows, s)
    n_own = len(a_rows) + 1  # stages with their own argument (the first one is y0)
    for i in range(n_own, s):  # u_i = u_{i-1} + k_{i-1}
        a[i, : i - 1] = a[i - 1, : i - 1]
        a[i, i - 1] = 1.0
    b_sol = a[s - 1].copy()
    b_sol[s - 1] = 1.0
    b_error = np.zeros(s)
    b_error[s - 1] = 1.0
    c_full = np.ones(s)
    c_full[: len(c)] = c
    d_full = np.zeros(s)
    d_full[: len(d)] = d
    return RosenbrockTableau(gamma=float(gamma), a=a, C=_lower(C_rows, s), c=c_full, d=d_full,
                             b_sol=b_sol, b_error=b_error,
                             H=None if H is None else np.asarray(H, float), order=order)


# Hairer & Wanner (1996), RODAS coefficient set 1.
RODAS4 = _rodas(
    0.25,
    a_rows=[[1.544],
            [0.9466785280815826, 0.2557011698983284],
            [3.314825187068521, 2.896124015972201, 0.9986419139977817],
            [1.221224509226641, 6.019134481288629, 12.53708332932087, -0.6878860361058950]],
    C_rows=[[-5.6688],
            [-2.430093356833875, -0.2063599157091915],
            [-0.1073529058151375, -9.594562251023355, -20.47028614809616],
            [7.496443313967647, -10.24680431464352, -33.99990352819905, 11.70890893206160],
            [8.083246795921522, -7.981132988064893, -31.52159432874371, 16.31930543123136,
             -6.058818238834054]],
    c=[0.0, 0.386, 0.21, 0.63],
    d=[0.25, -0.1043, 0.1035, -0.03620000000000023],
    H=[[10.12623508344586, -7.487995877610167, -34.80091861555747, -7.992771707568823,
        1.025137723295662, 0.0],
       [-0.6762803392801253, 6.087714651680015, 16.43084320892478, 24.76722511418386,
        -6.594389125716872, 0.0]],
    order=4)

# Steinebach (1995).
RODAS4P = _rodas(
    0.25,
    a_rows=[[3.0],
            [1.831036793486759, 0.4955183967433795],
            [2.304376582692669, -0.05249275245743001, -1.176798761832782],
            [-7.170454962423024, -4.741636671481785, -16.31002631330971, -1.062004044111401]],
    C_rows=[[-12.0],
            [-8.791795173947035, -2.207865586973518],
            [10.81793056857153, 6.780270611428266, 19.53485944642410],
            [34.19095006749676, 15.49671153725963, 54.74760875964130, 14.16005392148534],
            [34.62605830930532, 15.30084976114473, 56.99955578662667, 18.40807009793095,
             -5.714285714285717]],
    c=[0.0, 0.75, 0.21, 0.63],
    d=[0.25, -0.5, -0.023504, -0.0362],
    H=[[25.09876703708589, 11.62013104361867, 28.49148307714626, -5.664021568594133, 0.0, 0.0],
       [1.638054557396973, -0.7373619806678748, 8.477918219238990, 15.99253148779520,
        -1.882352941176471, 0.0]],
    order=4)

# Steinebach (2023).
RODAS5P = _rodas(
    0.21193756319429014,
    a_rows=[[3.0],
            [2.849394379747939, 0.45842242204463923],
            [-6.954028509809101, 2.489845061869568, -10.358996098473584],
            [2.8029986275628964, 0.5072464736228206, -0.3988312541770524, -0.04721187230404641],
            [-7.502846399306121, 2.561846144803919, -11.627539656261098, -0.18268767659942256,
             0.030198172008377946]],
    C_rows=[[-14.155112264123755],
            [-17.97296035885952, -2.859693295451294],
            [147.12150275711716, -1.41221402718213, 71.68940251302358],
            [165.43517024871676, -0.4592823456491126, 42.90938336958603, -5.961986721573306],
            [24.854864614690072, -3.0009227002832186, 47.4931110020768, 5.5814197821558125,
             -0.6610691825249471],
            [30.91273214028599, -3.1208243349937974, 77.79954646070892, 34.28646028294783,
             -19.097331116725623, -28.087943162872662],
            [37.80277123390563, -3.2571969029072276, 112.26918849496327, 66.9347231244047,
             -40.06618937091002, -54.66780262877968, -9.48861652309627]],
    c=[0.0, 0.6358126895828704, 0.4095798393397535, 0.9769306725060716, 0.4288403609558664],
    d=[0.21193756319429014, -0.42387512638858027, -0.3384627126235924, 1.8046452872882734,
       2.325825639765069],
    H=[[25.948786856663858, -2.5579724845846235, 10.433815404888879, -2.3679251022685204,
        0.524948541321073, 1.1241088310450404, 0.4272876194431874, -0.17202221070155493],
       [-9.91568850695171, -0.9689944594115154, 3.0438037242978453, -24.495224566215796,
        20.176138334709044, 15.98066361424651, -6.789040303419874, -6.710236069923372],
       [11.419903575922262, 2.8879645146136994, 72.92137995996029, 80.12511834622643,
        -52.072871366152654, -59.78993625266729, -0.15582684282751913, 4.883087185713722]],
    order=5)


def _ros3p():
    """Lang & Verwer (2001), in the transformed form."""
    g = 0.5 + np.sqrt(3.0) / 6.0
    ig = 1.0 / g
    a = _lower([[ig], [ig, 0.0]], 3)
    t = -ig * (2.0 - 0.5 * ig)
    C = _lower([[-ig**2], [-ig * (1.0 - t), t]], 3)
    t = ig * (2.0 / 3.0 - ig / 6.0)
    b_sol = np.array([ig * (1.0 + t), t, ig / 3.0])
    b_hat = np.array([2.113248654051871, 1.0, 0.4226497308103742])  # embedded, order 2
    return RosenbrockTableau(gamma=g, a=a, C=C, c=np.array([0.0, 1.0, 1.0]),
                             d=np.array([0.7886751345948129, -0.2113248654051871,
                                         -1.077350269189626]),
                             b_sol=b_sol, b_error=b_sol - b_hat, H=None, order=3)


ROS3P = _ros3p()


class RosenbrockInterpolation(dfx.AbstractLocalInterpolation):
    """The Rodas continuous extension on ``[t0, t1]``:
    ``(1-θ) y0 + θ (y1 + (1-θ)(q_1 + θ (q_2 + θ q_3 ...)))`` with ``q = H k``."""

    t0: float | jax.Array  # the step's start and end (diffrax's RealScalarLike)
    t1: float | jax.Array
    y0: object
    y1: object
    q: object  # leaves of shape (n_coeffs, *leaf.shape)

    def evaluate(self, t0, t1=None, left=True):
        del left
        if t1 is not None:
            return jax.tree.map(lambda a, b: a - b, self.evaluate(t1), self.evaluate(t0))
        dt = self.t1 - self.t0
        th = jnp.where(dt > 0, (t0 - self.t0) / jnp.where(dt > 0, dt, 1), 0)

        def one(y0, y1, q):
            th_ = th.astype(y0.dtype)
            acc = q[-1]
            for i in range(q.shape[0] - 2, -1, -1):
                acc = q[i] + th_ * acc
            return (1 - th_) * y0 + th_ * (y1 + (1 - th_) * acc)

        return jax.tree.map(one, self.y0, self.y1, self.q)


def _combine(weights, vectors):
    """``sum_j weights[j] * vectors[j]`` over the nonzero weights, as elementwise operations
    (no dot products: the result of each patient does not depend on the batch it is in)."""
    acc = None
    for w, v in zip(weights, vectors, strict=False):
        if w != 0:
            acc = float(w) * v if acc is None else acc + float(w) * v
    return jnp.zeros_like(vectors[0]) if acc is None else acc


def _combine_rows(weights, rows):
    """``sum_j weights[j] * rows[j]`` for traced ``weights`` ``(s,)`` and ``rows`` ``(s, n)``,
    term by term in ``j`` order (as :func:`_combine`; a zero weight adds an exact zero)."""
    acc = weights[0] * rows[0]
    for j in range(1, rows.shape[0]):
        acc = acc + weights[j] * rows[j]
    return acc



def _stages(tab: RosenbrockTableau, f, linear_solver, lin_state, x0, t0, t1, h, hg, f0, ft):
    """The stage vectors ``k_1..k_s`` of one step (a list) and whether every linear solve
    succeeded. Stage 1 is computed here, stages 2..s in one ``fori_loop`` body (traced once: the
    program holds one copy of the vector field and the solve, not ``s``); each stage's arguments
    sum over every earlier stage in the order of :func:`_combine`, the later (still zero) rows
    adding exact zeros, so the arithmetic is that of the stages written out one by one."""
    dtype, n = x0.dtype, x0.shape[0]
    r0 = hg * f0 if ft is None else hg * f0 + (hg * h * tab.d[0]) * ft
    k0, result0, _ = linear_solver.compute(lin_state, r0, {})
    a = jnp.asarray(tab.a, dtype)
    gc = jnp.asarray(tab.gamma * tab.C, dtype)
    c = jnp.asarray(tab.c, dtype)
    dh = jnp.asarray(tab.d, dtype)

    def stage(i, carry):
        ks, ok = carry
        fi = f(t0 + c[i] * (t1 - t0), x0 + _combine_rows(a[i], ks))
        r = hg * fi + _combine_rows(gc[i], ks)
        if ft is not None:
            r = r + (hg * h * dh[i]) * ft
        k, result, _ = linear_solver.compute(lin_state, r, {})
        return ks.at[i].set(k.astype(ks.dtype)), ok & (result == lx.RESULTS.successful)

    ks0 = jnp.zeros((tab.num_stages, n), dtype).at[0].set(k0.astype(dtype))
    ks, ok = jax.lax.fori_loop(1, tab.num_stages, stage,
                               (ks0, result0 == lx.RESULTS.successful))
    return [ks[i] for i in range(tab.num_stages)], ok


class AbstractRosenbrock(dfx.AbstractAdaptiveSolver):
    """A Rosenbrock method with the tableau ``tableau`` (see the module docstring), for ODEs
    (``diffrax.ODETerm``; diffeqsolve rejects other terms) solved forward in time (a backwards
    solve, ``t1 < t0``, is not supported: its steps give NaN).

    This class owns every method; a final subclass sets ``tableau`` and nothing else.

    **Arguments:**

    - ``time_derivative``: include the ``d_i h df/dt`` terms (one more jvp per step). Needed for
      the method's order when the vector field varies smoothly with ``t``; not when it depends
      on ``t`` only through inputs that are constant within each step.
    - ``linear_solver``: the lineax solver of the step's linear systems (one ``init`` per step,
      one ``compute`` per stage), as diffrax's implicit solvers take a root finder. Default
      :class:`popsim.linear.SmallLU`.
    """

    tableau: AbstractClassVar[RosenbrockTableau]
    time_derivative: bool = eqx.field(static=True, default=True)
    linear_solver: lx.AbstractLinearSolver = SmallLU()

    term_structure: ClassVar = dfx.ODETerm

    def __check_init__(self):
        if not isinstance(self.linear_solver, lx.AbstractLinearSolver):
            raise TypeError(f"{type(self).__name__}: linear_solver must be a lineax solver "
                            "(lineax.AbstractLinearSolver, e.g. popsim.linear.SmallLU() or "
                            f"lineax.LU()), not {self.linear_solver!r}")

    @property
    def interpolation_cls(self) -> Callable[..., dfx.AbstractLocalInterpolation]:
        """The tableau's own continuous extension, or cubic Hermite if it has none."""
        if self.tableau.H is None:
            return dfx.ThirdOrderHermitePolynomialInterpolation
        return RosenbrockInterpolation

    def order(self, terms):
        del terms
        return self.tableau.order

    def init(self, terms, t0, t1, y0, args):
        return None

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del solver_state, made_jump
        x0, unravel = ravel_pytree(y0)
        # every array the step reads (state, times, parameters closed over by the vector
        # field) becomes an explicit input of the gated step
        arrays = eqx.filter_closure_convert(
            lambda x: self._step_arrays(terms, t0, t1, x, args, unravel), x0)
        x1, err, dense = _rejected_steps_carry_no_tangent(arrays, x0)
        y1 = unravel(x1)
        if self.tableau.H is None:  # cubic Hermite (diffrax's interpolation takes k = h f)
            dense_info = dict(y0=y0, y1=y1, k0=unravel(dense[0]), k1=unravel(dense[1]))
        else:
            dense_info = dict(y0=y0, y1=y1, q=jax.vmap(unravel)(dense))
        return y1, unravel(err), dense_info, None, dfx.RESULTS.successful

    def _step_arrays(self, terms, t0, t1, x0, args, unravel):
        """One step on the flat state: ``(x1, error estimate, dense output arrays)``; the
        error estimate is infinite where the step is not usable."""
        tab = self.tableau
        dtype = x0.dtype
        h = jnp.asarray(t1 - t0, dtype)
        # forward in time only: diffeqsolve integrates backwards (t1 < t0) by negating the
        # ODETerm's control, which this step does not apply (taking the control into h would
        # change the compiled arithmetic of popsim's forward solves in the last bits); such a
        # step gives NaN below, never a wrong finite value
        forward = terms.contr(t0, t1) >= 0

        def f(t, x):
            return ravel_pytree(terms.vf(t, unravel(x), args))[0]

        f0, jvp = jax.linearize(lambda x: f(t0, x), x0)
        n = x0.shape[0]
        eye = jnp.eye(n, dtype=dtype)
        J = jax.vmap(jvp, out_axes=1)(eye)
        hg = h * tab.gamma
        # one factorisation per step, one solve per stage; called directly (not through
        # lineax.linear_solve) so that derivatives of the step go through the factorisation's own
        # operations, elementwise per patient like the rest of the step
        operator = lx.MatrixLinearOperator(eye - hg * J)
        lin_state = self.linear_solver.init(operator, {})
        if self.time_derivative and np.any(tab.d != 0):
            ft = jax.jvp(lambda t: f(t, x0), (t0,), (jnp.ones_like(t0),))[1]
        else:
            ft = None

        ks, lin_ok = _stages(tab, f, self.linear_solver, lin_state, x0, t0, t1, h, hg, f0,
                             ft)

        x1 = jnp.where(forward, x0 + _combine(tab.b_sol, ks), jnp.nan)
        err = _combine(tab.b_error, ks)
        # a step into a region where the vector field is not finite, or whose linear solve
        # failed, is rejected (as diffrax's implicit solvers reject a step whose stage solve
        # failed): infinite error, and the step-size controller shrinks h
        ok = jnp.all(jnp.isfinite(x1)) & jnp.all(jnp.isfinite(err)) & lin_ok
        err = jnp.where(ok, err, jnp.inf)
        if tab.H is None:
            return x1, err, (h * f0, h * f(t1, x1))
        return x1, err, jnp.stack([_combine(row, ks) for row in tab.H])


@eqx.filter_custom_jvp
def _rejected_steps_carry_no_tangent(step, x0):
    """``step(x0) -> (x1, err, dense)`` (``step`` a closure-converted function, its arrays
    explicit), whose derivatives are ``step``'s own where the step is usable (finite ``err``)
    and exactly zero where it is not.

    A step that left the vector field's domain (non-finite stages) is rejected, and its outputs
    are discarded by diffrax's ``where``; but in reverse mode the zero cotangent of the discarded
    outputs still runs back through the step's linearisation, whose coefficients are not finite,
    and ``0 x inf`` gives NaN in the gradient of the whole solve. Gating the tangents on both
    sides of the linearisation (``where`` before and after) makes the step's linear map, and its
    transpose, exactly zero for such a step, in forward and in reverse mode."""
    return step(x0)


@_rejected_steps_carry_no_tangent.def_jvp
def _rejected_step_jvp(primals, tangents):
    leaves, treedef = jax.tree.flatten(primals)
    t_leaves = jax.tree.flatten(tangents, is_leaf=lambda t: t is None)[0]
    moved = [i for i, t in enumerate(t_leaves) if t is not None]
    out_of = lambda ls: (lambda step, x0: step(x0))(*jax.tree.unflatten(treedef, ls))  # noqa: E731
    if not moved:
        return out_of(leaves), None

    def at(*diff):
        ls = list(leaves)
        for i, d in zip(moved, diff, strict=True):
            ls[i] = d
        return out_of(ls)

    out, linear = jax.linearize(at, *[leaves[i] for i in moved])
    usable = jnp.all(jnp.isfinite(out[1]))

    def gate(t):
        return jnp.where(usable, t, jnp.zeros_like(t))

    return out, jax.tree.map(gate, linear(*[gate(t_leaves[i]) for i in moved]))


@final
class Rodas4(AbstractRosenbrock):
    """Rodas4: order 4 with an embedded order-3 error estimate, 6 stages, stiffly accurate,
    L-stable; dense output of order 3 (the method's own).

    Reference: Hairer & Wanner, *Solving Ordinary Differential Equations II: Stiff and
    Differential-Algebraic Problems*, 2nd ed., Springer (1996), section VI.4, code RODAS
    (coefficient set 1).
    """

    tableau: ClassVar[RosenbrockTableau] = RODAS4


@final
class Rodas4P(AbstractRosenbrock):
    """Rodas4P: order 4 with an embedded order-3 error estimate, 6 stages, stiffly accurate;
    dense output of order 3 (the method's own). Constructed to avoid the order reduction of
    Rodas4 on the Prothero-Robinson problem and in method-of-lines applications.

    Reference: Steinebach, "Order-reduction of ROW-methods for DAEs and method of lines
    applications", Preprint 1741, TH Darmstadt (1995); stages and structure as in Hairer &
    Wanner (1996), section VI.4.
    """

    tableau: ClassVar[RosenbrockTableau] = RODAS4P


@final
class Rodas5P(AbstractRosenbrock):
    """Rodas5P: order 5 with an embedded order-4 error estimate, 8 stages, stiffly accurate;
    dense output of order 4 (the method's own). popsim's default time-course solver.

    Reference: Steinebach, "Construction of Rosenbrock-Wanner method Rodas5P and numerical
    benchmarks within the Julia Differential Equations package", BIT Numerical Mathematics 63,
    27 (2023); the RODAS form of Hairer & Wanner (1996), section VI.4.
    """

    tableau: ClassVar[RosenbrockTableau] = RODAS5P


@final
class Ros3P(AbstractRosenbrock):
    """ROS3P: order 3 with an embedded order-2 error estimate, 3 stages, A-stable, not stiffly
    accurate (nor L-stable); cubic Hermite dense output (one more vector field evaluation per
    step). Designed for parabolic problems.

    Reference: Lang & Verwer, "ROS3P -- an accurate third-order Rosenbrock solver designed for
    parabolic problems", BIT Numerical Mathematics 41, 731-738 (2001); stage equations as in
    Hairer & Wanner (1996), section IV.7.
    """

    tableau: ClassVar[RosenbrockTableau] = ROS3P
