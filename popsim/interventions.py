"""Intervention kinds: what an arm does to its patients, each kind one class. Imports no JAX.

A kind is a pydantic model (its config schema, in config units) with a method :meth:`effects`
that converts itself into model units on the input channels of :mod:`popsim.inputs`, and a
:func:`register` entry. Everything else follows from those two: the config accepts the kind,
:mod:`popsim.protocols` compiles it into the piecewise-constant arrays the solver reads, the SBML
export writes its channels as inputs, and ``popsim info interventions`` lists it. A new kind is
one class and one :func:`register` call (``tests/test_interventions.py`` adds one in a test).

Every intervention acts from ``start_day`` until ``end_day`` (default: the end of the
simulation); after it, the baseline returns. Its :meth:`Intervention.schedule` says when, within
that window, its effects act and how strongly (a constant rate by default).

Kinds with a dose (:class:`Dosed`) also accept, as clinical protocols write them:

* ``dose_per_kg`` instead of ``dose``: a weight-based dose (the dose unit per kg of body weight),
  each patient's own from their body weight;
* ``every_hours`` (with ``duration_hours`` and ``first_dose_hour``): the daily dose given in
  ``24 / every_hours`` equal administrations, each entering at a constant rate over
  ``duration_hours`` (the model has no gut transit compartment: an oral dose is absorbed while it
  enters), instead of a constant rate;
* ``titrate``: the dose changed per patient at visits (:class:`Titration`).

The diuretics (:class:`LoopDiuretic`, :class:`ThiazideDiuretic`) accept ``every_hours`` too: a
once-daily tablet acts at ``dose`` for ``duration_hours`` after each administration and not in
between (:class:`Scheduled`), instead of a steady effect all day.
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from popsim._schema import _suggest
from popsim.inputs import CHANNEL
from popsim.outputs import OUTPUT_SPECS
from popsim.units import mg_to_mmol_mg


class Effect(NamedTuple):
    """What an intervention does to one input channel while it acts (model units)."""

    channel: str  # an Inputs field
    value: float  # amount added, or the value that replaces the baseline
    replace: bool = False  # replace the patient's baseline (a diet) instead of adding
    per_kg: bool = False  # ``value`` is per kg of body weight (added only)


class Intervention(BaseModel):
    """Base of every intervention kind: the time window, and the conversion to effects."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: str
    start_day: Annotated[float, Field(ge=0, description="day it starts")] = 0.0
    end_day: Annotated[float | None, Field(description="day it stops (default: the end of "
                                           "the simulation)")] = None

    summary: ClassVar[str] = ""  # one line for `popsim info interventions`

    @model_validator(mode="after")
    def _order(self):
        if self.end_day is not None and self.end_day <= self.start_day:
            raise ValueError(f"end_day ({self.end_day:g}) must be after start_day "
                             f"({self.start_day:g})")
        return self

    def end(self, days: float) -> float:
        """The day the intervention stops in a simulation of ``days`` days."""
        return days if self.end_day is None else self.end_day

    def effects(self, days: float) -> list[Effect]:
        """The channels this intervention acts on and by how much, in model units, in a
        simulation of ``days`` days (the mean rate over its window)."""
        raise NotImplementedError

    def schedule(self, days: float) -> list[tuple[float, float, float]]:
        """When its effects act: ``(start, end, factor)`` spans (days) in which the effects act
        multiplied by ``factor``; by default the whole window at factor 1."""
        return [(self.start_day, self.end(days), 1.0)]

    @property
    def titration(self) -> Titration | None:
        """How the dose is titrated per patient (``None``: it is not)."""
        return None

    @classmethod
    def refused_keys(cls) -> tuple[str, ...]:
        """Keys of the schema (inherited from a base class) that this kind refuses when given:
        none by default. The config's validation and ``popsim info interventions`` both read
        it, so what is listed for a kind is what its config accepts."""
        return ()


REGISTRY: dict[str, type[Intervention]] = {}
"""Kind name -> class, in registration order."""


