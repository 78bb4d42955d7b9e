"""Model-level accuracy of the default time-course solver: popsim's Rodas5P at its default
settings against SciPy's Radau at rtol 1e-10 on the same vector field, one patient-year with
interventions, every saved output within the 1e-4 relative accuracy target (docs/DESIGN.md,
"Accuracy")."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SCENARIO_BATCH, patients, timed_effects
from jax.flatten_util import ravel_pytree
from scipy.integrate import solve_ivp

from popsim import batch, devices, model, protocols, solve
from popsim.units import mg_to_mmol_mg

DAYS = 365.0
TS = np.arange(0.0, DAYS + 1.0)  # daily outputs
TARGET_RTOL = 1e-4  # the accuracy target: outputs within 1e-4 relative of a converged solution
REFERENCE_RTOL = 1e-10
REFERENCE_ATOL = 1e-12  # times model.state_scale: the reference pools, 1 for the log-gain
N_REAL = 3  # the batch is padded to SCENARIO_BATCH (the shape the other tests' Newton uses)


def _cohort():
    """A reference adult, a woman on a chronic loop diuretic (half the maximal effect) and a
    man with CKD (eGFR 25), padded with copies of the last."""
    pad = SCENARIO_BATCH - N_REAL
    return patients(egfr=[100, 100] + [25] * (1 + pad), loop=[0, 0.5] + [0] * (1 + pad),
                    female=[0, 1] + [0] * (1 + pad), body_weight=[70, 62] + [85] * (1 + pad))


def _protocol():
    """Mg-poor diet (50 mg/day) for 120 days, then the usual diet plus 400 mg/day oral Mg; a
    loop diuretic (half the maximal effect, added to any chronic dose) from day 200."""
    return protocols.compile_segments(timed_effects(
        [(0.0, 120.0, {"mg_intake": mg_to_mmol_mg(50.0)}, {}),
         (120.0, DAYS, {}, {"mg_oral": mg_to_mmol_mg(400.0)}),
         (200.0, DAYS, {}, {"loop_dose": 0.5})]), horizon=DAYS)


def _reference_functions(example):
    """``model.derivatives`` of one patient and its Jacobian, jitted once (for every patient
    and segment), as functions of the state and of ``(params, patient, inputs)`` flattened
    like ``example``."""
    unravel = ravel_pytree(example)[1]

    def rhs(x, theta):
        p, pt, u = unravel(theta)
        return jnp.stack(model.derivatives(x, p, pt, u))

    return jax.jit(rhs), jax.jit(jax.jacfwd(rhs))


def _radau_states(rhs, jac, p, pt, prot, y0, method="Radau"):
    """States of one patient at ``TS`` by SciPy's ``solve_ivp``, segment by segment between the
    protocol's breakpoints: the inputs are constant within each segment, so no step crosses a
    jump."""
    cuts = [0.0, *[float(b) for b in np.asarray(prot.breakpoints) if 0.0 < b < DAYS], DAYS]
    atol = REFERENCE_ATOL * np.asarray(model.state_scale(p, pt))
    ys = np.empty((TS.size, y0.size))
    y = np.asarray(y0, float)
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        theta = np.asarray(ravel_pytree((p, pt, prot.inputs(0.5 * (a + b), pt)))[0])
        days = TS[(TS >= a) & ((TS <= b) if b == DAYS else (TS < b))]
        sol = solve_ivp(lambda t, x, th=theta: np.asarray(rhs(x, th)), (a, b), y,
                        method=method, t_eval=np.union1d(days, [b]), rtol=REFERENCE_RTOL,
                        atol=atol, jac=lambda t, x, th=theta: np.asarray(jac(x, th)))
        assert sol.success, sol.message
        ys[np.isin(TS, days)] = sol.y.T[np.isin(sol.t, days)]
        y = sol.y[:, -1]
    return ys


def _relative_error(value, reference) -> float:
    """Largest relative deviation of ``value`` from ``reference`` over the year. An output whose
    reference changes sign (net intestinal Mg absorption, gross uptake minus endogenous loss, on
    the Mg-poor diet) is measured against its largest magnitude over the year instead: near its
    zero crossing a pointwise relative error says nothing about accuracy."""
    value, reference = np.asarray(value), np.asarray(reference)
    scale = np.abs(reference)
    if reference.min() < 0 < reference.max():
        scale = np.full_like(scale, scale.max())
    return float(np.max(np.abs(value - reference) / scale))


@pytest.mark.slow
def test_rodas5p_default_settings_against_radau_reference():
    """Three patients over a year with interventions: every saved output of popsim's default
    solve is within the target's 1e-4 relative of SciPy's Radau at rtol 1e-10, itself checked
    against SciPy's BDF at the same tolerances."""
    s = solve.SolverSettings()
    pb, pt = _cohort()
    prot = _protocol()
    y0, ok = devices.steady_states_with_fallback(pb, pt, s)
    assert bool(np.all(ok))
    out, status, _ = batch.simulate_observe_jit(pb, pt, prot, y0, jnp.asarray(TS), s)
    assert np.all(np.asarray(status) == solve.Status.OK)

    one = lambda tree, i: jax.tree.map(lambda x: x[i], tree)  # noqa: E731
    rhs, jac = _reference_functions((one(pb, 0), one(pt, 0), prot.inputs(0.0, one(pt, 0))))
    observe = jax.jit(solve.observe_series)
    errors = {k: 0.0 for k in out}
    for i in range(N_REAL):
        p_i, pt_i = one(pb, i), one(pt, i)
        ys = _radau_states(rhs, jac, p_i, pt_i, prot, y0[i])
        if i == 0:  # the reference is converged far below the target: Radau and BDF agree
            bdf = _radau_states(rhs, jac, p_i, pt_i, prot, y0[i], method="BDF")
            assert _relative_error(bdf, ys) < TARGET_RTOL / 100
        ref = observe(p_i, pt_i, prot, jnp.asarray(TS), ys)
        for k, v in ref.items():
            errors[k] = max(errors[k], _relative_error(out[k][i], v))
    report = ", ".join(f"{k} {e:.1e}" for k, e in sorted(errors.items()))
    assert max(errors.values()) < TARGET_RTOL, f"max relative error per output: {report}"
    print(f"\nRodas5P (default settings) against Radau (rtol {REFERENCE_RTOL:g}), max relative "
          f"error per output: {report}")
