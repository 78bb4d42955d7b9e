"""Fitting: a differentiable loss over a fixed virtual cohort, minimised with optax.

* **Common random numbers, fixed**: the cohort (covariates and the standard-normal draws of
  every patient's parameters) is sampled once from the seed and reused at every step: the loss
  is a deterministic, smooth function of the parameters (Adam converges, finite differences are
  meaningful, a fit is reproducible), at the sampling error of one cohort (``cohort_size``).
* **Gradients**: steady states by Newton with optimistix's implicit adjoint; time courses by
  diffrax's default adjoint through the same solve as `popsim run` (Rodas5P by default).
* **Failures**: a patient without a steady state is swapped for the reference patient inside
  the step (no NaN reaches the gradient) and masked out of every statistic.
* **One compiled step**: value-and-grad and the optax and parameter updates are one
  ``eqx.filter_jit`` region of fixed shapes (it compiles once), which also gives the loss before
  the first step and after the last, and :func:`evaluate`'s values: no second program. The
  cohort's covariates and draws and the targets' numbers are its arguments
  (:func:`problem_data`), not constants in it, so problems that differ only in those (another
  cohort, other target values) run the same compiled program (from JAX's compile cache).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from popsim import batch, devices, model, solve
from popsim._version import MODEL_VERSION, __version__, library_versions
from popsim.calibration import targets as tg
from popsim.calibration.config import CalibrationConfig
from popsim.config import Population
from popsim.parameters import Params
from popsim.population import (
    individual_params,
    patients_from_covariates,
    sample_draws,
    variability,
)
from popsim.protocols import arm_protocol, n_segments_for


def _forward(fp, u):
    lo, hi = fp.lower, fp.upper
    if fp.transform == "logit":
        return lo + (hi - lo) * jax.nn.sigmoid(u)
    return jnp.exp(jnp.clip(u, math.log(lo), math.log(hi)))


def _inverse(fp, v):
    lo, hi = fp.lower, fp.upper
    if fp.transform == "logit":
        f = (v - lo) / (hi - lo)
        return math.log(f / (1 - f))
    return math.log(v)


@dataclass
class Problem:
    """A calibration problem: the config, its fixed cohort and the compiled pieces."""

    conf: CalibrationConfig
    pop: Population
    base: Params
    base_cvs: dict[str, float]
    cov: dict
    z: dict
    settings: solve.SolverSettings
    protocols: dict  # arm name -> Protocol
    days: dict  # arm name -> sorted tuple of target days
    safe_params: Params  # the reference patient, used in place of failed ones
    safe_patient: model.Patient
    n: int
    n_arm: int  # patients whose time courses feed the targets on arms

    @property
    def fit(self):
        return self.conf.parameter

    def u0(self) -> jax.Array:
        return jnp.array([_inverse(fp, fp.start) for fp in self.fit], jnp.float64)

    def physical(self, u) -> tuple[dict, dict]:
        """Transformed parameter vector -> (typical values, CVs) that it sets."""
        values, cvs = {}, {}
        for k, fp in enumerate(self.fit):
            v = _forward(fp, u[k])
            (cvs if fp.is_cv else values)[fp.parameter] = v
        return values, cvs


def build_problem(conf: CalibrationConfig, pop: Population, base: Params | None = None,
                  base_cvs: dict | None = None) -> Problem:
    """Sample the fixed cohort and compile the arms of dynamic targets."""
    base = Params() if base is None else base
    n = conf.optimizer.cohort_size
    cvs = variability(pop, base_cvs)
    for fp in conf.parameter:
        if fp.is_cv:
            cvs.setdefault(fp.parameter, fp.start)
    names = tuple(sorted(cvs))
    with jax.enable_x64(True):
        _, cov, z = sample_draws(pop, conf.optimizer.seed, 0, n, names)
        settings = dataclasses.replace(solve.SolverSettings.from_simulation(conf.simulation),
                                       adjoint=conf.optimizer.gradient)
        n_seg = n_segments_for(a.intervention for a in conf.arm)
        protocols = {a.name: arm_protocol(a.intervention, conf.simulation.days, n_seg,
                                          jnp.float64) for a in conf.arm}
        days = {a: tuple(sorted(cast("set[float]", {t.day for t in conf.target if t.arm == a})))
                for a in protocols}  # a target with an arm has a day (Target._check)
        days = {a: d for a, d in days.items() if d}
        safe_params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), base)
        safe_patient = model.reference_patient(safe_params)
    return Problem(conf, pop, base, cvs, cov, z, settings, protocols, days, safe_params,
                   safe_patient, n, min(n, conf.optimizer.arm_cohort_size))


def _select(mask, a, b):
    """Per patient: ``a`` where mask else ``b`` (``b`` broadcast)."""
    return jax.tree.map(lambda x, y: jnp.where(mask.reshape((-1,) + (1,) * (x.ndim - 1)), x, y),
                        a, b)


def problem_data(problem: Problem) -> dict:
    """The numbers the compiled step takes as arguments: the fixed cohort (``cov``: covariates,
    ``z``: standard-normal draws) and, per target, ``scale``, ``weight`` and whichever of
    ``q``, ``value``, ``low``, ``high`` and ``fraction`` it has (float64 scalars)."""
    cache = problem.__dict__.setdefault("_compiled", {})
    if "data" not in cache:
        with jax.enable_x64(True):
            f64 = lambda x: jnp.asarray(x, jnp.float64)  # noqa: E731
            targets = [{k: f64(getattr(t, k)) for k in ("q", "value", "low", "high", "fraction")
                        if getattr(t, k) is not None}
                       | {"scale": f64(t.loss_scale), "weight": f64(t.weight)}
                       for t in problem.conf.target]
            cache["data"] = {"cov": {k: jnp.asarray(v) for k, v in problem.cov.items()},
                             "z": {k: jnp.asarray(v) for k, v in problem.z.items()},
                             "targets": targets}
    return cache["data"]


def _target_numbers(target, numbers: dict):
    """``target`` (its statistic and which numbers it has) with its numbers from the step's
    arguments, as :mod:`popsim.calibration.targets` reads a target."""
    return SimpleNamespace(statistic=target.statistic, loss_scale=numbers["scale"],
                           **{k: numbers.get(k) for k in ("q", "value", "low", "high",
                                                          "fraction")})


def outputs(problem: Problem, data: dict, u, y_warm):
    """Every output needed by the targets, per patient, at the parameters ``u``, for the cohort
    of ``data`` (:func:`problem_data`).

    Returns ``(values, ok, y_start)``: ``values`` maps ``(output, arm, day)`` (arm ``None`` for
    the steady state) to ``(patient,)`` arrays; ``ok`` the patients solved; ``y_start`` their
    steady states (no gradient), the warm start of the next step.
    """
    values_, cvs_ = problem.physical(u)
    params = dataclasses.replace(problem.base, **values_)
    per = individual_params(params, data["z"], {**problem.base_cvs, **cvs_},
                            len(data["cov"]["age"]))
    pts = patients_from_covariates(per, data["cov"], problem.pop.chronic_diuretic_dose)
    s = problem.settings

    # 1. where does Newton converge (no gradient), from last step's states
    y_fwd, ok = batch.steady_states(jax.lax.stop_gradient(per), jax.lax.stop_gradient(pts), s,
                                    y_warm)
    ok = jax.lax.stop_gradient(ok)
    y_fwd = jax.lax.stop_gradient(y_fwd)
    # 2. differentiable steady states, failed patients swapped for the reference patient
    per_s = _select(ok, per, problem.safe_params)
    pts_s = _select(ok, pts, problem.safe_patient)
    y_ref = jax.vmap(model.reference_state)(per_s, pts_s)
    y0, _ = batch.steady_states(per_s, pts_s, s, jnp.where(ok[:, None], y_fwd, y_ref))

    need = {(t.output, t.arm, t.day) for t in problem.conf.target}
    values = {}
    base_obs = batch.observe_baseline(per_s, pts_s, y0)
    for o, arm, _ in need:
        if arm is None:
            values[(o, None, None)] = base_obs[o]
    m = problem.n_arm
    first = lambda tree: jax.tree.map(lambda x: x[:m], tree)  # noqa: E731
    for arm, days in problem.days.items():
        prot = problem.protocols[arm]
        ts = jnp.asarray((0.0,) + days, jnp.float64)

        obs, st, _ = batch.simulate_observe(first(per_s), first(pts_s), prot, y0[:m], ts, s)
        ok = ok.at[:m].set(ok[:m] & (jax.lax.stop_gradient(st) == solve.Status.OK))
        for k, d in enumerate(days, start=1):
            for o, a, dd in need:
                if a == arm and dd == d:
                    values[(o, arm, d)] = obs[o][:, k]
    y_start = jnp.where(ok[:, None], y_fwd, y_ref)
    return values, ok, jax.lax.stop_gradient(y_start)


def loss_and_stats(problem: Problem, data: dict, u, y_warm):
    """The loss, and ``(statistics, ok, next warm start, raw outputs (target, patient))``.

    Targets on an arm see only the first ``n_arm`` patients; their raw rows are NaN beyond."""
    values, ok, y_start = outputs(problem, data, u, y_warm)
    terms, stats, raw = [], [], []
    for t, numbers in zip(problem.conf.target, data["targets"], strict=True):
        x = values[(t.output, t.arm, t.day)]
        mask = ok[: x.shape[0]]
        x = jnp.where(mask, x, 0.0)
        target = _target_numbers(t, numbers)
        st = tg.statistic(target, x, mask)
        stats.append(st)
        terms.append(numbers["weight"] * tg.loss_term(target, st))
        row = jnp.full((problem.n,), jnp.nan, x.dtype)
        raw.append(row.at[: x.shape[0]].set(jnp.where(mask, x, jnp.nan)))
    wsum = sum(n["weight"] for n in data["targets"])
    loss = sum(terms) / jnp.where(wsum > 0, wsum, 1.0)
    return loss, (jnp.stack(stats), ok, y_start, jnp.stack(raw))


def loss_and_grad(problem: Problem, data: dict, u, y_warm):
    """``(loss, aux), grad`` by the config's gradient mode (forward: jacfwd; reverse: vjp)."""
    if problem.conf.optimizer.gradient == "reverse":
        return jax.value_and_grad(lambda v: loss_and_stats(problem, data, v, y_warm),
                                  has_aux=True)(u)

    def f(v):
        loss, aux = loss_and_stats(problem, data, v, y_warm)
        return loss, (loss, aux)

    grad, (loss, aux) = jax.jacfwd(f, has_aux=True)(u)
    return (loss, aux), grad


