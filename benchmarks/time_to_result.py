"""Time to first result: `make demo`'s `popsim run` with an empty and with a warm compile cache,
and the time to the first chunk on disk of a 10^5-patient year with a warm cache.

Every run is a fresh process timed from its launch (interpreter start-up, imports, sampling,
tracing or loading the programs, steady states, time courses, writing, the figure):

* cold: `make demo`'s command (``configs/us_adults.toml``, 2,000 patients, ``--figure``) with
  ``POPSIM_CACHE_DIR`` set to a new empty folder, ``--repeats`` times;
* warm: the same command again ``--repeats`` times on the folder the last cold run filled;
* first chunk: ``configs/scale_year.toml`` with 100,000 patients on ``--devices`` host devices,
  chunks of 1,000, stopped once the first chunk is written; once to fill the cache, then
  ``--repeats`` times warm.

Medians are reported, with each run's phase split from ``popsim run --profile``.

    python benchmarks/time_to_result.py --repeats 3 --devices 2

Writes ``benchmarks/results/time_to_result.json`` and the section "Time to first result" of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
POPSIM = [sys.executable, "-m", "popsim.cli"]
SECTION = "time to first result"


def _demo(cache: Path, work: Path, i: int) -> dict:
    """One `make demo` `popsim run` in a fresh process: wall seconds and its profile."""
    profile = work / f"demo{i}.json"
    env = dict(os.environ, POPSIM_CACHE_DIR=str(cache))
    t0 = time.perf_counter()
    subprocess.run([*POPSIM, "run", "configs/us_adults.toml", "--out", str(work / f"d{i}.h5"),
                    "--size", "2000", "--figure", str(work / f"d{i}.png"), "--force", "--quiet",
                    "--profile", str(profile)], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    wall = time.perf_counter() - t0
    prof = json.loads(profile.read_text())
    return {"wall_s": wall, "phases": prof["phases"], "compile": prof["compile"]}


def first_chunk_child(out: Path, devices: int) -> None:
    """In this process: `popsim run` of 10^5 patients, exits as soon as the first chunk is
    written, printing the wall-clock time of that moment."""
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={devices}")
    from popsim import store
    from popsim.config import load_config
    from popsim.run import run_cohort

    write_chunk = store.write_chunk

    def first_then_stop(*a, **k):
        write_chunk(*a, **k)
        print(f"FIRST {time.time()!r}", flush=True)
        os._exit(0)

    store.write_chunk = first_then_stop
    config, text = load_config(ROOT / "configs" / "scale_year.toml")
    run_cohort(config, text, out, size=100_000, chunk_size=1000, force=True, progress=False,
               devices=devices)


def _first_chunk(cache: Path, work: Path, devices: int) -> float:
    env = dict(os.environ, POPSIM_CACHE_DIR=str(cache))
    t0 = time.time()
    p = subprocess.run([sys.executable, __file__, "--first-chunk-child", str(work / "big.h5"),
                        "--devices", str(devices)], cwd=ROOT, env=env, check=True,
                       capture_output=True, text=True)
    line = next(x for x in p.stdout.splitlines() if x.startswith("FIRST "))
    (work / "big.h5").unlink(missing_ok=True)
    return float(line.split()[1]) - t0


def measure(repeats: int, devices: int) -> dict:
    cold, warm, chunk = [], [], []
    with tempfile.TemporaryDirectory(prefix="popsim_ttr_") as tmp:
        work = Path(tmp)
        for i in range(repeats):
            cache = work / f"cache{i}"  # a new, empty compile cache for every cold run
            cold.append(_demo(cache, work, i))
            print(f"cold demo {i + 1}: {cold[-1]['wall_s']:.1f} s", flush=True)
        for i in range(repeats):
            warm.append(_demo(cache, work, 100 + i))
            print(f"warm demo {i + 1}: {warm[-1]['wall_s']:.1f} s", flush=True)
        fill = _first_chunk(cache, work, devices)
        print(f"first chunk of 10^5, filling the cache: {fill:.1f} s", flush=True)
        for i in range(repeats):
            chunk.append(_first_chunk(cache, work, devices))
            print(f"first chunk of 10^5, warm {i + 1}: {chunk[-1]:.1f} s", flush=True)
    import platform

    return {"benchmark": "time_to_result",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f"{platform.platform()}, {os.cpu_count()} CPU cores",
            "devices_first_chunk": devices, "cold": cold, "warm": warm,
            "first_chunk_fill_s": fill, "first_chunk_warm_s": chunk,
            "median_cold_s": statistics.median(r["wall_s"] for r in cold),
            "median_warm_s": statistics.median(r["wall_s"] for r in warm),
            "median_first_chunk_warm_s": statistics.median(chunk)}


PHASES = ("sample", "compile", "steady_state", "time_course", "write")


def markdown(r: dict) -> list[str]:
    def row(name, runs):
        med = {p: statistics.median(x["phases"].get(p, 0.0) for x in runs) for p in PHASES}
        comp = runs[len(runs) // 2]["compile"]
        walls = ", ".join(f"{x['wall_s']:.1f}" for x in runs)
        return (f"| {name} | {statistics.median(x['wall_s'] for x in runs):.1f} ({walls}) | "
                + " | ".join(f"{med[p]:.1f}" for p in PHASES)
                + f" | {comp['compilations']} / {comp['cache_hits']} / "
                  f"{comp.get('traced_programs_loaded', 0)} |")

    return [
        "## Time to first result (`benchmarks/time_to_result.py`)", "",
        f"Written {r['created']}; {r['machine']}. Each run a fresh process, timed from its "
        "launch; `make demo`'s `popsim run` (2,000 patients x 365 days, figure included, one "
        "device). Cold: an empty compile cache for each run; warm: the cache the last cold run "
        "filled. Phases (s, medians) from `--profile`.", "",
        "| run | wall (s), median (runs) | sampling | tracing + compiling (or loading) | "
        "steady states | time courses | writing | compiled / loaded from cache / traced "
        "programs read back |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        row("`make demo`, cold cache", r["cold"]),
        row("`make demo`, warm cache", r["warm"]), "",
        f"First chunk on disk of a 10^5-patient year (`configs/scale_year.toml`, "
        f"{r['devices_first_chunk']} devices, chunks of 1,000), warm cache: median "
        f"{r['median_first_chunk_warm_s']:.1f} s "
        f"({', '.join(format(x, '.1f') for x in r['first_chunk_warm_s'])}); the run that "
        f"filled the cache: {r['first_chunk_fill_s']:.1f} s."]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--devices", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "time_to_result.json")
    ap.add_argument("--table", type=Path, default=HERE / "RESULTS.md")
    ap.add_argument("--first-chunk-child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.first_chunk_child:
        first_chunk_child(args.first_chunk_child, args.devices)
        return 1  # not reached: the child exits after the first chunk
    result = measure(args.repeats, args.devices)
    from popsim.bench_report import save_script_results

    save_script_results(result, args.out, args.table, SECTION, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
