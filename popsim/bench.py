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

from popsim import batch, compilation, model, solve
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
        compilation.make_room_for_programs()  # this program bypasses devices.compile_ahead
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


def popsim_accuracy(rows: list, rtol: float, atol: float, devices) -> None:
    """Add ``max_relative_error`` to every popsim row: the same solve (solver; the row's
    ``rtol``, default ``rtol``, with atol scaled with it as the bench's) on the first
    :data:`ACCURACY_PATIENTS` patients against :func:`reference_outputs`."""
    conf, prot = workload(rtol, atol)
    cohort = sample_cohort(conf.population, conf.population.seed, 0, ACCURACY_PATIENTS)
    ts = jnp.asarray(conf.simulation.output_times)
    for r in rows:
        if not r["method"].startswith("popsim"):
            continue
        compilation.make_room_for_programs()  # these programs bypass devices.compile_ahead
        row_rtol = r.get("rtol", rtol)
        s = dataclasses.replace(_settings(workload(row_rtol, atol * row_rtol / rtol)[0]),
                                solver=r["solver"])
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


POPSIM_RTOLS = (1e-5, 1e-4)
"""Further tolerances of popsim's work-precision rows (``popsim run``'s default, 1e-5, and a
looser one), each on the largest cohort size; atol scales with rtol as the bench's."""
ROADRUNNER_RTOLS = (1e-7, 1e-8, 1e-9, 1e-10)
"""Further tolerances of libRoadRunner's rows: its curve of rate against error, from which
popsim's ratio at equal accuracy is read (:func:`popsim.bench_roadrunner.equal_accuracy_ratio`)."""


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
    the max relative error of every row against a tight reference (one more compilation), and
    the work-precision rows (popsim at :data:`POPSIM_RTOLS`, libRoadRunner at
    :data:`ROADRUNNER_RTOLS`) that give each popsim row its ratio at equal accuracy;
    ``end_to_end``: also time a ``popsim run`` command of this many patients on the same
    workload, ``end_to_end_repeats`` times (:func:`popsim.bench_run.end_to_end`).

    Raises:
        BenchError: ``roadrunner_patients`` without libRoadRunner installed.
    """
    from popsim.bench_roadrunner import roadrunner_rates

    require_roadrunner(roadrunner_patients)
    devices = jax.local_devices() if devices is None else devices
    with jax.enable_x64(True):
        rows = _popsim_rows(sizes, rtol, atol, devices, accuracy, previous)
        if roadrunner_patients:
            ladder = [(r, atol * r / rtol) for r in ROADRUNNER_RTOLS if accuracy and r != rtol]
            rows += roadrunner_rates(roadrunner_patients, [(rtol, atol), *ladder], accuracy,
                                     min(max(sizes), 1000), devices)
        for m in ("BDF", "LSODA"):
            if scipy_patients:
                rows.append(scipy_rate(m, scipy_patients, rtol, atol) | {"rtol": rtol})
        if accuracy:
            popsim_accuracy(rows, rtol, atol, devices)
    rr = _ratios(rows, os.cpu_count() or 1, rtol)
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


def _popsim_rows(sizes, rtol: float, atol: float, devices, accuracy: bool,
                 previous: str | None) -> list[dict]:
    """popsim's rows of :func:`run_benchmark`: each size at ``rtol``, the largest at
    :data:`POPSIM_RTOLS` when ``accuracy``, and ``previous`` (a solver) on up to 1,000."""
    from popsim.progress import Progress

    rows = []
    for n, r in [(n, rtol) for n in sizes] + [(max(sizes), r) for r in POPSIM_RTOLS
                                               if accuracy and r != rtol]:
        with Progress(f"popsim, {n:,} patients, rtol {r:g}", n, "patients") as bar:
            bar.phase("compiling")
            rows.append(popsim_rate(n, rtol=r, atol=atol * r / rtol, devices=devices,
                                    progress=bar.advance) | {"rtol": r})
    if previous:
        n = min(1000, max(sizes))
        with Progress(f"popsim {previous}, {n:,} patients", n, "patients") as bar:
            bar.phase("compiling")
            rows.append(popsim_rate(n, rtol=rtol, atol=atol, devices=devices,
                                    solver=previous, progress=bar.advance) | {"rtol": rtol})
    return rows


def _write_outputs(result: dict, out, table) -> None:
    """The result as JSON to ``out`` and as a Markdown table into ``table`` (when given)."""
    from popsim.bench_report import _write_table, markdown
    from popsim.files import write_text

    if out is not None:
        write_text(out, json.dumps(result, indent=2) + "\n")
    if table is not None:
        _write_table(Path(table), markdown(result))


def _ratios(rows: list[dict], cores: int, rtol: float | None = None) -> float:
    """Each row's rate over the best SciPy method's and over libRoadRunner's at ``rtol`` (the
    first libRoadRunner row when not given) on all ``cores`` (its one-process rate times
    ``cores``: independent patients in as many processes, assumed to scale perfectly, which
    favours libRoadRunner), and each popsim row's ratio at equal accuracy (libRoadRunner's
    rows as the curve); returns libRoadRunner's rate at ``rtol``. popsim is given the whole
    machine: with one device per core its devices use every core, and with fewer devices XLA's
    CPU thread pool can still use them, so the comparison is with libRoadRunner on every core
    too."""
    from popsim.bench_roadrunner import equal_accuracy_ratio

    best_peer = max((r["patient_days_per_s"] for r in rows
                     if r["method"].startswith("scipy")), default=float("nan"))
    peers = [r for r in rows if r["method"] == "libroadrunner"]
    rr = cores * next((r["patient_days_per_s"] for r in peers
                       if rtol is None or r.get("rtol", rtol) == rtol), float("nan"))
    for r in rows:
        r["ratio_to_best_scipy"] = r["patient_days_per_s"] / best_peer
        r["ratio_to_libroadrunner"] = r["patient_days_per_s"] / rr
        if r["method"].startswith("popsim") and len(peers) > 1:
            r.update(equal_accuracy_ratio(r, peers, cores))
    return rr