def evaluate(problem: Problem, u=None, gradient: bool = False):
    """The loss at ``u`` (default: the starting values), from robust warm starts.

    Returns ``(loss, smoothed statistics per target, ok per patient, raw outputs, grad)``; ``grad``
    (by the config's gradient mode) only when ``gradient``, else ``None``. Evaluated by the
    problem's compiled optimiser step (:func:`compiled_step`), whose update is discarded.
    """
    step, opt = compiled_step(problem)
    with jax.enable_x64(True):
        u = problem.u0() if u is None else jnp.asarray(u, jnp.float64)
        _, _, loss, (stats, ok, _, raw), grad = step(problem_data(problem), u, opt.init(u),
                                                     warm_start(problem, u))
    return loss, stats, ok, raw, grad if gradient else None


def compiled_step(problem: Problem):
    """``(step, optimizer)`` of ``problem``: ``step(data, u, opt_state, y_warm) -> (next u,
    next state, loss at u, (statistics, ok, next warm start, raw outputs), gradient at u)``,
    value-and-grad and the optax update in one program (``eqx.filter_jit``), made once per
    problem; ``data`` is :func:`problem_data`."""
    cache = problem.__dict__.setdefault("_compiled", {})
    if "step" not in cache:
        opt = make_optimizer(problem.conf)

        @eqx.filter_jit
        def step(data, u, opt_state, y_warm):
            (loss, aux), grad = loss_and_grad(problem, data, u, y_warm)
            updates, opt_state = opt.update(grad, opt_state, u)
            return optax.apply_updates(u, updates), opt_state, loss, aux, grad

        cache["step"] = (step, opt)
    return cache["step"]


