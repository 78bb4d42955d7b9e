"""Multi-start optimisation of the evidence likelihood with optax.

Start 0 is the base parameter set (moved inside the bounds if needed); starts 1.. are a Latin
hypercube over the bounds (on each transform's scale, 2%..98% of the range; SciPy's
``LatinHypercube`` seeded with the fit's seed). Each start runs the same compiled step until the
step budget, or until the best NLL has not improved by :data:`MIN_IMPROVEMENT` in ``patience``
steps. Fixed coordinates (profiles) are held by a 0/1 mask, so the same compiled step serves
them.
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
        f = EDGE + (1 - 2 * EDGE) * f
        u += list(np.log(f) - np.log1p(-f))
    return np.asarray(u, float)


def minimise(engine, u0, steps: int, patience: int, free=None, y=None, bar=None,
             start: int = 0) -> Run:
    """Run the engine's optimiser from ``u0`` (``free``: 1 for optimised coordinates, 0 for
    fixed ones; ``y``: warm-start steady states, found robustly when not given)."""
    u = jnp.asarray(u0, jnp.float64)
    free = jnp.ones_like(u) if free is None else jnp.asarray(free, jnp.float64)
    y = engine.warm_start(u) if y is None else y
    state = engine.init(u)
    run = Run(start, np.asarray(u0, float), np.asarray(u0, float), math.inf)
    n_free = int(np.count_nonzero(np.asarray(free)))
    failed0, last_gain, ref = None, 0, math.inf
    for k in range(steps):
        t0 = time.perf_counter()
        new, state, val, (per_study, failed, y_next), _, bad = engine.step(u, state, y, free)
        lv, nf = float(val), int(failed)
        run.seconds.append(time.perf_counter() - t0)
        failed0 = nf if failed0 is None else failed0
        if not math.isfinite(lv):
            run.stopped = f"non-finite NLL at step {k + 1}"
            break
        run.losses.append(lv)
        if lv < run.nll:
            run.nll, run.u, run.failed, run.y = lv, np.asarray(u), nf, y_next
        if n_free and int(bad) == n_free:
            run.stopped = (f"the gradient is not finite in any fitted coordinate at step "
                           f"{k + 1}: the fit cannot move")
            break
        run.nonfinite_steps += int(bad) > 0
        if bar is not None:
            bar.advance(1, f"start {start}: NLL {lv:.4g}")
        u, y = new, y_next
        if nf > failed0:  # new Newton failures: find those steady states robustly, once
            y, failed0 = engine.warm_start(u), nf
        if run.nll < ref - MIN_IMPROVEMENT:
            ref, last_gain = run.nll, k
        elif k - last_gain >= patience:
            run.stopped = f"no gain > {MIN_IMPROVEMENT:g} in {patience} steps"
            break
    else:
        run.stopped = f"{steps} steps"
    return run


def multistart(engine, spec, bar=None) -> list[Run]:
    """Every start of ``spec`` (:class:`popsim.calibration.spec.FitSpec`), in order."""
    runs = []
    for i, u0 in enumerate(starts(spec.parameters, spec.starts, spec.seed)):
        if bar is not None:
            bar.phase(f"start {i + 1}/{spec.starts}" + (" (compiling)" if not runs else ""))
        runs.append(minimise(engine, u0, spec.steps, spec.patience, bar=bar, start=i))
    return runs
