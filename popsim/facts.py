"""Clinical facts that several stages read: reference ranges, the thresholds that define each
disorder, display titles, the reference adult, eGFR strata and patient status codes. Imports
nothing but the standard library, so configs, reports and the CLI read them without JAX.

Units of the model's outputs live with the outputs (:mod:`popsim.outputs`) and in every
cohort file (each variable's ``units`` attribute); reports take them from the file.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

REFERENCE_RANGES: dict[str, tuple[float, float]] = {
    "serum_mg": (0.70, 1.00),  # mmol/L, 1.7-2.4 mg/dL (laboratories; IOM 1997: 0.75-0.95)
    "serum_k": (3.5, 5.0),  # mmol/L (clinical texts)
    "serum_na": (135.0, 145.0),  # mmol/L
    "serum_ca": (2.15, 2.55),  # mmol/L total Ca, 8.6-10.2 mg/dL
}
"""Adult reference intervals of the serum outputs, mmol/L."""


@dataclass(frozen=True)
class Disorder:
    """A disorder defined by one output crossing a threshold."""

    name: str
    output: str
    op: str  # "<" or ">"
    threshold: float
    unit: str

    def present(self, x):
        """Whether the disorder is present at values ``x`` (NumPy arrays work)."""
        return x < self.threshold if self.op == "<" else x > self.threshold

    @property
    def label(self) -> str:
        """E.g. ``hypokalaemia (K < 3.5)``."""
        element = {"serum_mg": "Mg", "serum_k": "K", "serum_na": "Na",
                   "serum_ca": "Ca"}.get(self.output, self.output)
        return f"{self.name.replace('emia', 'aemia')} ({element} {self.op} {self.threshold:g})"


DISORDERS: tuple[Disorder, ...] = (
    Disorder("hypomagnesemia", "serum_mg", "<", 0.70, "mmol/L"),
    Disorder("hypermagnesemia", "serum_mg", ">", 1.05, "mmol/L"),
    Disorder("hypokalemia", "serum_k", "<", 3.5, "mmol/L"),
    Disorder("hyperkalemia", "serum_k", ">", 5.0, "mmol/L"),
    Disorder("hyponatremia", "serum_na", "<", 135.0, "mmol/L"),
    Disorder("hypocalcemia", "serum_ca", "<", 2.15, "mmol/L"),
)
"""The disorders counted in run summaries and reports (thresholds of common clinical
use; hypermagnesaemia above the upper reference limit plus a margin of 0.05 mmol/L)."""

SUMMARY_MEDIANS = ("serum_mg", "serum_k", "serum_na", "serum_ca")
"""Outputs whose medians a run summary shows."""

TITLES: dict[str, str] = {
    "serum_mg": "serum Mg", "serum_mg_ionized": "serum ionized Mg", "serum_k": "serum K",
    "serum_na": "serum Na", "serum_ca": "serum Ca", "serum_ca_ionized": "serum ionized Ca",
    "pth": "PTH", "aldosterone": "aldosterone", "ecf_volume": "ECF volume",
    "intracellular_mg": "cell Mg (total)", "intracellular_mg_free": "cell Mg (free)",
    "intracellular_k": "cell K", "intracellular_na": "cell Na", "urine_mg": "urinary Mg",
    "urine_k": "urinary K", "urine_na": "urinary Na", "urine_ca": "urinary Ca",
    "mg_bone_exchangeable": "exchangeable bone Mg", "mg_intake": "dietary Mg intake",
    "egfr": "eGFR", "k_intake": "dietary K intake", "na_intake": "dietary Na intake",
}
"""Short display titles (figure axes, table headers); the variable name otherwise."""


def title(name: str) -> str:
    """The display title of a variable."""
    return TITLES.get(name, name.replace("_", " "))


EGFR_STRATA: tuple[tuple[float, float, str], ...] = (
    (90, math.inf, ">= 90"), (60, 90, "60-89"), (45, 60, "45-59"), (30, 45, "30-44"),
    (15, 30, "15-29"), (0, 15, "< 15"))
"""KDIGO CKD stages by eGFR (mL/min/1.73 m²): lower bound, upper bound, label."""

CKD_STAGES: tuple[str, ...] = ("G1", "G2", "G3a", "G3b", "G4", "G5")
"""The KDIGO 2012 GFR category of each row of :data:`EGFR_STRATA` (KDIGO 2012 CKD guideline,
Kidney Int Suppl 3:1, table 5): a lower bound belongs to its stage (eGFR 60 is G2)."""

MG_EAR_MG_PER_DAY = {"female": 265.0, "male": 350.0}
"""Estimated average requirement of Mg for adults >= 31 y, mg/day (IOM 1997)."""


@dataclass(frozen=True)
class ReferenceAdult:
    """The reference adult every derived parameter default is balanced for, and the patient
    exported to SBML by default: a 70 kg man with eGFR 100 mL/min/1.73 m² on typical intakes."""

    body_weight: float = 70.0  # kg
    is_female: bool = False
    egfr: float = 100.0  # mL/min/1.73 m²
    mg_intake_mg: float = 300.0  # mg/day elemental Mg (renal atlas fig. 4-5; IOM 1997)
    k_intake: float = 75.0  # mmol/day (WWEIA 2009-10: men 81, women 62)
    na_intake: float = 150.0  # mmol/day (Cogswell 2012)


REFERENCE_ADULT = ReferenceAdult()


class Status(enum.IntEnum):
    """Per-patient outcome code stored in the cohort file (``status``)."""

    OK = 0
    STEADY_STATE_FAILED = 1  # no steady state found for the baseline covariates
    SOLVER_FAILED = 2  # the time-course solve failed (e.g. step size collapsed)
    MAX_STEPS = 3  # the time-course solve hit max_steps
    NONFINITE = 4  # non-finite outputs
    PADDING = 9  # not a patient (padding of the last chunk); never stored


STATUS_MEANINGS: dict[int, str] = {s.value: s.name.lower() for s in Status}