def make_optimizer(conf: CalibrationConfig):
    o = conf.optimizer
    lr = {"constant": o.learning_rate,
          "cosine": optax.cosine_decay_schedule(o.learning_rate, o.steps, alpha=0.05),
          "exponential": optax.exponential_decay(o.learning_rate, o.steps, 0.05)}[o.schedule]
    return getattr(optax, o.name)(learning_rate=lr)


@dataclass
class FitResult:
    problem: Problem
    u: jax.Array  # best transformed parameters
    losses: list[float]
    stats_before: np.ndarray  # hard statistics per target
    stats_after: np.ndarray
    values_before: np.ndarray  # (target, patient) raw outputs
    values_after: np.ndarray
    compile_seconds: float
    step_seconds: float
    steps: int
    stopped: str
    failed_after: int

    @property
    def fitted(self) -> tuple[dict, dict]:
        """Fitted ``(typical values, CVs)`` as Python floats."""
        with jax.enable_x64(True):
            v, c = self.problem.physical(jnp.asarray(self.u, jnp.float64))
        return {k: float(x) for k, x in v.items()}, {k: float(x) for k, x in c.items()}

    @property
    def final_loss(self) -> float:
        return float(min(self.losses))


def hard_statistics(problem: Problem, raw: np.ndarray) -> np.ndarray:
    """Exact (unsmoothed) statistics for the before/after table."""
    out = []
    for t, x in zip(problem.conf.target, raw, strict=True):
        x = x[np.isfinite(x)]
        if x.size == 0:
            out.append(np.nan)
        elif t.statistic == "quantile":
            out.append(np.quantile(x, cast(float, t.q)))  # set for a quantile (Target._check)
        elif t.statistic == "median":
            out.append(np.median(x))
        elif t.statistic == "mean":
            out.append(np.mean(x))
        else:
            out.append(np.mean((x >= t.low) & (x <= t.high)))
    return np.array(out)


