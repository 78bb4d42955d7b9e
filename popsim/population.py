"""Virtual population: covariates and per-patient parameters, sampled reproducibly.

Every patient ``i`` gets its own key, ``fold_in(key(seed), i)``, and every covariate or parameter
its own stream below that key, so a patient's draws depend only on the seed and its index: the
cohort is the same whatever the chunk size or the number of devices.

Continuous distributions are sampled inside their bounds (``min``/``max`` within the physical
limits of :data:`popsim.config.COVARIATE_LIMITS`) by inverse-CDF sampling: a truncated draw, with
no point masses at the bounds.
Kinetic parameters vary log-normally between patients around their typical value (the median):
``theta_i = theta * exp(omega * z_i)`` with ``omega = sqrt(log(1 + cv**2))``.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtr, ndtri

from popsim import config as cfg
from popsim.model import Patient, make_patient
from popsim.parameters import Params, parameter_specs
from popsim.units import mg_to_mmol_mg

COVARIATE_NAMES = tuple(cfg.COVARIATES)
_STREAM = {name: k for k, name in enumerate(COVARIATE_NAMES)}
_PARAM_STREAM_OFFSET = 1000
_PARAM_INDEX = {s.name: k for k, s in enumerate(parameter_specs())}
"""A parameter's random stream: its position in the table (new parameters are declared last, so
existing draws stay as they are)."""


def variability(pop: cfg.Population, base: dict[str, float] | None = None) -> dict[str, float]:
    """Coefficient of variation of every parameter that varies between patients.

    ``base``: CVs replacing the parameter table's (e.g. fitted by a calibration); the config's
    ``scale`` multiplies them and its ``cv`` entries override them.
    """
    cvs = {s.name: s.iiv for s in parameter_specs()}
    cvs.update(base or {})
    cvs = {k: v * pop.variability.scale for k, v in cvs.items()}
    cvs.update(pop.variability.cv)
    return {k: v for k, v in cvs.items() if v > 0}


def omega(cv):
    """SD of log(theta_i) for a log-normal with coefficient of variation ``cv``."""
    return jnp.sqrt(jnp.log1p(cv**2))


def _inverse_cdf_truncated_normal(u, mean, sd, lo, hi):
    """The ``u``-quantile (``u`` in [0, 1)) of normal(mean, sd) truncated to ``[lo, hi]`` (either
    may be infinite), accurate far into the tails: when the lower bound lies above the mean the
    draw is made on the survival function, so a window 10 SD out is sampled as well as one at the
    centre (``1 - ndtr(a)`` would round to 0 there). ``sd = 0`` gives the mean."""
    safe = jnp.maximum(sd, 1e-300)
    a = jnp.where(sd > 0, (lo - mean) / safe, -jnp.inf)
    b = jnp.where(sd > 0, (hi - mean) / safe, jnp.inf)
    tiny = jnp.finfo(jnp.float64).tiny
    lower = ndtr(a) + u * (ndtr(b) - ndtr(a))  # CDF side, for windows reaching below the mean
    upper = ndtr(-a) - u * (ndtr(-a) - ndtr(-b))  # survival side, for windows above it
    z = jnp.where(a > 0, -ndtri(jnp.clip(upper, tiny, 1.0)), ndtri(jnp.clip(lower, tiny, 1.0)))
    return jnp.clip(mean + sd * z, lo, hi)  # the clip only absorbs rounding at the bounds


def truncated_draw(u, kind: str, location, spread, lo, hi):
    """Inverse-CDF draw of a covariate inside ``[lo, hi]`` from ``u`` ~ uniform[0, 1).

    ``kind``: ``"normal"`` (``location`` mean, ``spread`` SD), ``"lognormal"`` (median and
    geometric SD) or ``"uniform"`` (``location`` low, ``spread`` high). The config has checked
    that the bounds hold enough of the distribution's mass
    (:data:`popsim.config.MIN_MASS_INSIDE_BOUNDS`); the values are a real truncated sample,
    never a clamp onto the bounds.
    """
    if kind in ("normal", "lognormal"):
        return _normal_or_lognormal(u, kind == "lognormal", location, spread, lo, hi)
    a, b = jnp.maximum(location, lo), jnp.minimum(spread, hi)
    return a + u * jnp.maximum(b - a, 0.0)


def _normal_or_lognormal(u, log, location, spread, lo, hi):
    """The truncated normal draw (``log`` false) or lognormal one (true: ``location`` the median,
    ``spread`` the geometric SD) as one inverse-CDF evaluation, on the log scale for the
    lognormal. ``log`` may be traced: one copy of the code serves both kinds."""
    ln = lambda x: jnp.log(jnp.maximum(x, 1e-300))  # noqa: E731
    z = _inverse_cdf_truncated_normal(
        u, jnp.where(log, ln(location), location), jnp.where(log, jnp.log(spread), spread),
        jnp.where(log, ln(lo), lo), jnp.where(log, jnp.log(hi), hi))
    return jnp.where(log, jnp.clip(jnp.exp(z), lo, hi), z)


_KINDS = ("fixed", "normal", "lognormal", "uniform")
"""Codes of a continuous covariate's distribution in its number row (see :func:`numbers`)."""


