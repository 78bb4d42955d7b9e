"""Where one Rodas5P step's time goes, per patient of a batch: the vector field, the Jacobian,
the LU factorisation, one linear solve, a whole step, and the whole time course per step.

For the bench workload (``popsim/bench.py``: 365 days, daily outputs, a Mg-poor diet for 180
days then usual intake), one device, a batch of ``--size`` patients (float64) at their steady
states, each part is vmapped over the batch, jitted, and repeated ``--repeats`` times inside one
compiled ``fori_loop`` (no dispatch cost in the figure); the figure is microseconds of wall
time per patient per call. The whole time course is timed once warm and divided by the slowest
patient's step count (a vmapped solve steps every patient until the slowest is done).

Writes benchmarks/results/step_profile.json and a section of benchmarks/RESULTS.md.

Usage: python benchmarks/step_profile.py [--size 500] [--repeats 50]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

import diffrax as dfx  # noqa: E402
import lineax as lx  # noqa: E402

from popsim import batch, bench, solve  # noqa: E402
from popsim.bench_report import write_kept_section  # noqa: E402
from popsim.linear import SmallLU, _solve  # noqa: E402
from popsim.population import sample_cohort  # noqa: E402

HERE = Path(__file__).resolve().parent
MAX_MULTIPLIER = 1e6  # an unpivoted factorisation with a larger multiplier counts as failed


def _factor_unpivoted(M):
    """LU without row exchanges, entry by entry (one array per entry: XLA fuses the elimination
    into a few loops); ``ok`` False for a non-finite factor or a multiplier above
    MAX_MULTIPLIER. The barrier keeps XLA from fusing the elimination into every solve."""
    n = M.shape[0]
    a = [[M[i, j] for j in range(n)] for i in range(n)]
    multipliers = []
    for k in range(n - 1):
        for i in range(k + 1, n):
            a[i][k] = lik = a[i][k] / a[k][k]
            multipliers.append(lik)
            for j in range(k + 1, n):
                a[i][j] = a[i][j] - lik * a[k][j]
    lu = jnp.stack([jnp.stack(row) for row in a])
    ok = jnp.all(jnp.isfinite(lu)) & (jnp.max(jnp.abs(jnp.stack(multipliers))) <= MAX_MULTIPLIER)
    return jax.lax.optimization_barrier((lu, ok))


class UnpivotedLU(lx.AbstractLinearSolver):
    """The alternative measured here (not popsim's: its differentiated programs compile several
    times longer; docs/DESIGN.md, Solver): a failed factorisation fails the Rosenbrock step."""

    def init(self, operator, options):
        return _factor_unpivoted(operator.as_matrix())

    def compute(self, state, vector, options):
        lu, ok = state
        result = lx.RESULTS.where(ok, lx.RESULTS.successful, lx.RESULTS.singular)
        return _solve((lu, jnp.arange(lu.shape[0])), vector), result, {}

    def transpose(self, state, options):
        raise NotImplementedError

    def conj(self, state, options):
        raise NotImplementedError

    def assume_full_rank(self):
        return True
T_MID = 10.0  # days: inside the diet change, a time every part is evaluated at


def _parts(prot, s):
    """name -> per-patient function ``(params, patient, y) -> array`` of each measured part."""
    solver = solve._make_solver(s)  # the time course's: Rodas5P with SmallLU
    unpivoted = type(solver)(time_derivative=False, linear_solver=UnpivotedLU())

    def field(p, pt, y):
        scale = solve._scales(p, pt, False)
        return solve._vector_field(p, pt, prot, scale, False), y / scale

    def rhs(p, pt, y):
        vf, x = field(p, pt, y)
        return vf(T_MID, x, None)

    def jac(p, pt, y):
        vf, x = field(p, pt, y)
        _, jvp = jax.linearize(lambda xx: vf(T_MID, xx, None), x)
        return jax.vmap(jvp, out_axes=1)(jnp.eye(x.shape[0], dtype=x.dtype))

    def matrix(p, pt, y):
        return jnp.eye(y.shape[0], dtype=y.dtype) - 0.1 * jac(p, pt, y)

    def factor(p, pt, y):
        return SmallLU().init(lx.MatrixLinearOperator(matrix(p, pt, y)), {}).lu

    def factor_unpivoted(p, pt, y):
        return UnpivotedLU().init(lx.MatrixLinearOperator(matrix(p, pt, y)), {})[0]

    def factor_solve(p, pt, y):
        state = UnpivotedLU().init(lx.MatrixLinearOperator(matrix(p, pt, y)), {})
        return UnpivotedLU().compute(state, jnp.ones_like(y), {})[0]

    def step(p, pt, y, how=solver):
        vf, x = field(p, pt, y)
        return how.step(dfx.ODETerm(vf), T_MID, T_MID + 0.5, x, None, None, False)[0]

    return {"vector field": rhs, "Jacobian (linearize + one jvp per state)": jac,
            "Jacobian + LU with partial pivoting (SmallLU)": factor,
            "Jacobian + LU without pivoting (UnpivotedLU)": factor_unpivoted,
            "Jacobian + UnpivotedLU + one solve": factor_solve,
            "one whole Rodas5P step (8 stages, UnpivotedLU)":
                lambda p, pt, y: step(p, pt, y, unpivoted),
            "one whole Rodas5P step (8 stages, SmallLU: the time course's)": step}


def _per_patient_us(fn, params, patients, y0, repeats):
    """Microseconds of wall time per patient per call of ``fn`` vmapped over the batch."""
    def body(i, acc):
        y = y0 * (1.0 + 1e-12 * i)  # a new input each time: nothing is hoisted out of the loop
        return acc + jnp.sum(jax.vmap(fn)(params, patients, y))

    run = jax.jit(lambda: jax.lax.fori_loop(0, repeats, body, 0.0))
    run().block_until_ready()
    t0 = time.perf_counter()
    run().block_until_ready()
    return (time.perf_counter() - t0) / repeats / y0.shape[0] * 1e6


def profile(size: int, repeats: int) -> dict:
    conf, prot = bench.workload()
    s = solve.SolverSettings.from_simulation(conf.simulation)
    cohort = sample_cohort(conf.population, conf.population.seed, 0, size)
    p, pts = cohort.params, cohort.patients
    y0, ok = batch.steady_states_jit(p, pts, s)
    y0 = batch.reference_if_failed(y0, ok, p, pts)  # as a run does before its time course
    rows = {name: _per_patient_us(fn, p, pts, y0, repeats)
            for name, fn in _parts(prot, s).items()}
    ts = jnp.asarray(conf.simulation.output_times)
    whole = jax.jit(lambda: batch.simulate_observe(p, pts, prot, y0, ts, s))
    jax.block_until_ready(whole())
    t0 = time.perf_counter()
    out = jax.block_until_ready(whole())
    wall = time.perf_counter() - t0
    steps = np.asarray(out[2])[np.asarray(ok)]
    rows["whole time course, per slowest-patient step"] = wall / steps.max() / size * 1e6
    return {"size": size, "repeats": repeats, "devices": 1, "newton_failed": int((~ok).sum()),
            "steps_max": int(steps.max()), "steps_mean": float(steps.mean()),
            "time_course_wall_s": wall, "us_per_patient": rows,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def markdown(r: dict) -> str:
    step = r["us_per_patient"]["one whole Rodas5P step (8 stages, SmallLU: the time course's)"]
    md = ["## Where a time step goes (`benchmarks/step_profile.py`)", "",
          f"{r['created']}; bench workload, {r['size']} patients on one device (float64), each "
          f"part vmapped and repeated {r['repeats']} times in one compiled loop. Time course: "
          f"{r['time_course_wall_s']:.2f} s, {r['steps_max']} steps for the slowest patient, "
          f"{r['steps_mean']:.0f} on average.", "",
          "| part | µs per patient | share of a step |", "|---|---:|---:|"]
    for name, us in r["us_per_patient"].items():
        md.append(f"| {name} | {us:.2f} | {us / step:.0%} |")
    return "\n".join(md)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    if args.size < 2 or args.repeats < 1:
        sys.exit(f"--size {args.size} / --repeats {args.repeats}: need size >= 2, repeats >= 1")
    r = profile(args.size, args.repeats)
    (HERE / "results" / "step_profile.json").write_text(json.dumps(r, indent=1) + "\n")
    md = markdown(r)
    write_kept_section(HERE / "RESULTS.md", "step profile", [md])
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
