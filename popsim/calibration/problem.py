"""An evidence calibration's fixed data: every study's virtual patients, flattened into lanes.

Each study (:class:`Block`) keeps its own design: its population (sampled once from the file's
seed: common random numbers at every iteration), its arms and the days its observations read.
All studies' patients form one batch for the steady states; all their (patient, arm) lanes
form one batch of time courses with a protocol and saved days per lane (padded to
:data:`LANE_BUCKET` and to one number of saved days), so one compiled program serves the whole
fit. Studies whose observations read only day 0 need no time course: their lanes are the
outputs at the steady state under each arm's inputs at day 0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import cast

import jax
import jax.numpy as jnp
import numpy as np

from popsim import config as cfg
from popsim import model, solve
from popsim.calibration.spec import CalibrationError, FitParam
from popsim.evidence import Observation, Study, design_config
from popsim.evidence.trial import MAX_STEPS, N_SEGMENTS
from popsim.parameters import Params
from popsim.population import sample_draws, variability
from popsim.protocols import protocols_for

INTEGRATE_POINTS = 25  # saved days across each ``integrate`` window (trapezoid rule)
LANE_BUCKET = 8  # lanes are padded to a multiple of this (device splits, stable shapes)
SUPPORTED = ("mean", "median", "sd", "quantile", "min", "max", "fraction_below",
             "fraction_above", "fraction_between")
"""Statistics the calibration evaluates (the statistics over patients of
:mod:`popsim.evidence.statistics`, and ``combine`` of them)."""


@dataclass(frozen=True)
class Block:
    """One study as simulated in the fit: ``n`` patients, its arms, its saved days."""

    study: Study
    arms: tuple[str, ...]
    n: int
    times: np.ndarray  # saved days (static blocks: [0.])
    dynamic: bool
    patient0: int  # first patient in the patient batch
    lane0: int  # first lane in the dynamic (or static) lane batch
    covariates: dict  # name -> (n,) values, categories as labels
    outputs: tuple[str, ...]  # the outputs its observations read

    @property
    def sid(self) -> str:
        return self.study.study.id

    def time_index(self, day: float) -> int:
        i = int(np.argmin(np.abs(self.times - day)))
        assert abs(self.times[i] - day) <= 1e-9 * max(1.0, day), (self.sid, day)
        return i


@dataclass(frozen=True)
class ObsSpec:
    """An observation with its static indices into its block's outputs."""

    key: str  # "study:id" (or "study:#k" without an id)
    block: int
    obs: Observation
    arm: int
    versus: int | None
    t: int | None
    t_base: int | None
    window: tuple[int, int] | None
    cov_mask: np.ndarray  # (n,) bool: the covariate subgroup
    out_sub: tuple  # ((output, time index, min, max), ...): subgroups on outputs (soft)
    supported: bool
    likelihood: bool  # fit = true, a value with its SE, a supported statistic
    fitted: bool  # a term of this fit's likelihood (a likelihood observation of a fitted study)
    se: float | None  # the reported value's standard error


@dataclass(frozen=True)
class Lanes:
    """A batch of (patient, arm) lanes: patient index, protocol and saved days per lane."""

    patient: np.ndarray  # (lane,) int
    protocols: object  # Protocol with a leading lane axis
    ts: np.ndarray | None  # (lane, time) days; None for lanes at day 0 only
    size: int  # lanes in use (the rest is padding)


@dataclass(eq=False)
class Problem:
    """Everything fixed during a fit; ``u`` (the transformed fitted values) varies."""

    params: tuple[FitParam, ...]
    base: Params
    base_cvs: dict[str, float]
    blocks: list[Block]
    obs: list[ObsSpec]
    cov: dict  # name -> (patient,) covariates (codes)
    z: dict  # name -> (patient,) standard-normal draws
    cv_fixed: dict  # name -> (patient,) CV of each patient's study
    cv_scale: dict  # fitted CV name -> (patient,) its study's variability scale
    cv_override: dict  # fitted CV name -> (patient,) bool: the study sets that CV itself
    dose: np.ndarray  # (patient,) chronic diuretic dose of each patient's study
    static: Lanes | None
    dynamic: Lanes | None
    settings: solve.SolverSettings
    n_patients: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def study_ids(self) -> list[str]:
        return [b.sid for b in self.blocks]