def register(cls: type[Intervention]) -> type[Intervention]:
    """Register an intervention kind (usable as a class decorator). Its ``kind`` field must be
    a ``Literal`` with a default, and its effects must name channels of :mod:`popsim.inputs`."""
    kind = cls.model_fields["kind"].default
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"{cls.__name__}: the kind field needs a string default")
    if kind in REGISTRY and REGISTRY[kind] is not cls:
        raise ValueError(f"intervention kind {kind!r} is already registered")
    REGISTRY[kind] = cls
    return cls


def check_effects(effects: list[Effect], where: str) -> None:
    """Raise ``ValueError`` if an effect names an unknown channel or replaces one that cannot
    be replaced (a programming error in an intervention class)."""
    for e in effects:
        if e.channel not in CHANNEL:
            raise ValueError(f"{where}: unknown input channel {e.channel!r}")
        if e.replace and not CHANNEL[e.channel].replaceable:
            raise ValueError(f"{where}: channel {e.channel!r} cannot be replaced")


# --- doses: weight-based, periodic, titrated ------------------------------------------------

class Titration(BaseModel):
    """Per-patient titration of a dose at visits, computed inside the solve.

    Visits fall ``every_days`` after the intervention starts, then every ``every_days`` while
    it acts. At each visit the patient's ``output`` is measured (before the dose changes) and
    the daily dose moves by ``step`` (the intervention's dose unit; per kg with
    ``dose_per_kg``) toward ``target``, kept within ``0 .. max``:

    * ``direction = "raise"`` (the dose raises the output, e.g. a K supplement and serum K):
      below the target's low end the dose goes up by ``step``, above its high end down by it;
    * ``direction = "lower"`` (the dose lowers the output): above the high end up, below the
      low end down.

    ``target`` is a range ``[low, high]`` or one number, a level to reach: for "raise" the low
    end (no high end: the dose only goes up, and stays once the target is reached), for "lower"
    the high end. The first dose is the intervention's ``dose`` or ``dose_per_kg``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    output: Annotated[str, Field(description="output measured at visits")]
    target: Annotated[float | tuple[float, float], Field(description="the output's target: a "
                                                         "level, or a range [low, high]")]
    every_days: Annotated[float, Field(gt=0, description="days between visits")]
    step: Annotated[float, Field(gt=0, description="dose change per visit (the dose unit)")]
    max: Annotated[float, Field(gt=0, description="highest dose (the dose unit)")]
    direction: Literal["raise", "lower"] = "raise"

    @field_validator("output")
    @classmethod
    def _output(cls, v):
        if v not in OUTPUT_SPECS:
            raise ValueError(f"unknown output{_suggest(v, OUTPUT_SPECS)}; allowed: an output "
                             "of the model (serum_k, serum_mg, ...)")
        return v

    @field_validator("target", mode="before")
    @classmethod
    def _target(cls, v):
        if isinstance(v, list | tuple):
            if len(v) != 2 or not all(isinstance(x, int | float) and not isinstance(x, bool)
                                      and math.isfinite(x) for x in v):
                raise ValueError("a target range is two numbers [low, high]")
            if v[0] >= v[1]:
                raise ValueError(f"target range [{v[0]:g}, {v[1]:g}]: low must be below high")
            return (float(v[0]), float(v[1]))
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError("target must be a number or a range [low, high]")
        return float(v)

    def bounds(self) -> tuple[float, float]:
        """The target's ``(low, high)`` (``-inf``/``inf`` where it has no such end)."""
        if isinstance(self.target, tuple):
            return self.target
        t = float(self.target)
        return (t, math.inf) if self.direction == "raise" else (-math.inf, t)

    def n_visits(self, start: float, end: float) -> int:
        """The number of :meth:`visits`."""
        return max(0, math.ceil((end - start) / self.every_days - 1e-9) - 1)

    def visits(self, start: float, end: float) -> list[float]:
        """Visit days of an intervention acting from ``start`` to ``end`` (days): every
        ``every_days`` after ``start``, strictly before ``end``."""
        return [start + k * self.every_days for k in range(1, self.n_visits(start, end) + 1)]