def _part_numbers(dist, name: str) -> dict[str, np.ndarray]:
    """One distribution of covariate ``name`` as arrays of a fixed shape per covariate.

    A categorical covariate: ``codes`` (the values' category codes in the config's order,
    padded to every category with the last one) and ``cum`` (their cumulative probabilities,
    padded with the total); a fixed category is one value of probability 1. A continuous one:
    ``row`` = (kind code of :data:`_KINDS`, location, spread, lower bound, upper bound, age
    slope), with location/spread the mean and SD, the median and geometric SD, or low and
    high, and a fixed value as its location."""
    labels = cfg.COVARIATES[name][2]
    if labels:
        values, probs = (([dist.value], [1.0]) if isinstance(dist, cfg.Fixed)
                         else (dist.values, dist.probabilities))
        codes = [labels.index(v) for v in values]
        cum = list(np.cumsum(np.asarray(probs, np.float64)))
        pad = len(labels) - len(codes)
        return {"codes": np.asarray(codes + [codes[-1]] * pad, np.int32),
                "cum": np.asarray(cum + [cum[-1]] * pad, np.float64)}
    lo, hi = cfg.continuous_bounds(name, dist)
    location, spread, slope = {
        "fixed": lambda: (float(dist.value), 0.0, 0.0),
        "normal": lambda: (dist.mean, dist.sd, dist.age_slope),
        "lognormal": lambda: (dist.median, dist.gsd, dist.age_slope),
        "uniform": lambda: (dist.low, dist.high, dist.age_slope)}[dist.distribution]()
    row = (_KINDS.index(dist.distribution), location, spread, lo, hi, slope)
    return {"row": np.asarray(row, np.float64)}


def numbers(pop: cfg.Population) -> dict[str, dict]:
    """Every covariate's distribution as arrays: a ``female`` and a ``male`` part
    (:func:`_part_numbers`; the same twice unless the covariate is given by sex) and ``by_sex``.
    They are arguments of the compiled draw program, not constants in it, so every population
    shares one program."""
    out = {}
    for name in COVARIATE_NAMES:
        spec = pop.covariate(name)
        by_sex = isinstance(spec, cfg.BySex)
        female, male = (spec.female, spec.male) if by_sex else (spec, spec)
        out[name] = {"female": _part_numbers(female, name), "male": _part_numbers(male, name),
                     "by_sex": np.asarray(by_sex)}
    return out