def observation_days(study: Study) -> list[float]:
    """The saved days a study's observations need: 0, each day they read, and
    :data:`INTEGRATE_POINTS` days across each integration window."""
    days = {0.0}
    for o in study.observation:
        for d in (o.day, o.change_from_day):
            if d is not None:
                days.add(float(d))
        if o.integrate is not None:
            window = cast("tuple[float, float]", o.integrate)  # two days (validated)
            days.update(float(d) for d in np.linspace(*window, INTEGRATE_POINTS))
    return sorted(days)


def build_problem(studies: list[Study], params: tuple[FitParam, ...], base: Params,
                  base_cvs: dict[str, float], size: int | None = None,
                  gradient: str = "reverse", fitted: bool = True,
                  population_size: int | None = None) -> Problem:
    """Sample every study's patients and lay out the lanes (``size`` per trial,
    ``population_size`` per population study: :func:`popsim.evidence.design_config`).
    ``fitted``: whether the studies' fittable observations are likelihood terms (held-out
    studies: ``False``)."""
    days = [observation_days(s) for s in studies]
    n_times = max([len(d) for d in days if len(d) > 1] + [1])
    n_times = -(-n_times // 4) * 4
    configs = [design_config(s, size, population_size) for s in studies]
    names = _varying_names(configs, base_cvs, params)
    blocks, per_patient = [], []
    counts = {"patient": 0, "dynamic": 0, "static": 0}
    for s, conf, d in zip(studies, configs, days, strict=True):
        dynamic = len(d) > 1
        times = np.asarray(d + [d[-1]] * (n_times - len(d))) if dynamic else np.zeros(1)
        b, draws = _block(s, conf, times, dynamic, counts, names, base_cvs)
        blocks.append(b)
        per_patient.append(draws)
    cat = lambda key: {k: np.concatenate([p[key][k] for p in per_patient])  # noqa: E731
                       for k in per_patient[0][key]}
    obs = [spec for i, b in enumerate(blocks) for spec in _specs(i, b, fitted)]
    _check_observations(obs, blocks)
    sim = cfg.Simulation(days=max(c.simulation.days for c in configs))
    settings = dataclasses.replace(
        solve.SolverSettings.from_simulation(sim), max_steps=MAX_STEPS,
        rtol=min(c.simulation.rtol for c in configs), atol=min(c.simulation.atol for c in configs),
        adjoint="forward" if gradient == "forward" else "recursive")
    fitted_cvs = [p.parameter for p in params if p.is_cv]
    return Problem(params, base, dict(base_cvs), blocks, obs, cat("cov"), cat("z"),
                   cat("cv"), {k: v for k, v in cat("scale").items() if k in fitted_cvs},
                   {k: v for k, v in cat("override").items() if k in fitted_cvs},
                   np.concatenate([p["dose"] for p in per_patient]),
                   _lanes(configs, blocks, False), _lanes(configs, blocks, True),
                   settings, counts["patient"])


def _varying_names(configs, base_cvs, params) -> tuple[str, ...]:
    names = {p.parameter for p in params if p.is_cv}
    for c in configs:
        names |= set(variability(c.population, base_cvs))
    return tuple(sorted(names))


def _block(study: Study, conf: cfg.RunConfig, times, dynamic: bool, counts: dict, names,
           base_cvs: dict[str, float]):
    """One study's block and its patients' draws (covariates, z, CVs)."""
    pop = conf.population
    n = pop.size
    with jax.enable_x64(True):
        _, cov, z = sample_draws(pop, pop.seed, 0, n, names)
    cov = {k: np.asarray(v) for k, v in cov.items()}
    labels = {}
    for name, v in cov.items():
        _, kind, lab = cfg.COVARIATES[name]
        labels[name] = np.asarray(lab)[v] if kind == "category" else v
    cvs = variability(pop, base_cvs)  # the base set's CVs x the study's scale, overrides
    draws = {"cov": cov, "z": {k: np.asarray(v) for k, v in z.items()},
             "cv": {}, "scale": {}, "override": {}, "dose": np.full(n, pop.chronic_diuretic_dose)}
    for name in names:
        draws["scale"][name] = np.full(n, pop.variability.scale)
        draws["override"][name] = np.full(n, name in pop.variability.cv)
        draws["cv"][name] = np.full(n, cvs.get(name, 0.0))
    outputs = sorted({o.output for o in study.observation if o.output}
                     | {k for o in study.observation for k in o.subgroup
                        if k not in cfg.COVARIATES})
    arms = tuple(a.name for a in conf.arms)
    key = "dynamic" if dynamic else "static"
    b = Block(study, arms, n, times, dynamic, counts["patient"], counts[key], labels,
              tuple(outputs))
    counts["patient"] += n
    counts[key] += n * len(arms)
    return b, draws


def _lanes(configs, blocks: list[Block], dynamic: bool) -> Lanes | None:
    """The lanes of the dynamic (or static) blocks, arm-major within each block."""
    patient, prots, ts = [], [], []
    for conf, b in zip(configs, blocks, strict=True):
        if b.dynamic != dynamic:
            continue
        with jax.enable_x64(True):
            ps = protocols_for(conf.arms, conf.simulation.days, jnp.float64,
                               n_segments=N_SEGMENTS)
        for prot in ps:
            patient.append(b.patient0 + np.arange(b.n))
            prots += [prot] * b.n
            ts += [b.times] * b.n
    if not patient:
        return None
    size = sum(len(p) for p in patient)
    pad = -size % LANE_BUCKET
    idx = np.concatenate(patient + [np.zeros(pad, int)])
    prots += [prots[0]] * pad
    ts += [ts[0]] * pad
    stacked = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *prots)
    return Lanes(idx, stacked, np.stack(ts) if dynamic else None, size)


