"""`popsim calibrate --evidence`: fit parameters to published studies, with uncertainty.

:func:`fit_evidence` builds the problem of the fitted studies (and, separately, of the held-out
ones: evaluated at the fit's optimum, never part of the objective), runs the multi-start
optimisation, the Laplace approximation and the requested profiles, and returns an
:class:`EvidenceFit`; :mod:`popsim.calibration.record` writes it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from popsim import evidence
from popsim.calibration.engine import Engine
from popsim.calibration.optimize import Run, best_run, multistart, tolerated
from popsim.calibration.problem import Problem, build_problem
from popsim.calibration.spec import FitSpec, from_transformed
from popsim.calibration.uncertainty import Laplace, Profile, laplace, profile


@dataclass
class Evaluation:
    """Every observation of a problem's studies at one parameter point."""

    problem: Problem
    values: np.ndarray
    mc_se: np.ndarray
    counts: np.ndarray
    nll_terms: np.ndarray  # NaN for observations that are not likelihood terms

    def per_study(self) -> dict[str, float]:
        out = {}
        for b, sid in enumerate(self.problem.study_ids()):
            t = [x for s, x in zip(self.problem.obs, self.nll_terms, strict=True)
                 if s.block == b and s.likelihood]
            out[sid] = float(np.sum(t)) if t else float("nan")
        return out


@dataclass
class EvidenceFit:
    spec: FitSpec
    base_source: str
    problem: Problem
    runs: list[Run]
    laplace: Laplace
    train: Evaluation
    holdout: Evaluation | None
    profiles: list[Profile] = field(default_factory=list)
    timing: dict = field(default_factory=dict)

    @property
    def best(self) -> Run:
        return best_run(self.runs, tolerated(self.problem.n_patients))

    @property
    def values(self) -> dict[str, float]:
        """Fitted values by name (``cv.<name>`` for CVs)."""
        return {p.name: from_transformed(p, x)
                for p, x in zip(self.spec.parameters, self.best.u, strict=True)}


def _base_values(base) -> dict[str, float]:
    return {f.name: float(getattr(base, f.name)) for f in dataclasses.fields(base)}


def evaluation(engine: Engine, u, y) -> Evaluation:
    return Evaluation(engine.problem, *engine.report(u, y))


def fit_evidence(spec: FitSpec, base_set, progress: bool = True, studies=None,
                 holdout=None, engine: Engine | None = None) -> EvidenceFit:
    """Run the calibration ``spec`` from the parameter set ``base_set``
    (:class:`popsim.parameters.io.ParameterSet`). ``studies``/``holdout``: the
    :class:`popsim.evidence.Study` objects (default: ``spec``'s ids, resolved from the
    catalogue, which refuses reserved studies). ``engine``: the compiled problem of these
    studies, when the caller has one (:meth:`Engine.with_observations`)."""
    import jax

    with jax.enable_x64(True):
        return _fit(spec, base_set, progress, studies, holdout, engine)


def _fit(spec: FitSpec, base_set, progress: bool, studies, holdout, engine) -> EvidenceFit:
    from popsim.progress import Progress

    t0 = time.perf_counter()
    studies = evidence.resolve(list(spec.studies)) if studies is None else studies
    if holdout is None and spec.holdout:
        holdout = evidence.resolve(list(spec.holdout))
    if engine is None:
        problem = build_problem(studies, spec.parameters, base_set.params, base_set.cvs,
                                spec.size, spec.gradient,
                                population_size=spec.population_size)
        engine = Engine(problem, spec.optimizer, spec.learning_rate)
    problem = engine.problem
    timing: dict = {}
    total = spec.starts * spec.steps + len(spec.profile) * (spec.profile_points - 1) * \
        spec.profile_steps
    with Progress("calibrating", total, "steps", enabled=progress) as bar:
        t1 = time.perf_counter()
        runs = multistart(engine, spec, bar)
        timing["optimisation_seconds"] = time.perf_counter() - t1
        best = best_run(runs, tolerated(engine.problem.n_patients))
        bar.phase("Hessian" + (" (compiling)" if spec.hessian == "exact" else ""))
        t2 = time.perf_counter()
        try:
            hess, why = engine.hessian(best.u, best.y, spec.hessian), ""
        except FloatingPointError as e:  # no curvature to read: the prior's alone, said so
            hess, why = np.zeros((len(best.u), len(best.u))), str(e)
        timing["hessian_seconds"] = time.perf_counter() - t2
        lap = laplace(spec.parameters, best.u, hess)
        if why:
            lap.source = f"uniform prior on each bounded scale only ({why})"
        bar.phase("model against data (compiling)")
        train = evaluation(engine, best.u, best.y)
        profiles = []
        for name in spec.profile:
            bar.phase(f"profile of {name}")
            k = spec.names.index(name)
            profiles.append(profile(engine, best, k, spec.profile_points, spec.profile_steps,
                                    spec.patience, bar))
        held = None
        if holdout:
            bar.phase("held-out studies (compiling)")
            hp = build_problem(holdout, spec.parameters,
                               base_set.params, base_set.cvs, spec.size, spec.gradient,
                               fitted=False, population_size=spec.population_size)
            he = Engine(hp)
            held = evaluation(he, best.u, he.warm_start(best.u))
    timing["total_seconds"] = time.perf_counter() - t0
    timing["steps"] = sum(len(r.losses) for r in runs)
    later = [s for r in runs for s in r.seconds[1:]]
    timing["first_step_seconds"] = runs[0].seconds[0] if runs[0].seconds else float("nan")
    timing["seconds_per_step"] = float(np.median(later)) if later else float("nan")
    return EvidenceFit(spec, base_set.source, problem, runs, lap, train, held, profiles, timing)
