"""Published studies and built-in physiology scenarios as data: one TOML file each, shipped in
``popsim/evidence/``. Imports no JAX: files are validated on load with one-line errors.

A file has three parts:

* ``[study]``: citation (authors, year, journal, PMID/DOI, the page the numbers were read
  from), ``kind`` (``study``: a published study; ``scenario``: a built-in behaviour check of
  ``popsim validate``), ``reserved`` (kept for independent validation: never fitted; no fit may
  read it), the mechanisms it informs.
* ``[design]``: the study as a popsim virtual trial, in the run-config format
  (``population``, ``simulation``, ``arm``).
* ``[[observation]]``: what was measured and reported: output, arm, day, statistic, and either a
  published value with its uncertainty (SD with n, SE, 95% CI, IQR with n, or a stated
  tolerance with its reason), or an expected window with its source.

See :class:`Observation` for the statistics. Folders: ``studies/`` (published, fittable),
``reserved/`` (published, validation only) and ``scenarios/`` (the ``popsim validate`` checks).
"""

from __future__ import annotations

import dataclasses
import math
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from popsim.config import ConfigError, RunConfig, _Strict, parse_config, read_toml, validate_model
from popsim.outputs import OUTPUT_UNITS
from popsim.parameters import Params

HERE = Path(__file__).parent
FOLDERS = ("scenarios", "studies", "reserved")
COVARIATE_SUBGROUPS = ("age", "sex", "body_weight", "egfr", "mg_intake", "k_intake",
                       "na_intake", "diuretic", "hypertension")

STATISTICS = ("mean", "median", "sd", "quantile", "min", "max", "fraction_below",
              "fraction_above", "fraction_between", "first_day_below", "first_day_above",
              "range_over_time", "mass_balance", "steady_state_balance")
"""What an observation computes over the virtual patients (see :class:`Observation`)."""
NO_OUTPUT = ("mass_balance", "steady_state_balance")


class Bounds(_Strict):
    """A subgroup criterion: ``min <= x <= max`` (either may be omitted)."""

    min: float | None = None
    max: float | None = None


class Combine(_Strict):
    """An observation computed from two others: ``op(a, b)``. Ids of another file's
    observations are written ``study_id:observation_id``."""

    op: Literal["ratio", "difference"]
    of: Annotated[list[str], Field(min_length=2, max_length=2)]