def fit(problem: Problem, progress: bool = True, callback=None) -> FitResult:
    """Minimise the calibration loss; returns the best parameters seen."""
    from popsim.progress import Progress

    conf = problem.conf
    compiled, opt = compiled_step(problem)
    data = problem_data(problem)

    def step(u, opt_state, y_warm):
        return compiled(data, u, opt_state, y_warm)

    with jax.enable_x64(True):
        u = problem.u0()
        opt_state = opt.init(u)
        bar = Progress("calibrating", conf.optimizer.steps, "steps", enabled=progress)
        with bar:
            bar.phase("compiling the loss and its gradient")
            # the first step compiles (and gives the starting outputs); time it separately
            t0 = time.perf_counter()
            u_new, opt_state, loss, aux, _ = step(u, opt_state, warm_start(problem, u))
            loss.block_until_ready()
            compile_s = time.perf_counter() - t0
            _, ok0, y_warm, raw0 = aux
            losses = [float(loss)]
            best_u, best = u, float(loss)
            u = u_new
            t_loop = time.perf_counter()
            n_repaired = int((~ok0).sum())
            bar.advance(1, f"loss {float(loss):.4g}")
            stopped, best_u, u, y_warm = _iterate(problem, step, u, opt_state, y_warm, losses,
                                                  best_u, best, n_repaired, bar, callback)
        n_steps = len(losses)
        step_s = (time.perf_counter() - t_loop) / max(n_steps - 1, 1)
        _, _, _, (_, ok1, _, raw1), _ = step(best_u, opt_state, y_warm)  # outputs at the best
    return FitResult(problem, best_u, losses, hard_statistics(problem, np.asarray(raw0)),
                     hard_statistics(problem, np.asarray(raw1)), np.asarray(raw0),
                     np.asarray(raw1), compile_s, step_s, n_steps, stopped,
                     int((~np.asarray(ok1)).sum()))


