"""The Markdown table of a ``popsim bench`` result, and writing it into a results file while
keeping what follows its kept marker."""

from __future__ import annotations

from pathlib import Path

from popsim.bench import ACCURACY_OUTPUTS, ACCURACY_PATIENTS


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        "# Benchmark results", "",
        "Written by `popsim bench` (`make bench`); numbers from one run on the machine below.", "",
        f"Machine: {m['platform']}, {m['cpu_count']} CPU cores, JAX backend {m['backend']} "
        f"({m['device_kind']}, {m['device_count']} device(s)); {result['dtype']}; "
        f"{result['solver']}; rtol {result['rtol']:g}, atol "
        f"{result['atol_relative_to_reference_pools']:g} of each reference pool (rows at another "
        "rtol: atol scaled with it). Workload: 365 "
        "days, daily outputs, Mg-poor diet for 180 days "
        "then back to usual intake (see `popsim/bench.py`). Peak RSS of the benchmark process "
        f"{result['peak_rss_mb']:.0f} MB. Created {result['created']}.", "",
        f"| method | rtol | patients | patient-days/s | × libRoadRunner on {m['cpu_count']} cores, "
        "same rtol | × libRoadRunner at equal accuracy | × best SciPy | "
        "max rel. error | compile (s) | steady states (s) | median steps/patient |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        comp = f"{r['compile_seconds']:.1f}" if r.get("compile_seconds") is not None else "-"
        if r.get("compile_counts"):
            k = r["compile_counts"]
            comp += f" ({k['compilations']} compiled, {k['cache_hits']} from cache)"
        ss = f"{r['steady_state_seconds']:.2f}" if "steady_state_seconds" in r else "-"
        st = f"{r['steps_per_patient_median']:.0f}" if "steps_per_patient_median" in r else "-"
        err = (f"{r['max_relative_error']:.1e}" if r.get("max_relative_error") is not None
               else "-")
        equal = (f"{r['ratio_at_equal_accuracy']:.2f}"
                 if r.get("ratio_at_equal_accuracy") is not None else "-")
        lines.append(f"| {r['method']} | {r.get('rtol', result['rtol']):g} | {r['patients']:,} | "
                     f"{r['patient_days_per_s']:,.0f} | "
                     f"{r.get('ratio_to_libroadrunner', float('nan')):.2f} | {equal} | "
                     f"{_ratio(r['ratio_to_best_scipy'])} | {err} | {comp} | {ss} | {st} |")
    lines += ["", "SciPy rows: `solve_ivp` one patient after another with the same right-hand "
              "side, jitted with JAX and called from NumPy, and its jitted Jacobian; integrated "
              "piecewise between dose changes. libRoadRunner row: CVODE (rtol as above, scalar "
              "atol "
              f"{result['atol_relative_to_reference_pools']:g}) on the model exported by "
              "`popsim export-sbml` with the workload's diet change as a piecewise input, loaded "
              "and compiled once, then one patient after another (set parameters, covariates "
              "and steady state; simulate 365 days with daily outputs), in one process; "
              f"× libRoadRunner on {m['cpu_count']} cores divides by its rate times "
              f"{m['cpu_count']} (as many processes as cores, assumed to scale perfectly: a "
              "bound in libRoadRunner's favour). Max rel. error: largest "
              f"relative deviation of {len(ACCURACY_OUTPUTS)} outputs ("
              + ", ".join(ACCURACY_OUTPUTS) + f") over {ACCURACY_PATIENTS} patients and 366 "
              "days from popsim Kvaerno5 at rtol 1e-10. × libRoadRunner at equal accuracy: "
              "libRoadRunner's rate at the popsim row's error, interpolated in log-log between "
              "the two libRoadRunner rows whose errors bracket it (times the cores, as above); "
              "at one nominal rtol the two solvers differ in accuracy by up to three orders of "
              "magnitude, so the same-rtol column compares unequal work.",
              "", _equal_accuracy_sentence(result), "", _target_sentence(result), ""]
    if "end_to_end" in result:
        from popsim.bench_run import markdown_end_to_end

        lines += markdown_end_to_end(result)
    return "\n".join(lines)


def _ratio(x: float) -> str:
    """A ratio to one decimal, or "-" where the peer was not timed (NaN)."""
    return f"{x:.1f}" if x == x else "-"


def _equal_accuracy_sentence(result: dict) -> str:
    """popsim's ratio at equal accuracy at each tolerance measured (the largest cohort's row)."""
    best: dict[float, dict] = {}
    for r in result["rows"]:
        if r["method"] == "popsim" and r.get("ratio_at_equal_accuracy") is not None:
            rtol = r.get("rtol", result["rtol"])
            if rtol not in best or r["patients"] > best[rtol]["patients"]:
                best[rtol] = r
    if not best:
        return ""
    parts = [f"{r['ratio_at_equal_accuracy']:.1f}x at rtol {rtol:g} (error "
             f"{r['max_relative_error']:.1e}, {r['patient_days_per_s']:,.0f} patient-days/s)"
             for rtol, r in sorted(best.items())]
    return ("popsim against libRoadRunner on the same cores at equal accuracy: "
            + "; ".join(parts) + ". `popsim run` defaults to rtol 1e-5.")


def _target_sentence(result: dict) -> str:
    """popsim's best rate here against the speed target (10^6 patient-years in 30 min = ~203,000
    patient-days/s); libRoadRunner's rate is the table's own row."""
    mine = [r for r in result["rows"]
            if r["method"] == "popsim" and r.get("rtol", result["rtol"]) == result["rtol"]]
    if not mine:
        return ""
    best = max(mine, key=lambda r: r["patient_days_per_s"])
    rate, dev = best["patient_days_per_s"], best.get("devices", 1)
    return (f"popsim's best here: {rate:,.0f} patient-days/s on {dev} device(s) "
            f"({rate / dev:,.0f} per device) at rtol {result['rtol']:g} (time courses only, "
            "steady states and file writing excluded) against ~203,000 for 10^6 patient-years "
            "in 30 min.")


KEPT_MARKER = "<!-- kept:"
"""Sections of the results file from this marker on (written by other benchmarks, e.g.
``benchmarks/solver_choice.py``) are kept when ``popsim bench`` rewrites its table."""


def write_kept_section(path: Path, name: str, lines: list[str]) -> None:
    """Replace (or append at the end) the block ``<!-- kept: NAME -->`` ... ``<!-- end: NAME
    -->`` of a results file with ``lines``: a benchmark script's section, which ``popsim
    bench`` keeps when it rewrites its own table."""
    begin, end = f"{KEPT_MARKER} {name} -->", f"<!-- end: {name} -->"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    block = "\n".join([begin, *lines, end])
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def save_script_results(result: dict, out: Path, table: Path, name: str,
                        lines: list[str]) -> None:
    """A benchmark script's result as JSON to ``out``, its Markdown ``lines`` as the kept
    section ``name`` of ``table`` (:func:`write_kept_section`), and printed."""
    import json

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    write_kept_section(table, name, lines)
    print("\n".join(lines))


def _write_table(path: Path, text: str) -> None:
    old = path.read_text() if path.exists() else ""
    kept = old[old.index(KEPT_MARKER):] if KEPT_MARKER in old else ""
    path.write_text(text + ("\n" + kept if kept else ""))