class Observation(_Strict):
    """One reported (or expected) number and how to compute it from a virtual trial.

    Computation, in this order, per patient of ``arm``:

    1. the ``output`` at ``day`` (or its time integral over ``integrate = [d0, d1]`` days);
    2. with ``change_from_day``: minus (``change = "difference"``), over (``"ratio"``) or as a
       percentage of (``"percent"``) its value on that day;
    3. with ``versus_arm``: minus the same quantity of the same patient in that arm (a paired,
       placebo-controlled difference);
    4. divided by ``divide_by`` (e.g. a dose);
    5. ``subgroup``: only patients whose covariates, or outputs on ``day``, satisfy it;
    6. ``statistic`` over those patients: ``mean``, ``median``, ``sd``, ``quantile`` (``q``),
       ``min``, ``max``, ``fraction_below``/``fraction_above`` a ``threshold``,
       ``fraction_between`` two ``thresholds``. Statistics of the whole time course:
       ``first_day_below``/``first_day_above`` (first saved day the median crosses
       ``threshold``), ``range_over_time`` (max - min of the median course),
       ``mass_balance`` (largest relative error of Mg, K and Na balance over the run) and
       ``steady_state_balance`` (largest |urine - net absorption| / urine at ``day``).

    ``combine`` instead derives the number from two other observations.

    Expectation: ``value`` (in ``unit``) with one of ``sd`` + ``n``, ``se``, ``ci95``, ``iqr`` +
    ``n`` (median), ``n`` alone (a fraction: binomial), or ``tolerance`` + ``tolerance_reason``;
    or ``expected = [low, high]`` with its ``source``. ``unit`` is the output's model unit (or
    ``%`` for percent changes, ``1`` for fractions and ratios, ``day`` for first days).
    """

    id: str | None = None
    output: str | None = None
    arm: str | None = None
    day: float | None = None
    integrate: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    statistic: Literal[STATISTICS] = "mean"  # type: ignore[valid-type]
    q: Annotated[float, Field(gt=0, lt=1)] | None = None
    threshold: float | None = None
    thresholds: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    change_from_day: float | None = None
    change: Literal["difference", "ratio", "percent"] = "difference"
    versus_arm: str | None = None
    divide_by: float | None = None
    subgroup: dict[str, Bounds | str] = {}
    combine: Combine | None = None
    # expectation
    value: float | None = None
    unit: str = ""
    sd: Annotated[float, Field(ge=0)] | None = None
    se: Annotated[float, Field(ge=0)] | None = None
    ci95: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    iqr: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    n: Annotated[int, Field(gt=0)] | None = None
    tolerance: Annotated[float, Field(gt=0)] | None = None
    tolerance_reason: str | None = None
    expected: Annotated[list[float], Field(min_length=2, max_length=2)] | None = None
    source: str = ""
    quote: str = ""
    note: str = ""
    fit: bool = True  # False: shown and checked, never a calibration target

    @field_validator("expected", "ci95", "iqr", "integrate", "thresholds")
    @classmethod
    def _ordered(cls, v):
        if v is not None and not v[0] <= v[1]:
            raise ValueError(f"[{v[0]:g}, {v[1]:g}] is not in increasing order")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        _check_observation(self)
        return self

    @property
    def label(self) -> str:
        """The id, or a description made from the output, arm and day."""
        if self.id:
            return self.id
        parts = [self.statistic, self.output or "", self.arm or ""]
        if self.day is not None:
            parts.append(f"day {self.day:g}")
        return " ".join(p for p in parts if p)

    def interval(self) -> tuple[float, float] | None:
        """The 95% interval (or expected window) the model should fall in; ``None`` when the
        observation states no uncertainty (then it cannot be a match)."""
        if self.expected is not None:
            return self.expected[0], self.expected[1]
        if self.value is None:
            return None
        half = self.half_width()
        return None if half is None else (self.value - half, self.value + half)

    def half_width(self) -> float | None:
        """Half-width of the 95% interval around ``value``: the larger side of a ``ci95``, the
        ``tolerance``, else 1.96 standard errors (:meth:`standard_error`)."""
        basis = self.uncertainty_basis()
        if basis == "ci95":
            return max(self.value - self.ci95[0], self.ci95[1] - self.value)  # type: ignore
        if basis == "tolerance":
            return self.tolerance
        se = self.standard_error()
        return None if se is None else 1.96 * se

    def uncertainty_basis(self) -> str | None:
        """What the uncertainty of ``value`` comes from, in order of precedence: ``se``,
        ``ci95``, ``sd`` (with n), ``iqr`` (with n), ``tolerance``, ``binomial`` (a fraction
        with n); ``None`` without a value or an uncertainty."""
        if self.value is None:
            return None
        if self.se is not None:
            return "se"
        if self.ci95 is not None:
            return "ci95"
        if self.n is not None and self.sd is not None:
            return "sd"
        if self.n is not None and self.iqr is not None:
            return "iqr"
        if self.tolerance is not None:
            return "tolerance"
        if self.statistic.startswith("fraction") and self.n is not None:
            return "binomial"
        return None

    def standard_error(self) -> float | None:
        """The standard error of the reported ``value`` (its unit), the one the calibration's
        Gaussian likelihood uses: ``se`` as given; a ``ci95``'s width / (2 x 1.96); ``sd`` /
        sqrt(n) times the statistic's factor (1 for a mean, 1.2533 = sqrt(pi/2) for a median,
        sqrt(q(1-q)) / phi(z_q) for a quantile q, 1/sqrt(2) for an SD: large-sample normal
        theory); an ``iqr`` as SD = IQR / 1.349; ``tolerance`` / 1.96; a fraction's binomial
        sqrt(p(1-p)/n), p(1-p) at least 0.25/n so that 0 and 1 keep an uncertainty."""
        basis = self.uncertainty_basis()
        v, n = self.value, self.n
        if basis == "se":
            return self.se
        if basis == "ci95":
            return (self.ci95[1] - self.ci95[0]) / (2 * 1.96)  # type: ignore[index]
        if basis in ("sd", "iqr"):
            sd = self.sd if basis == "sd" else (self.iqr[1] - self.iqr[0]) / 1.349  # type: ignore
            return _sd_factor(self.statistic, self.q) * sd / math.sqrt(n)  # type: ignore
        if basis == "tolerance":
            return self.tolerance / 1.96  # type: ignore[operator]
        if basis == "binomial":
            p = min(max(v, 0.0), 1.0)  # type: ignore[type-var]
            return math.sqrt(max(p * (1 - p), 0.25 / n) / n)  # type: ignore[operator]
        return None


