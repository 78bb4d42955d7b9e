"""The differentiable evidence likelihood: transformed parameters ``u`` -> every study's virtual
patients -> observation statistics -> Gaussian negative log-likelihood.

* Steady states by Newton with optimistix's implicit adjoint (implicit function theorem, no
  differentiation through the iterations), warm-started from the previous iterate; Newton runs
  once without gradient to find which patients converge, and the patients that do not are
  swapped for the reference patient (so no NaN reaches a gradient) and get weight 0.
* Time courses: all studies' (patient, arm) lanes in one vmapped diffrax solve with a protocol
  and saved days per lane; gradients by diffrax's adjoint (``RecursiveCheckpointAdjoint`` for
  reverse mode, ``ForwardMode`` for forward mode and the Hessian).
* Likelihood: per fitted observation, ``(stat - value)^2 / (2 s^2) + ln(s) + ln(2 pi)/2`` with
  ``s^2 = SE_reported^2 + SE_MonteCarlo(stat)^2``; the Monte-Carlo SE depends on the parameters
  and is differentiated with them, so widening the population cannot buy a smaller misfit.

The data (covariates, draws, lanes, observed values and SEs) are arguments of the compiled
functions, not constants, so problems with the same shapes share programs.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from popsim import batch, model
from popsim.calibration import statistics as st
from popsim.calibration.problem import Problem, reference_inputs
from popsim.facts import Status
from popsim.population import individual_params, patients_from_covariates


def arrays(problem: Problem) -> dict:
    """The problem's data as a pytree of arrays (the compiled functions' data argument)."""
    d = {"cov": problem.cov, "z": problem.z, "cv_fixed": problem.cv_fixed,
         "cv_scale": problem.cv_scale, "cv_override": problem.cv_override, "dose": problem.dose,
         "mask": [s.cov_mask for s in problem.obs],
         "value": np.array([s.obs.value if s.obs.value is not None else 0.0
                            for s in problem.obs]),
         "se": np.array([s.se if s.se is not None else 1.0 for s in problem.obs])}
    for name in ("static", "dynamic"):
        lanes = getattr(problem, name)
        if lanes is not None:
            d[name] = {"patient": lanes.patient, "protocol": lanes.protocols}
            if lanes.ts is not None:
                d[name]["ts"] = lanes.ts
    with jax.enable_x64(True):
        return jax.tree.map(jnp.asarray, d)


def physical(problem: Problem, u) -> tuple[dict, dict]:
    """Transformed vector -> ``(typical values, CVs)`` by name (JAX; see
    :mod:`popsim.calibration.spec`)."""
    values, cvs = {}, {}
    for k, p in enumerate(problem.params):
        s = jax.nn.sigmoid(u[k])
        if p.transform == "log":
            v = jnp.exp(math.log(p.lower) + (math.log(p.upper) - math.log(p.lower)) * s)
        else:
            v = p.lower + (p.upper - p.lower) * s
        (cvs if p.is_cv else values)[p.parameter] = v
    return values, cvs


def _select(mask, a, b):
    """Per patient: ``a`` where ``mask``, else ``b`` (broadcast)."""
    return jax.tree.map(lambda x, y: jnp.where(mask.reshape((-1,) + (1,) * (x.ndim - 1)), x, y),
                        a, b)


def _take(tree, idx):
    return jax.tree.map(lambda x: x[idx], tree)


def patient_inputs(problem: Problem, data: dict, u):
    """Per-patient parameters and :class:`popsim.model.Patient` at ``u``."""
    values, fitted_cvs = physical(problem, u)
    params = dataclasses.replace(problem.base, **values)
    cvs = dict(data["cv_fixed"])
    for name, v in fitted_cvs.items():
        keep = data["cv_override"][name] | (data["cv_scale"][name] == 0)
        cvs[name] = jnp.where(keep, cvs[name], v * data["cv_scale"][name])
    per = individual_params(params, data["z"], cvs, data["cov"]["age"].shape[0])
    return per, patients_from_covariates(per, data["cov"], data["dose"])


def steady_states(problem: Problem, data: dict, u, y_warm):
    """``(per, pts, y0, ok)``: differentiable steady states, failed patients swapped for the
    reference patient."""
    per, pts = patient_inputs(problem, data, u)
    s = problem.settings
    sg = jax.lax.stop_gradient
    y_fwd, ok = batch.steady_states(sg(per), sg(pts), s, y_warm)
    ok, y_fwd = sg(ok), sg(y_fwd)
    safe_p, safe_pt = reference_inputs(problem.base)
    per_s = _select(ok, per, safe_p)
    pts_s = _select(ok, pts, safe_pt)
    y_ref = jax.vmap(model.reference_state)(per_s, pts_s)
    y0, _ = batch.steady_states(per_s, pts_s, s, jnp.where(ok[:, None], y_fwd, y_ref))
    return per_s, pts_s, y0, ok, jnp.where(ok[:, None], y_fwd, sg(y_ref))


def simulate(problem: Problem, data: dict, u, y_warm):
    """Every block's outputs ``{output: (arm, patient, time)}``, its patients solved
    ``(patient,)``, and the steady states (the next warm start, no gradient)."""
    per, pts, y0, ok, y_next = steady_states(problem, data, u, y_warm)
    lanes = {}
    if problem.static is not None:
        d = data["static"]
        idx = d["patient"]
        out = batch.observe_lanes(_take(per, idx), _take(pts, idx), d["protocol"], y0[idx], 0.0)
        lanes["static"] = ({k: v[:, None] for k, v in out.items()},
                           jnp.ones(idx.shape, bool))
    if problem.dynamic is not None:
        d = data["dynamic"]
        idx = d["patient"]
        out, status, _ = batch.simulate_observe_lanes(_take(per, idx), _take(pts, idx),
                                                      d["protocol"], y0[idx], d["ts"],
                                                      problem.settings)
        lanes["dynamic"] = (out, jax.lax.stop_gradient(status == Status.OK))
    outs, oks = [], []
    for b in problem.blocks:
        src, lane_ok = lanes["dynamic" if b.dynamic else "static"]
        a = len(b.arms)
        rows = slice(b.lane0, b.lane0 + a * b.n)
        ok_b = ok[b.patient0:b.patient0 + b.n] & jnp.all(lane_ok[rows].reshape(a, b.n), axis=0)
        outs.append({o: jnp.where(ok_b[None, :, None], src[o][rows].reshape(a, b.n, -1), 0.0)
                     for o in b.outputs})
        oks.append(ok_b)
    return outs, oks, y_next


def needed(problem: Problem, only_fitted: bool) -> list[int]:
    """Indices of the observations to evaluate: all, or the fitted ones and what their
    ``combine`` reads."""
    if not only_fitted:
        return list(range(len(problem.obs)))
    keys = {s.key: i for i, s in enumerate(problem.obs)}
    want: set[int] = set()

    def add(i):
        want.add(i)
        s = problem.obs[i]
        if s.obs.combine is not None:
            sid = problem.blocks[s.block].sid
            for r in s.obs.combine.of:
                add(keys[r if ":" in r else f"{sid}:{r}"])

    for i, s in enumerate(problem.obs):
        if s.fitted:
            add(i)
    return sorted(want)


def observation_terms(problem: Problem, data: dict, idx: list[int], values, mc_se):
    """Gaussian negative log-likelihood of each observation in ``idx`` (its own statistic)."""
    obs_value = data["value"][jnp.asarray(idx)]
    var = data["se"][jnp.asarray(idx)] ** 2 + mc_se**2
    return 0.5 * (values - obs_value) ** 2 / var + 0.5 * jnp.log(2 * math.pi * var)


def _evaluate(problem: Problem, data: dict, u, y_warm, idx: list[int]):
    outs, oks, y_next = simulate(problem, data, u, y_warm)
    specs = [dataclasses.replace(problem.obs[i], cov_mask=data["mask"][i]) for i in idx]
    values, mc, counts = st.evaluate(specs, outs, oks, problem.blocks)
    return values, mc, counts, oks, y_next


def nll(problem: Problem, data: dict, u, y_warm):
    """The fit's objective and ``(NLL per study, failed patients, next warm start)``."""
    idx = needed(problem, True)
    values, mc, _, oks, y_next = _evaluate(problem, data, u, y_warm, idx)
    terms = observation_terms(problem, data, idx, values, mc)
    fitted = np.array([problem.obs[i].fitted for i in idx])
    terms = jnp.where(fitted, terms, 0.0)
    block = np.array([problem.obs[i].block for i in idx])
    per_study = jnp.stack([jnp.sum(jnp.where(block == b, terms, 0.0))
                           for b in range(len(problem.blocks))])
    failed = sum(jnp.sum(~ok) for ok in oks)
    return jnp.sum(terms), (per_study, failed, y_next)


def report(problem: Problem, data: dict, u, y_warm):
    """Every observation's model value, Monte-Carlo SE, patients counted and NLL term (NaN
    where the observation is not a likelihood term), and the blocks' outputs (no gradient)."""
    idx = needed(problem, False)
    values, mc, counts, oks, _ = _evaluate(problem, data, u, y_warm, idx)
    terms = observation_terms(problem, data, idx, values, mc)
    use = np.array([s.likelihood for s in problem.obs])
    return values, mc, counts, jnp.where(use, terms, jnp.nan)