class Scheduled(Intervention):
    """Base of the kinds that may act in periodic administrations (``every_hours``, with
    ``duration_hours`` and ``first_dose_hour``) instead of steadily.

    ``conserves_daily_amount`` says what an administration carries: the day's dose divided
    among the administrations, entering faster the shorter it is (a supplement, :class:`Dosed`),
    or the full effect of ``dose`` for as long as it acts (a diuretic tablet)."""

    every_hours: Annotated[float | None, Field(gt=0, le=168, description="hours between "
                                               "administrations (default: a constant rate)")] \
        = None
    duration_hours: Annotated[float | None, Field(gt=0, description="hours one administration "
                                                  "acts (with every_hours; default 1, a loop "
                                                  "diuretic 6, a thiazide 12)")] = None
    first_dose_hour: Annotated[float | None, Field(ge=0, lt=24, description="hours after the "
                                                   "start of start_day of the first "
                                                   "administration (default 8)")] = None

    periodic: ClassVar[bool] = True  # every_hours is allowed
    conserves_daily_amount: ClassVar[bool] = True
    default_duration_hours: ClassVar[float] = 1.0

    @classmethod
    def refused_keys(cls) -> tuple[str, ...]:
        """The periodic keys when the kind is not ``periodic`` (e.g. an infusion)."""
        return () if cls.periodic else ("every_hours", "duration_hours", "first_dose_hour")

    @model_validator(mode="after")
    def _periodic(self):
        for key in self.refused_keys():
            if getattr(self, key) is not None:
                raise ValueError(f"{key} is not available for {self.kind}")
        if self.every_hours is None:
            for key in ("duration_hours", "first_dose_hour"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key} needs every_hours (periodic administrations)")
        elif self.width_hours > self.every_hours:
            raise ValueError(f"duration_hours ({self.width_hours:g}) is longer than "
                             f"every_hours ({self.every_hours:g})")
        return self

    @property
    def width_hours(self) -> float:
        """Hours one administration acts: ``duration_hours`` or the kind's default."""
        return self.default_duration_hours if self.duration_hours is None else self.duration_hours

    def schedule(self, days):
        if self.every_hours is None:
            return super().schedule(days)
        period, width = self.every_hours / 24.0, self.width_hours / 24.0
        end, first = self.end(days), self._first_dose()
        factor = period / width if self.conserves_daily_amount else 1.0
        times = (first + k * period for k in range(self.n_administrations(days)))
        return [(t, min(t + width, end), factor) for t in times if t < end]

    def n_administrations(self, days: float) -> int:
        """How many spans :meth:`schedule` has (at most), counted without listing them."""
        if self.every_hours is None:
            return 1
        return max(0, math.ceil((self.end(days) - self._first_dose()) * 24.0 / self.every_hours))

    def _first_dose(self) -> float:
        hour = 8.0 if self.first_dose_hour is None else self.first_dose_hour
        return self.start_day + hour / 24.0


