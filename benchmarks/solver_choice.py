"""Work-precision of the stiff solvers: error against a tight reference, steps, time.

Scenarios (``popsim.solve.simulate`` and ``batched_simulate_observe``, the code paths of
``popsim run``):

* ``single``: one typical patient, one year: Mg-free diet days 10-200, 400 mg/day supplement days
  200-300 (the scenario of the first solver choice).
* cohort scenarios, ``--patients`` (default 32) patients each, sampled from the configs'
  populations: ``depletion_repletion`` (``configs/us_adults.toml`` population, 50 mg/day Mg for
  180 days then usual intake, 365 days: the ``popsim bench`` workload), ``iv_mg``
  (``configs/iv_mg_repletion.toml``,
  24 mmol IV Mg over one day, outputs every 3 h), ``diuretics`` (``configs/diuretics.toml``,
  furosemide and hydrochlorothiazide arms, outputs every 6 h) and ``k_and_mg``
  (``configs/refractory_hypokalemia.toml``, oral K + Mg arm).

Reference: Kvaerno5 with Newton stages at rtol 1e-10, atol 1e-12, checked against Rodas5P at rtol
1e-11 (the two agree to the printed ``reference_check``). Error: the maximum over patients, saved
times and the outputs in :data:`ERROR_OUTPUTS` of ``|x / x_ref - 1|``. Time: best of ``--repeats``
calls, all methods of a scenario interleaved (the machine is shared); compile time excluded.

Writes ``benchmarks/results/solver_choice.json`` and ``benchmarks/results/solver_choice.md``.

Usage: python benchmarks/solver_choice.py [--patients 32] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
import tomllib
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import diffrax as dfx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from popsim import config as cfg  # noqa: E402
from popsim import model, protocols, solve  # noqa: E402
from popsim._version import library_versions  # noqa: E402
from popsim.parameters import Params  # noqa: E402
from popsim.population import sample_cohort  # noqa: E402
from popsim.run import arm_protocol, output_times  # noqa: E402
from popsim.units import mg_to_mmol_mg  # noqa: E402

ERROR_OUTPUTS = ("serum_mg", "serum_k", "serum_na", "serum_ca", "intracellular_mg",
                 "intracellular_k", "intracellular_na", "pth", "urine_mg", "urine_k")

REFERENCE = solve.SolverSettings(solver="kvaerno5", rtol=1e-10, atol=1e-12, newton_rtol=1e-8,
                                 newton_atol=1e-10, max_steps=400_000)
CHECK = dataclasses.replace(REFERENCE, solver="rodas5p", rtol=1e-11, atol=1e-13)

SOLVERS = ("kvaerno3_chord", "kvaerno3", "kvaerno5", "rodas4", "rodas4p", "rodas5p")
RTOLS = (1e-5, 1e-6, 1e-7, 1e-8)
COHORT_SOLVERS = ("kvaerno3", "rodas4", "rodas4p", "rodas5p")
COHORT_RTOLS = (1e-5, 1e-6, 1e-7)

DEPLETION_ARM = """
[[arm]]
name = "depletion_then_repletion"
[[arm.intervention]]
kind = "diet"
mg_intake = 50
start_day = 0
end_day = 180
"""
COHORTS = {  # name: (config file, arm names, extra config text)
    "depletion_repletion": ("configs/us_adults.toml", ["depletion_then_repletion"], DEPLETION_ARM),
    "iv_mg": ("configs/iv_mg_repletion.toml", ["iv_mg_24mmol"], ""),
    "diuretics": ("configs/diuretics.toml", ["furosemide", "hydrochlorothiazide"], ""),
    "k_and_mg": ("configs/refractory_hypokalemia.toml", ["mg_plus_k"], ""),
}


def settings(solver, rtol, max_steps):
    """The settings a config with ``solver`` and ``rtol`` gets (atol = rtol / 100, Newton
    tolerances of the ESDIRK stages 100x the step tolerances)."""
    atol = rtol * 1e-2
    return solve.SolverSettings(solver=solver, rtol=rtol, atol=atol, newton_rtol=100 * rtol,
                                newton_atol=100 * atol, max_steps=max_steps)


def _timed(fn, repeats, results):
    """Interleaved timing: ``fn`` maps key -> thunk; every repeat calls each thunk once."""
    for _ in range(repeats):
        for k, thunk in fn.items():
            t0 = time.perf_counter()
            jax.block_until_ready(thunk())
            results[k].append(time.perf_counter() - t0)


def _rel_error(out, ref, names):
    return max(float(np.max(np.abs(np.asarray(out[k]) / np.asarray(ref[k]) - 1))) for k in names)


def single_patient(solvers, rtols, repeats):
    p = Params()
    f64 = jnp.float64
    pt = model.make_patient(p, f64(70.0), False, f64(100.0), f64(mg_to_mmol_mg(300.0)),
                            f64(75.0), f64(150.0), f64(0.0), f64(0.0))
    y0, ok = solve.steady_state(p, pt)
    prot = protocols.compile_segments(
        [(10.0, 200.0, {"mg_intake": mg_to_mmol_mg(20.0)}, {}),
         (200.0, 300.0, {}, {"mg_oral": mg_to_mmol_mg(400.0)})], n_segments=8)
    ts = jnp.arange(0.0, 366.0)

    def compiled(s, chord=False):
        f = jax.jit(lambda y: solve.simulate(p, pt, prot, y, ts, s))
        if chord:  # diffrax's default stage solver (chord iteration), for comparison
            make, solve._make_solver = solve._make_solver, lambda s: dfx.Kvaerno3()
            try:
                jax.block_until_ready(f(y0))
            finally:
                solve._make_solver = make
        jax.block_until_ready(f(y0))
        return f

    ref = compiled(REFERENCE)(y0)[0]
    chk = compiled(CHECK)(y0)[0]
    ref_check = float(jnp.max(jnp.abs(chk / ref - 1)))
    fns, rows = {}, {}
    for name in solvers:
        for rtol in rtols:
            chord = name.endswith("_chord")
            f = compiled(settings(name.removesuffix("_chord"), rtol, 200_000), chord)
            ys, status, steps = f(y0)
            rows[(name, rtol)] = dict(
                scenario="single", solver=name, rtol=rtol, patients=1,
                controller_rtol=rtol * solve.CONTROLLER_TOLERANCE_SCALE.get(name, 1.0),
                max_rel_error=float(jnp.max(jnp.abs(ys / ref - 1))),
                steps_mean=float(steps), steps_max=int(steps), failed=int(status != 0))
            fns[(name, rtol)] = lambda f=f: f(y0)
    times = {k: [] for k in fns}
    _timed(fns, repeats, times)
    for k, r in rows.items():
        r["seconds"] = min(times[k])
        r["ms_per_patient_year"] = 1e3 * r["seconds"]
    return list(rows.values()), ref_check


def cohort(name, n, solvers, rtols, repeats):
    path, arms, extra = COHORTS[name]
    text = Path(path).read_text()
    if extra:
        text += extra
    conf = cfg.parse_config(tomllib.loads(text))
    sim = conf.simulation
    ts = jnp.asarray(output_times(sim))
    chosen = [a for a in conf.arms if a.name in arms]
    n_seg = 1 << (max(2 * len(a.intervention) + 1 for a in chosen) - 1).bit_length()
    prots = [arm_protocol(a, sim.days, n_seg, jnp.float64) for a in chosen]
    c = sample_cohort(conf.population, conf.population.seed, 0, n)
    y0, ok = solve.steady_states_with_fallback(c.params, c.patients, solve.SolverSettings())
    assert bool(ok.all()), f"{name}: a steady state failed"

    def run(s):
        return [solve.batched_simulate_observe(c.params, c.patients, prot, y0, ts, s)
                for prot in prots]

    ref = run(REFERENCE)
    ref_check = max(_rel_error(o[0], r[0], ERROR_OUTPUTS)
                    for o, r in zip(run(CHECK), ref, strict=True))
    fns, rows = {}, {}
    for solver in solvers:
        for rtol in rtols:
            s = settings(solver, rtol, sim.step_budget)
            out = run(s)
            steps = np.concatenate([np.asarray(o[2]) for o in out])
            rows[(solver, rtol)] = dict(
                scenario=name, solver=solver, rtol=rtol, patients=n * len(prots),
                controller_rtol=rtol * solve.CONTROLLER_TOLERANCE_SCALE.get(solver, 1.0),
                days=float(sim.days),
                max_rel_error=max(_rel_error(o[0], r[0], ERROR_OUTPUTS)
                                  for o, r in zip(out, ref, strict=True)),
                steps_mean=float(steps.mean()), steps_max=int(steps.max()),
                failed=int(sum(int((np.asarray(o[1]) != 0).sum()) for o in out)))
            fns[(solver, rtol)] = lambda s=s: run(s)
    times = {k: [] for k in fns}
    _timed(fns, repeats, times)
    for k, r in rows.items():
        r["seconds"] = min(times[k])
        r["ms_per_patient_year"] = 1e3 * r["seconds"] / r["patients"] * 365.0 / r["days"]
    return list(rows.values()), ref_check


def markdown(result) -> str:
    lines = [
        "# Solver choice: work-precision", "",
        f"Written by `benchmarks/solver_choice.py`; {result['created']}; {result['machine']}, "
        f"JAX {result['versions'].get('jax', '?')}, diffrax "
        f"{result['versions'].get('diffrax', '?')}; float64.", "",
        f"Reference: {result['reference']}; the check solve ({result['reference_check_solver']}) "
        "agrees with it to the `ref. check` column. Error: max over patients, saved times and "
        f"outputs ({', '.join(ERROR_OUTPUTS)}) of |x/x_ref - 1|. atol = rtol/100 of each "
        "state's reference pool; `rtol` is the config's, `controller rtol` what the step-size "
        "controller uses (`popsim.solve.CONTROLLER_TOLERANCE_SCALE`). Times: best of "
        f"{result['repeats']} interleaved calls (shared 2-core machine: noisy), batches of "
        "the scenario's patients, compile excluded; the steps columns are exact.", "",
        "| scenario | solver | rtol | controller rtol | max rel. error | steps mean | steps max | "
        "ms per patient-year | failed | ref. check |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['scenario']} ({r['patients']}) | {r['solver']} | {r['rtol']:.0e} | "
            f"{r['controller_rtol']:.0e} | {r['max_rel_error']:.1e} | {r['steps_mean']:.0f} | "
            f"{r['steps_max']} | "
            f"{r['ms_per_patient_year']:.2f} | {r['failed']} | "
            f"{result['reference_check'][r['scenario']]:.0e} |")
    return "\n".join(lines) + "\n"


SECTION = "<!-- kept: benchmarks/solver_choice.py -->"


def summary(result) -> str:
    """The RESULTS.md section: per scenario and rtol, each solver's max error, mean steps and
    ms per patient-year."""
    rows = result["rows"]
    solvers = [s for s in dict.fromkeys(r["solver"] for r in rows)]
    lines = [SECTION, "", "## Solver choice: work-precision", "",
             f"Written by `benchmarks/solver_choice.py` ({result['created']}; full table in "
             "`benchmarks/results/solver_choice.md`). Each cell: max relative error of "
             f"{len(ERROR_OUTPUTS)} outputs against {result['reference']} / mean steps per "
             "patient / ms per patient-year (batches of the scenario's patients, one core, "
             "compile excluded). `rtol` is the config's; the Rosenbrock solvers run their "
             "step-size controller at 0.1-0.3 x rtol (`popsim.solve.CONTROLLER_TOLERANCE_SCALE`), "
             "calibrated so that their errors stay at or below Kvaerno3's at the same rtol.", "",
             "| scenario | rtol | " + " | ".join(solvers) + " |",
             "|---|---:|" + "---:|" * len(solvers)]
    for sc in dict.fromkeys(r["scenario"] for r in rows):
        for rtol in sorted({r["rtol"] for r in rows if r["scenario"] == sc}, reverse=True):
            cells = []
            for sv in solvers:
                m = [r for r in rows if (r["scenario"], r["rtol"], r["solver"]) == (sc, rtol, sv)]
                cells.append(f"{m[0]['max_rel_error']:.1e} / {m[0]['steps_mean']:.0f} / "
                             f"{m[0]['ms_per_patient_year']:.1f}" if m else "")
            n = next(r["patients"] for r in rows if r["scenario"] == sc)
            lines.append(f"| {sc} ({n}) | {rtol:.0e} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _update_results_section(path: Path, section: str) -> None:
    """Replace this benchmark's section of ``path`` (from :data:`SECTION` to the next kept
    section or the end), or append it."""
    text = path.read_text() if path.exists() else ""
    if SECTION in text:
        head, rest = text.split(SECTION, 1)
        nxt = rest.find("<!-- kept:")
        tail = rest[nxt:] if nxt >= 0 else ""
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/solver_choice.json")
    ap.add_argument("--patients", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="single-patient scenario only")
    ap.add_argument("--scenarios", default=",".join(["single", *COHORTS]))
    ap.add_argument("--results-md", default="benchmarks/RESULTS.md",
                    help="file whose 'Solver choice' section is (re)written ('' for none)")
    args = ap.parse_args(argv)
    rows, checks = [], {}
    for sc in args.scenarios.split(","):
        t0 = time.perf_counter()
        if sc == "single":
            r, checks[sc] = single_patient(SOLVERS, RTOLS, args.repeats)
        elif not args.quick:
            r, checks[sc] = cohort(sc, args.patients, COHORT_SOLVERS, COHORT_RTOLS, args.repeats)
        else:
            continue
        rows += r
        for x in r:
            print(f"{x['scenario']:20s} {x['solver']:9s} rtol {x['rtol']:.0e}  err "
                  f"{x['max_rel_error']:.1e}  steps {x['steps_mean']:6.1f} (max "
                  f"{x['steps_max']:5d})  {x['ms_per_patient_year']:7.2f} ms/patient-year  "
                  f"failed {x['failed']}", flush=True)
        print(f"{sc}: reference check {checks[sc]:.1e}, {time.perf_counter() - t0:.0f} s",
              file=sys.stderr, flush=True)
        # every compiled program holds LLVM code mappings; dozens of scenarios' worth exceed the
        # kernel's vm.max_map_count (65,530) and abort the process
        jax.clear_caches()
    result = dict(
        benchmark="solver_choice",
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        machine=f"{platform.machine()} {platform.processor() or ''}".strip(),
        device=str(jax.devices()[0]), versions=library_versions(), dtype="float64",
        reference="Kvaerno5 + Newton stages, rtol 1e-10, atol 1e-12",
        reference_check_solver="Rodas5P, rtol 1e-11, atol 1e-13",
        reference_check=checks, repeats=args.repeats, error_outputs=list(ERROR_OUTPUTS),
        rows=rows)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    if args.results_md:
        _update_results_section(Path(args.results_md), summary(result))
    print(f"wrote {out} and {out.with_suffix('.md')}" +
          (f", section of {args.results_md}" if args.results_md else ""))


if __name__ == "__main__":
    main()
