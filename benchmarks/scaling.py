"""Scaling of `popsim run`: wall time, throughput and peak memory from 10^4 to 10^6 patients.

Each size runs in a fresh process (so its peak RSS is its own): the full `popsim run` path,
i.e. sampling, steady states, the year's time course, every output written daily (366
times, float32, gzip + shuffle + Fletcher-32) chunk by chunk with the crash-safe journal, the
final mark and the summary, on ``configs/scale_year.toml`` (a Mg-poor diet for 180 days, then
usual intake; the `popsim bench` workload) with ``--devices N`` (one host device per core).

Reported per size: total wall time; the time to the first chunk on disk (compilation
dominates it); the marginal rate after it (patients and patient-days per second, from the
chunks' completion times); peak RSS; file size. Linearity: the marginal seconds per patient of
each size against the smallest's (the target: "wall time linear within 20%"); memory: peak RSS of
the largest size over that of the 10^5 run.

    python benchmarks/scaling.py --sizes 10000,100000,1000000 --devices 2 --dir /tmp/popsim_scale

Writes ``benchmarks/results/scaling.json`` and ``benchmarks/results/scaling.md``. The cohort files
go to ``--dir`` (about 15.5 MB per 1,000 patients) and are deleted after each size unless
``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "configs" / "scale_year.toml"


def one(size: int, devices: int, chunk: int, out: Path) -> dict:
    """In this (fresh) process: one `popsim run`, timed chunk by chunk."""
    if devices > 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={devices}").strip()
    t0 = time.perf_counter()
    from popsim import store
    from popsim.config import load_config
    from popsim.run import run_cohort

    done_at = []
    write_chunk = store.write_chunk

    def timed_write(*a, **k):  # completion time of every chunk (written in the background)
        write_chunk(*a, **k)
        done_at.append(time.perf_counter() - t0)

    store.write_chunk = timed_write
    config, text = load_config(CONFIG)
    run_cohort(config, text, out, size=size, chunk_size=chunk, force=True,
               progress=False, devices=devices if devices > 1 else None)
    wall = time.perf_counter() - t0
    days = config.simulation.days
    first = done_at[0]
    rest = size - min(chunk, size)
    marginal = (done_at[-1] - first) / rest if rest else float("nan")
    return dict(
        patients=size, devices=devices, chunk_size=chunk, days=days, wall_s=wall,
        first_chunk_s=first, marginal_s_per_patient=marginal,
        marginal_patients_per_s=1 / marginal if rest else None,
        marginal_patient_days_per_s=days / marginal if rest else None,
        overall_patient_days_per_s=size * days / wall,
        file_bytes=out.stat().st_size,
        failed=_failed(out),
    )


def _failed(path: Path) -> int:
    """Patients x arms whose status is not 0 (solved)."""
    import h5py

    with h5py.File(path, "r") as f:
        return int((f["status"][:] != 0).sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--devices", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--chunk-size", type=int, default=1000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/popsim_scale"))
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "scaling.json")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:  # child process
        row = one(args.one, args.devices, args.chunk_size, args.dir / f"scale_{args.one}.h5")
        row["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print("ROW " + json.dumps(row), flush=True)
        return 0
    args.dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        cmd = [sys.executable, __file__, "--one", str(n), "--devices", str(args.devices),
               "--chunk-size", str(args.chunk_size), "--dir", str(args.dir)]
        print(f"{n:,} patients ...", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        lines = [x for x in proc.stdout.splitlines() if x.startswith("ROW ")]
        if proc.returncode or not lines:
            print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
            return 1
        row = json.loads(lines[-1][4:])
        rows.append(row)
        print(f"  wall {row['wall_s']:.0f} s, first chunk {row['first_chunk_s']:.0f} s, "
              f"{row['marginal_patient_days_per_s']:,.0f} patient-days/s after it, peak RSS "
              f"{row['peak_rss_bytes'] / 2**30:.2f} GiB, file {row['file_bytes'] / 2**30:.2f} GiB",
              flush=True)
        if not args.keep:
            (args.dir / f"scale_{n}.h5").unlink(missing_ok=True)
    base = rows[0]["marginal_s_per_patient"]
    for r in rows:
        r["marginal_vs_smallest"] = r["marginal_s_per_patient"] / base
    by_n = {r["patients"]: r for r in rows}
    memory_ratio = (by_n[max(by_n)]["peak_rss_bytes"] / by_n[100_000]["peak_rss_bytes"]
                    if 100_000 in by_n and max(by_n) > 100_000 else None)
    result = dict(benchmark="scaling", created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  machine=f"{platform.platform()}, {os.cpu_count()} CPU cores",
                  config=str(CONFIG.relative_to(HERE.parent)), rows=rows,
                  memory_ratio_largest_vs_1e5=memory_ratio)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# Scaling of `popsim run`", "",
        f"Written by `benchmarks/scaling.py`, {result['created']}; {result['machine']}; "
        f"`{result['config']}` (365 days, every output daily, float32, gzip), "
        f"{rows[0]['devices']} device(s), chunks of {rows[0]['chunk_size']:,} patients; each size "
        "in a fresh process.", "",
        "| patients | wall (s) | first chunk on disk (s) | patient-days/s after it | "
        "s per 1,000 patients after it | × smallest | peak RSS (GiB) | file (GiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        md.append(f"| {r['patients']:,} | {r['wall_s']:,.0f} | {r['first_chunk_s']:.0f} | "
                  f"{r['marginal_patient_days_per_s']:,.0f} | "
                  f"{1000 * r['marginal_s_per_patient']:.2f} | {r['marginal_vs_smallest']:.2f} | "
                  f"{r['peak_rss_bytes'] / 2**30:.2f} | {r['file_bytes'] / 2**30:.2f} |")
    if memory_ratio is not None:
        md += ["", f"Peak RSS of the largest run / the 100,000-patient run: {memory_ratio:.2f}."]
    args.out.with_suffix(".md").write_text("\n".join(md) + "\n")
    _into_results(HERE / "RESULTS.md", "\n".join(md).replace("# Scaling", "## Scaling", 1))
    print("\n".join(md))
    return 0


def _into_results(path: Path, section: str) -> None:
    """Put the section into benchmarks/RESULTS.md after `popsim bench`'s table, in a block that
    `popsim bench` keeps when it rewrites its table (``popsim.bench.KEPT_MARKER``) and that this
    script replaces."""
    begin, end = "<!-- kept: scaling (benchmarks/scaling.py) -->", "<!-- end: scaling -->"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if begin in text and end in text:
        text = text[:text.index(begin)] + text[text.index(end) + len(end):].lstrip("\n")
    path.write_text(text.rstrip("\n") + f"\n\n{begin}\n{section}\n{end}\n")


if __name__ == "__main__":
    sys.exit(main())
