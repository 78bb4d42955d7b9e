"""Throughput of the batched time course, variant by variant, side by side in one process.

Workload: ``--patients`` virtual US adults (``configs/us_adults.toml`` population), 365 days,
daily outputs, 50 mg/day Mg for 180 days then their usual intake (the ``popsim bench`` arm on the
realistic population), rtol 1e-6 / atol 1e-8 (what a config sets; the Rosenbrock solvers run
their controller 10x tighter, ``popsim.solve.CONTROLLER_TOLERANCE_SCALE``). Steady states are
solved once, outside the timings; every variant solves the same patients from the same states.

Variants (all ``solve.batched_simulate_observe`` unless said otherwise):

* ``kvaerno3``: the previous default (Kvaerno3, full-Newton stages), one device;
* ``rodas5p-lu`` / ``rodas5p``: Rodas5P with lineax's LU (LAPACK) / with ``popsim.linear.SmallLU``
  (the default);
* ``rodas4``;
* ``rodas5p-float32-rtolX``: the default in float32 (``precision = "float32"``) at rtol X (at
  rtol 1e-6 the controller's 1e-7 is float32's resolution: every patient hits max_steps);
* ``grouped-oracle-G`` / ``grouped-pilot-G``: the patients sorted by their step count (known from
  a previous run: the best any predictor could do) or by the step count of a cheap pilot solve
  (rtol 1e-3, final time only; its time is included), solved in sub-batches of ``G`` one after
  another and put back in order (the slowest-lane effect);
* with ``--host-devices 2`` or more: ``threads-N`` (``popsim.solve.split_over_devices``: one
  part per device, each the one-device program, in host threads; what ``popsim run --devices``
  does), ``auto-N`` (``jit`` over a ``NamedSharding``: XLA partitions the program) and
  ``shard_map-N`` (one program per device under ``jax.shard_map``).

For each: patient-days per second (best of ``--repeats`` interleaved rounds; the machine is
shared, so only the side-by-side ratios mean much), steps per patient (mean, max, max/mean: the
batched while loop runs max-over-the-batch iterations), the max relative error of the outputs
over the first 16 patients against Kvaerno5 at rtol 1e-10, and whether every patient's outputs
are bit-identical to the one-device default's. For Kvaerno3, Newton iterations per step are
counted on a few patients solved one at a time.

Writes ``benchmarks/results/throughput_variants.json`` and ``.md``.

Usage: python benchmarks/throughput_variants.py [--patients 2000] [--host-devices 2]
"""

from __future__ import annotations

import argparse
import os
import sys


def _early_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=2000)
    ap.add_argument("--host-devices", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--group-sizes", default="250,500")
    ap.add_argument("--variants", default=None, help="comma-separated subset")
    ap.add_argument("--out", default="benchmarks/results/throughput_variants.json")
    return ap.parse_args(argv)


ARGS = _early_args(sys.argv[1:]) if __name__ == "__main__" else None
if ARGS is not None and ARGS.host_devices > 1:  # before JAX starts
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_"
                               f"device_count={ARGS.host_devices}").strip()

import dataclasses  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import tomllib  # noqa: E402
from pathlib import Path  # noqa: E402

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import lineax as lx  # noqa: E402
import numpy as np  # noqa: E402
import optimistix as optx  # noqa: E402

from popsim import config as cfg  # noqa: E402
from popsim import rosenbrock, solve  # noqa: E402
from popsim._version import library_versions  # noqa: E402
from popsim.population import sample_cohort  # noqa: E402
from popsim.run import arm_protocol, output_times  # noqa: E402

ARM = """
[[arm]]
name = "depletion_then_repletion"
[[arm.intervention]]
kind = "diet"
mg_intake = 50
start_day = 0
end_day = 180
"""
ERROR_OUTPUTS = ("serum_mg", "serum_k", "serum_na", "serum_ca", "intracellular_mg",
                 "intracellular_k", "intracellular_na", "pth", "urine_mg", "urine_k")
N_REF = 16
RTOL, ATOL = 1e-6, 1e-8


def workload(n):
    text = Path("configs/us_adults.toml").read_text() + ARM
    conf = cfg.parse_config(tomllib.loads(text))
    prot = arm_protocol(conf.arms[0], conf.simulation.days, 4, jnp.float64)
    ts = jnp.asarray(output_times(conf.simulation))
    c = sample_cohort(conf.population, conf.population.seed, 0, n)
    y0, ok = solve.steady_states_with_fallback(c.params, c.patients, solve.SolverSettings())
    assert bool(ok.all())
    return conf, prot, ts, c.params, c.patients, y0


def settings(conf, **kw):
    return dataclasses.replace(solve.SolverSettings(rtol=RTOL, atol=ATOL,
                                                    max_steps=conf.simulation.step_budget), **kw)