class Dosed(Scheduled):
    """Base of the kinds with a dose (see the module docstring): the dose as a number or per
    kg of body weight, a constant rate or periodic administrations, optionally titrated.

    A subclass names its input ``channel``, the unit of ``dose`` (``dose_unit``) and of the
    daily dose in force (``rate_unit``, the unit of its ``dose_<kind>`` output), and converts
    that unit into the channel's model units (:meth:`to_model_units`, linear)."""

    dose: float | None = None  # subclasses give the unit and limits
    dose_per_kg: float | None = None
    titrate: Annotated[Titration | None, Field(description="per-patient titration at "
                                               "visits")] = None

    channel: ClassVar[str] = ""
    dose_unit: ClassVar[str] = ""
    rate_unit: ClassVar[str] = ""

    @classmethod
    def refused_keys(cls) -> tuple[str, ...]:
        """The periodic keys and ``titrate`` when the kind is not ``periodic`` (titration
        changes the dose at visits, which a dose given once over a window does not have)."""
        return super().refused_keys() + (() if cls.periodic else ("titrate",))

    @model_validator(mode="after")
    def _dose(self):
        per_kg = f"{self.dose_unit.split('/')[0]}/kg" + self.dose_unit[len(
            self.dose_unit.split("/")[0]):]
        if (self.dose is None) == (self.dose_per_kg is None):
            raise ValueError(f"give either dose ({self.dose_unit}) or dose_per_kg ({per_kg})"
                             + (", not both" if self.dose is not None else ""))
        if self.titrate is not None and self.titrate.max < self.amount:
            raise ValueError(f"titrate.max ({self.titrate.max:g}) is below the first dose "
                             f"({self.amount:g})")
        return self

    @property
    def amount(self) -> float:
        """The dose as configured: ``dose``, or ``dose_per_kg`` (per kg of body weight)."""
        return float(self.dose if self.dose is not None else self.dose_per_kg)  # type: ignore

    @property
    def per_kg(self) -> bool:
        return self.dose_per_kg is not None

    @property
    def titration(self) -> Titration | None:
        return self.titrate

    def rate(self, days: float) -> float:
        """The daily dose in force while it acts, in ``rate_unit`` (per kg with
        ``dose_per_kg``)."""
        return self.amount

    def effects(self, days):
        return [Effect(self.channel, self.to_model_units(self.rate(days)), per_kg=self.per_kg)]

    def to_model_units(self, x):
        """``x`` in ``rate_unit`` (per kg or not) in the channel's model units."""
        return x


# --- the kinds -----------------------------------------------------------------------------

SALT_CHANNELS = {"oxide": "mg_oxide", "hydroxide": "mg_oxide", "citrate": "mg_organic",
                 "lactate": "mg_organic", "aspartate": "mg_organic", "chloride": "mg_chloride",
                 "glycinate": "mg_glycinate", "food": "mg_oral"}
"""Oral Mg salt -> the input channel whose solubility applies (:mod:`popsim.parameters`:
``mg_solubility_*``; Firoz & Graber 2001)."""
DEFAULT_SALT = "citrate"


@register
class OralMagnesium(Dosed):
    kind: Literal["oral_magnesium"] = "oral_magnesium"
    dose: Annotated[float | None, Field(ge=0, le=20000, description="mg/day elemental Mg")] = None
    dose_per_kg: Annotated[float | None, Field(ge=0, le=300, description="mg/kg/day elemental "
                                               "Mg")] = None
    salt: Annotated[Literal["oxide", "hydroxide", "citrate", "lactate", "aspartate",
                            "chloride", "glycinate", "food"],
                    Field(description="the salt; its solubility sets how much can be "
                          "absorbed")] = DEFAULT_SALT
    summary: ClassVar[str] = ("oral Mg supplement, mg/day (or mg/kg/day) of elemental Mg, as a "
                              f"salt (default {DEFAULT_SALT})")
    dose_unit: ClassVar[str] = "mg/day"
    rate_unit: ClassVar[str] = "mg/day"

    @property
    def channel(self) -> str:  # type: ignore[override]
        """The input channel of the salt (its solubility applies)."""
        return SALT_CHANNELS[self.salt]

    def to_model_units(self, x):
        return mg_to_mmol_mg(x)


@register
class OralPotassium(Dosed):
    kind: Literal["oral_potassium"] = "oral_potassium"
    dose: Annotated[float | None, Field(ge=0, le=1000, description="mmol/day K")] = None
    dose_per_kg: Annotated[float | None, Field(ge=0, le=15, description="mmol/kg/day K")] = None
    summary: ClassVar[str] = "oral K supplement (e.g. KCl), mmol/day (or mmol/kg/day)"
    channel: ClassVar[str] = "k_oral"
    dose_unit: ClassVar[str] = "mmol/day"
    rate_unit: ClassVar[str] = "mmol/day"


