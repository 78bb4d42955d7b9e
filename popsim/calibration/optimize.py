"""Multi-start optimisation of the evidence likelihood with optax.

Start 0 is the base parameter set (moved inside the bounds if needed); starts 1.. are a Latin
hypercube around it, within :data:`START_SPREAD` of the base on each transform's scale (and
2%..98% of the range; SciPy's ``LatinHypercube`` seeded with the fit's seed): a hypercube over
the whole box puts some of many parameters at corners where no virtual patient has a steady
state (a 20-parameter fit lost all 888 patients at each of 3 such starts). Each start runs the
same compiled step until the step budget, or until the best NLL has not improved by
:data:`MIN_IMPROVEMENT` in ``patience`` steps.

A failed patient (no steady state) drops out of the statistics, so a point where more patients
fail than at the start is not comparable with it (the optimiser could "improve" by losing
patients): a point that loses more than :data:`LOST_PATIENTS_TOLERATED` of the fit's patients
is never taken as the start's best, and the optimiser steps back from it with half its
learning rate (adam's rate lives in its state, so no program is compiled again). Fixed
coordinates (profiles) are held by a 0/1 mask, so the same compiled step serves them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import jax.numpy as jnp
import numpy as np

from popsim.calibration.spec import FitParam, to_transformed

MIN_IMPROVEMENT = 1e-3  # nats
EDGE = 0.02  # starts keep this fraction of each range away from its bounds
MAX_SHORTENINGS = 6  # a step that loses patients is retried down to 1/64 of the learning rate
LOST_PATIENTS_TOLERATED = 0.001
"""Fraction of the fit's patients (rounded down) a point may lose, against the start, and
still count. Dropping one patient of ``n`` moves a statistic by about SD/n, inside its
Monte-Carlo error SD/sqrt(n) that the likelihood already carries, so a few lost patients cannot
buy a better fit; a hundred can (a 20-parameter fit went from 4 to 101 lost in one step). With
none tolerated, an 8-parameter fit on 5,480 patients stopped at step 29 of 150, every step
from there losing a patient or two."""
START_SPREAD = 1.0
"""Half-width of the starts' hypercube around the base, in the transformed (logit) coordinate:
a parameter bounded at its value / 4 .. x 4 starts between about / 1.9 and x 1.9."""


@dataclass
class Run:
    """One optimisation from one start."""

    start: int
    u0: np.ndarray
    u: np.ndarray  # best point seen
    nll: float
    losses: list[float] = field(default_factory=list)
    stopped: str = ""
    failed: int = 0  # patients without a steady state at the best point
    worse_failed_steps: int = 0  # steps at points that lost more patients than tolerated
    most_lost: int = 0  # most patients lost (against the start) at any point reached
    shortenings: int = 0  # times the learning rate was halved after such a point
    nonfinite_steps: int = 0  # steps whose gradient was not finite in some coordinate
    y: object = None  # steady states at the best point (warm start)
    seconds: list[float] = field(default_factory=list)  # wall time of each step (the first
    # step of the first start includes compiling)


def starts(params: tuple[FitParam, ...], n: int, seed: int) -> np.ndarray:
    """``(n, parameter)`` starting points in the transformed coordinates."""
    u = [[to_transformed(p, min(max(p.base, p.lower), p.upper), margin=EDGE) for p in params]]
    if n > 1:
        from scipy.stats import qmc

        # scipy still takes seed (its signature names rng, which would draw other numbers)
        f = qmc.LatinHypercube(d=len(params), seed=seed).random(n - 1)  # pyright: ignore[reportCallIssue]
        edge = math.log(EDGE) - math.log1p(-EDGE)  # the logit of EDGE (< 0)
        lo = np.maximum(np.asarray(u[0]) - START_SPREAD, edge)
        hi = np.minimum(np.asarray(u[0]) + START_SPREAD, -edge)
        u += list(lo + (hi - lo) * f)
    return np.asarray(u, float)


def tolerated(n_patients: int) -> int:
    """Patients a point of a fit of ``n_patients`` may lose (:data:`LOST_PATIENTS_TOLERATED`)."""
    return int(LOST_PATIENTS_TOLERATED * n_patients)


def _step_keeping_patients(engine, u, state, y, free, allowed: int | None):
    """The engine's step at ``u``; when Newton from the warm start ``y`` leaves more than
    ``allowed`` patients unsolved, once more from steady states found robustly at ``u``."""
    out = engine.step(u, state, y, free)
    if allowed is not None and int(out[3][1]) > allowed:
        out = engine.step(u, state, engine.warm_start(u), free)
    return out


def minimise(engine, u0, steps: int, patience: int, free=None, y=None, bar=None,
             start: int = 0, tolerate: int = 0) -> Run:
    """Run the engine's optimiser from ``u0`` (``free``: 1 for optimised coordinates, 0 for
    fixed ones; ``y``: warm-start steady states, found robustly when not given). A point that
    loses more than ``tolerate`` patients (more unsolved than at the start, even robustly) is
    stepped back from: the step is retried from the last point that did not with half the
    learning rate, at most :data:`MAX_SHORTENINGS` times."""
    u = jnp.asarray(u0, jnp.float64)
    free = jnp.ones_like(u) if free is None else jnp.asarray(free, jnp.float64)
    y = engine.warm_start(u) if y is None else y
    state = engine.init(u)
    run = Run(start, np.asarray(u0, float), np.asarray(u0, float), math.inf)
    n_free = int(np.count_nonzero(np.asarray(free)))
    last_gain, ref, failed_start, prev = 0, math.inf, None, None
    for k in range(steps):
        t0 = time.perf_counter()
        new, state_new, val, (_, failed, y_next), _, bad = _step_keeping_patients(
            engine, u, state, y, free, None if failed_start is None else failed_start + tolerate)
        lv, nf = float(val), int(failed)
        run.seconds.append(time.perf_counter() - t0)
        failed_start = nf if failed_start is None else failed_start
        run.most_lost = max(run.most_lost, nf - failed_start)
        if not math.isfinite(lv):
            run.stopped = f"non-finite NLL at step {k + 1}"
            break
        run.losses.append(lv)
        if nf > failed_start + tolerate:  # back to the last point that did not, half the step
            run.worse_failed_steps += 1
            short = engine.shorter(prev[1]) if prev is not None else None
            if prev is None or short is None or run.shortenings >= MAX_SHORTENINGS:
                run.stopped = (f"steps lose patients at 1/{2 ** run.shortenings} of the "
                               f"learning rate (step {k + 1})")
                break
            run.shortenings += 1
            u, state, y = prev[0], short, prev[2]
            continue
        prev = (u, state, y)
        if lv < run.nll:
            run.nll, run.u, run.failed, run.y = lv, np.asarray(u), nf, y_next
        if n_free and int(bad) == n_free:
            run.stopped = (f"the gradient is not finite in any fitted coordinate at step "
                           f"{k + 1}: the fit cannot move")
            break
        run.nonfinite_steps += int(bad) > 0
        if bar is not None:
            bar.advance(1, f"start {start}: NLL {lv:.4g}")
        u, state, y = new, state_new, y_next
        if run.nll < ref - MIN_IMPROVEMENT:
            ref, last_gain = run.nll, k
        elif k - last_gain >= patience:
            run.stopped = f"no gain > {MIN_IMPROVEMENT:g} in {patience} steps"
            break
    else:
        run.stopped = f"{steps} steps"
    return run


def best_run(runs: list[Run], tolerate: int = 0) -> Run:
    """The start with the lowest NLL among those whose best point has at most ``tolerate``
    failed patients more than the fewest (an NLL over fewer patients is not comparable)."""
    fewest = min(r.failed for r in runs)
    return min((r for r in runs if r.failed <= fewest + tolerate), key=lambda r: r.nll)


def multistart(engine, spec, bar=None) -> list[Run]:
    """Every start of ``spec`` (:class:`popsim.calibration.spec.FitSpec`), in order."""
    runs = []
    for i, u0 in enumerate(starts(spec.parameters, spec.starts, spec.seed)):
        if bar is not None:
            bar.phase(f"start {i + 1}/{spec.starts}" + (" (compiling)" if not runs else ""))
        runs.append(minimise(engine, u0, spec.steps, spec.patience, bar=bar, start=i,
                             tolerate=tolerated(engine.problem.n_patients)))
    return runs