def _sd_factor(statistic: str, q: float | None) -> float:
    """SE of the statistic in units of SD / sqrt(n), for normally distributed data."""
    from statistics import NormalDist

    if statistic == "median":
        q = 0.5
    if statistic in ("median", "quantile") and q is not None:
        nd = NormalDist()
        return math.sqrt(q * (1 - q)) / nd.pdf(nd.inv_cdf(q))
    if statistic == "sd":
        return math.sqrt(0.5)
    return 1.0


def _check_observation(o: Observation) -> None:
    """Structural rules of an observation (one ``ValueError`` naming the key)."""
    if o.combine is None and o.statistic not in NO_OUTPUT:
        if o.output is None:
            raise ValueError("output is required (or combine)")
        if o.output not in OUTPUT_UNITS:
            from popsim.config import _suggest

            raise ValueError(f"output {o.output!r} is not a popsim output"
                             f"{_suggest(o.output, OUTPUT_UNITS)}")
    if o.statistic == "quantile" and o.q is None:
        raise ValueError("statistic 'quantile' needs q")
    if o.statistic in ("fraction_below", "fraction_above", "first_day_below",
                       "first_day_above") and o.threshold is None:
        raise ValueError(f"statistic {o.statistic!r} needs threshold")
    if o.statistic == "fraction_between" and o.thresholds is None:
        raise ValueError("statistic 'fraction_between' needs thresholds = [low, high]")
    timeless = o.statistic in ("first_day_below", "first_day_above", "range_over_time",
                               "mass_balance") or o.combine is not None
    if not timeless and o.day is None and o.integrate is None:
        raise ValueError("day is required (or integrate = [first_day, last_day])")
    has_value = o.value is not None
    if has_value and o.expected is not None:
        raise ValueError("give either value (with its uncertainty) or expected = [low, high]")
    if not has_value and o.expected is None and o.fit:
        raise ValueError("give value (with its uncertainty) or expected = [low, high] (an "
                         "observation without either is a component of a combine: fit = false)")
    if o.expected is not None and not o.source:
        raise ValueError("expected needs a source (where the window comes from)")
    if o.tolerance is not None and not o.tolerance_reason:
        raise ValueError("tolerance needs tolerance_reason")
    if o.sd is not None and o.n is None:
        raise ValueError("sd needs n (the 95% interval of a mean uses SD / sqrt(n))")
    if has_value and o.half_width() is None:
        raise ValueError("value needs its uncertainty: one of sd + n, se, ci95, iqr + n, n "
                         "(fractions), or tolerance + tolerance_reason")
    if not o.unit:
        raise ValueError("unit is required (the unit of value / expected)")
    expected_unit = _expected_unit(o)
    if expected_unit is not None and o.unit != expected_unit:
        raise ValueError(f"unit {o.unit!r} does not match the statistic's unit "
                         f"{expected_unit!r}")


