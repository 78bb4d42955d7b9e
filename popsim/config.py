"""Typed, validated configuration of a popsim run (TOML). Imports no JAX.

:func:`load_config` reads a TOML file and returns a frozen :class:`RunConfig`, or raises
:class:`ConfigError` with one line that names the key, the offending value and what is allowed
(and, for a misspelt key, the nearest valid one). Units are those of SPEC §3: Mg intake and oral
Mg doses in mg/day of elemental Mg, K and Na intakes in mmol/day, IV Mg in mmol in total, diuretic
doses as the fraction (0-1) of the maximal effect, times in days.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from popsim.parameters import parameter_specs


class ConfigError(ValueError):
    """A configuration problem, stated in one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False,
                              strict=False)


# --- covariates -----------------------------------------------------------------------------

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
    """US adults (SPEC §2 defaults). Sources in ``configs/us_adults.toml`` and the README."""
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
    }


_IIV_PARAMS = {s.name for s in parameter_specs()}


class Variability(_Strict):
    """Log-normal inter-individual variability of kinetic parameters."""

    scale: Annotated[float, Field(ge=0)] = 1.0  # multiplies every default CV (0 = none)
    cv: dict[str, Annotated[float, Field(ge=0, le=2)]] = {}  # per-parameter CV overrides

    @field_validator("cv")
    @classmethod
    def _known(cls, v):
        for name in v:
            if name not in _IIV_PARAMS:
                raise ValueError(f"unknown parameter {name!r}{_suggest(name, _IIV_PARAMS)}")
        return v


class Population(_Strict):
    size: Annotated[int, Field(gt=0, le=100_000_000)]
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    chronic_diuretic_dose: Annotated[float, Field(ge=0, le=1)] = 0.5
    covariates: dict[str, CovariateSpec] = {}
    variability: Variability = Variability()

    @field_validator("covariates")
    @classmethod
    def _covariates(cls, v):
        for name in v:
            if name not in COVARIATES:
                raise ValueError(f"unknown covariate {name!r}{_suggest(name, COVARIATES)}; "
                                 f"allowed: {', '.join(COVARIATES)}")
        for name in ["age", *(n for n in v if n != "age")]:
            if name not in v:
                continue
            dist = v[name]
            unit, kind, cats = COVARIATES[name]
            ages = (AGE_REFERENCE,) if name == "age" else (AGE_REFERENCE, *age_range(v))
            for sex, d in ((("female", dist.female), ("male", dist.male))
                           if isinstance(dist, BySex) else ((None, dist),)):
                _check_covariate(f"{name}.{sex}" if sex else name, name, kind, cats, d, ages)
        return v

    def covariate(self, name: str):
        """The distribution of covariate ``name`` (the config's, else the US-adult default)."""
        return self.covariates.get(name, _default_covariates()[name])


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


# --- simulation -------------------------------------------------------------------------------

MAX_OUTPUT_TIMES = 200_000  # saved intervals per run (the file's time axis)


class Simulation(_Strict):
    days: Annotated[float, Field(gt=0, le=36500)] = 365.0
    output_interval_days: Annotated[float, Field(gt=0)] = 1.0
    solver: Literal["kvaerno3", "kvaerno4", "kvaerno5", "rodas4", "rodas4p", "rodas5p", "tsit5",
                    "dopri5"] = "rodas5p"
    rtol: Annotated[float, Field(gt=0, lt=1e-2)] = 1e-5
    atol: Annotated[float, Field(gt=0, lt=1e-2)] = 1e-7
    max_steps: Annotated[int, Field(gt=0)] | None = None  # default: 2000 + 10 per simulated day
    precision: Literal["float64", "float32"] = "float64"

    @model_validator(mode="after")
    def _grid(self):
        if self.output_interval_days > self.days:
            raise ValueError(f"output_interval_days ({self.output_interval_days:g}) exceeds "
                             f"days ({self.days:g}); allowed: 0 < output_interval_days <= days")
        n = self.days / self.output_interval_days
        if n > MAX_OUTPUT_TIMES:
            raise ValueError(f"output_interval_days ({self.output_interval_days:g}) splits "
                             f"{self.days:g} days into {n:.0f} intervals; allowed: at most "
                             f"{MAX_OUTPUT_TIMES} (output_interval_days >= "
                             f"{self.days / MAX_OUTPUT_TIMES:g})")
        return self

    @property
    def step_budget(self) -> int:
        """Solver steps allowed per patient and arm (a year needs ~200-400)."""
        return self.max_steps if self.max_steps is not None else int(2000 + 10 * self.days)

    @property
    def n_times(self) -> int:
        """Number of saved times: 0, ``output_interval_days``, 2 ``output_interval_days``, ...
        up to ``days``, and ``days`` itself when it is not on that grid (the end of the
        simulation is always saved)."""
        n = int(math.floor(self.days / self.output_interval_days + 1e-9)) + 1
        return n + int(self._ends_off_grid(n))

    def _ends_off_grid(self, n_grid: int) -> bool:
        return self.days - (n_grid - 1) * self.output_interval_days > 1e-9 * self.days

    @property
    def output_times(self) -> list[float]:
        """The saved times, days (see :attr:`n_times`)."""
        n = int(math.floor(self.days / self.output_interval_days + 1e-9)) + 1
        grid = [i * self.output_interval_days for i in range(n)]
        return grid + [float(self.days)] if self._ends_off_grid(n) else grid