def newton_iterations(conf, prot, ts, params, patients, y0, n=4):
    """Kvaerno3: Newton iterations per stage solve and per step, patients solved one by one."""
    counts = []
    orig = optx.root_find

    def counting_root_find(*a, **k):
        sol = orig(*a, **k)
        jax.debug.callback(lambda s: counts.append(int(s)), sol.stats["num_steps"])
        return sol

    s = settings(conf, solver="kvaerno3")
    f = jax.jit(lambda p, q, y: solve.simulate(p, q, prot, y, ts, s))
    steps = 0
    optx.root_find = counting_root_find
    try:
        for i in range(n):
            take = lambda x, i=i: x[i]  # noqa: E731
            _, _, st = f(jax.tree.map(take, params), jax.tree.map(take, patients), y0[i])
            steps += int(st)
            jax.effects_barrier()
    finally:
        optx.root_find = orig
    return {"stage_solves_per_step": len(counts) / steps,
            "newton_iterations_per_stage_solve": float(np.mean(counts)),
            "newton_iterations_per_step": float(np.sum(counts)) / steps,
            "steps_per_patient": steps / n}


def lapack_lu(s, batch, prot, ts):
    """The default's batched program with one change: Rodas5P's linear systems solved by
    lineax's LU (LAPACK ``getrf``/``trsm``, batched by jaxlib) instead of ``SmallLU``.

    ``popsim.solve`` always builds its Rosenbrock solver with ``SmallLU``, so this traces
    ``solve.simulate`` under its own ``jax.jit`` (not ``batched_simulate_observe``'s, which is
    cached by the settings) with ``solve._make_solver`` swapped while tracing."""
    def one(p, q, y):
        return _one(p, q, y, prot, ts, s)

    f = jax.jit(jax.vmap(one))
    lowered = []

    def run():
        if not lowered:
            make = solve._make_solver
            solve._make_solver = lambda s: rosenbrock.Rodas5P(time_derivative=False,
                                                              linear_solver=lx.LU())
            try:
                with solve._checks_without_callbacks():
                    lowered.append(f.lower(*batch).compile())
            finally:
                solve._make_solver = make
        return lowered[0](*batch)

    return run


