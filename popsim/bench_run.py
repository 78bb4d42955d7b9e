"""End-to-end benchmark: the wall time of a whole ``popsim run`` command on the workload of
:mod:`popsim.bench` (365 days, every output saved daily), split by phase, next to the solver's
own rate (``popsim bench --end-to-end N``).

The command runs in a fresh process, as a user runs it. A first run fills the compile cache
with the run's own programs (the chunk programs with every output, which the kernel rows of
``popsim bench`` do not compile) and is reported apart, as the cold figure; the end-to-end
figure is the median of the runs after it, with the cache warm, which is how a user's second
run of a config goes. Phases come from ``popsim run --profile``
(:func:`popsim.run.run_cohort`), and start-up is the rest of the command's wall time
(interpreter, imports, reading the config, the summary printed at the end).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASES = (("startup", "start-up: interpreter, imports, config"),
          ("setup", "checks, creating the file"),
          ("sample", "sampling covariates and parameters"),
          ("compile", "compiling (or loading from the compile cache) every program"),
          ("steady_state", "steady states"),
          ("time_course", "time courses: integration and outputs (one program)"),
          ("collect", "outputs to float32 on the host"),
          ("write_wait", "writing, not hidden behind the next chunk"),
          ("finalize", "completing the file, reading the summary back"))


def end_to_end(n: int, rtol: float = 1e-6, atol: float = 1e-8, devices: int = 1,
               roadrunner_rate: float = float("nan"), repeats: int = 1,
               chunk_size: int = 1000) -> dict:
    """Run ``popsim run`` on ``n`` patients of the bench workload once to warm the compile
    cache, then ``repeats`` times (fresh processes); returns the median of the warm runs (by
    wall time) with its phases, its rate against ``roadrunner_rate`` (patient-days/s) and the
    first run's wall time and compile counts (``first``)."""
    from popsim.bench import WORKLOAD

    runs = []
    with tempfile.TemporaryDirectory(prefix="popsim-bench-run-") as tmp:
        config = Path(tmp) / "workload.toml"
        config.write_text(WORKLOAD.format(rtol=rtol, atol=atol))
        first = _one_run(config, Path(tmp), n, devices, chunk_size)
        for _ in range(repeats):
            runs.append(_one_run(config, Path(tmp), n, devices, chunk_size))
    runs.sort(key=lambda r: r["wall_seconds"])
    best = runs[len(runs) // 2]
    days = best["days"]
    rate = n * days / best["wall_seconds"]
    return {**best, "repeats": repeats, "walls": [r["wall_seconds"] for r in runs],
            "first": {"wall_seconds": first["wall_seconds"], "compile": first["compile"],
                      "patient_days_per_s": n * days / first["wall_seconds"]},
            "patient_days_per_s": rate, "ratio_to_libroadrunner": rate / roadrunner_rate,
            "median_wall_seconds": statistics.median(r["wall_seconds"] for r in runs)}


def _one_run(config: Path, tmp: Path, n: int, devices: int, chunk_size: int) -> dict:
    out, profile = tmp / "cohort.h5", tmp / "profile.json"
    cmd = [sys.executable, "-m", "popsim.cli", "run", str(config), "--out", str(out),
           "--size", str(n), "--chunk-size", str(chunk_size), "--quiet", "--force",
           "--profile", str(profile)]
    if devices > 1:
        cmd += ["--devices", str(devices)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"popsim run failed ({p.returncode}): {p.stderr.strip()[-500:]}")
    prof = json.loads(profile.read_text())
    phases = {"startup": wall - prof["wall_seconds"], **prof["phases"]}
    return {"patients": n, "days": prof["days"], "devices": devices, "wall_seconds": wall,
            "phases": phases, "compile": prof["compile"], "file_bytes": out.stat().st_size}


def markdown_end_to_end(result: dict) -> list[str]:
    """The kernel and end-to-end rates side by side, and the end-to-end run's phases."""
    e = result["end_to_end"]
    kernel = max((r for r in result["rows"] if r["method"] == "popsim"
                  and r.get("rtol", result["rtol"]) == result["rtol"]),
                 key=lambda r: r["patients"])
    k_rate = kernel["patient_days_per_s"]
    k_ss = kernel["patients"] * kernel["days"] / (kernel["simulate_seconds"]
                                                  + kernel["steady_state_seconds"])
    rr = k_rate / kernel["ratio_to_libroadrunner"]
    same = kernel.get("roadrunner_rate_at_same_error")

    def ratios(rate: float) -> str:
        return f"{rate / rr:.2f} | " + (f"{rate / same:.2f}" if same else "-")

    wall = e["wall_seconds"]
    lines = ["", f"### End to end: `popsim run`, {e['patients']:,} patients × {e['days']:g} days, "
             f"{e['devices']} device(s)", "",
             f"Median of {e['repeats']} run(s) in fresh processes (walls "
             + ", ".join(f"{w:.1f}" for w in e["walls"]) + " s) after a first run that "
             "filled the compile cache; every output saved daily "
             f"(file {e['file_bytes'] / 1e6:.0f} MB); programs compiled "
             f"{e['compile']['compilations']}, loaded from the compile cache "
             f"{e['compile']['cache_hits']}.", "",
             f"| measure (rtol {result['rtol']:g}) | patient-days/s | × libRoadRunner on "
             f"{result['machine']['cpu_count']} cores, same rtol | × libRoadRunner at equal "
             "accuracy |", "|---|---:|---:|---:|",
             f"| kernel: time courses ({kernel['patients']:,} patients) | {k_rate:,.0f} | "
             f"{ratios(k_rate)} |",
             f"| kernel: steady states + time courses | {k_ss:,.0f} | {ratios(k_ss)} |",
             f"| end to end: `popsim run` wall time, warm compile cache | "
             f"{e['patient_days_per_s']:,.0f} | {ratios(e['patient_days_per_s'])} |"]
    if "first" in e:
        f = e["first"]
        lines.append(f"| end to end, first run (compiled {f['compile']['compilations']}, "
                     f"{f['wall_seconds']:.1f} s) | {f['patient_days_per_s']:,.0f} | "
                     f"{ratios(f['patient_days_per_s'])} |")
    lines += ["",
             "| phase | seconds | share of wall |", "|---|---:|---:|"]
    for key, label in PHASES:
        if key in e["phases"]:
            sec = e["phases"][key]
            lines.append(f"| {label} | {sec:.2f} | {100 * sec / wall:.0f}% |")
    if "write" in e["phases"]:
        lines.append(f"| (writing in the background thread, overlapping the solve) | "
                     f"{e['phases']['write']:.2f} | - |")
    lines.append(f"| total wall | {wall:.2f} | 100% |")
    lines.append("")
    return lines
