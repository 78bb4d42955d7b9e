"""Intervention kinds: what an arm does to its patients, each kind one class. Imports no JAX.

A kind is a pydantic model (its config schema, in config units) with a method :meth:`effects`
that converts itself into model units on the input channels of :mod:`popsim.inputs`, and a
:func:`register` entry. Everything else follows from those two: the config accepts the kind,
:mod:`popsim.protocols` compiles it into the piecewise-constant arrays the solver reads, the SBML
export writes its channels as inputs, and ``popsim info interventions`` lists it. A new kind is
one class and one :func:`register` call (``tests/test_interventions.py`` adds one in a test).

Every intervention acts from ``start_day`` until ``end_day`` (default: the end of the
simulation); after it, the baseline returns.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from popsim.inputs import CHANNEL
from popsim.units import mg_to_mmol_mg


class Effect(NamedTuple):
    """What an intervention does to one input channel while it acts (model units)."""

    channel: str  # an Inputs field
    value: float  # amount added, or the value that replaces the baseline
    replace: bool = False  # replace the patient's baseline (a diet) instead of adding


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
        simulation of ``days`` days."""
        raise NotImplementedError


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


# --- the kinds -----------------------------------------------------------------------------

SALT_CHANNELS = {"oxide": "mg_oxide", "hydroxide": "mg_oxide", "citrate": "mg_organic",
                 "lactate": "mg_organic", "aspartate": "mg_organic", "chloride": "mg_chloride",
                 "glycinate": "mg_glycinate", "food": "mg_oral"}
"""Oral Mg salt -> the input channel whose solubility applies (:mod:`popsim.parameters`:
``mg_solubility_*``; Firoz & Graber 2001)."""
DEFAULT_SALT = "citrate"


@register
class OralMagnesium(Intervention):
    kind: Literal["oral_magnesium"] = "oral_magnesium"
    dose: Annotated[float, Field(ge=0, le=20000, description="mg/day elemental Mg")]
    salt: Annotated[Literal["oxide", "hydroxide", "citrate", "lactate", "aspartate",
                            "chloride", "glycinate", "food"],
                    Field(description="the salt; its solubility sets how much can be "
                          "absorbed")] = DEFAULT_SALT
    summary: ClassVar[str] = ("oral Mg supplement, mg/day of elemental Mg, as a salt "
                              f"(default {DEFAULT_SALT})")

    def effects(self, days):
        return [Effect(SALT_CHANNELS[self.salt], mg_to_mmol_mg(self.dose))]


@register
class OralPotassium(Intervention):
    kind: Literal["oral_potassium"] = "oral_potassium"
    dose: Annotated[float, Field(ge=0, le=1000, description="mmol/day K")]
    summary: ClassVar[str] = "oral K supplement (e.g. KCl), mmol/day"

    def effects(self, days):
        return [Effect("k_oral", self.dose)]


@register
class IvMagnesium(Intervention):
    kind: Literal["iv_magnesium"] = "iv_magnesium"
    dose: Annotated[float, Field(ge=0, le=1000, description="mmol Mg in total")]
    summary: ClassVar[str] = "IV Mg, mmol in total, infused evenly from start_day to end_day"

    def effects(self, days):
        return [Effect("mg_iv", self.dose / (self.end(days) - self.start_day))]


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
class LoopDiuretic(Intervention):
    kind: Literal["loop_diuretic"] = "loop_diuretic"
    dose: Annotated[float, Field(ge=0, le=1, description="fraction of the maximal effect "
                                 "(0.5: a usual daily dose)")]
    summary: ClassVar[str] = "loop diuretic (furosemide-like), fraction of the maximal effect"

    def effects(self, days):
        return [Effect("loop_dose", self.dose)]


@register
class ThiazideDiuretic(Intervention):
    kind: Literal["thiazide_diuretic"] = "thiazide_diuretic"
    dose: Annotated[float, Field(ge=0, le=1, description="fraction of the maximal effect "
                                 "(0.5: a usual daily dose)")]
    summary: ClassVar[str] = "thiazide diuretic, fraction of the maximal effect"

    def effects(self, days):
        return [Effect("thiazide_dose", self.dose)]