# --- arms and interventions --------------------------------------------------------------------

class _Timed(_Strict):
    start_day: Annotated[float, Field(ge=0)] = 0.0
    end_day: float | None = None  # default: end of the simulation

    @model_validator(mode="after")
    def _order(self):
        if self.end_day is not None and self.end_day <= self.start_day:
            raise ValueError(f"end_day ({self.end_day:g}) must be after start_day "
                             f"({self.start_day:g})")
        return self


class OralMagnesium(_Timed):
    kind: Literal["oral_magnesium"]
    dose: Annotated[float, Field(ge=0, le=20000)]  # mg/day elemental Mg


class OralPotassium(_Timed):
    kind: Literal["oral_potassium"]
    dose: Annotated[float, Field(ge=0, le=1000)]  # mmol/day


class IvMagnesium(_Timed):
    kind: Literal["iv_magnesium"]
    dose: Annotated[float, Field(ge=0, le=1000)]  # mmol in total, infused evenly


class Diet(_Timed):
    kind: Literal["diet"]
    mg_intake: Annotated[float, Field(ge=0, le=20000)] | None = None  # mg/day
    k_intake: Annotated[float, Field(ge=0, le=1000)] | None = None  # mmol/day
    na_intake: Annotated[float, Field(ge=0, le=2000)] | None = None  # mmol/day

    @model_validator(mode="after")
    def _some(self):
        if self.mg_intake is None and self.k_intake is None and self.na_intake is None:
            raise ValueError("a diet needs at least one of mg_intake, k_intake, na_intake")
        return self


class LoopDiuretic(_Timed):
    kind: Literal["loop_diuretic"]
    dose: Annotated[float, Field(ge=0, le=1)]  # fraction of the maximal effect


class ThiazideDiuretic(_Timed):
    kind: Literal["thiazide_diuretic"]
    dose: Annotated[float, Field(ge=0, le=1)]  # fraction of the maximal effect


INTERVENTION_KINDS = ("oral_magnesium", "oral_potassium", "iv_magnesium", "diet",
                      "loop_diuretic", "thiazide_diuretic")
Intervention = Annotated[
    OralMagnesium | OralPotassium | IvMagnesium | Diet | LoopDiuretic | ThiazideDiuretic,
    Field(discriminator="kind")]


