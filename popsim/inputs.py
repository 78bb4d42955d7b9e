"""The input channels of the model: what acts on a patient at one instant. Imports no JAX.

Each channel has a unit, a meaning, and a rule for how interventions combine with the patient's
own baseline: a *replaceable* channel (a diet) starts from a patient quantity that an
intervention may replace; every channel adds what interventions add; a *fraction* channel is
kept within 0..1. :mod:`popsim.protocols` applies these rules, :mod:`popsim.interventions`
names the channels an intervention acts on, :mod:`popsim.sbml` exports each channel as an
input, and :mod:`popsim.model` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


class Inputs(NamedTuple):
    """What acts on one patient at one instant (after interventions are applied). Each field
    is a JAX array, or a SymPy expression in the SBML export (hence ``Any``)."""

    mg_oral: Any  # Mg swallowed with food, mmol/day
    mg_oxide: Any  # Mg swallowed as oxide (or hydroxide), mmol/day elemental
    mg_organic: Any  # Mg swallowed as citrate, lactate or aspartate, mmol/day elemental
    mg_chloride: Any  # Mg swallowed as chloride, mmol/day elemental
    mg_glycinate: Any  # Mg swallowed as glycinate, mmol/day elemental
    k_oral: Any  # K swallowed, mmol/day
    na_oral: Any  # Na swallowed, mmol/day
    mg_iv: Any  # Mg infused into the ECF, mmol/day
    loop_dose: Any  # loop diuretic acting, fraction of the maximal effect
    thiazide_dose: Any  # thiazide acting, fraction of the maximal effect


@dataclass(frozen=True)
class Channel:
    """How one input channel is made from the patient and the interventions.

    Attributes:
        name: the :class:`Inputs` field.
        unit: its unit.
        description: one line.
        baseline: the :class:`popsim.model.Patient` field it starts from (``None``: 0).
        replaceable: an intervention may replace the baseline (e.g. a diet).
        fraction: the result is kept within 0..1 (diuretic doses).
    """

    name: str
    unit: str
    description: str
    baseline: str | None = None
    replaceable: bool = False
    fraction: bool = False


CHANNELS: tuple[Channel, ...] = (
    Channel("mg_oral", "mmol/day", "Mg swallowed with food", "mg_intake", True),
    Channel("mg_oxide", "mmol/day", "Mg swallowed as oxide or hydroxide (elemental)"),
    Channel("mg_organic", "mmol/day", "Mg swallowed as citrate, lactate or aspartate "
            "(elemental)"),
    Channel("mg_chloride", "mmol/day", "Mg swallowed as chloride (elemental)"),
    Channel("mg_glycinate", "mmol/day", "Mg swallowed as glycinate (elemental)"),
    Channel("k_oral", "mmol/day", "K swallowed (diet + supplements)", "k_intake", True),
    Channel("na_oral", "mmol/day", "Na swallowed", "na_intake", True),
    Channel("mg_iv", "mmol/day", "Mg infused into the ECF"),
    Channel("loop_dose", "1", "loop diuretic acting now (fraction of the maximal effect)",
            "loop_dose", fraction=True),
    Channel("thiazide_dose", "1", "thiazide acting now (fraction of the maximal effect)",
            "thiazide_dose", fraction=True),
)
"""One entry per :class:`Inputs` field, in the same order."""

CHANNEL = {c.name: c for c in CHANNELS}
assert tuple(CHANNEL) == Inputs._fields, "CHANNELS must list the Inputs fields in order"
