"""libRoadRunner, the reference peer of ``popsim bench``: CVODE one patient after another on the
SBML export of the same model and workload, at one or several tolerances from one model load,
and popsim's speed against it at equal accuracy.

At one nominal rtol the two solvers do not deliver the same accuracy (on the bench workload at
rtol 1e-6 popsim's outputs lie ~1e-7 from a tight reference and CVODE's ~1e-4), so a ratio at
one rtol compares unequal work. :func:`equal_accuracy_ratio` reads libRoadRunner's rate at
popsim's error off its curve of rate against error."""

from __future__ import annotations

import math
import time

import jax
import numpy as np

from popsim import devices as pdev
from popsim.bench import (
    ACCURACY_OUTPUTS,
    ACCURACY_PATIENTS,
    _settings,
    max_relative_error,
    workload,
)
from popsim.population import sample_cohort


def roadrunner_rates(n: int, tolerances, accuracy: bool = True,
                     steady_batch: int | None = None, devices=None) -> list[dict]:
    """Patient-days per second of libRoadRunner (CVODE) one patient after another on the SBML
    export of the workload (``popsim export-sbml``), for each ``(rtol, atol)`` of
    ``tolerances``.

    The model is exported and compiled once (its arm as piecewise inputs; LLVM runs out of
    section memory after a few loads in one process); for each tolerance and patient the loop
    sets the patient's sampled parameters, covariates and steady state, then simulates 365 days
    with daily outputs of every output: what a libRoadRunner user would write. ``atol`` is a
    scalar (mmol, pmol/L or L: at least as tight as popsim's ``atol`` times each state's
    reference pool, since every pool is >= 1). ``accuracy``: also each row's max relative error
    against :func:`popsim.bench.reference_outputs`; ``steady_batch``, ``devices``: solve the
    steady states in a batch of this size over these devices (the shape
    :func:`popsim.bench.popsim_rate` compiled, so nothing compiles again).
    """
    import roadrunner

    from popsim import observables, sbml

    conf, prot = workload(*tolerances[0])
    spec, patients = _roadrunner_patients(conf, prot, n, steady_batch, devices)
    t0 = time.perf_counter()
    rr = roadrunner.RoadRunner(sbml.to_sbml(spec))
    load_s = time.perf_counter() - t0
    rr.integrator.maximum_num_steps = conf.simulation.step_budget
    days = conf.simulation.days
    selections = ["time"] + [o.name for o in observables.OUTPUTS]
    rows = []
    for rtol, atol in tolerances:
        rr.integrator.relative_tolerance = rtol
        rr.integrator.absolute_tolerance = atol
        wall, failed = 0.0, 0
        kept = {k: [] for k in ACCURACY_OUTPUTS}
        for i, (values, state) in enumerate(patients):
            t0 = time.perf_counter()
            try:
                rr.reset()
                for k, v in values.items():
                    rr.setValue(k, v)
                for k, v in state.items():
                    rr.setValue(k, float(v))
                res = rr.simulate(0.0, days, int(days) + 1, selections)
            except RuntimeError:
                failed += 1
                res = None
            wall += time.perf_counter() - t0
            if i < ACCURACY_PATIENTS:
                for k in ACCURACY_OUTPUTS:
                    kept[k].append(np.full(int(days) + 1, np.nan) if res is None
                                   else np.asarray(res[:, selections.index(k)]))
        rows.append({"method": "libroadrunner", "patients": n, "days": days, "rtol": rtol,
                     "atol": atol, "patient_days_per_s": n * days / wall,
                     "simulate_seconds": wall, "compile_seconds": load_s, "failed": failed,
                     "max_relative_error": (max_relative_error(kept)
                                            if accuracy and n >= ACCURACY_PATIENTS else None),
                     "note": f"libRoadRunner {roadrunner.__version__} CVODE on the SBML export, "
                             "one patient after another; compile = SBML load and LLVM compile"})
    return rows


def roadrunner_rate(n: int = 20, rtol: float = 1e-6, atol: float = 1e-8, accuracy: bool = True,
                    steady_batch: int | None = None, devices=None) -> dict:
    """:func:`roadrunner_rates` at one tolerance."""
    return roadrunner_rates(n, [(rtol, atol)], accuracy, steady_batch, devices)[0]


def _roadrunner_patients(conf, prot, n: int, steady_batch: int | None = None, devices=None):
    """The SBML spec of the workload's first patient, and every patient's sampled parameters,
    covariates and steady state as libRoadRunner values."""
    from popsim import sbml

    devices = list(devices) if devices else None
    m = max(n, steady_batch or n)
    if devices:
        m = -(-m // len(devices)) * len(devices)
    cohort = sample_cohort(conf.population, conf.population.seed, 0, m)
    parts = pdev.place_parts((cohort.params, cohort.patients), devices)
    y0s = np.concatenate([np.asarray(y0) for y0, _ in
                          pdev.parts_steady_states(parts, _settings(conf))])
    patients = []
    for i in range(n):
        params = {name: float(np.asarray(getattr(cohort.params, name))[i])
                  for name in cohort.varying}
        patients.append((params | sbml.cohort_covariates(cohort, i),
                         dict(zip(sbml.STATE_IDS, y0s[i], strict=True))))
    first = jax.tree.map(lambda x: float(np.asarray(x)[0]), cohort.params)
    return sbml.PatientSpec(first, sbml.cohort_covariates(cohort, 0), y0s[0], prot,
                            "bench"), patients


def equal_accuracy_ratio(point: dict, curve: list[dict], cores: int) -> dict:
    """popsim ``point``'s rate over libRoadRunner's on ``cores`` cores at the same error: its
    one-process rate, interpolated in log-log between the two ``curve`` points whose errors
    bracket it, times ``cores`` (as many processes, perfect scaling: libRoadRunner's best
    case). ``None`` outside the curve (no extrapolation)."""
    e = point.get("max_relative_error")
    pts = sorted((r["max_relative_error"], r["patient_days_per_s"]) for r in curve
                 if r.get("max_relative_error") and r["max_relative_error"] > 0)
    for (e0, r0), (e1, r1) in zip(pts, pts[1:], strict=False):
        if e is not None and e0 <= e <= e1:
            w = 0.0 if e1 == e0 else (math.log(e) - math.log(e0)) / (math.log(e1) - math.log(e0))
            rate = cores * math.exp(math.log(r0) + w * (math.log(r1) - math.log(r0)))
            return {"roadrunner_rate_at_same_error": rate,
                    "ratio_at_equal_accuracy": point["patient_days_per_s"] / rate}
    return {"roadrunner_rate_at_same_error": None, "ratio_at_equal_accuracy": None}
