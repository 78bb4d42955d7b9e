"""Uncertainty of a fit: the Laplace approximation at the optimum and profile likelihoods.

Laplace: the Hessian ``H`` of the NLL in the transformed coordinates ``u`` (central differences
of the JAX gradient, or exact forward over forward: ``Engine.hessian``) gives the covariance
``H^-1`` of ``u``; 95% intervals are ``u +- 1.96 sd`` mapped back through the (monotone)
transform, so they always lie inside the bounds. A direction with
eigenvalue below :data:`IDENTIFIED_EIGENVALUE` (posterior SD above 2 in ``u``: the data
constrain it less than the bounds do) is not identified; the parameters loading on it are
flagged, as are parameters whose interval spans most of their bound range or whose optimum sits
on a bound. When ``H`` is not positive definite, the covariance adds the curvature of a uniform
prior on each parameter's bounded scale (``sigmoid(u) (1 - sigmoid(u))`` on the diagonal) and
says so.

Profiles (as in pyPESTO): the parameter is fixed at each point of a grid across its bounds and
the others re-optimised from the neighbouring point's solution, walking out from the optimum;
``Delta NLL`` above chi2(1, 0.95) / 2 = 1.92 is outside the 95% profile-likelihood interval.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from popsim.calibration.optimize import EDGE, Run, minimise
from popsim.calibration.spec import FitParam, from_transformed

IDENTIFIED_EIGENVALUE = 0.25  # 1 / SD^2 in u: SD 2, i.e. a 95% interval over 2%..98% of range
COVERS_BOUNDS = 0.9  # an interval spanning this fraction of the bound range is uninformative
AT_BOUND = 0.01
PROFILE_THRESHOLD = 1.920729410347062  # chi2.ppf(0.95, 1) / 2


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, float)))


@dataclass
class Laplace:
    params: tuple[FitParam, ...]
    u: np.ndarray
    hessian: np.ndarray
    eigenvalues: np.ndarray
    covariance: np.ndarray  # in u
    source: str
    lower: np.ndarray  # 95% interval, parameter units
    upper: np.ndarray
    flags: dict[str, list[str]] = field(default_factory=dict)

    @property
    def sd(self) -> np.ndarray:
        return np.sqrt(np.diag(self.covariance))

    @property
    def correlation(self) -> np.ndarray:
        sd = self.sd
        return self.covariance / np.outer(sd, sd)


def laplace(params: tuple[FitParam, ...], u, hessian) -> Laplace:
    """The Laplace approximation from the NLL's Hessian at the optimum ``u``."""
    u = np.asarray(u, float)
    h = 0.5 * (np.asarray(hessian, float) + np.asarray(hessian, float).T)
    lam, vec = np.linalg.eigh(h)
    if lam.min() > 1e-10 * max(lam.max(), 1e-300):
        cov, source = np.linalg.inv(h), "likelihood"
    else:
        # Negative curvature (a saddle, or an optimiser stopped early) carries no information:
        # keep the Hessian's positive part, and add the curvature of the uniform prior on each
        # bounded scale, so that the covariance is positive definite.
        s = _sigmoid(u)
        positive = (vec * np.maximum(lam, 0.0)) @ vec.T
        cov = np.linalg.inv(positive + np.diag(s * (1 - s)))
        source = ("likelihood (positive part of its Hessian, which is not positive definite) + "
                  "uniform prior on each bounded scale")
    cov = 0.5 * (cov + cov.T)
    sd = np.sqrt(np.diag(cov))
    lower = np.array([from_transformed(p, x - 1.96 * s) for p, x, s in zip(params, u, sd,
                                                                             strict=True)])
    upper = np.array([from_transformed(p, x + 1.96 * s) for p, x, s in zip(params, u, sd,
                                                                             strict=True)])
    flags: dict[str, list[str]] = {p.name: [] for p in params}
    for j in np.flatnonzero(lam < IDENTIFIED_EIGENVALUE):
        for i in np.flatnonzero(vec[:, j] ** 2 > 0.25):
            flags[params[i].name].append(
                f"non-identifiable: Hessian eigenvalue {lam[j]:.3g} < "
                f"{IDENTIFIED_EIGENVALUE:g} (loading {vec[i, j] ** 2:.2f})")
    for i, p in enumerate(params):
        lo, hi = _sigmoid(u[i] - 1.96 * sd[i]), _sigmoid(u[i] + 1.96 * sd[i])
        if hi - lo > COVERS_BOUNDS:
            flags[p.name].append(f"95% interval covers {100 * (hi - lo):.0f}% of the bound "
                                 "range")
        f = _sigmoid(u[i])
        if f < AT_BOUND or f > 1 - AT_BOUND:
            flags[p.name].append("at a bound")
    return Laplace(params, u, h, lam, cov, source, lower, upper, flags)


@dataclass
class Profile:
    name: str
    values: np.ndarray  # parameter units, increasing
    u: np.ndarray
    delta_nll: np.ndarray
    optimum: float  # the fitted value

    @property
    def flat(self) -> bool:
        """No grid point is excluded at 95%: the profile does not bound the parameter."""
        return bool(np.all(self.delta_nll < PROFILE_THRESHOLD))

    def interval(self) -> tuple[float | None, float | None]:
        """The 95% profile-likelihood interval's ends on the grid (``None``: not reached before
        the bound)."""
        i0 = int(np.argmin(self.delta_nll))
        out = self.delta_nll >= PROFILE_THRESHOLD
        below = [i for i in range(i0) if out[i]]
        above = [i for i in range(i0 + 1, len(out)) if out[i]]
        return (float(self.values[below[-1]]) if below else None,
                float(self.values[above[0]]) if above else None)


def profile(engine, best: Run, k: int, points: int, steps: int, patience: int,
            bar=None) -> Profile:
    """Profile likelihood of parameter ``k`` around the optimum ``best``."""
    p = engine.problem.params[k]
    f = np.linspace(EDGE, 1 - EDGE, points)
    grid = np.log(f) - np.log1p(-f)
    free = np.ones(len(engine.problem.params))
    free[k] = 0.0
    us, nlls = [best.u[k]], [best.nll]
    for side in (grid[grid < best.u[k]][::-1], grid[grid > best.u[k]]):
        u, y = best.u.copy(), best.y
        for g in side:
            u = u.copy()
            u[k] = g
            run = minimise(engine, u, steps, patience, free=free, y=y, bar=bar)
            if run.y is not None:
                u, y = run.u, run.y
            us.append(g)
            nlls.append(run.nll)
    order = np.argsort(us)
    us_sorted = np.asarray(us)[order]
    values = np.array([from_transformed(p, x) for x in us_sorted])
    delta = np.asarray(nlls)[order] - best.nll
    return Profile(p.name, values, us_sorted, delta, from_transformed(p, best.u[k]))
