"""Work-precision of the stiff solvers on one patient-year of Mg depletion and repletion.

Compares diffrax's ESDIRK solvers with their default stage solver (chord iteration, ``VeryChord``)
and with full Newton (``optimistix.Newton``), at several tolerances, against a tight reference
(Kvaerno5 + Newton, rtol 1e-10). Compile time is excluded; each timing is the best of 3 runs.

Usage: python benchmarks/solver_choice.py [--out benchmarks/results/solver_choice.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import diffrax as dfx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optimistix as optx  # noqa: E402

from popsim import model, protocols, solve  # noqa: E402
from popsim.parameters import Params  # noqa: E402
from popsim.units import mg_to_mmol_mg  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="benchmarks/results/solver_choice.json")
    args = ap.parse_args()

    p = Params()
    f64 = jnp.float64
    pt = model.make_patient(p, f64(70.0), False, f64(100.0), f64(mg_to_mmol_mg(300.0)),
                            f64(75.0), f64(150.0), f64(0.0), f64(0.0))
    y0, ok = solve.steady_state(p, pt)
    prot = protocols.compile_segments(
        [(10.0, 200.0, {"mg_intake": mg_to_mmol_mg(20.0)}, {}),
         (200.0, 300.0, {}, {"mg_oral": mg_to_mmol_mg(400.0)})], n_segments=8)
    scale = model.reference_state(p, pt)
    ts = jnp.arange(0.0, 366.0)

    def vf(t, x, args):
        return jnp.stack(model.derivatives(x * scale, p, pt, prot.inputs(t, pt))) / scale

    def run(solver, rtol, atol):
        ctrl = dfx.ClipStepSizeController(dfx.PIDController(rtol=rtol, atol=atol),
                                          jump_ts=prot.jump_times())
        f = jax.jit(lambda x0: dfx.diffeqsolve(
            dfx.ODETerm(vf), solver, 0.0, 365.0, 1e-3, x0, saveat=dfx.SaveAt(ts=ts),
            stepsize_controller=ctrl, max_steps=200_000, throw=False))
        x0 = y0 / scale
        sol = f(x0)
        sol.ys.block_until_ready()
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            sol = f(x0)
            sol.ys.block_until_ready()
            best = min(best, time.perf_counter() - t0)
        return sol, best

    ref, _ = run(dfx.Kvaerno5(root_finder=optx.Newton(rtol=1e-8, atol=1e-10)), 1e-10, 1e-12)
    rows = []
    for name, make in [
        ("Kvaerno5 (chord, diffrax default)", lambda r, a: dfx.Kvaerno5()),
        ("Kvaerno3 (chord, diffrax default)", lambda r, a: dfx.Kvaerno3()),
        ("Kvaerno5 + Newton", lambda r, a: dfx.Kvaerno5(root_finder=optx.Newton(
            rtol=100 * r, atol=100 * a))),
        ("Kvaerno4 + Newton", lambda r, a: dfx.Kvaerno4(root_finder=optx.Newton(
            rtol=100 * r, atol=100 * a))),
        ("Kvaerno3 + Newton", lambda r, a: dfx.Kvaerno3(root_finder=optx.Newton(
            rtol=100 * r, atol=100 * a))),
    ]:
        for rtol in (1e-5, 1e-6, 1e-7):
            atol = rtol * 1e-2
            sol, sec = run(make(rtol, atol), rtol, atol)
            err = float(jnp.max(jnp.abs(sol.ys / ref.ys - 1)))
            rows.append(dict(solver=name, rtol=rtol, atol=atol,
                             steps=int(sol.stats["num_steps"]),
                             rejected=int(sol.stats["num_rejected_steps"]),
                             ms_per_patient_year=1e3 * sec, max_rel_error=err,
                             ok=bool(sol.result == dfx.RESULTS.successful)))
            print(f"{name:36s} rtol={rtol:.0e} steps={rows[-1]['steps']:6d} "
                  f"rejected={rows[-1]['rejected']:6d} {1e3 * sec:8.1f} ms  max rel err {err:.1e}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(
        benchmark="solver_choice", scenario="1 patient-year: Mg-free diet days 10-200, "
        "400 mg/day supplement days 200-300", device=str(jax.devices()[0]),
        machine=platform.machine(), processor=platform.processor(), dtype="float64",
        reference="Kvaerno5 + Newton, rtol 1e-10, atol 1e-12", rows=rows), indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