def _draw(key, p: dict, age):
    """One draw for one patient from a distribution's arrays ``p`` (:func:`_part_numbers`)."""
    u = jax.random.uniform(key, dtype=jnp.float64)
    if "codes" in p:
        codes, cum = p["codes"], p["cum"]
        i = jnp.searchsorted(cum, u * cum[-1], side="right", method="compare_all")
        return codes[jnp.minimum(i, codes.shape[0] - 1)]
    kind, location, spread, lo, hi, slope = (p["row"][i] for i in range(6))
    shift = slope * (age - cfg.AGE_REFERENCE) if age is not None else 0.0
    code = {k: kind == i for i, k in enumerate(_KINDS)}
    log = code["lognormal"]
    either = _normal_or_lognormal(u, log, jnp.where(log, jnp.maximum(location + shift, 1e-6),
                                                    location + shift), spread, lo, hi)
    uniform = truncated_draw(u, "uniform", location + shift, spread + shift, lo, hi)
    return jnp.select([code["fixed"], code["normal"] | log], [location, either], uniform)


def _covariate(key, p, age, sex):
    """A covariate's draw: from the patient's own stream ``key``, or, for one given by sex,
    from the female or the male half of that stream (both computed, one kept)."""
    one = _draw(key, p["female"], age)
    if sex is None:  # age and sex themselves (never given by sex: the config refuses it)
        return one
    kf, km = jax.random.split(key)
    by_sex = jnp.where(sex == 1, _draw(km, p["male"], age), _draw(kf, p["female"], age))
    return jnp.where(p["by_sex"], by_sex, one)


_CONTINUOUS = tuple(n for n in COVARIATE_NAMES if n != "age" and not cfg.COVARIATES[n][2])
"""The continuous covariates drawn together, after age (on which their locations may depend)."""


def _continuous_covariates(key, p: dict, age, sex) -> dict:
    """The :data:`_CONTINUOUS` covariates, each as :func:`_covariate` draws it (the same streams,
    the same numbers), in one draw vectorised over covariate and sex half: the program holds
    one copy of the inverse-CDF code instead of three per covariate, so it is smaller and
    compiles sooner."""
    keys = jax.vmap(lambda s: jax.random.fold_in(key, s))(
        jnp.asarray([_STREAM[n] for n in _CONTINUOUS], jnp.uint32))
    halves = jax.vmap(jax.random.split)(keys)  # (covariate, 2): the female and male halves
    female = jnp.stack([jnp.asarray(p[n]["female"]["row"]) for n in _CONTINUOUS])
    male = jnp.stack([jnp.asarray(p[n]["male"]["row"]) for n in _CONTINUOUS])
    draw = jax.vmap(lambda kk, row: _draw(kk, {"row": row}, age))
    one, by_female, by_male = jnp.split(draw(
        jnp.concatenate([keys, halves[:, 0], halves[:, 1]]),
        jnp.concatenate([female, female, male])), 3)
    by_sex = jnp.stack([jnp.asarray(p[n]["by_sex"]) for n in _CONTINUOUS])
    values = jnp.where(by_sex, jnp.where(sex == 1, by_male, by_female), one)
    return {n: values[i] for i, n in enumerate(_CONTINUOUS)}


def _sample_one(key, p: dict, names: tuple[str, ...]):
    k = lambda name: jax.random.fold_in(key, _STREAM[name])  # noqa: E731
    age = _covariate(k("age"), p["age"], None, None)
    sex = _covariate(k("sex"), p["sex"], age, None)
    drawn = {"age": age, "sex": sex, **_continuous_covariates(key, p, age, sex)}
    cov = {name: drawn[name] if name in drawn else _covariate(k(name), p[name], age, sex)
           for name in COVARIATE_NAMES}
    z = {name: jax.random.normal(jax.random.fold_in(key, _PARAM_STREAM_OFFSET
                                                    + _PARAM_INDEX[name]), dtype=jnp.float64)
         for name in names}
    return cov, z


BATCH_SIZES = (8, 16, 32, 64, 128, 256, 512, 1000)
"""Cohort batches are padded up to one of these sizes (larger ones stay as they are): programs
are compiled for a batch shape, so a few fixed shapes let the programs compiled for one cohort
(loaded from the on-disk cache in another process) serve the next one of a similar size. 1,000
is the default chunk size."""