def _expected_unit(o: Observation) -> str | None:
    if o.combine is not None:
        return "1" if o.combine.op == "ratio" else None
    if o.statistic in ("fraction_below", "fraction_above", "fraction_between", "mass_balance",
                       "steady_state_balance"):
        return "1"
    if o.statistic in ("first_day_below", "first_day_above"):
        return "day"
    if o.divide_by is not None:
        return None  # a per-dose quantity: its unit is the file's to state
    if o.change_from_day is not None and o.change != "difference":
        return "%" if o.change == "percent" else "1"
    unit = OUTPUT_UNITS[o.output]  # type: ignore[index]
    if o.integrate is not None:
        return unit.replace("/day", "") if unit.endswith("/day") else f"{unit} day"
    return unit


class StudyMeta(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    title: str
    kind: Literal["study", "scenario"] = "study"
    authors: str = ""
    year: int | None = None
    journal: str = ""
    pmid: int | None = None
    doi: str = ""
    url: str = ""
    transcribed_from: str = ""
    reserved: bool = False
    mechanisms: list[str] = []
    summary: str = ""
    plot: list[str] = []  # outputs drawn in the study's figure
    min_size: int = 0  # virtual patients needed for its statistics
    requires: list[str] = []  # other files whose observations ``combine`` reads


class Decomposition(_Strict):
    """Which mechanism carries an effect: the named observations again with each set of
    parameters switched (e.g. ``"pump" = { nka_mg_dependence = 0 }``)."""

    observations: Annotated[list[str], Field(min_length=1)]
    without: Annotated[dict[str, dict[str, float]], Field(min_length=1)]

    @field_validator("without")
    @classmethod
    def _parameters(cls, v):
        names = {f.name for f in dataclasses.fields(Params)}
        for label, overrides in v.items():
            for name in overrides:
                if name not in names:
                    raise ValueError(f"{label}: {name!r} is not a model parameter")
        return v


class Study(_Strict):
    """A study file, validated."""

    study: StudyMeta
    design: RunConfig
    observation: Annotated[list[Observation], Field(min_length=1)]
    decomposition: Decomposition | None = None
    path: str = ""

    @model_validator(mode="after")
    def _arms_and_ids(self):
        arms = [a.name for a in self.design.arms]
        ids = [o.id for o in self.observation if o.id]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"observation id {sorted(dup)[0]!r} is used twice")
        combined = {ref for o in self.observation if o.combine for ref in o.combine.of}
        for i, o in enumerate(self.observation):
            if o.value is None and o.expected is None and o.id not in combined:
                raise ValueError(f"observation.{i + 1}: no value or expected window, and no "
                                 "combine reads it")
            for key in ("arm", "versus_arm"):
                a = getattr(o, key)
                if a is not None and a not in arms:
                    raise ValueError(f"observation.{i + 1}.{key}: no arm {a!r} in the design "
                                     f"(arms: {', '.join(arms)})")
            for name in o.subgroup:
                if name not in COVARIATE_SUBGROUPS and name not in OUTPUT_UNITS:
                    raise ValueError(f"observation.{i + 1}.subgroup: {name!r} is neither a "
                                     "covariate nor an output")
                if name in OUTPUT_UNITS and isinstance(o.subgroup[name], str):
                    raise ValueError(f"observation.{i + 1}.subgroup.{name}: "
                                     f"{o.subgroup[name]!r} is text; an output takes "
                                     "{ min = ..., max = ... }")
            days = [d for d in (o.day, o.change_from_day, *(o.integrate or ())) if d is not None]
            for d in days:
                if not 0 <= d <= self.design.simulation.days:
                    raise ValueError(f"observation.{i + 1}: day {d:g} is outside the design's "
                                     f"0..{self.design.simulation.days:g} days")
            if o.combine is not None:
                for ref in o.combine.of:
                    if ":" not in ref and ref not in ids:
                        raise ValueError(f"observation.{i + 1}.combine: no observation "
                                         f"{ref!r} in this file")
                    if ":" in ref and ref.split(":")[0] not in self.study.requires:
                        raise ValueError(f"observation.{i + 1}.combine: {ref!r} needs "
                                         f"{ref.split(':')[0]!r} in study.requires")
        return self

    @model_validator(mode="after")
    def _decomposed_ids(self):
        if self.decomposition is not None:
            ids = {o.id for o in self.observation}
            for oid in self.decomposition.observations:
                if oid not in ids:
                    raise ValueError(f"decomposition.observations: no observation {oid!r}")
        return self

    def observation_by_id(self, oid: str) -> Observation:
        for o in self.observation:
            if o.id == oid:
                return o
        raise KeyError(oid)


