"""What periodic and titrated doses cost: solver steps and warm wall time of a year of K
supplement (40 mmol/day) given as a constant rate, once a day (1 h), twice a day (2 h each),
titrated weekly, and titrated weekly twice a day; and what padding an arm without doses to a
periodic arm's number of segments costs (arms of a run share one segment count).

    python benchmarks/periodic_dosing.py [--patients 16] [--days 365]

Writes benchmarks/results/periodic_dosing.json. Steps do not depend on the machine; wall times
do (compile time excluded: each variant is run once to compile, then timed).
"""

import argparse
import json
import platform
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from popsim import batch, devices  # noqa: E402
from popsim import config as cfg  # noqa: E402
from popsim.population import sample_cohort  # noqa: E402
from popsim.protocols import arm_protocol, protocols_for  # noqa: E402
from popsim.solve import SolverSettings  # noqa: E402

TITRATE = {"output": "serum_k", "target": [4.0, 5.0], "every_days": 7, "step": 20, "max": 120}
VARIANTS = {
    "constant rate": {"kind": "oral_potassium", "dose": 40},
    "once a day, 1 h": {"kind": "oral_potassium", "dose": 40, "every_hours": 24},
    "twice a day, 2 h each": {"kind": "oral_potassium", "dose": 40, "every_hours": 12,
                              "duration_hours": 2},
    "titrated weekly, constant rate": {"kind": "oral_potassium", "dose": 40,
                                       "titrate": TITRATE},
    "titrated weekly, twice a day": {"kind": "oral_potassium", "dose": 40, "every_hours": 12,
                                     "duration_hours": 2, "titrate": TITRATE},
}


def _time(prot, p, pt, y0, ts, settings):
    out, status, steps = batch.simulate_observe_jit(p, pt, prot, y0, ts, settings)
    jax.block_until_ready(out)  # compiled
    t0 = time.perf_counter()
    out, status, steps = batch.simulate_observe_jit(p, pt, prot, y0, ts, settings)
    jax.block_until_ready(out)
    return time.perf_counter() - t0, np.asarray(steps), np.asarray(status)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=16)
    ap.add_argument("--days", type=float, default=365.0)
    args = ap.parse_args()
    pop = cfg.parse_config({"population": {"size": args.patients}}).population
    cohort = sample_cohort(pop, 1, 0, args.patients)
    p, pt = cohort.inputs()
    ts = jnp.arange(0.0, args.days + 1e-9, 1.0)
    y0, _ = devices.steady_states_with_fallback(p, pt, SolverSettings())
    rows = []
    for name, iv in VARIANTS.items():
        conf = cfg.parse_config({"population": {"size": 1}, "simulation": {"days": args.days},
                                 "arm": [{"name": "a", "intervention": [iv]}]})
        settings = SolverSettings.from_simulation(conf.simulation, conf.extra_steps)
        prot = protocols_for(conf.arms, args.days)[0]
        wall, steps, status = _time(prot, p, pt, y0, ts, settings)
        rows.append({"variant": name, "segments": prot.n_segments,
                     "steps_median": float(np.median(steps)), "steps_max": int(steps.max()),
                     "step_budget": settings.max_steps, "all_ok": bool((status == 0).all()),
                     "wall_s": wall, "patients": args.patients})
        print(rows[-1], flush=True)
        if name == "twice a day, 2 h each":  # an arm without doses padded to as many segments
            base = arm_protocol([], args.days, prot.n_segments)
            wall, steps, status = _time(base, p, pt, y0, ts, settings)
            rows.append({"variant": f"no dose, padded to {prot.n_segments} segments",
                         "segments": base.n_segments, "steps_median": float(np.median(steps)),
                         "steps_max": int(steps.max()), "step_budget": settings.max_steps,
                         "all_ok": bool((status == 0).all()), "wall_s": wall,
                         "patients": args.patients})
            print(rows[-1], flush=True)
    base = arm_protocol([], args.days, 1)
    wall, steps, status = _time(base, p, pt, y0, ts, settings)
    rows.append({"variant": "no dose, 1 segment", "segments": 1,
                 "steps_median": float(np.median(steps)), "steps_max": int(steps.max()),
                 "step_budget": settings.max_steps, "all_ok": bool((status == 0).all()),
                 "wall_s": wall, "patients": args.patients})
    print(rows[-1], flush=True)
    out = Path(__file__).parent / "results" / "periodic_dosing.json"
    out.write_text(json.dumps({"days": args.days, "machine": platform.processor() or
                               platform.machine(), "device": str(jax.devices()[0]),
                               "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