def batch_size(n: int, n_devices: int = 1) -> int:
    """The batch ``n`` patients are computed in: the smallest of :data:`BATCH_SIZES` that holds
    them (``n`` itself above those), rounded up to a multiple of ``n_devices``."""
    size = next((b for b in BATCH_SIZES if b >= n), n)
    return -(-size // n_devices) * n_devices


def padded(tree, size: int):
    """``tree`` (leaves with a leading patient axis) padded to ``size`` patients by repeating
    the last one (whose copies are computed and discarded)."""
    def pad(x):
        x = jnp.asarray(x)
        return x if x.shape[0] == size else jnp.concatenate(
            [x, jnp.repeat(x[-1:], size - x.shape[0], axis=0)])

    return jax.tree.map(pad, tree)


def sample_draws(pop: cfg.Population, seed: int, start: int, n: int, names: tuple[str, ...],
                 index=None):
    """Covariates of patients ``start .. start+n-1`` (or of the patient indices ``index``) and
    their standard-normal draws ``z`` for the parameters ``names`` (each patient's own streams:
    independent of chunking)."""
    index = (jnp.arange(start, start + n, dtype=jnp.int64) if index is None
             else jnp.asarray(index, jnp.int64))
    m = index.shape[0]  # drawn in a batch of a fixed size (one program for similar sizes)
    cov, z = _draws_fn(tuple(names))(jax.random.key(seed), padded(index, batch_size(m)),
                                     numbers(pop))
    return index, *jax.tree.map(lambda x: x[:m], (cov, z))


_DRAWS_FNS: dict = {}


def _draws_fn(names: tuple[str, ...]):
    """The compiled draw function for the varying parameters ``names``, made once and reused
    by every chunk and population: the distributions are arguments (:func:`numbers`), so one
    program serves every population (with the distributions as constants, each study of the
    evidence folder would compile a draw program of its own)."""
    if names not in _DRAWS_FNS:
        def draws(root, index, p):
            keys = jax.vmap(lambda i: jax.random.fold_in(root, i))(index)
            return jax.vmap(lambda kk: _sample_one(kk, p, names))(keys)

        _DRAWS_FNS[names] = jax.jit(draws)
    return _DRAWS_FNS[names]


def individual_params(params: Params, z: dict, cvs: dict, n: int | None = None) -> Params:
    """Per-patient parameters: ``theta * exp(omega(cv) * z)`` for each varying parameter,
    clipped to its physical bounds; the others broadcast to ``n`` patients (default: the
    length of ``z``'s draws; give it when nothing varies, so every leaf still has the patient
    axis the batched solves map over). Differentiable in ``params`` and ``cvs`` (used by
    calibration)."""
    if n is None:
        n = next(iter(z.values())).shape[0] if z else None
    return _per_patient(params, z, {k: omega(v) for k, v in cvs.items() if k in z}, n)


def _per_patient(params: Params, z: dict, omegas: dict, n: int | None) -> Params:
    """:func:`individual_params` from the SDs ``omegas`` of log(theta_i) (scalars, or one per
    patient); ``params`` fields are scalars or ``(n,)``."""
    specs = {s.name: s for s in parameter_specs()}
    fields = {}
    for f in dataclasses.fields(Params):
        typical = jnp.asarray(getattr(params, f.name), jnp.float64)
        if f.name in omegas:
            s = specs[f.name]
            fields[f.name] = jnp.clip(typical * jnp.exp(omegas[f.name] * z[f.name]),
                                      s.lower, s.upper)
        else:
            fields[f.name] = typical if n is None else jnp.broadcast_to(typical, (n,))
    return Params(**fields)


def patients_from_covariates(per_patient: Params, cov: dict, chronic_diuretic_dose: float):
    """The model's :class:`Patient` batch from sampled covariates (config units)."""
    is_female = cov["sex"] == 0
    loop = jnp.where(cov["diuretic"] == 1, chronic_diuretic_dose, 0.0)
    thiazide = jnp.where(cov["diuretic"] == 2, chronic_diuretic_dose, 0.0)
    return make_patient(per_patient, cov["body_weight"], is_female, cov["egfr"],
                        mg_to_mmol_mg(cov["mg_intake"]), cov["k_intake"], cov["na_intake"],
                        loop, thiazide, cov["hypertension"] == 1)


class Cohort(eqx.Module):
    """A chunk of sampled patients (struct of arrays, leading patient axis)."""

    index: jax.Array  # (patient,) int64 patient indices
    covariates: dict  # name -> (patient,) array (categories as int codes)
    params: Params  # every field (patient,)
    patients: Patient  # every field (patient,)

    @property
    def size(self) -> int:
        return int(self.index.shape[0])

    def inputs(self, dtype=jnp.float64) -> tuple[Params, Patient]:
        """``(params, patients)`` as arrays of ``dtype``: what the batched solves take."""
        return (jax.tree.map(lambda x: jnp.asarray(x, dtype), self.params),
                jax.tree.map(lambda x: jnp.asarray(x, dtype), self.patients))

    def varying_parameters(self) -> dict[str, np.ndarray]:
        """The per-patient values of the parameters that vary (``{}`` if none)."""
        return {name: np.asarray(getattr(self.params, name)) for name in self.varying}

    varying: tuple[str, ...] = eqx.field(static=True, default=())


def sample_cohort(pop: cfg.Population, seed: int, start: int, n: int,
                  params: Params | None = None, cvs: dict[str, float] | None = None,
                  index=None) -> Cohort:
    """Patients ``start .. start+n-1`` of the population ``pop`` drawn with ``seed``.

    Args:
        pop: the population section of a run config.
        seed: the run's seed.
        start, n: first patient index and number of patients.
        index: instead of ``start``/``n``, the indices of the patients to draw (e.g. the
            candidates a screening enrolled, :mod:`popsim.screening`); patient ``i`` is the
            same draw whatever else is drawn with it.
        params: typical parameter values, e.g. from a calibration (default: the shipped
            calibrated set, :func:`popsim.parameters.io.default_parameters`).
        cvs: between-patient CVs replacing the table's (default: those of the shipped set
            when ``params`` is also defaulted, else none).
    """
    if params is None:
        from popsim.parameters.io import default_parameters

        ps = default_parameters()
        params, cvs = ps.params, ps.cvs if cvs is None else cvs
    cvs = variability(pop, cvs)
    names = tuple(sorted(cvs))
    index, cov, z = sample_draws(pop, seed, start, n, names, index)
    with jax.enable_x64(True):
        per_patient = individual_params(params, z, cvs, len(index))
        patients = patients_from_covariates(per_patient, cov, pop.chronic_diuretic_dose)
    return Cohort(index=index, covariates=cov, params=per_patient, patients=patients,
                  varying=names)


def sample_lanes(pop: cfg.Population, seed: int, index, typical: Params,
                 omegas: dict) -> Cohort:
    """Patients ``index`` (any indices: the same patient may appear in several lanes, e.g. once
    per parameter replicate), each lane with its own typical values and between-patient SDs.

    Args:
        index: ``(lanes,)`` patient indices; a lane's covariates and draws are those of its
            patient (:func:`sample_cohort` draws the same).
        typical: typical values, each field a scalar or ``(lanes,)``.
        omegas: varying parameter -> ``(lanes,)`` SD of log(theta_i) (:func:`omega` of the
            lane's CV, computed per CV as :func:`individual_params` does, so that a lane gets
            the bits of the same patient in :func:`sample_cohort`; 0 in a lane where the
            parameter does not vary).
    """
    names = tuple(sorted(omegas))
    index = jnp.asarray(index, jnp.int64)
    cov, z = _draws_fn(names)(jax.random.key(seed), index, numbers(pop))
    with jax.enable_x64(True):
        per_lane = _per_patient(typical, z, omegas, int(index.shape[0]))
        patients = patients_from_covariates(per_lane, cov, pop.chronic_diuretic_dose)
    return Cohort(index=index, covariates=cov, params=per_lane, patients=patients,
                  varying=names)
