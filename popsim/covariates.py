"""Covariates of a virtual population and their distributions: names, units, physical limits,
the config schema of each distribution, the US-adult defaults, and the checks that a truncated
distribution can be sampled as asked. Imports no JAX (:mod:`popsim.population` samples)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from popsim._schema import _Strict

#: name -> (unit, kind, allowed categories)
COVARIATES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "age": ("years", "float", ()),
    "sex": ("1", "category", ("female", "male")),
    "body_weight": ("kg", "float", ()),
    "egfr": ("mL/min/1.73 m2", "float", ()),
    "mg_intake": ("mg/day", "float", ()),
    "k_intake": ("mmol/day", "float", ()),
    "na_intake": ("mmol/day", "float", ()),
    "diuretic": ("1", "category", ("none", "loop", "thiazide")),
    "hypertension": ("1", "category", ("no", "yes")),
}
#: physical limits a sampled covariate is clipped to, whatever the distribution
COVARIATE_LIMITS = {
    "age": (18.0, 110.0), "body_weight": (25.0, 300.0), "egfr": (3.0, 200.0),
    "mg_intake": (0.0, 20000.0), "k_intake": (0.0, 1000.0), "na_intake": (0.0, 2000.0),
}


AGE_REFERENCE = 40.0
"""Years: a continuous covariate's ``age_slope`` shifts its location by
``age_slope * (age - AGE_REFERENCE)``."""


class _Continuous(_Strict):
    min: float | None = None  # truncation: values are drawn from the distribution inside bounds
    max: float | None = None
    age_slope: float = 0.0  # change of the location parameter per year of age above 40

    @model_validator(mode="after")
    def _bounds(self):
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        return self


class Fixed(_Strict):
    distribution: Literal["fixed"]
    value: float | str


class Normal(_Continuous):
    distribution: Literal["normal"]
    mean: float
    sd: Annotated[float, Field(ge=0)]


class LogNormal(_Continuous):
    distribution: Literal["lognormal"]
    median: Annotated[float, Field(gt=0)]
    gsd: Annotated[float, Field(ge=1)]  # geometric SD (>= 1; 1 means no spread)


class Uniform(_Continuous):
    distribution: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _order(self):
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class Categorical(_Strict):
    distribution: Literal["categorical"]
    values: list[str]
    probabilities: list[Annotated[float, Field(ge=0, le=1)]]

    @model_validator(mode="after")
    def _probs(self):
        if len(self.values) != len(self.probabilities):
            raise ValueError(f"values ({len(self.values)}) and probabilities "
                             f"({len(self.probabilities)}) differ in length")
        if not math.isclose(sum(self.probabilities), 1.0, abs_tol=1e-6):
            raise ValueError(f"probabilities sum to {sum(self.probabilities):g}, not 1")
        if len(set(self.values)) != len(self.values):
            raise ValueError("values are not unique")
        return self


Distribution = Annotated[Fixed | Normal | LogNormal | Uniform | Categorical,
                         Field(discriminator="distribution")]


class BySex(_Strict):
    """A covariate with one distribution for women and one for men."""

    female: Distribution
    male: Distribution


def _covariate_form(v) -> str:
    if isinstance(v, dict):
        return "~one" if "distribution" in v else "~by_sex"
    return "~by_sex" if isinstance(v, BySex) else "~one"


CovariateSpec = Annotated[
    Annotated[Distribution, Tag("~one")] | Annotated[BySex, Tag("~by_sex")],
    Discriminator(_covariate_form)]


def _default_covariates() -> dict[str, Any]:
    """The US-adult defaults. Sources in ``configs/us_adults.toml`` and the README."""
    ln = lambda median, gsd, **kw: LogNormal(distribution="lognormal", median=median, gsd=gsd, **kw)  # noqa: E731
    nm = lambda mean, sd, **kw: Normal(distribution="normal", mean=mean, sd=sd, **kw)  # noqa: E731
    return {
        # NHANES adult age structure, roughly: mean ~47 y
        "age": nm(47.0, 17.0, min=18.0, max=90.0),
        "sex": Categorical(distribution="categorical", values=["female", "male"],
                           probabilities=[0.51, 0.49]),
        # NHANES 2015-18 mean body weight: men ~90 kg, women ~77 kg
        "body_weight": BySex(female=nm(77.0, 19.0, min=40.0, max=200.0),
                             male=nm(90.0, 18.0, min=45.0, max=200.0)),
        # eGFR ~99 at 40 y falling ~0.9 per year of age; the lower tail is CKD
        "egfr": nm(99.0, 17.0, age_slope=-0.9, min=5.0, max=150.0),
        # usual Mg intake: ~55% below the EAR (350 mg men, 265 mg women); NHANES 2003-18
        "mg_intake": BySex(female=ln(255.0, 1.32), male=ln(340.0, 1.32)),
        # WWEIA 2009-10: men ~3172 mg (81 mmol), women ~2408 mg (62 mmol)
        "k_intake": BySex(female=ln(60.0, 1.35), male=ln(78.0, 1.35)),
        # Cogswell 2012: medians 2836 mg (women) and 4008 mg (men), IQR ratio ~1.44
        "na_intake": BySex(female=ln(123.0, 1.31), male=ln(174.0, 1.31)),
        # NHANES prescription data: thiazides ~10%, loop diuretics ~3% of adults
        "diuretic": Categorical(distribution="categorical", values=["none", "loop", "thiazide"],
                                probabilities=[0.87, 0.03, 0.10]),
        # NHANES: ~30% of adults hypertensive (Wright 2011)
        "hypertension": Categorical(distribution="categorical", values=["no", "yes"],
                                    probabilities=[0.7, 0.3]),
    }


MIN_MASS_INSIDE_BOUNDS = 1e-6
"""A truncated covariate distribution must keep at least this fraction of its probability mass
inside its bounds (``min``/``max`` and the covariate's physical limits), at every age: a
distribution with (almost) no mass there does not describe the patients the bounds allow."""


def _normal_mass(lo: float, hi: float, mean: float, sd: float) -> float:
    """P(lo <= X <= hi) for X ~ normal(mean, sd), accurate in the far tails (``erfc``)."""
    if sd == 0:
        return float(lo <= mean <= hi)
    a, b = (lo - mean) / sd, (hi - mean) / sd
    if a > 0:  # both bounds in the upper tail: difference of survival functions
        return 0.5 * (math.erfc(a / math.sqrt(2)) - math.erfc(b / math.sqrt(2)))
    if b < 0:  # both in the lower tail
        return 0.5 * (math.erfc(-b / math.sqrt(2)) - math.erfc(-a / math.sqrt(2)))
    return 1.0 - 0.5 * math.erfc(-a / math.sqrt(2)) - 0.5 * math.erfc(b / math.sqrt(2))


def continuous_bounds(name: str, d) -> tuple[float, float]:
    """The bounds a continuous covariate is sampled within: its ``min``/``max`` (a uniform's
    ``low``/``high`` as well) inside the physical limits of :data:`COVARIATE_LIMITS`."""
    lo, hi = COVARIATE_LIMITS[name]
    if isinstance(d, Fixed):
        return lo, hi
    if isinstance(d, Uniform):
        lo, hi = max(lo, d.low), min(hi, d.high)
    lo = lo if d.min is None else max(lo, d.min)
    hi = hi if d.max is None else min(hi, d.max)
    return lo, hi


def mass_inside_bounds(name: str, d, age: float = AGE_REFERENCE) -> float:
    """Probability mass of the (untruncated) distribution ``d`` of covariate ``name`` inside its
    sampling bounds, for a patient of ``age`` years (``age_slope`` shifts the location)."""
    lo, hi = continuous_bounds(name, d)
    if lo > hi:
        return 0.0
    shift = d.age_slope * (age - AGE_REFERENCE)
    if isinstance(d, Normal):
        return _normal_mass(lo, hi, d.mean + shift, d.sd)
    if isinstance(d, LogNormal):
        median = max(d.median + shift, 1e-6)
        if hi <= 0:
            return 0.0
        log_lo = math.log(lo) if lo > 0 else -math.inf
        return _normal_mass(log_lo, math.log(hi), math.log(median), math.log(d.gsd))
    # uniform: the shifted [low, high] against the bounds of min/max and the physical limits
    p_lo, p_hi = COVARIATE_LIMITS[name]
    p_lo = p_lo if d.min is None else max(p_lo, d.min)
    p_hi = p_hi if d.max is None else min(p_hi, d.max)
    a, b = d.low + shift, d.high + shift
    return max(0.0, min(b, p_hi) - max(a, p_lo)) / (b - a)


def age_range(pop_covariates: dict) -> tuple[float, float]:
    """The youngest and oldest age the ``age`` covariate can take (for ``age_slope`` checks)."""
    d = pop_covariates.get("age", _default_covariates()["age"])
    ds = [d.female, d.male] if isinstance(d, BySex) else [d]
    lows, highs = [], []
    for x in ds:
        if isinstance(x, Fixed):
            lows.append(float(x.value))
            highs.append(float(x.value))
        else:
            lo, hi = continuous_bounds("age", x)
            lows.append(lo)
            highs.append(hi)
    return min(lows), max(highs)


def _describe(d) -> str:
    if isinstance(d, Normal):
        return f"normal(mean {d.mean:g}, sd {d.sd:g})"
    if isinstance(d, LogNormal):
        return f"lognormal(median {d.median:g}, gsd {d.gsd:g})"
    return f"uniform({d.low:g}, {d.high:g})"


def _check_covariate(where, name, kind, cats, d, ages=(AGE_REFERENCE,)):
    """Raise ``ValueError`` naming ``where`` (e.g. ``egfr`` or ``mg_intake.female``) if the
    distribution ``d`` of covariate ``name`` cannot be sampled as asked."""
    if kind == "category":
        if isinstance(d, Categorical):
            bad = [x for x in d.values if x not in cats]
        elif isinstance(d, Fixed):
            bad = [] if d.value in cats else [d.value]
        else:
            raise ValueError(f"{where} is categorical: use distribution 'categorical' or 'fixed'")
        if bad:
            raise ValueError(f"{where} value {bad[0]!r} is not one of {', '.join(cats)}")
        return
    if isinstance(d, Categorical):
        raise ValueError(f"{where} is continuous: 'categorical' is not allowed")
    if isinstance(d, Fixed) and isinstance(d.value, str):
        raise ValueError(f"{where} needs a number, got {d.value!r}")
    lo, hi = COVARIATE_LIMITS[name]
    unit = COVARIATES[name][0]
    # one rule for every distribution: no value, bound or support end outside the physical range
    given = ([("value", float(d.value))] if isinstance(d, Fixed) else
             [(k, getattr(d, k)) for k in ("low", "high", "min", "max")
              if getattr(d, k, None) is not None])
    for key, v in given:
        if not lo <= v <= hi:
            raise ValueError(f"{where}.{key} = {v:g} is outside the allowed range {lo:g}..{hi:g} "
                             f"{unit}")
    if isinstance(d, Fixed):
        return
    for age in sorted(set(ages)):
        mass = mass_inside_bounds(name, d, age)
        if mass < MIN_MASS_INSIDE_BOUNDS:
            b_lo, b_hi = continuous_bounds(name, d)
            at = f" at age {age:g} (age_slope {d.age_slope:g})" if d.age_slope else ""
            raise ValueError(f"{where}: {_describe(d)} has {mass:.2g} of its probability mass "
                             f"inside the bounds [{b_lo:g}, {b_hi:g}] {unit}{at}; at least "
                             f"{MIN_MASS_INSIDE_BOUNDS:g} is needed: move the bounds or the "
                             "distribution")


