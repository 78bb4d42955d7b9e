"""Throughput benchmark: patient-days simulated per second, popsim against a per-patient SciPy loop.

The workload is one year (365 days, daily outputs) of virtual US adults (``configs/us_adults.toml``
population) on a Mg-poor diet (50 mg/day) for the first 180 days and back to their own intake
after: every patient moves, so no solver can coast at a steady state. Steady states are solved
first and timed separately.

* **popsim**: the batched solve of ``popsim run`` (jit + vmap, the default solver), in
  chunks of ``chunk_size`` patients; compile time is measured separately (first call of a new
  shape minus a warm call) and excluded from the rate.
* **SciPy** ``solve_ivp`` (BDF and LSODA), one patient after another, on the same right-hand side
  compiled once with ``jax.jit`` and called from NumPy (with its jitted Jacobian), integrated
  piecewise between dose changes: what a user of SciPy would write around this model. Measured on
  a few patients and reported per patient-day.

Both at the same relative tolerance (default 1e-6) and absolute tolerance relative to each state's
reference pool. Results go to ``benchmarks/results/throughput.json`` and the table in
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from popsim import batch, model, solve
from popsim import config as cfg
from popsim import devices as pdev
from popsim._version import __version__, library_versions
from popsim.compilation import CompileCounter
from popsim.options import Message, Option
from popsim.population import sample_cohort
from popsim.protocols import arm_protocol

if TYPE_CHECKING:
    from popsim.parameters import Params

WORKLOAD = """
[population]
size = 1000   # the cohort sizes come from --sizes
seed = 7

[population.covariates.mg_intake.female]
distribution = "lognormal"
median = 250
gsd = 1.35
[population.covariates.mg_intake.male]
distribution = "lognormal"
median = 320
gsd = 1.35

[simulation]
days = 365
output_interval_days = 1
rtol = {rtol}
atol = {atol}