def _iterate(problem: Problem, step, u, opt_state, y_warm, losses, best_u, best, n_repaired,
             bar, callback):
    """Optimizer steps after the first, until the step budget or a stopping rule; appends to
    ``losses``. Returns ``(why it stopped, best parameters, last parameters, warm start)``."""
    conf = problem.conf
    stopped = "max steps"
    last_improve, ref_best = 0, best
    for k in range(1, conf.optimizer.steps):
        u_next, opt_state, loss, aux, grad = step(u, opt_state, y_warm)
        lv = float(loss)
        if not math.isfinite(lv):
            stopped = f"non-finite loss at step {k}"
            break
        losses.append(lv)
        if lv < best:
            best, best_u = lv, u
        if callback is not None:
            callback(k, lv)
        bar.advance(1, f"loss {lv:.4g}")
        u, y_warm = u_next, aux[2]
        n_failed = int((~aux[1]).sum())
        if n_failed > n_repaired:  # new Newton failures: retry them robustly, once
            y_warm = jnp.where(aux[1][:, None], y_warm, warm_start(problem, u))
            n_repaired = n_failed
        if best <= conf.stopping.loss_below:
            stopped = f"loss below {conf.stopping.loss_below:g}"
            break
        if best < ref_best * (1 - conf.stopping.min_relative_improvement):
            ref_best, last_improve = best, k
        elif k - last_improve >= conf.stopping.patience:
            stopped = ("no relative improvement > "
                       f"{conf.stopping.min_relative_improvement:g} in "
                       f"{conf.stopping.patience} steps")
            break
    return stopped, best_u, u, y_warm


def warm_start(problem: Problem, u) -> jax.Array:
    """Steady states at ``u`` found robustly (:func:`popsim.devices.fit_steady_states`, outside
    the compiled step), reference states for patients without one. Newton inside the step
    starts from these."""
    with jax.enable_x64(True):
        per, pts = _initial_batch(problem, u)
    return devices.fit_steady_states(per, pts, problem.settings)[0]


def _initial_batch(problem: Problem, u=None):
    values_, cvs_ = problem.physical(problem.u0() if u is None else u)
    params = dataclasses.replace(problem.base, **values_)
    per = individual_params(params, problem.z, {**problem.base_cvs, **cvs_},
                            len(problem.cov["age"]))
    pts = patients_from_covariates(per, problem.cov, problem.pop.chronic_diuretic_dose)
    return per, pts


def result_table(res: FitResult) -> list[dict]:
    """Before/after rows: target, wanted, value before, value after, unit, met."""
    rows = []
    for t, b, a in zip(res.problem.conf.target, res.stats_before, res.stats_after, strict=True):
        rows.append(dict(target=t.label, wanted=t.wanted, before=float(b), after=float(a),
                         unit="1" if t.statistic == "fraction_in_range" else t.unit,
                         met_before=bool(tg.met(t, b)), met_after=bool(tg.met(t, a))))
    return rows


def write_outputs(res: FitResult, out: str | Path, config_text: str) -> list[Path]:
    """The parameter file, and its figures beside it (``<stem>_loss.png``, ``<stem>_fit.png``)."""
    from popsim.parameters.io import write_params_file

    out = Path(out)
    values, cvs = res.fitted
    fp_by = {fp.parameter if not fp.is_cv else fp.name: fp for fp in res.problem.fit}
    meta = dict(popsim_version=__version__, model_version=MODEL_VERSION,
                created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                seed=int(res.problem.conf.optimizer.seed),
                cohort_size=int(res.problem.n), steps=int(res.steps),
                final_loss=float(res.final_loss), initial_loss=float(res.losses[0]),
                stopped=res.stopped, optimizer=res.problem.conf.optimizer.name,
                versions=library_versions(), calibration_config=config_text)
    write_params_file(
        out, {k: (v, fp_by[k].start) for k, v in values.items()},
        {k: (v, fp_by["cv." + k].start) for k, v in cvs.items()}, meta,
        [{k: v for k, v in r.items()} for r in result_table(res)])
    figs = [out.with_name(out.stem + "_loss.png"), out.with_name(out.stem + "_fit.png")]
    from popsim.calibration.ranges_report import figures

    figures(res, figs)
    return figs
