"""What makes a chunk's programs big: HLO size and compile time of each program of a run, and of
variants that leave one part out.

For the bench workload (``popsim/bench.py``: 365 days, daily outputs, one arm with a diet change),
one device, a chunk of ``--size`` patients (float64), each program is traced, lowered and compiled
with the compile cache off (a real XLA compilation), and measured:

* ``ops_lowered``: operations in the lowered StableHLO module (before XLA's optimisations);
* ``hlo_instructions``, ``fusions``, ``while_loops``, ``computations``: in the optimised HLO of
  the compiled executable (``compiled.as_text()``);
* ``flops``: XLA's cost analysis; ``executable_bytes``: the serialised executable;
* trace, lower and compile CPU seconds of this process (``time.process_time``: what the work
  costs, whatever else the machine runs; XLA compiles in several threads, so compile CPU can
  exceed its wall time).

Programs: ``draws`` (the cohort's covariates and parameter draws), ``newton`` (steady
states), ``fallback`` (pseudo-transient continuation), ``simulate_observe`` (the time course
and every output: one program per arm shape), and the variants ``simulate_only`` (no outputs:
the state trajectory), ``observe_only`` (the outputs from a given trajectory), ``rodas4`` (the
time course with a 6-stage instead of the 8-stage Rodas5P), ``no_jumps`` (a protocol with one
segment: no breakpoints for the controller).

Usage: POPSIM_CACHE_DIR=off python benchmarks/program_size.py [--size 500] [--only a,b]
  [--out benchmarks/results/program_size.json]
"""

import argparse
import dataclasses
import json
import os
import re
import sys
import time

os.environ["POPSIM_CACHE_DIR"] = "off"  # every compilation is a real one

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

jax.config.update("jax_enable_x64", True)

from popsim import batch, bench, model, population, solve  # noqa: E402
from popsim.parameters.io import default_parameters  # noqa: E402
from popsim.population import sample_cohort  # noqa: E402
from popsim.protocols import baseline_protocol  # noqa: E402


def hlo_counts(text: str) -> dict:
    """Counts in an optimised HLO module's text."""
    instructions = sum(1 for line in text.splitlines() if re.match(r"\s+(ROOT )?%?\S+ = ", line))
    return {"hlo_instructions": instructions,
            "fusions": len(re.findall(r"\bfusion\(", text)),
            "while_loops": len(re.findall(r"\bwhile\(", text)),
            "computations": len(re.findall(r"^(ENTRY )?%?[\w.\-]+ \(.*\) -> .* \{$", text,
                                           re.M))}


def measure(name: str, fn, *args) -> dict:
    """Trace, lower and compile ``fn`` (a jitted function) on ``args``; sizes and CPU times."""
    c0 = time.process_time()
    traced = fn.trace(*args)
    c1 = time.process_time()
    lowered = traced.lower()
    c2 = time.process_time()
    w2 = time.perf_counter()
    compiled = lowered.compile()
    c3, w3 = time.process_time(), time.perf_counter()
    text = compiled.as_text()
    cost = compiled.cost_analysis() or {}
    cost = cost[0] if isinstance(cost, list) else cost
    from jax.experimental.serialize_executable import serialize

    row = {"program": name, "trace_cpu_s": round(c1 - c0, 2), "lower_cpu_s": round(c2 - c1, 2),
           "compile_cpu_s": round(c3 - c2, 2), "compile_wall_s": round(w3 - w2, 2),
           "ops_lowered": lowered.as_text().count(" = "),
           **hlo_counts(text), "flops": float(cost.get("flops", float("nan"))),
           "executable_bytes": len(serialize(compiled)[0])}
    print(json.dumps(row), flush=True)
    return row


def programs(n: int):
    """The programs to measure: name -> (jitted function, args)."""
    conf, prot = bench.workload()
    s = solve.SolverSettings.from_simulation(conf.simulation)
    c = sample_cohort(conf.population, conf.population.seed, 0, n)
    p, pt = c.inputs(jnp.float64)
    ts = jnp.asarray(conf.simulation.output_times, jnp.float64)
    y0 = jnp.broadcast_to(jax.vmap(model.reference_state)(p, pt), (n, model.N_STATES))
    ys = jnp.zeros((n, ts.shape[0], model.N_STATES))

    def simulate_only(p, pt, prot, y0, ts, s):
        return jax.vmap(lambda a, b, y: solve.simulate(a, b, prot, y, ts, s))(p, pt, y0)

    def observe_only(p, pt, prot, ts, ys):
        return jax.vmap(lambda a, b, y: solve.observe_series(a, b, prot, ts, y))(p, pt, ys)

    sim = batch.simulate_observe_jit
    names = tuple(sorted(population.variability(conf.population, default_parameters().cvs)))
    draws = (population._draws_fn(names),  # the cohort's covariates and parameter draws
             (jax.random.key(conf.population.seed), jnp.arange(n, dtype=jnp.int64),
              population.numbers(conf.population)))
    return {
        "draws": draws,
        "newton": (batch.steady_states_jit, (p, pt, s)),
        "fallback": (batch.steady_states_fallback_jit, (p, pt, s)),
        "simulate_observe": (sim, (p, pt, prot, y0, ts, s)),
        "simulate_only": (jax.jit(simulate_only, static_argnames="s"), (p, pt, prot, y0, ts, s)),
        "observe_only": (jax.jit(observe_only), (p, pt, prot, ts, ys)),
        "rodas4": (sim, (p, pt, prot, y0, ts, dataclasses.replace(s, solver="rodas4"))),
        "no_jumps": (sim, (p, pt, baseline_protocol(1), y0, ts, s)),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--only", default=None, help="comma-separated program names")
    ap.add_argument("--out", default=None, help="JSON file to write")
    args = ap.parse_args(argv)
    rows = []
    with jax.enable_x64(True):
        progs = programs(args.size)
        jax.clear_caches()  # sampling the cohort compiled the draw program: measure it anew
        for name, (fn, a) in progs.items():
            if args.only and name not in args.only.split(","):
                continue
            rows.append(measure(name, fn, *a))
            jax.clear_caches()
    result = {"size": args.size, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": bench.machine(), "load_average": os.getloadavg(), "rows": rows}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
