"""Enrolment by screening: candidates are drawn, measured at their baseline steady state and
enrolled when they meet the population's inclusion and exclusion criteria
(:mod:`popsim.criteria`), until ``size`` patients are enrolled.

Candidate ``j`` is the population's patient ``j`` of :func:`popsim.population.sample_cohort`
(its own random streams from the seed and ``j``), and whether it is enrolled depends on its own
draws and steady state only (a patient's numbers are the same bits in a batch of any size,
:mod:`popsim.batch`). Candidates are screened in blocks of consecutive indices; the enrolled
patients are the first ``size`` candidates, in index order, that meet every criterion, and
they keep their candidate index (the cohort file's ``candidate``). So the cohort depends on the
seed and the criteria only, never on the block size, the chunk size or the device count, and a
run without criteria is the same as before (patient ``i`` is candidate ``i``).

``n_screened`` is the number of candidates it takes: the last enrolled candidate's index + 1.
Criteria on outputs are checked at the baseline steady state (the patient's own intakes and
chronic diuretic, before any intervention); a candidate whose steady state is not found cannot
be measured and is not enrolled. At most ``population.max_screened`` candidates are screened
(default 50 per patient); at each checkpoint (the first 1,000, 4,000, 16,000, ... candidates)
the screening stops with an error when, at the enrolment fraction seen so far (its one-sided
99.95% upper bound), that budget cannot enrol ``size`` patients.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import numpy as np

from popsim import batch
from popsim import config as cfg
from popsim import devices as dev
from popsim.criteria import failures
from popsim.parameters.io import ParameterSet
from popsim.population import Cohort, sample_cohort
from popsim.solve import SolverSettings

FIRST_CHECKPOINT = 1000
"""Candidates screened before the first check that the budget can enrol the cohort."""
Z_UPPER = 3.29
"""The one-sided normal quantile (99.95%) of the Wilson bound on the enrolment fraction."""
NO_STEADY_STATE = "no baseline steady state found"


class ScreeningError(RuntimeError):
    """Criteria that cannot enrol the cohort within the screening budget, in one line."""


@dataclass(frozen=True)
class Screening:
    """The outcome of a screening.

    Attributes:
        candidates: int64 ``(size,)``: the candidate index of each enrolled patient, increasing.
        n_screened: candidates screened to enrol them (the last one's index + 1).
        failures: per criterion, the screened candidates that fail it (a candidate may fail
            several); criteria on outputs also count :data:`NO_STEADY_STATE`.
        criteria: the criteria, as ``"inclusion: <description>"`` / ``"exclusion: ..."``.
        inclusion, exclusion: the criteria as data, ``name -> {min, max, values}``.
    """

    candidates: np.ndarray
    n_screened: int
    failures: dict[str, int]
    criteria: tuple[str, ...]
    inclusion: dict[str, dict]
    exclusion: dict[str, dict]

    @property
    def n_enrolled(self) -> int:
        return int(self.candidates.size)

    @property
    def screen_failure_fraction(self) -> float:
        """Screened candidates not enrolled, over all screened."""
        return (self.n_screened - self.n_enrolled) / self.n_screened

    def attributes(self) -> dict:
        """The cohort file's root attributes describing the screening."""
        return {"screening_criteria": json.dumps(list(self.criteria)),
                "n_screened": int(self.n_screened), "n_enrolled": self.n_enrolled,
                "screen_failure_fraction": float(self.screen_failure_fraction),
                "screen_failures": json.dumps(self.failures),
                "inclusion": json.dumps(self.inclusion), "exclusion": json.dumps(self.exclusion)}


def wilson_upper(k: int, m: int, z: float = Z_UPPER) -> float:
    """One-sided upper confidence bound of a proportion ``k`` of ``m`` (Wilson score)."""
    p = k / m
    centre = p + z * z / (2 * m)
    half = z * math.sqrt(p * (1 - p) / m + z * z / (4 * m * m))
    return min(1.0, (centre + half) / (1 + z * z / m))


def _block_failures(pop: cfg.Population, cohort: Cohort, settings: SolverSettings, dtype,
                    devices) -> dict[str, np.ndarray]:
    """Per criterion, which candidates of the block fail it (and, with criteria on outputs,
    which have no baseline steady state)."""
    values = {k: np.asarray(v) for k, v in cohort.covariates.items()}
    criteria = [*pop.inclusion.values(), *pop.exclusion.values()]
    extra = {}
    if any(c.on_output for c in criteria):
        parts = [part.inputs(dtype) for part in dev.place_parts(cohort, devices)]
        starts = dev.parts_steady_states(parts, settings)
        observed = [batch.observe_baseline_jit(p, pt, y0)
                    for (p, pt), (y0, _) in zip(parts, starts, strict=True)]
        for c in criteria:
            if c.on_output:
                values[c.name] = np.concatenate([np.asarray(o[c.name], np.float64)
                                                 for o in observed])
        extra[NO_STEADY_STATE] = ~np.concatenate([np.asarray(ok) for _, ok in starts])
    return {**failures(pop.inclusion, pop.exclusion, values), **extra}


def screen(pop: cfg.Population, seed: int, size: int, params: ParameterSet,
           settings: SolverSettings, dtype, block: int, devices=None,
           prepare: Callable[[Cohort], None] | None = None,
           progress: Callable[[int], None] | None = None) -> Screening:
    """Screen candidates ``0, 1, 2, ...`` in blocks of ``block`` until ``size`` meet the
    criteria of ``pop`` (see the module docstring).

    Args:
        block: candidates per block (a multiple of the number of ``devices``); it changes the
            work done, never the result.
        prepare: called with the first block before it is measured (e.g. to compile ahead).
        progress: called with the number of newly enrolled patients after each block.

    Raises:
        ScreeningError: the criteria enrol too few candidates within the budget.
    """
    budget = pop.screening_budget(size)
    enrolled: list[int] = []
    counts: dict[str, int] = {}
    checkpoint = FIRST_CHECKPOINT
    start = 0
    while len(enrolled) < size:
        if start >= budget:
            _too_few(len(enrolled), budget, size, budget)
        cohort = sample_cohort(pop, seed, start, block, params.params, params.cvs)
        if prepare is not None and start == 0:
            prepare(cohort)
        fails = _block_failures(pop, cohort, settings, dtype, devices)
        passed = ~np.any(np.stack(list(fails.values())), axis=0)
        passed[max(0, budget - start):] = False  # past the budget
        new = (start + np.flatnonzero(passed)).tolist()
        take = new[: size - len(enrolled)]
        # candidates of this block that count as screened: up to the last one enrolled
        used = (take[-1] - start + 1) if len(enrolled) + len(take) == size else \
            min(block, budget - start)
        for label, f in fails.items():
            counts[label] = counts.get(label, 0) + int(f[:used].sum())
        before = len(enrolled)
        enrolled += take
        if progress is not None:
            progress(len(enrolled) - before)
        start += block
        # the checkpoints before the last enrolled candidate (all of them, whatever the block)
        limit = min(start, budget) if len(enrolled) < size else enrolled[-1]
        while checkpoint <= limit:
            k = bisect.bisect_left(enrolled, checkpoint)
            if wilson_upper(k, checkpoint) * budget < size:
                _too_few(k, checkpoint, size, budget)
            checkpoint *= 4
    candidates = np.asarray(enrolled, np.int64)
    labels = tuple(k for k in counts if k != NO_STEADY_STATE)
    as_data = lambda cs: {k: c.model_dump(exclude={"name"}) for k, c in cs.items()}  # noqa: E731
    return Screening(candidates, int(candidates[-1]) + 1, counts, labels,
                     as_data(pop.inclusion), as_data(pop.exclusion))


def _too_few(k: int, m: int, size: int, budget: int):
    fraction = k / m
    at_most = wilson_upper(k, m)
    raise ScreeningError(
        f"population.inclusion/exclusion: {k:,} of the first {m:,} candidates meet the criteria "
        f"(enrolment fraction {100 * fraction:.3g}%, at most about {100 * at_most:.2g}%); "
        f"{size:,} patients need more than population.max_screened = {budget:,} candidates: "
        "loosen the criteria or raise max_screened")


def enrolled_cohort(pop: cfg.Population, seed: int, candidates: np.ndarray, params: ParameterSet,
                    size: int) -> Cohort:
    """The patients with candidate indices ``candidates`` (padded to ``size`` by repeating the
    last: the padding is discarded)."""
    index = np.concatenate([candidates, np.full(size - candidates.size, candidates[-1])])
    return sample_cohort(pop, seed, 0, size, params.params, params.cvs,
                         index=jax.numpy.asarray(index))
