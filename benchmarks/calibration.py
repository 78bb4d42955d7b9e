"""Calibration speed: seconds per optimizer step, compile time and total time to convergence.

Runs ``configs/calibration_reference.toml`` to its stopping rule with forward-mode gradients (the
default: jacfwd, diffrax ``ForwardMode``) and, side by side in the same run, a fixed number of
steps with reverse mode (``value_and_grad``, diffrax ``RecursiveCheckpointAdjoint``), so the two
per-step costs can be compared. Compile time (first evaluation and first step, including the
robust warm start) is reported separately from the per-step time.

Usage: python benchmarks/calibration.py [--config ...] [--reverse-steps 20]
       [--out benchmarks/results/calibration.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from popsim._version import __version__, library_versions  # noqa: E402
from popsim.calibration import build_problem, fit, load_calibration  # noqa: E402


def run(conf, pop, mode: str, steps: int | None) -> dict:
    opt = {"gradient": mode} | ({"steps": steps} if steps else {})
    conf = conf.model_copy(update={"optimizer": conf.optimizer.model_copy(update=opt)})
    t0 = time.perf_counter()
    res = fit(build_problem(conf, pop), progress=False)
    total = time.perf_counter() - t0
    return {"gradient": mode, "steps": res.steps, "stopped": res.stopped,
            "compile_seconds": round(res.compile_seconds, 2),
            "seconds_per_step": round(res.step_seconds, 4),
            "total_seconds": round(total, 2), "initial_loss": res.losses[0],
            "final_loss": res.final_loss, "failed_patients": res.failed_after,
            "cohort_size": conf.optimizer.cohort_size,
            "arm_cohort_size": conf.optimizer.arm_cohort_size,
            "n_parameters": len(conf.parameter), "n_targets": len(conf.target)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/calibration_reference.toml")
    ap.add_argument("--reverse-steps", type=int, default=20,
                    help="steps timed in reverse mode (0: skip)")
    ap.add_argument("--out", default="benchmarks/results/calibration.json")
    args = ap.parse_args()
    conf, pop, _ = load_calibration(args.config)
    rows = [run(conf, pop, "forward", None)]
    print(rows[-1], flush=True)
    if args.reverse_steps:
        rows.append(run(conf, pop, "reverse", args.reverse_steps))
        print(rows[-1], flush=True)
        rows[-1]["step_time_ratio_reverse_over_forward"] = round(
            rows[-1]["seconds_per_step"] / rows[0]["seconds_per_step"], 2)
    result = {
        "benchmark": "calibration", "config": args.config, "popsim_version": __version__,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count(), "device": str(jax.devices()[0].device_kind)},
        "versions": library_versions(), "dtype": "float64", "runs": rows,
        "target_total_seconds": 300,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