def main():
    args = ARGS
    conf, prot, ts, params, patients, y0 = workload(args.patients)
    n = args.patients
    devices = jax.local_devices()
    batch = (params, patients, y0)
    take = lambda tree, idx: jax.tree.map(lambda x: x[idx], tree)  # noqa: E731

    def one_device(s, b=batch, t=ts, prot=prot):
        return solve.batched_simulate_observe(b[0], b[1], prot, b[2], t, s)

    default = settings(conf)
    variants = {
        "kvaerno3": lambda: one_device(settings(conf, solver="kvaerno3")),
        "rodas5p-lu": lapack_lu(default, batch, prot, ts),
        "rodas5p": lambda: one_device(default),
        "rodas4": lambda: one_device(settings(conf, solver="rodas4")),
    }
    f32 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32) if x.dtype == jnp.float64 else x,
                       (batch, ts, prot))
    for rt in (1e-5, 1e-4):  # float32 cannot meet rtol 1e-6 (controller 1e-7 ~ its epsilon)
        s32 = settings(conf, rtol=rt, atol=rt * 1e-2)
        variants[f"rodas5p-float32-rtol{rt:.0e}"] = (
            lambda s32=s32: one_device(s32, f32[0], f32[1], f32[2]))

    # slowest lane: sorted sub-batches (steps known from the one-device run, or from a pilot)
    base_steps = np.asarray(one_device(default)[2])
    pilot_s = settings(conf, rtol=1e-3, atol=1e-5)
    pilot_ts = ts[jnp.array([0, -1])]
    pilot = jax.jit(jax.vmap(lambda p, q, y: solve.simulate(p, q, prot, y, pilot_ts, pilot_s)[2]))

    def grouped(order_fn, g):
        def run():
            order = order_fn()
            inv = np.argsort(order)
            parts = [one_device(default, take(batch, order[k:k + g]))
                     for k in range(0, n, g)]  # dispatched asynchronously, run one after another
            joined = jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *parts)
            return jax.tree.map(lambda x: x[inv], joined)
        return run

    for g in (int(x) for x in args.group_sizes.split(",")):
        if n % g == 0 and g < n:
            variants[f"grouped-oracle-{g}"] = grouped(
                lambda: np.argsort(base_steps, kind="stable"), g)
            variants[f"grouped-pilot-{g}"] = grouped(
                lambda: np.argsort(np.asarray(pilot(*batch)), kind="stable"), g)

    if len(devices) > 1:
        from jax.sharding import Mesh, NamedSharding
        from jax.sharding import PartitionSpec as P

        nd = len(devices)
        mesh = Mesh(np.array(devices), ("patient",))
        sharded = jax.tree.map(lambda x: jax.device_put(x, NamedSharding(mesh, P("patient"))),
                               batch)

        def vm(p, q, y):
            return jax.vmap(lambda p, q, y: _one(p, q, y, prot, ts, default))(p, q, y)

        smap = jax.jit(jax.shard_map(vm, mesh=mesh, in_specs=(P("patient"),) * 3,
                                     out_specs=P("patient"), check_vma=False))
        variants[f"threads-{nd}"] = lambda: solve.split_over_devices(
            lambda b: one_device(default, b), batch, devices)
        variants[f"auto-{nd}"] = lambda: one_device(default, sharded)
        variants[f"shard_map-{nd}"] = lambda: smap(*sharded)

    if args.variants:
        keep = set(args.variants.split(",")) | {"rodas5p"}
        variants = {k: v for k, v in variants.items() if k in keep}

    ref_s = solve.SolverSettings(solver="kvaerno5", rtol=1e-10, atol=1e-12, newton_rtol=1e-8,
                                 newton_atol=1e-10, max_steps=400_000)
    ref = one_device(ref_s, take(batch, slice(0, N_REF)))[0]
    base = jax.tree.map(np.asarray, variants["rodas5p"]())
    rows = {}
    for name, fn in variants.items():
        t0 = time.perf_counter()
        out, status, steps = jax.tree.map(np.asarray, fn())
        first = time.perf_counter() - t0
        steps = steps.astype(float)
        rows[name] = dict(
            variant=name, first_call_seconds=first, seconds=[],
            steps_mean=float(steps.mean()), steps_max=int(steps.max()),
            max_over_mean=float(steps.max() / steps.mean()),
            failed=int((status != 0).sum()),
            max_rel_error=max(float(np.max(np.abs(out[k][:N_REF] / np.asarray(ref[k]) - 1)))
                              for k in ERROR_OUTPUTS),
            identical_to_default=all(np.array_equal(out[k], base[0][k]) for k in out))
        print(f"{name}: first call {first:.1f} s", file=sys.stderr, flush=True)
    for _ in range(args.repeats):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            rows[name]["seconds"].append(time.perf_counter() - t0)
    for r in rows.values():
        r["best_seconds"] = min(r["seconds"])
        r["patient_days_per_s"] = n * 365.0 / r["best_seconds"]
    rate0 = rows["kvaerno3"]["patient_days_per_s"] if "kvaerno3" in rows else None
    for r in rows.values():
        r["speedup_vs_kvaerno3"] = r["patient_days_per_s"] / rate0 if rate0 else None
        print(f"{r['variant']:22s} {r['patient_days_per_s']:10,.0f} patient-days/s  "
              f"steps {r['steps_mean']:6.1f} max {r['steps_max']:4d} "
              f"({r['max_over_mean']:.2f})  err {r['max_rel_error']:.1e}  identical "
              f"{r['identical_to_default']}  times {[f'{x:.2f}' for x in r['seconds']]}")
    newton = newton_iterations(conf, prot, ts, params, patients, y0) \
        if "kvaerno3" in variants else None
    if newton:
        print("kvaerno3 Newton:", newton)
    result = dict(
        benchmark="throughput_variants",
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        machine=f"{platform.platform()}, {os.cpu_count()} CPU cores",
        host_devices=len(devices), versions=library_versions(), patients=n, days=365,
        rtol=RTOL, atol=ATOL, repeats=args.repeats, reference="Kvaerno5, rtol 1e-10",
        kvaerno3_newton=newton, rows=list(rows.values()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(f"wrote {out} and {out.with_suffix('.md')}")


def _one(p, q, y, prot, ts, s):
    ys, status, steps = solve.simulate(p, q, prot, y, ts, s)
    return solve.observe_series(p, q, prot, ts, ys), status, steps


def markdown(result) -> str:
    lines = [
        "# Throughput variants", "",
        f"Written by `benchmarks/throughput_variants.py`, {result['created']}; "
        f"{result['machine']} ({result['host_devices']} host device(s)), float64 unless said. "
        f"{result['patients']:,} US adults, 365 days, daily outputs, Mg-poor diet 180 days then "
        f"usual intake; rtol {result['rtol']:g}, atol {result['atol']:g}. Rate: best of "
        f"{result['repeats']} interleaved rounds (shared machine). Error: max relative error of "
        f"10 outputs over the first {N_REF} patients against {result['reference']}.", "",
        "| variant | patient-days/s | × kvaerno3 | steps/patient mean | max | max/mean | "
        "max rel. error | bit-identical to rodas5p |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:
        sp = f"{r['speedup_vs_kvaerno3']:.1f}" if r["speedup_vs_kvaerno3"] else "-"
        lines.append(f"| {r['variant']} | {r['patient_days_per_s']:,.0f} | {sp} | "
                     f"{r['steps_mean']:.1f} | {r['steps_max']} | {r['max_over_mean']:.2f} | "
                     f"{r['max_rel_error']:.1e} | {'yes' if r['identical_to_default'] else 'no'} |")
    nw = result.get("kvaerno3_newton")
    if nw:
        lines += ["", f"Kvaerno3 (one patient at a time): {nw['stage_solves_per_step']:.1f} stage "
                  f"solves per step, {nw['newton_iterations_per_stage_solve']:.2f} Newton "
                  f"iterations per stage solve ({nw['newton_iterations_per_step']:.1f} per step, "
                  "each a Jacobian and an LU); Rodas5P: 1 Jacobian, 1 LU, 8 right-hand sides per "
                  "step."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