def _specs(i: int, b: Block, fitted: bool) -> list[ObsSpec]:
    out = []
    for k, o in enumerate(b.study.observation):
        arm = b.arms.index(o.arm) if o.arm is not None else 0
        versus = b.arms.index(o.versus_arm) if o.versus_arm is not None else None
        t = b.time_index(o.day) if o.day is not None else None
        base = b.time_index(o.change_from_day) if o.change_from_day is not None else None
        window = ((b.time_index(o.integrate[0]), b.time_index(o.integrate[1]))
                  if o.integrate is not None else None)
        mask = np.ones(b.n, bool)
        out_sub = []
        for name, crit in o.subgroup.items():
            if name in b.covariates:
                x = b.covariates[name]
                if isinstance(crit, str):
                    mask &= x == crit
                else:
                    mask &= (x >= (-np.inf if crit.min is None else crit.min)) & \
                        (x <= (np.inf if crit.max is None else crit.max))
            else:  # an output: reading the study refuses a text criterion on one
                assert not isinstance(crit, str)
                out_sub.append((name, b.time_index(o.day or 0.0), crit.min, crit.max))
        supported = o.combine is not None or o.statistic in SUPPORTED
        like = o.fit and o.value is not None and supported
        out.append(ObsSpec(f"{b.sid}:{o.id or '#' + str(k + 1)}", i, o, arm, versus, t, base,
                           window, mask, tuple(out_sub), supported, like, fitted and like,
                           o.standard_error()))
    return out


def _check_observations(obs: list[ObsSpec], blocks: list[Block]) -> None:
    """Fitted observations must be computable: a supported statistic, patients in their
    covariate subgroup, combines of known observations."""
    keys = {s.key for s in obs}
    for s in obs:
        b = blocks[s.block]
        if s.obs.fit and s.obs.value is not None and not s.supported:
            raise CalibrationError(f"{s.key}: statistic {s.obs.statistic!r} cannot be fitted "
                                   f"(allowed: {', '.join(SUPPORTED)}, combine); the study file "
                                   "can set fit = false")
        if s.fitted and s.obs.combine is None and s.cov_mask.sum() < 2:
            raise CalibrationError(
                f"{s.key}: {int(s.cov_mask.sum())} of {b.n} virtual patients are in its "
                f"subgroup; raise --size or --population-size (the file asks for at least "
                f"{b.study.study.min_size})")
        if s.obs.combine is not None:
            for ref in s.obs.combine.of:
                ref = ref if ":" in ref else f"{b.sid}:{ref}"
                if ref not in keys:
                    raise CalibrationError(f"{s.key}: combine reads {ref!r}, which is not in "
                                           "the studies of this fit (add that study)")


def reference_inputs(base: Params):
    """The reference patient (float64): the stand-in for patients without a steady state."""
    with jax.enable_x64(True):
        p = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), base)
        return p, model.reference_patient(p)
