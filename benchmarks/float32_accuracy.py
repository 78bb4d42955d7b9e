"""float32 against float64: the same cohorts run in both precisions, every output compared.

For each config (default: the healthy reference population at baseline for a year, and the
Mg-depletion trial), `popsim.simulate` runs the same patients (same seed) with
``[simulation] precision = "float64"`` and ``"float32"`` over ``--days`` days with daily
outputs, and this script reports, per output, the largest relative deviation of float32 from
float64 over patients, arms and days (relative to the float64 value; for an output that
crosses zero, such as net Mg absorption on a Mg-poor diet, relative to its largest magnitude in
that patient's time course), the patients whose steady state was found in each precision, and
the wall time of each run (compile included; the compile cache is off so both compile).

Writes benchmarks/results/float32_accuracy.json and the float32 section of
benchmarks/RESULTS.md.

Usage: python benchmarks/float32_accuracy.py [--size 200] [--days 365]
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("POPSIM_CACHE_DIR", "off")


ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ["configs/reference_healthy.toml", "configs/mg_depletion.toml"]
TARGET = 1e-3
SECTION = "<!-- kept: benchmarks/float32_accuracy.py -->"
END = "<!-- end: float32_accuracy -->"


def _config(path: str, precision: str, days: int, size: int) -> dict:
    import tomllib

    conf = tomllib.loads((ROOT / path).read_text())
    conf["population"]["size"] = size
    conf.setdefault("simulation", {})
    conf["simulation"].update(days=days, output_interval_days=1.0, precision=precision)
    for arm in conf.get("arm", []):
        for iv in arm.get("intervention", []):
            iv["end_day"] = min(iv.get("end_day", days), days)
    return conf


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/float32_accuracy.json"))
    ap.add_argument("--table", default=str(ROOT / "benchmarks/RESULTS.md"))
    args = ap.parse_args(argv)

    import jax

    import popsim
    from popsim.bench import relative_errors

    rows = []
    for path in CONFIGS:
        runs = {}
        for precision in ("float64", "float32"):
            t0 = time.perf_counter()
            ds = popsim.simulate(_config(path, precision, args.days, args.size),
                                 chunk_size=args.size, progress=False)
            runs[precision] = (ds, time.perf_counter() - t0)
        (d64, t64), (d32, t32) = runs["float64"], runs["float32"]
        solved = {p: int((ds.status == "ok").all(dim=[d for d in ds.status.dims
                                                       if d != "patient"]).sum())
                  for p, (ds, _) in runs.items()}
        errors = relative_errors(d32, d64)
        worst = max(errors, key=errors.get)
        rows.append(dict(config=path, patients=args.size, days=args.days, errors=errors,
                         worst=worst, worst_error=errors[worst], solved=solved,
                         wall_float64_s=t64, wall_float32_s=t32))
        print(f"{path}: max rel. error {errors[worst]:.2e} ({worst}); solved {solved}; "
              f"wall {t64:.0f} s float64, {t32:.0f} s float32", flush=True)

    result = dict(benchmark="float32_accuracy", created=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                      time.gmtime()),
                  machine=platform.platform(), cores=os.cpu_count(),
                  jax=jax.__version__, rows=rows, target=TARGET)
    Path(args.out).write_text(json.dumps(result, indent=1))
    _write_table(Path(args.table), result)
    print(f"wrote {args.out} and {args.table}")
    return 0


def _write_table(path: Path, result: dict) -> None:
    rows = result["rows"]
    names = sorted(set().union(*[r["errors"] for r in rows]))
    lines = [SECTION, "## float32 against float64", "",
             f"Written by `benchmarks/float32_accuracy.py`, {result['created']}; "
             f"{result['machine']}, {result['cores']} CPU cores, JAX {result['jax']}. The same "
             f"patients run with `precision = \"float64\"` and `\"float32\"` (default solver "
             f"settings, daily outputs, compile cache off); max relative deviation of float32 "
             f"from float64 over patients, arms and days (for values through zero: relative "
             f"to 1% of the patient's largest magnitude). Target: < {TARGET:g} for every "
             f"output, steady states found for >= 99.9% of patients.", "",
             "| output | " + " | ".join(f"{Path(r['config']).stem} ({r['patients']} x "
                                       f"{r['days']} d)" for r in rows) + " |",
             "|---|" + "---:|" * len(rows)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(
            f"{r['errors'].get(n, float('nan')):.1e}" for r in rows) + " |")
    lines.append("| steady states found, float64 / float32 | " + " | ".join(
        f"{r['solved']['float64']} / {r['solved']['float32']}" for r in rows) + " |")
    lines.append("| wall, float64 / float32 (s, compile included) | " + " | ".join(
        f"{r['wall_float64_s']:.0f} / {r['wall_float32_s']:.0f}" for r in rows) + " |")
    misses = [f"{Path(r['config']).stem}: " + ", ".join(
        f"{n} {e:.1e}" for n, e in sorted(r["errors"].items(), key=lambda x: -x[1])
        if e >= TARGET) for r in rows]
    lines += ["", "Above the target: " + "; ".join(m for m in misses if not m.endswith(": "))
              if any(not m.endswith(": ") for m in misses) else "Every output meets the target.",
              "", END]
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if SECTION in text:
        head, rest = text.split(SECTION, 1)
        tail = rest.split(END, 1)[1] if END in rest else ""
        text = head + "\n".join(lines) + tail
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    path.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
