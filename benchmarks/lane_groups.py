"""The compiled time course in groups of lanes against one vmapped batch, side by side in one
process, on the devices a ``popsim run --devices N`` uses.

Workload: the bench workload (``popsim/bench.py``: 365 days, daily outputs, a Mg-poor diet for
180 days then usual intake), float64. For each ``--sizes`` value (patients per device), the
patients at their steady states are split over ``--devices`` host devices as ``popsim run``
splits a chunk (one part per device, every part dispatched before any is waited for), and two
time courses are timed: ``one batch`` (``popsim.batch.simulate_observe`` vmapped over a
device's part, the time course before lane groups) and ``groups`` (the shipped
``popsim.batch.simulate_observe_in_groups``: ``jax.lax.map`` over groups of at most
``LANE_GROUP_CPU`` lanes). Each is compiled once, then timed ``--repeats`` times, the two
interleaved; the figure is the best round (the machine may be shared). Also recorded: whether
the two give every patient's outputs the same bits.

Writes benchmarks/results/lane_groups.json and a section of benchmarks/RESULTS.md.

Usage: python benchmarks/lane_groups.py [--devices 2] [--sizes 50 250 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def measure(devices: int, sizes: list[int], repeats: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from popsim import batch, bench, solve
    from popsim.population import sample_cohort

    conf, prot = bench.workload()
    s = solve.SolverSettings.from_simulation(conf.simulation)
    ts = jnp.asarray(conf.simulation.output_times)
    devs = jax.devices()[:devices]
    variants = {
        "one batch": jax.jit(lambda p, q, y: batch.simulate_observe(p, q, prot, y, ts, s)[0]),
        "groups": jax.jit(lambda p, q, y: batch.simulate_observe_in_groups(p, q, prot, y, ts,
                                                                           s)[0])}
    rows = []
    for per in sizes:
        cohort = sample_cohort(conf.population, conf.population.seed, 0, per * len(devs))
        p, pts = cohort.params, cohort.patients
        y0, ok = batch.steady_states_jit(p, pts, s)
        y0 = batch.reference_if_failed(y0, ok, p, pts)
        parts = [jax.tree.map(lambda x, i=i, d=d, m=per: jax.device_put(x[i * m:(i + 1) * m], d),
                              (p, pts, y0)) for i, d in enumerate(devs)]
        walls, outs = {k: [] for k in variants}, {}
        for name, fn in variants.items():  # compile and a first run, outside the timings
            outs[name] = [{k: np.asarray(v) for k, v in o.items()}
                          for o in jax.block_until_ready([fn(*a) for a in parts])]
        for _ in range(repeats):
            for name, fn in variants.items():
                t0 = time.perf_counter()
                jax.block_until_ready([fn(*a) for a in parts])
                walls[name].append(time.perf_counter() - t0)
        same = all(np.array_equal(a[k], b[k], equal_nan=True)
                   for a, b in zip(outs["one batch"], outs["groups"], strict=True) for k in a)
        rows.append({"per_device": per, "groups": batch.lane_groups(per, "cpu"),
                     "same_bits": bool(same),
                     **{f"{k} patient_days_per_s": per * len(devs) * 365 / min(w)
                        for k, w in walls.items()}, "walls_s": walls})
    return {"devices": len(devs), "repeats": repeats, "lane_group": batch.LANE_GROUP_CPU,
            "lane_align": batch.LANE_ALIGN, "rows": rows,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def markdown(r: dict) -> list[str]:
    md = ["## Lane groups (`benchmarks/lane_groups.py`)", "",
          f"{r['created']}; bench workload on {r['devices']} host device(s), one part per "
          f"device as `popsim run --devices` splits a chunk, float64, best of {r['repeats']} "
          "interleaved rounds after a first call that compiles. Groups: at most "
          f"{r['lane_group']} lanes, widths a multiple of {r['lane_align']}, at least two "
          "(`popsim.batch.lane_groups`).", "",
          "| patients per device | groups x lanes | one batch, patient-days/s | groups, "
          "patient-days/s | groups / one batch |", "|---:|---:|---:|---:|---:|"]
    for row in r["rows"]:
        one, grp = row["one batch patient_days_per_s"], row["groups patient_days_per_s"]
        g, w = row["groups"]
        md.append(f"| {row['per_device']:,} | {g} x {w} | {one:,.0f} | {grp:,.0f} | "
                  f"{grp / one:.2f} |")
    return md


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=2)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 250, 1000])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.devices < 1 or min(args.sizes) < 2 or args.repeats < 1:
        sys.exit(f"--devices {args.devices} / --sizes {args.sizes} / --repeats {args.repeats}: "
                 "need devices >= 1, every size >= 2, repeats >= 1")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + f" --xla_force_host_platform_device_count={args.devices}")
    import jax

    jax.config.update("jax_enable_x64", True)
    from popsim.bench_report import save_script_results

    r = measure(args.devices, args.sizes, args.repeats)
    save_script_results(r, HERE / "results" / "lane_groups.json", HERE / "RESULTS.md",
                        "lane groups", markdown(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
