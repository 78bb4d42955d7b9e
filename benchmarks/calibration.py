"""Calibration speed: seconds per optimizer step, compile time and total time to convergence.

Runs ``configs/calibration_reference.toml`` to its stopping rule with forward-mode gradients (the
default: jacfwd, diffrax ``ForwardMode``) and, side by side in the same run, a fixed number of
steps with reverse mode (``value_and_grad``, diffrax ``RecursiveCheckpointAdjoint``), so the two
per-step costs can be compared. Compile time (first evaluation and first step, including the
robust warm start) is reported separately from the per-step time.

With ``--evidence STUDY ...`` it times an evidence fit instead (``popsim calibrate
--evidence``): compile time (the first optimiser step), seconds per step, the Hessian and the
total, for the studies and ``--fit`` parameters given (the target: 20 parameters, 15
studies, < 30 min on 2 cores).

Usage: python benchmarks/calibration.py [--config ...] [--reverse-steps 20]
       [--out benchmarks/results/calibration.json]
       python benchmarks/calibration.py --evidence STUDY ... --fit NAME,... [--size 8]
       [--starts 1] [--steps 20] [--out benchmarks/results/calibration_evidence.json]
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


def evidence_run(args) -> dict:
    """Time one evidence fit (no profiles; the Laplace Hessian is timed)."""
    import dataclasses

    from popsim.calibration.evidence_fit import fit_evidence
    from popsim.calibration.spec import build_spec
    from popsim.parameters.io import default_parameters

    base = default_parameters()
    values = {f.name: float(getattr(base.params, f.name))
              for f in dataclasses.fields(base.params)}
    spec = build_spec({"studies": args.evidence, "fit": args.fit, "size": args.size,
                       "population_size": args.population_size,
                       "starts": args.starts, "steps": args.steps,
                       "gradient": args.gradient}, values, base.cvs)
    res = fit_evidence(spec, base, progress=False)
    return {"studies": list(spec.studies), "parameters": list(spec.names),
            "patients": res.problem.n_patients, "size": spec.size,
            "population_size": spec.population_size, "starts": spec.starts, "steps": spec.steps,
            "gradient": spec.gradient, "best_nll": res.best.nll,
            "runs": [{"start": r.start, "steps": len(r.losses), "stopped": r.stopped,
                      "first_nll": r.losses[0] if r.losses else None, "best_nll": r.nll,
                      "last_10_nll": [round(x, 4) for x in r.losses[-10:]],
                      "failed_patients": r.failed, "nonfinite_steps": r.nonfinite_steps,
                      "steps_losing_patients": r.worse_failed_steps,
                      "most_patients_lost": r.most_lost,
                      "learning_rate_halvings": r.shortenings}
                     for r in res.runs],
            "flagged": {k: v for k, v in res.laplace.flags.items() if v},
            "fitted": res.values, "tal_headroom_at_fit": _tal_headroom(base, res.values),
            **{k: round(v, 3) if isinstance(v, float) else v for k, v in res.timing.items()}}


def _tal_headroom(base, values: dict) -> float:
    """:func:`popsim.balance.tal_headroom` at the fitted typical values: below 2 x
    ``popsim.balance.TAL_HEADROOM_FLOOR`` the balance floors it and the reference adult is no
    longer held at the reference serum Mg (the fit has left the balanced region)."""
    import dataclasses

    from popsim import balance

    p = dataclasses.replace(base.params, **{k: v for k, v in values.items()
                                            if not k.startswith("cv.")})
    return float(balance.tal_headroom(p))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/calibration_reference.toml")
    ap.add_argument("--reverse-steps", type=int, default=20,
                    help="steps timed in reverse mode (0: skip)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--evidence", nargs="+", default=None, metavar="STUDY")
    ap.add_argument("--fit", default="mg_gut_absorbed_ref,mg_dct_half_load")
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--population-size", type=int, default=None,
                    help="patients per population study (default: each file's min_size)")
    ap.add_argument("--starts", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--gradient", default="reverse", choices=("reverse", "forward"))
    args = ap.parse_args()
    if args.evidence:
        row = evidence_run(args)
        print(row, flush=True)
        _write(args.out or "benchmarks/results/calibration_evidence.json",
               {"benchmark": "calibration_evidence", "runs": [row]})
        return
    args.out = args.out or "benchmarks/results/calibration.json"
    conf, pop, _ = load_calibration(args.config)
    rows = [run(conf, pop, "forward", None)]
    print(rows[-1], flush=True)
    if args.reverse_steps:
        rows.append(run(conf, pop, "reverse", args.reverse_steps))
        print(rows[-1], flush=True)
        rows[-1]["step_time_ratio_reverse_over_forward"] = round(
            rows[-1]["seconds_per_step"] / rows[0]["seconds_per_step"], 2)
    _write(args.out, {"benchmark": "calibration", "config": args.config, "runs": rows,
                      "target_total_seconds": 300})


def _write(out: str, result: dict) -> None:
    result |= {"popsim_version": __version__, "dtype": "float64",
               "machine": {"platform": platform.platform(), "processor": platform.processor(),
                           "cpu_count": os.cpu_count(),
                           "device": str(jax.devices()[0].device_kind)},
               "versions": library_versions()}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