class StudyError(ConfigError):
    """A malformed study file, in one line naming the file and the key."""


def parse_study(data: dict, path: str = "") -> Study:
    """Validate a study file already read from TOML."""
    design = data.get("design") if isinstance(data, dict) else None
    where = f"{path}: " if path else ""
    if isinstance(design, dict):  # the design is a run config: its own messages and paths
        try:
            parse_config(design)
        except ConfigError as e:
            raise StudyError(f"{where}design.{e}") from None
    try:
        study = validate_model(Study, {**data, "path": str(path)})
    except ConfigError as e:
        raise StudyError(f"{where}{e}") from None
    if path and Path(path).stem != study.study.id:
        raise StudyError(f"{where}study.id {study.study.id!r} differs from the file name")
    return study


def load_study(path: str | Path) -> Study:
    """Read and validate one study file."""
    path = Path(path)
    data, _ = read_toml(path, "study file", StudyError)
    study = parse_study(data, str(path))
    folder = path.parent.name
    if folder == "reserved" and not study.study.reserved:
        raise StudyError(f"{path}: files in reserved/ must say reserved = true")
    if study.study.reserved and folder in ("studies", "scenarios"):
        raise StudyError(f"{path}: a reserved study belongs in reserved/")
    if (study.study.kind == "scenario") != (folder == "scenarios") and folder in FOLDERS:
        raise StudyError(f"{path}: kind = {study.study.kind!r} does not match folder {folder}/")
    return study


@cache
def catalogue() -> dict[str, Study]:
    """Every shipped study file, by id (scenarios, then studies, then reserved)."""
    out: dict[str, Study] = {}
    for folder in FOLDERS:
        for path in sorted((HERE / folder).glob("*.toml")):
            s = load_study(path)
            if s.study.id in out:
                raise StudyError(f"{path}: study id {s.study.id!r} is used twice")
            out[s.study.id] = s
    return out


def scenarios() -> list[Study]:
    """The built-in behaviour checks that ``popsim validate`` runs."""
    return [s for s in catalogue().values() if s.study.kind == "scenario"]


def studies(reserved: bool = False) -> list[Study]:
    """Published studies: the fittable ones, or with ``reserved`` also those kept for
    independent validation."""
    return [s for s in catalogue().values()
            if s.study.kind == "study" and (reserved or not s.study.reserved)]


def resolve(ids: list[str], include_reserved: bool = False) -> list[Study]:
    """Study files by id, each after the files its observations need (``requires``)."""
    cat = catalogue()
    chosen: list[Study] = []

    def add(i: str):
        if i not in cat:
            from popsim.config import _suggest

            raise StudyError(f"no study {i!r}{_suggest(i, cat)}; `popsim evidence list` "
                             "shows them")
        s = cat[i]
        if s.study.reserved and not include_reserved:
            raise StudyError(f"study {i!r} is reserved for independent validation")
        for r in s.study.requires:
            add(r)
        if s not in chosen:
            chosen.append(s)

    for i in ids:
        add(i)
    return chosen


def design_config(study: Study, size: int | None = None,
                  population_size: int | None = None) -> RunConfig:
    """The study's virtual trial, with ``size`` patients (default: the file's, at least
    ``min_size``). A population study (its file sets ``min_size`` for its statistics) gets
    ``population_size`` patients instead when that is given: fewer make its statistics noisier
    but its programs smaller, for quick checks and quick fits."""
    if study.study.min_size and population_size is not None:
        n = population_size
    else:
        n = max(size or study.design.population.size, study.study.min_size)
    pop = study.design.population.model_copy(update={"size": n})
    return study.design.model_copy(update={"population": pop})