[[arm]]
name = "depletion_then_repletion"
[[arm.intervention]]
kind = "diet"
mg_intake = 50
start_day = 0
end_day = 180
"""


class BenchError(RuntimeError):
    """A benchmark that cannot run as asked (its message names the option that avoids it)."""


def require_roadrunner(patients: int) -> None:
    """Raise :class:`BenchError` when ``patients`` are to be timed with libRoadRunner and it is
    not installed. libRoadRunner is in the ``[dev]`` extra only; checking first reports it before
    anything compiles rather than after the popsim rows."""
    import importlib.util

    if not patients:
        return
    try:
        found = importlib.util.find_spec("roadrunner") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise BenchError(Message(
            "the benchmark's reference timing needs libRoadRunner, which is not installed: "
            "pip install 'popsim[dev]' (or ", Option("roadrunner_patients", 0), " to skip it)"))


def workload(rtol: float = 1e-6, atol: float = 1e-8):
    conf = cfg.parse_config(tomllib.loads(WORKLOAD.format(rtol=rtol, atol=atol)))
    prot = arm_protocol(conf.arms[0].intervention, conf.simulation.days, 4, jnp.float64)
    return conf, prot


def _settings(conf):
    return solve.SolverSettings.from_simulation(conf.simulation)


_COMPILED_SHAPES: set[tuple[int, int, solve.SolverSettings]] = set()


def _compile_timed(cohort, devices, prot, ts, s, timed):
    """Compile ahead as ``popsim run`` does, solve cold and warm: ``(s, programs, warm)``."""
    t0 = time.perf_counter()
    with CompileCounter() as counted:
        pdev.compile_ahead(pdev.place_parts((cohort.params, cohort.patients), devices),
                           [prot], ts, s)
    timed(cohort)  # cold
    warm = timed(cohort)
    return time.perf_counter() - t0 - 2 * (warm[0] + warm[1]), counted.summary(), warm


def popsim_rate(n: int, chunk_size: int = 1000, rtol: float = 1e-6, atol: float = 1e-8,
                progress=None, devices=None, solver: str | None = None) -> dict:
    """Patient-days per second of the batched solve for ``n`` patients (chunks of
    ``min(n, chunk_size)``, padded to a multiple of the device count), over ``devices`` (default:
    the first device) as ``popsim run --devices`` does (:func:`popsim.devices.simulate_arms`),
    with ``solver`` (default: :class:`popsim.solve.SolverSettings`'s)."""
    conf, prot = workload(rtol, atol)
    s = _settings(conf)
    if solver is not None:
        s = dataclasses.replace(s, solver=solver)
    devices = list(devices) if devices else jax.devices()[:1]
    ts = jnp.asarray(conf.simulation.output_times)
    chunk = -(-min(n, chunk_size) // len(devices)) * len(devices)
    n_chunks = -(-n // chunk)
    t_ss = t_sim = 0.0
    steps, compile_s, programs = [], None, None

    def timed(cohort):
        parts = pdev.place_parts((cohort.params, cohort.patients), devices)
        t0 = time.perf_counter()
        starts = pdev.parts_steady_states(parts, s)  # every device's Newton starts first
        t1 = time.perf_counter()
        results = [batch.simulate_observe_jit(p, q, prot, y0, ts, s)[1:]
                   for (p, q), (y0, _) in zip(parts, starts, strict=True)]
        status, nsteps = (np.concatenate([np.asarray(r[i]) for r in results]) for i in (0, 1))
        return t1 - t0, time.perf_counter() - t1, status, nsteps

    failed = 0
    key = (chunk, len(devices), s)
    new_shape = key not in _COMPILED_SHAPES
    _COMPILED_SHAPES.add(key)
    for c in range(n_chunks):
        cohort = sample_cohort(conf.population, conf.population.seed, c * chunk, chunk)
        if c == 0 and new_shape:  # compile as `popsim run` does, timed; then the chunk warm
            compile_s, programs, (ss, sim, status, nsteps) = _compile_timed(
                cohort, devices, prot, ts, s, timed)
        else:
            ss, sim, status, nsteps = timed(cohort)
        t_ss += ss
        t_sim += sim
        failed += int((status != 0).sum())
        steps.append(nsteps)
        if progress:
            progress(chunk)
    steps = np.concatenate(steps)[:n]
    days = conf.simulation.days
    return {"method": "popsim" if solver is None else f"popsim_{solver}", "patients": n,
            "chunk_size": chunk, "days": days, "devices": len(devices), "solver": s.solver,
            "patient_days_per_s": n * days / t_sim, "simulate_seconds": t_sim,
            "steady_state_seconds": t_ss, "compile_seconds": compile_s,
            "compile_counts": programs,
            "patient_days_per_s_with_steady_states": n * days / (t_sim + t_ss),
            "steps_per_patient_median": float(np.median(steps)),
            "steps_per_patient_mean": float(np.mean(steps)),
            "steps_per_patient_max": int(steps.max()),
            "failed": failed}


ACCURACY_PATIENTS = 4  # the first patients of the cohort, compared with a tight reference
ACCURACY_OUTPUTS = ("serum_mg", "serum_k", "serum_na", "serum_ca", "intracellular_k",
                    "intracellular_na", "urine_mg", "urine_k")
_REFERENCE: dict = {}


def reference_outputs(rtol: float = 1e-6, atol: float = 1e-8) -> dict:
    """:data:`ACCURACY_OUTPUTS` of the first :data:`ACCURACY_PATIENTS` patients of the workload,
    ``(patient, day)``, solved by popsim with Kvaerno5 at rtol 1e-10 (the accuracy reference)."""
    if not _REFERENCE:
        conf, prot = workload(rtol, atol)
        tight = solve.SolverSettings(rtol=1e-10, atol=1e-12, solver="kvaerno5",
                                     newton_rtol=1e-11, newton_atol=1e-12, max_steps=200_000)
        cohort = sample_cohort(conf.population, conf.population.seed, 0, ACCURACY_PATIENTS)
        y0, _ = pdev.steady_states_with_fallback(cohort.params, cohort.patients, tight)
        ts = jnp.asarray(conf.simulation.output_times)
        obs, _, _ = batch.simulate_observe_jit(cohort.params, cohort.patients, prot, y0, ts,
                                                   tight)
        _REFERENCE.update({k: np.asarray(obs[k]) for k in ACCURACY_OUTPUTS})
    return _REFERENCE


def max_relative_error(outputs: dict) -> float:
    """Largest relative deviation from :func:`reference_outputs` over the accuracy outputs,
    patients and days (``outputs``: name -> ``(ACCURACY_PATIENTS, day)``)."""
    ref = reference_outputs()
    return max(float(np.max(np.abs(np.asarray(outputs[k]) - ref[k]) / np.abs(ref[k])))
               for k in ACCURACY_OUTPUTS)


def relative_errors(a, b, floor: float = 1e-2) -> dict[str, float]:
    """Per output of two cohort datasets (:func:`popsim.open_dataset`) of the same patients:
    the largest ``|a - b| / scale`` over patients, arms and days, with ``scale`` = ``|b|``, or
    ``floor`` times the largest ``|b|`` of that patient's time course where that is larger
    (outputs that pass through zero, such as net Mg absorption on a Mg-poor diet). Patient-days
    unsolved in either are left out."""
    out = {}
    for name in b.data_vars:
        if "day" not in b[name].dims or b[name].dtype.kind != "f":
            continue
        x, ref = np.asarray(a[name], float), np.asarray(b[name], float)
        with np.errstate(invalid="ignore", divide="ignore"):
            peak = np.nanmax(np.abs(ref), axis=-1, keepdims=True)
            scale = np.maximum(np.abs(ref), floor * peak)
            err = np.abs(x - ref) / scale
        ok = np.isfinite(ref) & np.isfinite(x) & (scale > 0)
        out[name] = float(np.max(err[ok])) if ok.any() else float("nan")
    return out


def scipy_rate(method: str, n: int = 4, rtol: float = 1e-6, atol: float = 1e-8) -> dict:
    """Patient-days per second of SciPy ``solve_ivp`` one patient after another."""
    from jax.flatten_util import ravel_pytree
    from scipy.integrate import solve_ivp

    conf, prot = workload(rtol, atol)
    s = _settings(conf)
    cohort = sample_cohort(conf.population, conf.population.seed, 0, n)
    y0s, _ = pdev.steady_states_with_fallback(cohort.params, cohort.patients, s)
    days = conf.simulation.days
    p0 = jax.tree.map(lambda x: x[0], cohort.params)
    q0 = jax.tree.map(lambda x: x[0], cohort.patients)
    unravel: Callable[..., tuple[Params, model.Patient]]  # of a JAX or NumPy vector
    theta0, unravel = ravel_pytree((p0, q0))

    @jax.jit
    def rhs(t, y, theta):
        p, q = unravel(theta)
        return jnp.stack(model.derivatives(y, p, q, prot.inputs(t, q)))

    jac = jax.jit(jax.jacfwd(rhs, argnums=1))
    cuts = sorted({0.0, days, *[float(x) for x in np.asarray(prot.jump_times())
                                 if 0 < x < days]})
    wall, nfev = 0.0, 0
    observe = jax.jit(lambda th, ts, ys: solve.observe_series(*unravel(th), prot, ts, ys))
    kept = {k: [] for k in ACCURACY_OUTPUTS}
    for i in range(n):
        theta = ravel_pytree(jax.tree.map(lambda x, i=i: x[i], (cohort.params,
                                                                 cohort.patients)))[0]
        theta = np.asarray(theta)
        y = np.asarray(y0s[i])
        scale = np.asarray(model.state_scale(*unravel(theta)))
        f = lambda t, y, th=theta: np.asarray(rhs(t, y, th))  # noqa: E731
        J = lambda t, y, th=theta: np.asarray(jac(t, y, th))  # noqa: E731
        f(0.0, y)  # compile outside the timing
        J(0.0, y)
        t0 = time.perf_counter()
        days_done, states = [], []
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            t_eval = np.arange(np.ceil(a), np.floor(b) + 1)
            sol = solve_ivp(f, (a, b), y, method=method, t_eval=t_eval, rtol=rtol,
                            atol=atol * scale, jac=J)
            y = sol.y[:, -1]
            nfev += sol.nfev
            keep = ~np.isin(sol.t, days_done)  # a breakpoint day is saved once
            days_done += list(sol.t[keep])
            states.append(sol.y[:, keep].T)
        wall += time.perf_counter() - t0
        if i < ACCURACY_PATIENTS:
            obs = observe(theta, jnp.asarray(days_done), jnp.asarray(np.concatenate(states)))
            for k in ACCURACY_OUTPUTS:
                kept[k].append(np.asarray(obs[k]))
    return {"method": f"scipy_{method.lower()}", "patients": n, "days": days,
            "patient_days_per_s": n * days / wall, "simulate_seconds": wall,
            "rhs_evaluations_per_patient": nfev / n,
            "max_relative_error": (max_relative_error(kept) if n >= ACCURACY_PATIENTS
                                   else None),
            "note": "solve_ivp, jitted JAX right-hand side and Jacobian called from NumPy"}


def roadrunner_rate(n: int = 20, rtol: float = 1e-6, atol: float = 1e-8, accuracy: bool = True,
                    steady_batch: int | None = None, devices=None) -> dict:
    """Patient-days per second of libRoadRunner (CVODE) one patient after another on the SBML
    export of the same model and workload (``popsim export-sbml``).

    The model is exported and compiled once (its arm as piecewise inputs); for each patient the
    loop sets the patient's sampled parameters, covariates and steady state, then simulates 365
    days with daily outputs of every output: what a libRoadRunner user would write. CVODE
    at the same rtol and a scalar atol of ``atol`` (mmol, pmol/L or L: at least as tight as
    popsim's ``atol`` times each state's reference pool, since every pool is >= 1).
    ``accuracy``: also the max relative error against :func:`reference_outputs`;
    ``steady_batch``, ``devices``: solve the steady states in a batch of this size over these
    devices (the shape :func:`popsim_rate` compiled, so nothing compiles again).
    """
    import roadrunner

    from popsim import observables, sbml

    conf, prot = workload(rtol, atol)
    spec, patients = _roadrunner_patients(conf, prot, n, steady_batch, devices)
    t0 = time.perf_counter()
    rr = roadrunner.RoadRunner(sbml.to_sbml(spec))
    load_s = time.perf_counter() - t0
    rr.integrator.relative_tolerance = rtol
    rr.integrator.absolute_tolerance = atol
    rr.integrator.maximum_num_steps = conf.simulation.step_budget
    days = conf.simulation.days
    selections = ["time"] + [o.name for o in observables.OUTPUTS]
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
    return {"method": "libroadrunner", "patients": n, "days": days,
            "patient_days_per_s": n * days / wall, "simulate_seconds": wall,
            "compile_seconds": load_s, "failed": failed,
            "max_relative_error": (max_relative_error(kept)
                                   if accuracy and n >= ACCURACY_PATIENTS else None),
            "note": f"libRoadRunner {roadrunner.__version__} CVODE on the SBML export, one "
                    "patient after another; compile = SBML load and LLVM compile"}


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


def popsim_accuracy(rows: list, rtol: float, atol: float, devices) -> None:
    """Add ``max_relative_error`` to every popsim row: the same solve (solver, tolerances) on
    the first :data:`ACCURACY_PATIENTS` patients against :func:`reference_outputs`."""
    conf, prot = workload(rtol, atol)
    cohort = sample_cohort(conf.population, conf.population.seed, 0, ACCURACY_PATIENTS)
    ts = jnp.asarray(conf.simulation.output_times)
    for r in rows:
        if not r["method"].startswith("popsim"):
            continue
        s = dataclasses.replace(_settings(conf), solver=r["solver"])
        y0, _ = pdev.steady_states_with_fallback(cohort.params, cohort.patients, s)
        obs, _, _ = batch.simulate_observe_jit(cohort.params, cohort.patients, prot, y0, ts,
                                                   s)
        r["max_relative_error"] = max_relative_error({k: obs[k] for k in ACCURACY_OUTPUTS})


def machine() -> dict:
    dev = jax.devices()[0]
    return {"platform": platform.platform(), "processor": platform.processor() or "unknown",
            "cpu_count": os.cpu_count(), "device_kind": dev.device_kind,
            "backend": dev.platform, "device_count": jax.device_count()}


def _solver_description() -> str:
    s = solve.SolverSettings()
    k = solve.CONTROLLER_TOLERANCE_SCALE.get(s.solver, 1.0)
    if cfg.SOLVERS[s.solver][0] != "rosenbrock":
        return f"{s.solver}, PID controller"
    linear = type(solve._make_solver(s).linear_solver).__name__
    return (f"{s.solver} (Rosenbrock, {linear} linear solver) on "
            f"{len(jax.local_devices())} device(s), PID controller at {k:g} x (rtol, atol)")


def run_benchmark(sizes=(100, 1000, 10_000), scipy_patients: int = 4, rtol: float = 1e-6,
                  atol: float = 1e-8, out: str | Path | None = None,
                  table: str | Path | None = None,
                  devices=None, previous: str | None = "kvaerno3",
                  roadrunner_patients: int = 200, accuracy: bool = True,
                  end_to_end: int = 0, end_to_end_repeats: int = 1) -> dict:
    """Run every method; returns the results, and writes them as JSON to ``out`` and as a
    Markdown table into ``table`` when given.

    popsim runs on ``devices`` (default: every local device; on CPU set
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` before JAX starts, as
    ``benchmarks/throughput.py --devices N`` does); with ``previous``, that solver (the previous
    default) is also timed on min(1000, largest size) patients, side by side. ``accuracy``:
    the max relative error of every row against a tight reference (one more compilation);
    ``end_to_end``: also time a ``popsim run`` command of this many patients on the same
    workload, ``end_to_end_repeats`` times (:func:`popsim.bench_run.end_to_end`).

    Raises:
        BenchError: ``roadrunner_patients`` without libRoadRunner installed.
    """
    require_roadrunner(roadrunner_patients)
    devices = jax.local_devices() if devices is None else devices
    from popsim.progress import Progress

    rows = []
    with jax.enable_x64(True):
        for n in sizes:
            with Progress(f"popsim, {n:,} patients", n, "patients") as bar:
                bar.phase("compiling")
                rows.append(popsim_rate(n, rtol=rtol, atol=atol, devices=devices,
                                        progress=bar.advance))
        if previous:
            n = min(1000, max(sizes))
            with Progress(f"popsim {previous}, {n:,} patients", n, "patients") as bar:
                bar.phase("compiling")
                rows.append(popsim_rate(n, rtol=rtol, atol=atol, devices=devices,
                                        solver=previous, progress=bar.advance))
        if roadrunner_patients:
            rows.append(roadrunner_rate(roadrunner_patients, rtol, atol, accuracy,
                                        min(max(sizes), 1000), devices))
        for m in ("BDF", "LSODA"):
            if scipy_patients:
                rows.append(scipy_rate(m, scipy_patients, rtol, atol))
        if accuracy:
            popsim_accuracy(rows, rtol, atol, devices)
    rr = _ratios(rows, os.cpu_count() or 1)
    result = {"benchmark": "throughput", "popsim_version": __version__,
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": machine(), "versions": library_versions(), "dtype": "float64",
              "solver": _solver_description(), "rtol": rtol,
              "atol_relative_to_reference_pools": atol, "workload": WORKLOAD.strip(),
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "rows": rows}
    if end_to_end:
        from popsim.bench_run import end_to_end as run_end_to_end

        result["end_to_end"] = run_end_to_end(end_to_end, rtol, atol, len(devices), rr,
                                              repeats=end_to_end_repeats)
    _write_outputs(result, out, table)
    return result


def _write_outputs(result: dict, out, table) -> None:
    """The result as JSON to ``out`` and as a Markdown table into ``table`` (when given)."""
    from popsim.bench_report import _write_table, markdown
    from popsim.files import write_text

    if out is not None:
        write_text(out, json.dumps(result, indent=2) + "\n")
    if table is not None:
        _write_table(Path(table), markdown(result))


def _ratios(rows: list[dict], cores: int) -> float:
    """Each row's rate over the best SciPy method's and over libRoadRunner's on all ``cores``
    (its one-process rate times ``cores``: independent patients in as many processes, assumed
    to scale perfectly, which favours libRoadRunner); returns the latter rate. popsim is
    given the whole machine: with one device per core its devices use every core, and with
    fewer devices XLA's CPU thread pool can still use them, so the comparison is with
    libRoadRunner on every core too."""
    best_peer = max((r["patient_days_per_s"] for r in rows
                     if r["method"].startswith("scipy")), default=float("nan"))
    rr = cores * next((r["patient_days_per_s"] for r in rows if r["method"] == "libroadrunner"),
                      float("nan"))
    for r in rows:
        r["ratio_to_best_scipy"] = r["patient_days_per_s"] / best_peer
        r["ratio_to_libroadrunner"] = r["patient_days_per_s"] / rr
    return rr
