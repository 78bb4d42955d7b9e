"""Simulate a study file's design as a virtual trial (the engine side of :mod:`popsim.evidence`).

Every trial is solved with the same static shapes (:data:`N_TIMES` saved times, which always
include every day an observation reads; :data:`N_SEGMENTS` protocol segments; one step budget),
so trials with the same number of patients share their compiled programs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from popsim import config as cfg
from popsim.devices import simulate_arms
from popsim.evidence import Study, design_config
from popsim.evidence.statistics import TrialResult
from popsim.population import sample_cohort
from popsim.protocols import n_segments_for, protocols_for
from popsim.solve import SolverSettings

N_TIMES = 128
N_SEGMENTS = 8
"""Protocol segments of every trial whose arms need no more (periodic doses need two per
administration: such a trial is padded to the next power of 2, see
:func:`popsim.protocols.n_segments_for`)."""
MAX_STEPS = 2000 + 10 * 360
"""Solver steps allowed per patient and arm in every trial (the step budget is part of the
compiled program, so one budget for all trials lets them share it)."""


def needed_days(study: Study) -> list[float]:
    """Every day an observation of ``study`` reads (they are always saved)."""
    days = {0.0, float(study.design.simulation.days)}
    for o in study.observation:
        for d in (o.day, o.change_from_day, *(o.integrate or ())):
            if d is not None:
                days.add(float(d))
    return sorted(days)


def saved_times(study: Study) -> np.ndarray:
    """:data:`N_TIMES` saved days: the needed ones plus an even grid over the trial."""
    need = needed_days(study)
    if len(need) > N_TIMES // 2:
        raise ValueError(f"{study.study.id}: observations read {len(need)} different days; "
                         f"at most {N_TIMES // 2}")
    days = study.design.simulation.days
    grid = np.linspace(0.0, days, N_TIMES - len(need) + 2)
    times = np.union1d(np.asarray(need), grid)
    k = 0
    while times.size < N_TIMES:  # grid points that coincided with needed days: refill
        k += 1
        grid = np.linspace(0.0, days, N_TIMES - len(need) + 2 + k)
        times = np.union1d(np.asarray(need), grid)
    if times.size > N_TIMES:  # drop grid points (never needed days) from the end
        extra = [t for t in times[::-1] if t not in need][: times.size - N_TIMES]
        times = np.setdiff1d(times, extra)
    return times


def simulate_study(study: Study, size: int | None = None, params=None,
                   population_size: int | None = None) -> TrialResult:
    """Run ``study``'s design with ``size`` patients (default: the file's; ``population_size``
    for a population study, see :func:`popsim.evidence.design_config`) and the parameter set
    ``params`` (:class:`popsim.parameters.io.ParameterSet`; default: the shipped one)."""
    config = design_config(study, size, population_size)
    data = config.simulation.model_dump()
    data["max_steps"] = MAX_STEPS + config.extra_steps  # periodic doses: more steps
    sim = cfg.Simulation.model_validate(data)
    n = config.population.size
    times = saved_times(study)
    with jax.enable_x64(True):
        cohort = sample_cohort(config.population, config.population.seed, 0, n,
                               *((params.params, params.cvs) if params is not None else ()))
        segments = max(N_SEGMENTS, n_segments_for((a.intervention for a in config.arms),
                                                  sim.days))
        protocols = protocols_for(config.arms, sim.days, jnp.float64, n_segments=segments)
        outputs, status = simulate_arms(cohort, protocols, jnp.asarray(times),
                                        SolverSettings.from_simulation(sim), jnp.float64,
                                        track_balance=True)
    covariates = {}
    for name, v in cohort.covariates.items():
        unit, kind, labels = cfg.COVARIATES[name]
        v = np.asarray(v)
        covariates[name] = np.asarray(labels)[v] if kind == "category" else v
    return TrialResult(study, tuple(a.name for a in config.arms), times,
                       {k: np.asarray(v) for k, v in outputs.items()}, np.asarray(status),
                       covariates)