@register
class IvMagnesium(Dosed):
    kind: Literal["iv_magnesium"] = "iv_magnesium"
    dose: Annotated[float | None, Field(ge=0, le=1000, description="mmol Mg in total")] = None
    dose_per_kg: Annotated[float | None, Field(ge=0, le=15, description="mmol/kg Mg in "
                                               "total")] = None
    summary: ClassVar[str] = ("IV Mg, mmol (or mmol/kg) in total, infused evenly from start_day "
                              "to end_day")
    channel: ClassVar[str] = "mg_iv"
    dose_unit: ClassVar[str] = "mmol"
    rate_unit: ClassVar[str] = "mmol/day"
    periodic: ClassVar[bool] = False

    def rate(self, days):
        return self.amount / (self.end(days) - self.start_day)


@register
class Diet(Intervention):
    kind: Literal["diet"] = "diet"
    mg_intake: Annotated[float | None, Field(ge=0, le=20000, description="mg/day")] = None
    k_intake: Annotated[float | None, Field(ge=0, le=1000, description="mmol/day")] = None
    na_intake: Annotated[float | None, Field(ge=0, le=2000, description="mmol/day")] = None
    summary: ClassVar[str] = ("a diet replacing the baseline intake of Mg (mg/day), K or Na "
                              "(mmol/day)")

    @model_validator(mode="after")
    def _some(self):
        if self.mg_intake is None and self.k_intake is None and self.na_intake is None:
            raise ValueError("a diet needs at least one of mg_intake, k_intake, na_intake")
        return self

    def effects(self, days):
        out = []
        if self.mg_intake is not None:
            out.append(Effect("mg_oral", mg_to_mmol_mg(self.mg_intake), replace=True))
        if self.k_intake is not None:
            out.append(Effect("k_oral", self.k_intake, replace=True))
        if self.na_intake is not None:
            out.append(Effect("na_oral", self.na_intake, replace=True))
        return out


@register
class LoopDiuretic(Scheduled):
    """With ``every_hours``, each tablet blocks NKCC2 at ``dose`` for ``duration_hours``
    (default 6: oral furosemide's natriuresis lasts about six hours, hence the name Lasix) and
    not in between, so the post-diuretic Na retention of the rest of the day is simulated."""

    kind: Literal["loop_diuretic"] = "loop_diuretic"
    dose: Annotated[float, Field(ge=0, le=1, description="fraction of the maximal effect "
                                 "(0.5: a usual daily dose; with every_hours, while a tablet "
                                 "acts)")]
    summary: ClassVar[str] = "loop diuretic (furosemide-like), fraction of the maximal effect"
    conserves_daily_amount: ClassVar[bool] = False
    default_duration_hours: ClassVar[float] = 6.0

    def effects(self, days):
        return [Effect("loop_dose", self.dose)]


@register
class ThiazideDiuretic(Scheduled):
    """With ``every_hours``, each tablet blocks NCC at ``dose`` for ``duration_hours``
    (default 12: hydrochlorothiazide's diuresis lasts 6-12 hours)."""

    kind: Literal["thiazide_diuretic"] = "thiazide_diuretic"
    dose: Annotated[float, Field(ge=0, le=1, description="fraction of the maximal effect "
                                 "(0.5: a usual daily dose; with every_hours, while a tablet "
                                 "acts)")]
    summary: ClassVar[str] = "thiazide diuretic, fraction of the maximal effect"
    conserves_daily_amount: ClassVar[bool] = False
    default_duration_hours: ClassVar[float] = 12.0

    def effects(self, days):
        return [Effect("thiazide_dose", self.dose)]


def dose_outputs(arms) -> dict[str, str]:
    """The ``dose_<kind>`` outputs of a run's arms (:class:`popsim.config.Arm`): one for each
    kind that some arm gives per kg of body weight or titrates (its dose then differs between
    patients), with its unit (``rate_unit``), in registration order."""
    used = {iv.kind for a in arms for iv in a.intervention
            if isinstance(iv, Dosed) and (iv.per_kg or iv.titration is not None)}
    return {f"dose_{kind}": cls.rate_unit for kind, cls in REGISTRY.items()  # type: ignore
            if kind in used}
