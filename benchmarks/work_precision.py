"""Work against precision: popsim and libRoadRunner (CVODE) on the `popsim bench` workload at
several tolerances, in one run, each with its error against the same tight reference.

At one nominal rtol the two solvers do not deliver the same accuracy (at rtol 1e-6 popsim's
outputs are ~1e-7 from the reference, CVODE's ~1e-4), so a speed ratio at one rtol compares
unequal work. This script measures both curves (patient-days/s against the max relative error
of 8 outputs over 4 patients and 366 days, against popsim Kvaerno5 at rtol 1e-10:
:func:`popsim.bench.max_relative_error`) and reads the ratio at equal accuracy: for each popsim
point, libRoadRunner's rate at the same error, interpolated log-linearly between the two
libRoadRunner points around it. atol is rtol x 1e-2 for both (the bench's ratio).

    python benchmarks/work_precision.py --devices 2

Writes ``benchmarks/results/work_precision.json``, ``benchmarks/results/work_precision.png``
and the section "Work against precision" of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SECTION = "work against precision"


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def _devices_flag(devices: int) -> None:
    if devices > 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={devices}")


def measure(args) -> dict:
    _devices_flag(args.devices)
    import jax

    jax.config.update("jax_enable_x64", True)
    from popsim import bench
    from popsim.bench_roadrunner import equal_accuracy_ratio

    devices = jax.devices()[: args.devices]
    popsim_rows, rr_rows = [], []
    for rtol in _floats(args.popsim_rtols):
        print(f"popsim, rtol {rtol:g}, {args.patients:,} patients ...", flush=True)
        row = bench.popsim_rate(args.patients, rtol=rtol, atol=rtol * 1e-2, devices=devices)
        bench.popsim_accuracy([row], rtol, rtol * 1e-2, devices)
        row["rtol"] = rtol
        popsim_rows.append(row)
        print(f"  {row['patient_days_per_s']:,.0f} patient-days/s, error "
              f"{row['max_relative_error']:.2g}, median steps "
              f"{row['steps_per_patient_median']:.0f}", flush=True)
    reference = args.out.with_name("work_precision_reference.npz")
    reference.parent.mkdir(parents=True, exist_ok=True)
    np.savez(reference, **bench.reference_outputs())
    for rtol in _floats(args.rr_rtols):
        # each in its own process: LLVM runs out of section memory after a few model loads
        print(f"libRoadRunner, rtol {rtol:g}, {args.rr_patients} patients ...", flush=True)
        p = subprocess.run([sys.executable, __file__, "--rr-child", str(rtol), "--reference",
                            str(reference), "--rr-patients", str(args.rr_patients),
                            "--patients", str(args.patients), "--devices", str(args.devices)],
                           capture_output=True, text=True, check=True)
        row = json.loads(next(x for x in p.stdout.splitlines() if x.startswith("ROW "))[4:])
        rr_rows.append(row)
        print(f"  {row['patient_days_per_s']:,.0f} patient-days/s, error "
              f"{row['max_relative_error']:.2g}", flush=True)
    reference.unlink()
    for row in popsim_rows:
        row.update(equal_accuracy_ratio(row, rr_rows, os.cpu_count() or 1))
    return {"benchmark": "work_precision",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": bench.machine(), "devices": len(devices),
            "popsim": popsim_rows, "libroadrunner": rr_rows}


def roadrunner_child(args) -> None:
    """In this process: libRoadRunner at ``args.rr_child``, its error against the reference
    the parent saved; prints the row."""
    _devices_flag(args.devices)
    import jax

    jax.config.update("jax_enable_x64", True)
    from popsim import bench
    from popsim.bench_roadrunner import roadrunner_rate

    with np.load(args.reference) as ref:
        bench._REFERENCE.update({k: ref[k] for k in ref.files})
    rtol = args.rr_child
    row = roadrunner_rate(args.rr_patients, rtol, rtol * 1e-2, accuracy=True,
                                steady_batch=min(args.patients, 1000),
                                devices=jax.devices()[: args.devices])
    row["rtol"] = rtol
    print("ROW " + json.dumps(row), flush=True)


def figure(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    cores = result["machine"]["cpu_count"]
    for key, label, marker in (("popsim", f"popsim, Rodas5P, {cores} cores", "o"),
                               ("libroadrunner", f"libRoadRunner CVODE, {cores} processes "
                                                 "(one-process rate x cores)", "s")):
        scale = cores if key == "libroadrunner" else 1
        rows = sorted(result[key], key=lambda r: r["max_relative_error"])
        ax.plot([r["max_relative_error"] for r in rows],
                [scale * r["patient_days_per_s"] for r in rows], marker=marker, label=label)
        for r in rows:
            ax.annotate(f"rtol {r['rtol']:g}",
                        (r["max_relative_error"], scale * r["patient_days_per_s"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("max relative error of 8 outputs against a tight reference (1)")
    ax.set_ylabel("patient-days per second")
    ax.set_title("Work against precision: 365 days, Mg-poor diet then usual intake")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(result: dict) -> list[str]:
    m = result["machine"]
    pop, rr = result["popsim"], result["libroadrunner"]
    lines = [
        "## Work against precision (`benchmarks/work_precision.py`)", "",
        f"Written {result['created']}; {m['platform']}, {m['cpu_count']} CPU cores; popsim on "
        f"{result['devices']} device(s), {pop[0]['patients']:,} patients in chunks of "
        f"{pop[0]['chunk_size']:,} (time courses only); libRoadRunner one patient after "
        f"another, {rr[0]['patients']} patients. The `popsim bench` workload; atol = rtol x "
        "1e-2 for both; error: max relative deviation of 8 outputs over 4 patients and 366 "
        "days from popsim Kvaerno5 at rtol 1e-10. Figure: "
        "`benchmarks/results/work_precision.png`. ",
        "libRoadRunner's rate on all cores is its one-process rate times "
        f"{m['cpu_count']} (as many processes as cores, perfect scaling: its best case).",
        "", "| method | rtol | patient-days/s | max rel. error | median steps/patient | "
        f"libRoadRunner on {m['cpu_count']} cores at the same error (patient-days/s) | "
        "× libRoadRunner at equal accuracy, same cores |",
        "|---|---:|---:|---:|---:|---:|---:|"]
    for r in pop:
        same = r["roadrunner_rate_at_same_error"]
        lines.append(
            f"| popsim | {r['rtol']:g} | {r['patient_days_per_s']:,.0f} | "
            f"{r['max_relative_error']:.1e} | {r['steps_per_patient_median']:.0f} | "
            + (f"{same:,.0f} | {r['ratio_at_equal_accuracy']:.1f} |" if same else
               "outside libRoadRunner's measured range | - |"))
    for r in rr:
        lines.append(f"| libRoadRunner | {r['rtol']:g} | {r['patient_days_per_s']:,.0f} | "
                     f"{r['max_relative_error']:.1e} | - | - | - |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--popsim-rtols", default="1e-4,1e-5,1e-6")
    ap.add_argument("--rr-rtols", default="1e-6,1e-7,1e-8,1e-9,1e-10")
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--rr-patients", type=int, default=200)
    ap.add_argument("--devices", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "work_precision.json")
    ap.add_argument("--table", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--render", action="store_true",
                    help="only redraw the figure and the section from --out's JSON")
    ap.add_argument("--rr-child", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--reference", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rr_child:
        roadrunner_child(args)
        return 0
    if args.render:
        from popsim.bench_roadrunner import equal_accuracy_ratio

        result = json.loads(args.out.read_text())
        for row in result["popsim"]:
            row.update(equal_accuracy_ratio(row, result["libroadrunner"],
                                            result["machine"]["cpu_count"]))
    else:
        result = measure(args)
    from popsim.bench_report import save_script_results  # after XLA_FLAGS are set

    save_script_results(result, args.out, args.table, SECTION, markdown(result))
    figure(result, args.out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
