"""The compiled time course in groups of lanes against one vmapped batch, side by side in one
process.

Workload: the bench workload (``popsim/bench.py``: 365 days, daily outputs, a Mg-poor diet for
180 days then usual intake), ``--size`` patients at their steady states, one device, float64.
Variants: ``one batch`` (``popsim.batch.simulate_observe`` vmapped over all patients, the time
course before lane groups) and ``groups of G`` (``popsim.batch.simulate_observe_in_groups`` with
``LANE_GROUP_CPU = G``: ``jax.lax.map`` over groups of at most G lanes). Each variant is
compiled once, then timed ``--repeats`` times, the variants interleaved round by round; the
figure is the best round (the machine may be shared). Also recorded: steps per patient (mean
and max: a vmapped batch runs until its slowest lane is done) and whether every output of
every patient is the same bits as with the shipped group size.

Writes benchmarks/results/lane_groups.json and a section of benchmarks/RESULTS.md.

Usage: python benchmarks/lane_groups.py [--size 4000] [--groups 64 128 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from popsim import batch, bench, solve  # noqa: E402
from popsim.bench_report import save_script_results  # noqa: E402
from popsim.population import sample_cohort  # noqa: E402

HERE = Path(__file__).resolve().parent


def _variants(groups: list[int], prot, ts, s):
    """name -> (jitted ``(params, patients, y0) -> (outputs, steps)``, group size or None)."""
    def grouped(g):
        def fn(p, pts, y0):
            batch.LANE_GROUP_CPU = g  # read at trace time, by lane_groups
            out, _, steps = batch.simulate_observe_in_groups(p, pts, prot, y0, ts, s)
            return out, steps
        return fn

    def one_batch(p, pts, y0):
        out, _, steps = batch.simulate_observe(p, pts, prot, y0, ts, s)
        return out, steps

    rows = {"one batch": (jax.jit(one_batch), None)}
    rows.update({f"groups of {g}": (jax.jit(grouped(g)), g) for g in groups})
    return rows


def measure(size: int, groups: list[int], repeats: int) -> dict:
    conf, prot = bench.workload()
    s = solve.SolverSettings.from_simulation(conf.simulation)
    cohort = sample_cohort(conf.population, conf.population.seed, 0, size)
    p, pts = cohort.params, cohort.patients
    y0, ok = batch.steady_states_jit(p, pts, s)
    y0 = batch.reference_if_failed(y0, ok, p, pts)
    ts = jnp.asarray(conf.simulation.output_times)
    shipped = batch.LANE_GROUP_CPU
    variants = _variants(groups, prot, ts, s)
    results, outputs = {}, {}
    for name, (fn, _) in variants.items():  # compile (and a first run) outside the timings
        t0 = time.perf_counter()
        out, steps = jax.block_until_ready(fn(p, pts, y0))
        outputs[name] = {k: np.asarray(v) for k, v in out.items()}
        steps = np.asarray(steps)
        results[name] = {"first_call_s": time.perf_counter() - t0, "walls_s": [],
                         "steps_mean": float(steps.mean()), "steps_max": int(steps.max())}
    for _ in range(repeats):
        for name, (fn, _) in variants.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(p, pts, y0))
            results[name]["walls_s"].append(time.perf_counter() - t0)
    batch.LANE_GROUP_CPU = shipped
    reference = outputs.get(f"groups of {shipped}")
    for name, r in results.items():
        r["patient_days_per_s"] = size * 365 / min(r["walls_s"])
        r["same_bits_as_shipped"] = (None if reference is None else all(
            np.array_equal(outputs[name][k], reference[k], equal_nan=True) for k in reference))
    return {"size": size, "repeats": repeats, "shipped_group": shipped,
            "newton_failed": int((~np.asarray(ok)).sum()), "variants": results,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def markdown(r: dict) -> list[str]:
    base = r["variants"]["one batch"]["patient_days_per_s"]
    md = ["## Lane groups (`benchmarks/lane_groups.py`)", "",
          f"{r['created']}; bench workload, {r['size']:,} patients on one device (float64), "
          f"best of {r['repeats']} interleaved rounds after a first call that compiles. "
          f"Shipped: groups of at most {r['shipped_group']} lanes "
          "(`popsim.batch.LANE_GROUP_CPU`).", "",
          "| time course | patient-days/s | × one batch | first call (s) | steps/patient mean "
          "| max | same bits as shipped |", "|---|---:|---:|---:|---:|---:|---|"]
    for name, v in r["variants"].items():
        same = {None: "-", True: "yes", False: "no"}[v["same_bits_as_shipped"]]
        md.append(f"| {name} | {v['patient_days_per_s']:,.0f} | "
                  f"{v['patient_days_per_s'] / base:.2f} | {v['first_call_s']:.1f} | "
                  f"{v['steps_mean']:.0f} | {v['steps_max']} | {same} |")
    return md


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4000)
    ap.add_argument("--groups", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.size < 2 or args.repeats < 1 or min(args.groups) < 2:
        sys.exit(f"--size {args.size} / --repeats {args.repeats} / --groups {args.groups}: "
                 "need size >= 2, repeats >= 1 and every group >= 2")
    r = measure(args.size, args.groups, args.repeats)
    save_script_results(r, HERE / "results" / "lane_groups.json", HERE / "RESULTS.md",
                        "lane groups", markdown(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