class Arm(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    intervention: list[Intervention] = []


MAX_PROTOCOL_SEGMENTS = 64


class RunConfig(_Strict):
    population: Population
    simulation: Simulation = Simulation()
    arm: list[Arm] = []

    @model_validator(mode="after")
    def _arms(self):
        names = [a.name for a in self.arm]
        for n in names:
            if names.count(n) > 1:
                raise ValueError(f"duplicate arm name {n!r}")
        for a in self.arm:
            for i, iv in enumerate(a.intervention):
                end = self.simulation.days if iv.end_day is None else iv.end_day
                where = f"arm {a.name!r} intervention {i + 1} ({iv.kind})"
                if iv.start_day >= self.simulation.days:
                    raise ValueError(f"{where}: start_day {iv.start_day:g} is not before the end "
                                     f"of the simulation (days = {self.simulation.days:g})")
                if end > self.simulation.days:
                    raise ValueError(f"{where}: end_day {end:g} is after the end of the "
                                     f"simulation (days = {self.simulation.days:g})")
            if 2 * len(a.intervention) + 1 > MAX_PROTOCOL_SEGMENTS:
                raise ValueError(f"arm {a.name!r} has too many interventions (at most "
                                 f"{(MAX_PROTOCOL_SEGMENTS - 1) // 2})")
        return self

    @property
    def arms(self) -> list[Arm]:
        """The arms to run: those configured, or the single arm ``baseline``."""
        return self.arm if self.arm else [Arm(name="baseline")]


# --- loading and error messages -----------------------------------------------------------------

def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


_DISTRIBUTIONS = {"fixed": Fixed, "normal": Normal, "lognormal": LogNormal, "uniform": Uniform,
                  "categorical": Categorical}
_KINDS = {"oral_magnesium": OralMagnesium, "oral_potassium": OralPotassium,
          "iv_magnesium": IvMagnesium, "diet": Diet, "loop_diuretic": LoopDiuretic,
          "thiazide_diuretic": ThiazideDiuretic}


def _owner(loc: tuple, data: dict) -> type[BaseModel] | None:
    """The model class of the table holding the key at ``loc`` (for key suggestions)."""
    obj: Any = data
    last_key = ""
    for part in loc[:-1]:
        try:
            obj = obj[part]
        except (KeyError, IndexError, TypeError):
            return None
        if isinstance(part, str):
            last_key = part
    if isinstance(obj, dict) and "distribution" in obj:
        return _DISTRIBUTIONS.get(obj["distribution"])
    if isinstance(obj, dict) and "kind" in obj:
        return _KINDS.get(obj["kind"])
    by_key = {"": RunConfig, "population": Population, "simulation": Simulation,
              "variability": Variability, "arm": Arm}
    return by_key.get(last_key)


def _is_real_key(part) -> bool:
    if isinstance(part, int):
        return True
    return not (part.startswith(("tagged-union[", "function-", "~")) or part in _DISTRIBUTIONS
                or part in _KINDS or part in ("BySex", "Fixed", "Normal", "LogNormal", "Uniform",
                                              "Categorical", "str", "float", "int"))


def _format(err: dict, data: dict) -> str:
    loc = tuple(x for x in err["loc"] if _is_real_key(x))
    path = ".".join(str(x + 1) if isinstance(x, int) else str(x) for x in loc)
    value = err.get("input")
    kind = err["type"]
    msg = err["msg"].removeprefix("Value error, ")
    where = f"{path}: " if path else ""
    if kind == "extra_forbidden":
        key = str(loc[-1])
        model = _owner(loc, data)
        if model is None:
            return f"{where}unknown key {key!r}"
        allowed = list(model.model_fields)
        return f"{where}unknown key {key!r}{_suggest(key, allowed)}; allowed: {', '.join(allowed)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = value.get("kind" if "intervention" in path else "distribution") \
            if isinstance(value, dict) else value
        if "intervention" in path:
            return (f"{where}unknown intervention kind {tag!r}; allowed: "
                    f"{', '.join(INTERVENTION_KINDS)}")
        return f"{where}unknown distribution {tag!r}; allowed: {', '.join(_DISTRIBUTIONS)}"
    if kind == "missing":
        return f"{where}required key is missing"
    if isinstance(value, float) and math.isnan(value):
        return f"{where}NaN is not allowed"
    if isinstance(value, dict | list) or value is None:
        return f"{where}{msg}"
    return f"{where}{msg} (got {value!r})"


def validate_model(model: type[BaseModel], data: dict):
    """``model.model_validate(data)``, or :class:`ConfigError` naming the first problem."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        # an unknown (misspelt) key is usually why a required one is "missing": report it first
        errors = sorted(e.errors(), key=lambda err: err["type"] != "extra_forbidden")
        raise ConfigError(_format(errors[0], data)) from None


def parse_config(data: dict) -> RunConfig:
    """Validate a config already parsed from TOML; :class:`ConfigError` on the first problem."""
    return validate_model(RunConfig, data)


def read_toml(path: str | Path) -> tuple[dict, str]:
    """A TOML file's contents and text, or :class:`ConfigError` in one line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None


def load_config(path: str | Path) -> tuple[RunConfig, str]:
    """Read and validate a TOML run config. Returns the config and its text (stored in the cohort
    file)."""
    data, text = read_toml(path)
    return parse_config(data), text
