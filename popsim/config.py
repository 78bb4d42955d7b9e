"""Typed, validated configuration of a popsim run (TOML). Imports no JAX.

:func:`load_config` reads a TOML file and returns a frozen :class:`RunConfig`, or raises
:class:`ConfigError` with one line that names the key, the offending value and what is allowed
(and, for a misspelt key, the nearest valid one). Units: Mg intake and oral
Mg doses in mg/day of elemental Mg, K and Na intakes in mmol/day, IV Mg in mmol in total, diuretic
doses as the fraction (0-1) of the maximal effect, times in days.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from popsim._schema import ConfigError, _Strict, _suggest
from popsim.covariates import (
    AGE_REFERENCE,
    COVARIATE_LIMITS,
    COVARIATES,
    MIN_MASS_INSIDE_BOUNDS,
    BySex,
    Categorical,
    CovariateSpec,
    Fixed,
    LogNormal,
    Normal,
    Uniform,
    _check_covariate,
    _default_covariates,
    age_range,
    continuous_bounds,
    mass_inside_bounds,
)
from popsim.criteria import Criterion, CriterionError, parse_criteria
from popsim.interventions import REGISTRY, Intervention, Scheduled, Titration
from popsim.outputs import OUTPUT_SPECS
from popsim.parameters import parameter_specs

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

_IIV_PARAMS = {s.name for s in parameter_specs()}
MAX_SCREENED_PER_PATIENT = 50
"""Candidates screened at most per patient to enrol, unless ``population.max_screened`` says."""


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
    inclusion: dict[str, Criterion] = {}  # enrolment: every one must be met (popsim.criteria)
    exclusion: dict[str, Criterion] = {}  # none may be met
    max_screened: Annotated[int, Field(gt=0)] | None = None  # default: 50 x size

    @field_validator("inclusion", "exclusion", mode="before")
    @classmethod
    def _criteria(cls, v):
        try:
            return parse_criteria(v)
        except CriterionError as e:
            raise ValueError(f"{_NESTED}{e.name}{_NESTED}{e}") from None

    @model_validator(mode="after")
    def _screening_budget(self):
        if self.max_screened is not None and self.max_screened < self.size:
            raise ValueError(f"max_screened ({self.max_screened}) is below size ({self.size}): "
                             "at least size candidates must be screened")
        return self

    @property
    def screened(self) -> bool:
        """Whether candidates are screened (the population has enrolment criteria)."""
        return bool(self.inclusion or self.exclusion)

    def screening_budget(self, size: int) -> int:
        """Candidates screened at most to enrol ``size`` patients: ``max_screened``, by default
        :data:`MAX_SCREENED_PER_PATIENT` per patient."""
        return self.max_screened if self.max_screened is not None else \
            MAX_SCREENED_PER_PATIENT * size

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
            if name in ("age", "sex") and isinstance(dist, BySex):
                raise ValueError(f"{name} cannot be given by sex (age and sex are drawn first, "
                                 "the others by sex): give one distribution")
            unit, kind, cats = COVARIATES[name]
            ages = (AGE_REFERENCE,) if name == "age" else (AGE_REFERENCE, *age_range(v))
            for sex, d in ((("female", dist.female), ("male", dist.male))
                           if isinstance(dist, BySex) else ((None, dist),)):
                _check_covariate(f"{name}.{sex}" if sex else name, name, kind, cats, d, ages)
        return v

    def covariate(self, name: str):
        """The distribution of covariate ``name`` (the config's, else the US-adult default)."""
        return self.covariates.get(name, _default_covariates()[name])


__all__ = ["AGE_REFERENCE", "COVARIATE_LIMITS", "COVARIATES", "MIN_MASS_INSIDE_BOUNDS", "Arm",
           "Output",
           "BySex", "Categorical", "ConfigError", "Fixed", "LogNormal", "Normal", "Population",
           "RunConfig", "Simulation", "Uniform", "Variability", "continuous_bounds",
           "load_config", "mass_inside_bounds", "parse_config", "read_toml", "validate_model"]


# --- simulation -------------------------------------------------------------------------------

SOLVERS: dict[str, tuple[str, str]] = {
    "kvaerno3": ("implicit", "Kvaerno3"),
    "kvaerno4": ("implicit", "Kvaerno4"),
    "kvaerno5": ("implicit", "Kvaerno5"),
    "rodas4": ("rosenbrock", "Rodas4"),
    "rodas4p": ("rosenbrock", "Rodas4P"),
    "rodas5p": ("rosenbrock", "Rodas5P"),
    "tsit5": ("explicit", "Tsit5"),
    "dopri5": ("explicit", "Dopri5"),
}
"""The time-course solvers a config may name: name -> (family, class name), the one list of
them. :func:`popsim.solve.solver_class` finds the class (``rosenbrock``: in
:mod:`popsim.rosenbrock`; ``implicit`` and ``explicit``: in diffrax) when a solver is built, so
this module names them without importing JAX; the family says how it is built (implicit stages
by Newton, Rosenbrock steps without ``df/dt``; both with :class:`popsim.linear.SmallLU`)."""
SOLVER_NAMES = tuple(SOLVERS)
"""The names of :data:`SOLVERS`, in order (the config schema's choices)."""
MAX_OUTPUT_TIMES = 200_000  # saved intervals per run (the file's time axis)


class Simulation(_Strict):
    days: Annotated[float, Field(gt=0, le=36500)] = 365.0
    output_interval_days: Annotated[float, Field(gt=0)] = 1.0
    solver: Literal[SOLVER_NAMES] = "rodas5p"  # type: ignore[valid-type]
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


# --- saved outputs -----------------------------------------------------------------------------

class Output(_Strict):
    """Which outputs a run saves (``[output] variables = [...]``; default: every output)."""

    variables: list[str] | None = None

    @field_validator("variables")
    @classmethod
    def _known(cls, v):
        if v is None:
            return v
        if not v:
            raise ValueError("name at least one output (or leave variables out to save all)")
        for name in v:
            if name not in OUTPUT_SPECS:
                raise ValueError(f"unknown output {name!r}{_suggest(name, OUTPUT_SPECS)}; "
                                 "`popsim info outputs` lists them")
            if v.count(name) > 1:
                raise ValueError(f"output {name!r} is listed twice")
        return v

    @property
    def saved(self) -> tuple[str, ...]:
        """The outputs saved, in the model's order."""
        chosen = set(OUTPUT_SPECS if self.variables is None else self.variables)
        return tuple(name for name in OUTPUT_SPECS if name in chosen)


# --- arms and interventions --------------------------------------------------------------------

def _intervention(value):
    """An intervention table -> the instance of its registered kind (a BeforeValidator: the
    kinds are a registry, :mod:`popsim.interventions`, not a fixed union)."""
    if isinstance(value, Intervention):
        return value
    if not isinstance(value, dict):
        raise ValueError("an intervention must be a table")
    kind = value.get("kind")
    if kind is None:
        raise ValueError(f"required key 'kind' is missing; allowed kinds: {', '.join(REGISTRY)}")
    if not isinstance(kind, str):
        raise ValueError(f"kind must be the name of an intervention kind, got {kind!r}; "
                         f"allowed: {', '.join(REGISTRY)}")
    if kind not in REGISTRY:
        raise ValueError(f"unknown intervention kind {kind!r}{_suggest(str(kind), REGISTRY)}; "
                         f"allowed: {', '.join(REGISTRY)}")
    try:
        return REGISTRY[kind].model_validate(value)
    except ValidationError as e:
        errors = sorted(e.errors(), key=lambda err: err["type"] != "extra_forbidden")
        text = _format(errors[0], value, REGISTRY[kind])
        inner = _path(errors[0]["loc"])
        message = text[len(inner) + 2:] if inner and text.startswith(inner + ": ") else text
        raise ValueError(f"{_NESTED}{inner}{_NESTED}{message}") from None


class Arm(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    intervention: list[Annotated[Intervention, BeforeValidator(_intervention)]] = []


MAX_PROTOCOL_SEGMENTS = 1 << 17
"""Time segments an arm's protocol may have (two per intervention, two per periodic
administration): a year of three daily doses needs 2,191."""
MAX_VISITS = 10_000  # titration visits per arm
STEPS_PER_ADMINISTRATION = 20
"""Solver steps budgeted per administration of a periodic dose (the solver stops at its start
and end and resolves what it does in between)."""


def _check_schedule(a: Arm, days: float) -> None:
    """An arm's schedule fits the solver: segments, titration (one per arm, with a visit)."""
    spans = sum(iv.n_administrations(days) if isinstance(iv, Scheduled) else 1
                for iv in a.intervention)
    if 2 * spans + 1 > MAX_PROTOCOL_SEGMENTS:
        raise ValueError(f"arm {a.name!r}: its interventions need {2 * spans + 1:,} time "
                         f"segments (two per administration), at most {MAX_PROTOCOL_SEGMENTS:,} "
                         "are allowed: use fewer administrations or a shorter simulation")
    titrated = [(i, iv) for i, iv in enumerate(a.intervention) if iv.titration is not None]
    if len(titrated) > 1:
        raise ValueError(f"arm {a.name!r}: interventions {titrated[0][0] + 1} and "
                         f"{titrated[1][0] + 1} are both titrated; at most one per arm")
    for i, iv in titrated:
        t = iv.titration
        assert t is not None
        n = t.n_visits(iv.start_day, iv.end(days))
        where = f"arm {a.name!r} intervention {i + 1} ({iv.kind})"
        if n == 0:
            raise ValueError(f"{where}: titrate.every_days ({t.every_days:g}) leaves "
                             f"no visit before the intervention ends (day {iv.end(days):g})")
        if n > MAX_VISITS:
            raise ValueError(f"{where}: {n:,} titration visits, at most {MAX_VISITS:,}")


class RunConfig(_Strict):
    population: Population
    simulation: Simulation = Simulation()
    output: Output = Output()
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
            _check_schedule(a, self.simulation.days)
        return self

    @property
    def extra_steps(self) -> int:
        """Solver steps added to the default budget for periodic doses:
        :data:`STEPS_PER_ADMINISTRATION` per administration of the busiest arm."""
        return STEPS_PER_ADMINISTRATION * max(
            [sum(iv.n_administrations(self.simulation.days) for iv in a.intervention
                 if isinstance(iv, Scheduled) and iv.every_hours is not None)
             for a in self.arms] + [0])

    @property
    def arms(self) -> list[Arm]:
        """The arms to run: those configured, or the single arm ``baseline``."""
        return self.arm if self.arm else [Arm(name="baseline")]


# --- loading and error messages -----------------------------------------------------------------

_DISTRIBUTIONS = {"fixed": Fixed, "normal": Normal, "lognormal": LogNormal, "uniform": Uniform,
                  "categorical": Categorical}
_NESTED = "\x00"  # marks a message whose text starts with a path below the error's location


def _owner(loc: tuple, data: dict, root: type[BaseModel] | None = None) -> type[BaseModel] | None:
    """The model class of the table holding the key at ``loc`` (for key suggestions)."""
    if root is not None and len(loc) == 1:
        return root
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
        return REGISTRY.get(obj["kind"])
    by_key = {"": RunConfig, "population": Population, "simulation": Simulation,
              "variability": Variability, "arm": Arm, "output": Output, "titrate": Titration}
    return by_key.get(last_key)


def _is_real_key(part) -> bool:
    if isinstance(part, int):
        return True
    return not (part.startswith(("tagged-union[", "function-", "~")) or part in _DISTRIBUTIONS
                or part in ("BySex", "Fixed", "Normal", "LogNormal", "Uniform",
                            "Categorical", "str", "float", "int"))


def _path(loc) -> str:
    """``("arm", 0, "intervention")`` -> ``"arm.1.intervention"`` (1-based list positions)."""
    return ".".join(str(x + 1) if isinstance(x, int) else str(x)
                    for x in loc if _is_real_key(x))


def _format(err: ErrorDetails, data: dict, root: type[BaseModel] | None = None) -> str:
    loc = tuple(x for x in err["loc"] if _is_real_key(x))
    path = _path(loc)
    value = err.get("input")
    kind = err["type"]
    msg = err["msg"].removeprefix("Value error, ")
    if msg.startswith(_NESTED):  # the error of a nested model: its own path, then its message
        inner, msg = msg[len(_NESTED):].split(_NESTED, 1)
        return f"{'.'.join(p for p in (path, inner) if p)}: {msg}"
    where = f"{path}: " if path else ""
    if kind == "extra_forbidden":
        key = str(loc[-1])
        model = _owner(loc, data, root)
        if model is None:
            return f"{where}unknown key {key!r}"
        allowed = list(model.model_fields)
        return f"{where}unknown key {key!r}{_suggest(key, allowed)}; allowed: {', '.join(allowed)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = value.get("distribution") if isinstance(value, dict) else value
        return f"{where}unknown distribution {tag!r}; allowed: {', '.join(_DISTRIBUTIONS)}"
    if kind == "missing":
        return f"{where}required key is missing"
    if isinstance(value, float) and math.isnan(value):
        return f"{where}NaN is not allowed"
    if isinstance(value, dict | list) or value is None:
        return f"{where}{msg}"
    return f"{where}{msg} (got {value!r})"


_Model = TypeVar("_Model", bound=BaseModel)


def validate_model(model: type[_Model], data: dict) -> _Model:
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


def read_toml(path: str | Path, what: str = "config file",
              error: type[Exception] = ConfigError) -> tuple[dict, str]:
    """A TOML file's contents and text, or ``error`` in one line naming the file (``what`` it
    should be when it is missing)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except OSError as e:
        raise error(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: cannot read ({e})") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: not valid TOML ({e})") from None


def load_config(path: str | Path) -> tuple[RunConfig, str]:
    """Read and validate a TOML run config. Returns the config and its text (stored in the cohort
    file)."""
    data, text = read_toml(path)
    return parse_config(data), text
