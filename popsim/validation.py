"""`popsim validate`: the built-in physiology scenarios, each a small virtual trial with numbered
checks against expected ranges and their sources.

The same scenarios are the behaviour tests of the suite (``tests/test_validation.py``), so what a
user sees here is what CI asserts. All scenarios share one patient count, 121 output times and 8
protocol segments, so they reuse one compiled solve.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from popsim import config as cfg
from popsim.population import sample_cohort
from popsim.run import protocols_for, simulate_arms, solver_settings
from popsim.solve import BALANCE_OUTPUTS, Status

N_TIMES = 121
N_SEGMENTS = 8
MAX_STEPS = 2000 + 10 * 360
"""Solver steps allowed per patient and arm in every scenario: the default budget of the
longest (360 days). The budget is part of the compiled program; with the default (which grows
with ``days``) each scenario length compiled its own steady state and time course (6 of each:
`popsim validate --size 16` took 219 s, now 107 s)."""


@dataclass
class ScenarioResult:
    """Outputs of one scenario: dict of ``(arm, patient, time)`` arrays, float64."""

    name: str
    arms: tuple[str, ...]
    times: np.ndarray  # days
    outputs: dict[str, np.ndarray]
    status: np.ndarray  # (arm, patient)
    covariates: dict[str, np.ndarray]
    others: dict = field(default_factory=dict)  # results of the scenarios this one requires

    def arm(self, name: str) -> int:
        return self.arms.index(name)

    def ok(self) -> np.ndarray:
        """Patients solved in every arm."""
        return np.all(self.status == Status.OK, axis=0)

    def t(self, day: float) -> int:
        return int(np.argmin(np.abs(self.times - day)))

    def values(self, arm: str, output: str, day: float) -> np.ndarray:
        return self.outputs[output][self.arm(arm), self.ok(), self.t(day)]

    def median(self, arm: str, output: str, day: float) -> float:
        return float(np.median(self.values(arm, output, day)))

    def median_course(self, arm: str, output: str) -> np.ndarray:
        return np.median(self.outputs[output][self.arm(arm)][self.ok()], axis=0)

    def first_day(self, arm: str, output: str, op: str, threshold: float) -> float:
        """First saved day the median crosses ``threshold`` (``inf`` if never)."""
        m = self.median_course(arm, output)
        hit = m < threshold if op == "<" else m > threshold
        return float(self.times[np.argmax(hit)]) if hit.any() else math.inf

    def integral(self, arm: str, output: str, day0: float, day1: float) -> np.ndarray:
        """Per-patient trapezoid integral of an output (rate per day) from day0 to day1."""
        i0, i1 = self.t(day0), self.t(day1)
        y = self.outputs[output][self.arm(arm)][self.ok()][:, i0:i1 + 1]
        return np.trapezoid(y, self.times[i0:i1 + 1], axis=1)

    def balance_error(self) -> float:
        """Largest relative error of mass balance (Mg, K, Na) over arms, patients and times."""
        worst = 0.0
        for el, body in (("mg", "body_mg"), ("k", "body_k"), ("na", "body_na")):
            b = self.outputs[body][:, self.ok()]
            gain = self.outputs[f"net_gain_{el}"][:, self.ok()]
            err = np.abs((b - b[..., :1]) - gain) / b
            worst = max(worst, float(err.max()))
        return worst


@dataclass(frozen=True)
class Check:
    """One numbered expectation: ``low <= measure(result) <= high``."""

    id: str
    what: str
    unit: str
    low: float
    high: float
    source: str
    measure: Callable[[ScenarioResult], float]

    def expected(self) -> str:
        if math.isinf(self.low):
            return f"< {self.high:g}"
        if math.isinf(self.high):
            return f"> {self.low:g}"
        return f"{self.low:g} .. {self.high:g}"


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    config: dict
    checks: tuple[Check, ...]
    plot: tuple[str, ...] = ("serum_mg", "serum_k", "intracellular_na", "serum_ca")
    min_size: int = 0  # some checks need more patients
    requires: tuple[str, ...] = ()  # scenarios whose results the checks compare against


INF = math.inf


def _fixed(v):
    return {"distribution": "fixed", "value": v}


def _uniform(lo, hi):
    return {"distribution": "uniform", "low": lo, "high": hi}


#: the covariates of configs/reference_healthy.toml (a test keeps the two equal)
REFERENCE_COVARIATES = {
    "age": _uniform(20.0, 70.0),
    "egfr": {"distribution": "normal", "mean": 99.0, "sd": 15.0, "age_slope": -0.9, "min": 60.0,
             "max": 140.0},
    "mg_intake": {"female": {"distribution": "lognormal", "median": 320.0, "gsd": 1.2},
                  "male": {"distribution": "lognormal", "median": 400.0, "gsd": 1.2}},
    "k_intake": {"distribution": "lognormal", "median": 75.0, "gsd": 1.25},
    "na_intake": {"distribution": "lognormal", "median": 150.0, "gsd": 1.25},
    "diuretic": _fixed("none"),
}

HEALTHY = {"mg_intake": _fixed(300.0), "k_intake": _fixed(75.0), "na_intake": _fixed(150.0),
           "egfr": _uniform(80.0, 115.0), "diuretic": _fixed("none")}


def _balance_check(sid: str) -> Check:
    return Check(f"{sid}.mass_balance", "mass balance: change in body Mg, K, Na minus "
                 "integrated in - out, relative to body content", "1", 0.0, 1e-6,
                 "conservation of mass", lambda r: r.balance_error())


def _scenarios() -> tuple[Scenario, ...]:
    ref_ranges = {"serum_mg": (0.70, 1.00), "serum_k": (3.5, 5.0), "serum_na": (135.0, 145.0),
                  "serum_ca": (2.15, 2.55)}

    def inside(name):
        lo, hi = ref_ranges[name]
        return lambda r: float(np.mean((r.values("baseline", name, 0) >= lo)
                                       & (r.values("baseline", name, 0) <= hi)))

    reference = Scenario(
        "reference", "Healthy reference adults at steady state",
        {"population": {"size": 1, "seed": 1,
                        "covariates": REFERENCE_COVARIATES},
         "simulation": {"days": 2.0}},
        tuple(Check(f"reference.in_range.{k}", f"fraction inside {lo:g}-{hi:g} mmol/L: {k}",
                    "1", 0.95, 1.0, "SPEC §1 reference ranges", inside(k))
              for k, (lo, hi) in ref_ranges.items()) + (
            Check("reference.median.serum_mg", "median serum Mg", "mmol/L", 0.80, 0.90,
                  "SPEC §1 (0.85)", lambda r: r.median("baseline", "serum_mg", 0)),
            Check("reference.median.serum_k", "median serum K", "mmol/L", 4.0, 4.4,
                  "SPEC §1 (4.2)", lambda r: r.median("baseline", "serum_k", 0)),
            Check("reference.median.serum_ca", "median serum Ca", "mmol/L", 2.30, 2.50,
                  "SPEC §1 (2.15-2.55)", lambda r: r.median("baseline", "serum_ca", 0)),
            Check("reference.intracellular_k", "median intracellular K", "mmol/L", 120, 150,
                  "Emmett & Wiederkehr (120-150)",
                  lambda r: r.median("baseline", "intracellular_k", 0)),
            Check("reference.intracellular_na", "median intracellular Na", "mmol/L", 10, 15,
                  "Guyton; Boron (10-15)",
                  lambda r: r.median("baseline", "intracellular_na", 0)),
            Check("reference.intracellular_mg_free", "median free cell Mg", "mmol/L", 0.5, 1.0,
                  "Rude 1998 (0.5-1.0)",
                  lambda r: r.median("baseline", "intracellular_mg_free", 0)),
            Check("reference.urine_mg", "median urinary Mg", "mmol/day", 3.0, 5.0,
                  "NIH ODS; PHYSIOLOGY §2.1 (3-5)", lambda r: r.median("baseline", "urine_mg", 0)),
            Check("reference.fe_na", "median FENa", "%", 0.5, 1.0, "PHYSIOLOGY §2.3 (0.5-1%)",
                  lambda r: r.median("baseline", "fe_na", 0)),
            Check("reference.steady_state_balance", "|urine - net absorbed| / urine, worst of "
                  "Mg, K, Na at steady state", "1", 0.0, 1e-6, "SPEC §1 mass balance",
                  lambda r: max(float(np.max(np.abs(
                      r.values("baseline", f"urine_{e}", 0) - r.values("baseline", a, 0))
                      / r.values("baseline", f"urine_{e}", 0)))
                      for e, a in (("mg", "mg_absorbed_net"), ("k", "k_absorbed"),
                                   ("na", "na_absorbed")))),
        ),
        plot=("serum_mg", "serum_k", "serum_na", "serum_ca"), min_size=200)

    depletion = Scenario(
        "depletion", "Mg-free diet (10 mg/day) for a year in healthy adults",
        {"population": {"size": 1, "seed": 2, "covariates": HEALTHY},
         "simulation": {"days": 360.0},
         "arm": [{"name": "control"},
                 {"name": "mg_free_diet", "intervention": [
                     {"kind": "diet", "mg_intake": 10.0, "start_day": 0, "end_day": 360}]}]},
        (
            Check("depletion.urine_mg_day7", "median urinary Mg on day 7", "mmol/day", 0, 1.0,
                  "renal conservation: < 1 mmol/day (Elisaf 1997; Tucker 2020)",
                  lambda r: r.median("mg_free_diet", "urine_mg", 7)),
            Check("depletion.serum_mg_day6", "median serum Mg on day 6 (falls more slowly)",
                  "mmol/L", 0.70, INF, "bone and cell buffering (Shils 1969)",
                  lambda r: r.median("mg_free_diet", "serum_mg", 6)),
            Check("depletion.serum_mg_day21", "median serum Mg on day 21", "mmol/L", 0.55, 0.75,
                  "0.80 -> 0.61 mmol/L after 3 weeks on < 12 mg/day (Fatemi 1991)",
                  lambda r: r.median("mg_free_diet", "serum_mg", 21)),
            Check("depletion.serum_mg_end", "median serum Mg on day 360", "mmol/L", 0.0, 0.70,
                  "fell to 1/4-1/3 of control over months (Shils 1969)",
                  lambda r: r.median("mg_free_diet", "serum_mg", 360)),
            Check("depletion.k_after_mg", "days from serum Mg < 0.70 to serum K < 3.5 "
                  "(medians)", "day", 1.0, INF, "hypokalaemia follows hypomagnesaemia "
                  "(Shils 1969; Huang & Kuo 2007)",
                  lambda r: r.first_day("mg_free_diet", "serum_k", "<", 3.5)
                  - r.first_day("mg_free_diet", "serum_mg", "<", 0.70)),
            Check("depletion.serum_k_end", "median serum K on day 360", "mmol/L", 0.0, 3.5,
                  "hypokalaemia in every subject (Shils 1969)",
                  lambda r: r.median("mg_free_diet", "serum_k", 360)),
            Check("depletion.cell_k_change", "change of median cell K, day 0 to 360", "mmol/L",
                  -INF, -2.0, "pump slows, K leaks out (source article)",
                  lambda r: r.median("mg_free_diet", "intracellular_k", 360)
                  - r.median("mg_free_diet", "intracellular_k", 0)),
            Check("depletion.cell_na_change", "change of median cell Na, day 0 to 360", "mmol/L",
                  1.0, INF, "cell Na rises when the pump lacks MgATP (source article)",
                  lambda r: r.median("mg_free_diet", "intracellular_na", 360)
                  - r.median("mg_free_diet", "intracellular_na", 0)),
            Check("depletion.serum_ca_change", "change of median serum Ca, day 0 to 360",
                  "mmol/L", -INF, -0.1, "serum Ca fell markedly (Shils 1969)",
                  lambda r: r.median("mg_free_diet", "serum_ca", 360)
                  - r.median("mg_free_diet", "serum_ca", 0)),
            Check("depletion.control_stable", "largest change of median serum Mg in the control "
                  "arm", "mmol/L", 0.0, 1e-6, "steady state (solved, not simulated)",
                  lambda r: float(np.ptp(r.median_course("control", "serum_mg")))),
            _balance_check("depletion"),
        ))

    deficient = {**HEALTHY, "mg_intake": _fixed(15.0)}
    refractory = Scenario(
        "refractory_hypokalemia", "Mg-depleted hypokalaemic adults: K alone vs Mg + K for 8 weeks",
        {"population": {"size": 1, "seed": 3, "covariates": deficient},
         "simulation": {"days": 84.0},
         "arm": [{"name": "control"},
                 {"name": "k_only", "intervention": [
                     {"kind": "oral_potassium", "dose": 40.0, "start_day": 0, "end_day": 56}]},
                 {"name": "mg_plus_k", "intervention": [
                     {"kind": "oral_potassium", "dose": 40.0, "start_day": 0, "end_day": 56},
                     {"kind": "oral_magnesium", "dose": 400.0, "start_day": 0, "end_day": 84}]}]},
        (
            Check("refractory.baseline_k", "median serum K at baseline", "mmol/L", 0.0, 3.5,
                  "Mg-depleted patients are hypokalaemic", lambda r: r.median("control",
                                                                             "serum_k", 0)),
            Check("refractory.ratio", "rise of serum K by day 56, K only / (Mg + K)", "1",
                  -INF, 0.5, "K replacement fails until Mg is repleted (Huang & Kuo 2007; "
                  "source article)",
                  lambda r: (r.median("k_only", "serum_k", 56) - r.median("k_only", "serum_k", 0))
                  / (r.median("mg_plus_k", "serum_k", 56) - r.median("mg_plus_k", "serum_k", 0))),
            Check("refractory.k_normalises", "median serum K on day 84 with Mg repleted",
                  "mmol/L", 3.5, 5.0, "K normalises once Mg is repleted (source article)",
                  lambda r: r.median("mg_plus_k", "serum_k", 84)),
            Check("refractory.mg_repleted", "median serum Mg on day 56, Mg + K arm", "mmol/L",
                  0.70, 1.05, "oral Mg repletes serum Mg within weeks",
                  lambda r: r.median("mg_plus_k", "serum_mg", 56)),
            _balance_check("refractory"),
        ), plot=("serum_mg", "serum_k", "intracellular_mg_free", "urine_k"))

    low_intake = {**HEALTHY, "mg_intake": {"distribution": "lognormal", "median": 180.0,
                                           "gsd": 1.2, "max": 250.0},
                  "egfr": _uniform(60.0, 110.0)}
    supplementation = Scenario(
        "mg_supplementation", "400 mg/day Mg for 12 weeks in adults eating < 250 mg/day",
        {"population": {"size": 1, "seed": 4, "covariates": low_intake},
         "simulation": {"days": 84.0},
         "arm": [{"name": "placebo"},
                 {"name": "mg_400", "intervention": [
                     {"kind": "oral_magnesium", "dose": 400.0, "start_day": 0, "end_day": 84}]}]},
        (
            Check("supplementation.serum_mg", "median paired rise of serum Mg on day 84 vs "
                  "placebo", "mmol/L", 0.02, 0.15, "trials: +0.02-0.10 mmol/L [M: Zhang 2016 "
                  "meta-analysis]",
                  lambda r: float(np.median(r.values("mg_400", "serum_mg", 84)
                                            - r.values("placebo", "serum_mg", 84)))),
            Check("supplementation.cell_mg", "median paired rise of cell Mg on day 84",
                  "mmol/L", 0.0, INF, "supplements refill cell Mg",
                  lambda r: float(np.median(r.values("mg_400", "intracellular_mg", 84)
                                            - r.values("placebo", "intracellular_mg", 84)))),
            Check("supplementation.cell_na", "median paired change of cell Na on day 84",
                  "mmol/L", -INF, 0.0, "Mg supplementation lowers cell Na (SPEC §1; Saito "
                  "1988 red-cell data)",
                  lambda r: float(np.median(r.values("mg_400", "intracellular_na", 84)
                                            - r.values("placebo", "intracellular_na", 84)))),
            Check("supplementation.safety", "highest serum Mg of any patient (eGFR >= 60)",
                  "mmol/L", 0.0, 1.05, "no hypermagnesaemia with normal kidneys",
                  lambda r: float(r.outputs["serum_mg"][r.arm("mg_400")][r.ok()].max())),
            _balance_check("supplementation"),
        ), plot=("serum_mg", "intracellular_mg", "intracellular_na", "urine_mg"))

    def iv(name, egfr, title):
        return Scenario(
            name, title,
            {"population": {"size": 1, "seed": 5, "covariates": {**HEALTHY, "egfr": egfr}},
             "simulation": {"days": 12.0},
             "arm": [{"name": "control"},
                     {"name": "iv_mg", "intervention": [
                         {"kind": "iv_magnesium", "dose": 24.0, "start_day": 1.0,
                          "end_day": 2.0}]}]},
            (), plot=("serum_mg", "urine_mg", "intracellular_mg", "mg_bone_exchangeable"))

    iv_normal = iv("iv_magnesium_normal_kidneys", _uniform(85.0, 115.0),
                   "IV Mg 24 mmol (6 g MgSO4) over 24 h, eGFR 85-115")
    iv_ckd = iv("iv_magnesium_ckd", _uniform(15.0, 28.0),
                "IV Mg 24 mmol (6 g MgSO4) over 24 h, eGFR 15-28")

    def excess(r, day):
        return r.median("iv_mg", "serum_mg", day) - r.median("control", "serum_mg", day)

    def excreted_fraction(r):
        extra = r.integral("iv_mg", "urine_mg", 0, 6) - r.integral("control", "urine_mg", 0, 6)
        return float(np.median(extra / 24.0))

    iv_normal = Scenario(iv_normal.name, iv_normal.title, iv_normal.config, (
        Check("iv_normal.rise", "rise of median serum Mg at the end of the infusion", "mmol/L",
              0.15, INF, "serum Mg rises during infusion", lambda r: excess(r, 2.0)),
        Check("iv_normal.excreted", "extra urinary Mg by day 6 / dose (median)", "1", 0.5, 1.0,
              "most of an IV load is excreted within days with normal GFR (PHYSIOLOGY §2.1)",
              excreted_fraction),
        Check("iv_normal.back", "excess median serum Mg on day 6", "mmol/L", -INF, 0.05,
              "back near baseline within days", lambda r: excess(r, 6.0)),
        _balance_check("iv_normal"),
    ), iv_normal.plot)
    normal = iv_normal.name
    iv_ckd = Scenario(iv_ckd.name, iv_ckd.title, iv_ckd.config, (
        Check("iv_ckd.excess_day6", "excess median serum Mg on day 6: eGFR 15-28 / eGFR 85-115",
              "1", 4.0, INF, "with eGFR < 30 serum Mg stays high far longer (PHYSIOLOGY §4)",
              lambda r: excess(r, 6.0) / excess(r.others[normal], 6.0)),
        Check("iv_ckd.excreted", "extra urinary Mg by day 6 / dose (median): eGFR 15-28 minus "
              "eGFR 85-115", "1", -INF, -0.2, "the failing kidney cannot excrete the load",
              lambda r: excreted_fraction(r) - excreted_fraction(r.others[normal])),
        _balance_check("iv_ckd"),
    ), iv_ckd.plot, requires=(normal,))

    diuretics = Scenario(
        "diuretics", "Loop or thiazide diuretic (usual dose 0.5) started on day 10",
        {"population": {"size": 1, "seed": 6, "covariates": HEALTHY},
         "simulation": {"days": 90.0},
         "arm": [{"name": "control"},
                 {"name": "loop", "intervention": [
                     {"kind": "loop_diuretic", "dose": 0.5, "start_day": 10.0, "end_day": 90}]},
                 {"name": "thiazide", "intervention": [
                     {"kind": "thiazide_diuretic", "dose": 0.5, "start_day": 10.0,
                      "end_day": 90}]}]},
        tuple(
            Check(f"diuretics.loop_day1_{el}", f"urinary {el.title()} on the first day of a loop "
                  "diuretic / the day before (median)", "1", 1.1, INF,
                  "loop diuretics raise Na, K and Mg excretion (Dirks & Wong; PHYSIOLOGY §5)",
                  lambda r, el=el: float(np.median(r.values("loop", f"urine_{el}", 10.75)
                                                   / r.values("loop", f"urine_{el}", 9.75))))
            for el in ("na", "k", "mg")) + (
            Check("diuretics.thiazide_k", "paired change of serum K after 11 weeks of thiazide",
                  "mmol/L", -1.0, -0.15, "thiazides lower serum K ~0.3-0.4 mmol/L [M]",
                  lambda r: float(np.median(r.values("thiazide", "serum_k", 87)
                                            - r.values("control", "serum_k", 87)))),
            Check("diuretics.thiazide_mg", "paired change of serum Mg after 11 weeks of "
                  "thiazide", "mmol/L", -0.2, -0.01, "modest Mg loss at usual doses (Davies & "
                  "Fraser 1993; Nijenhuis 2005)",
                  lambda r: float(np.median(r.values("thiazide", "serum_mg", 87)
                                            - r.values("control", "serum_mg", 87)))),
            Check("diuretics.loop_k", "paired change of serum K after 11 weeks of loop diuretic",
                  "mmol/L", -1.0, -0.15, "hypokalaemia on loop diuretics [M: Brater]",
                  lambda r: float(np.median(r.values("loop", "serum_k", 87)
                                            - r.values("control", "serum_k", 87)))),
            Check("diuretics.loop_mg", "paired change of serum Mg after 11 weeks of loop "
                  "diuretic", "mmol/L", -0.25, -0.02, "loop diuretics waste Mg (Dirks & Wong)",
                  lambda r: float(np.median(r.values("loop", "serum_mg", 87)
                                            - r.values("control", "serum_mg", 87)))),
            _balance_check("diuretics"),
        ), plot=("serum_mg", "serum_k", "urine_na", "urine_mg"))

    def antacid(name, egfr, title, checks):
        return Scenario(
            name, title,
            {"population": {"size": 1, "seed": 7, "covariates": {**HEALTHY, "egfr": egfr}},
             "simulation": {"days": 120.0},
             "arm": [{"name": "control"},
                     {"name": "antacid", "intervention": [
                         {"kind": "oral_magnesium", "dose": 2200.0, "start_day": 0,
                          "end_day": 120}]}]},
            checks, plot=("serum_mg", "urine_mg", "pth", "serum_ca"))

    antacid_ckd = antacid(
        "antacid_ckd", _uniform(12.0, 25.0), "Mg-containing antacid (2.2 g/day Mg) with "
        "eGFR 12-25", (
            Check("antacid_ckd.hypermagnesemia", "median serum Mg on day 120", "mmol/L", 1.05,
                  INF, "hypermagnesaemia with eGFR < 30 and Mg antacids (PHYSIOLOGY §4; SPEC §1)",
                  lambda r: r.median("antacid", "serum_mg", 120)),
            _balance_check("antacid_ckd")))
    antacid_normal = antacid(
        "antacid_normal_kidneys", _uniform(85.0, 115.0), "Mg-containing antacid (2.2 g/day Mg) "
        "with eGFR 85-115", (
            Check("antacid_normal.in_range", "median serum Mg on day 120", "mmol/L", 0.0, 1.05,
                  "normal kidneys excrete the excess (SPEC §1)",
                  lambda r: r.median("antacid", "serum_mg", 120)),
            Check("antacid_normal.rise", "median rise of serum Mg on day 120 vs control",
                  "mmol/L", 0.0, 0.2, "the kidney excretes most of the extra absorbed Mg "
                  "(tubular maximum, Rude 1980)",
                  lambda r: float(np.median(r.values("antacid", "serum_mg", 120)
                                            - r.values("control", "serum_mg", 120)))),
            _balance_check("antacid_normal")))

    return (reference, depletion, refractory, supplementation, iv_normal, iv_ckd, diuretics,
            antacid_ckd, antacid_normal)


def scenarios() -> tuple[Scenario, ...]:
    """The built-in scenarios."""
    return _scenarios()


def run_scenario(scenario: Scenario, size: int, params=None) -> ScenarioResult:
    """Simulate one scenario with ``size`` patients (at least ``scenario.min_size``), with the
    parameter set ``params`` (:class:`popsim.parameters.io.ParameterSet`; default: the shipped
    calibrated set)."""
    n = max(size, scenario.min_size)
    data = json.loads(json.dumps(scenario.config))
    data["population"]["size"] = n
    days = data["simulation"]["days"]
    data["simulation"]["output_interval_days"] = days / (N_TIMES - 1)
    data["simulation"].setdefault("max_steps", MAX_STEPS)
    config = cfg.parse_config(data)
    with jax.enable_x64(True):
        cohort = sample_cohort(config.population, config.population.seed, 0, n,
                               *((params.params, params.cvs) if params is not None else ()))
        protocols = protocols_for(config, jnp.float64, n_segments=N_SEGMENTS)
        times = np.linspace(0.0, days, N_TIMES)
        outputs, status = jax.tree.map(np.asarray, simulate_arms(
            cohort, protocols, jnp.asarray(times), solver_settings(config.simulation),
            jnp.float64, track_balance=True))
    covs = {k: np.asarray(v) for k, v in cohort.covariates.items()}
    assert set(BALANCE_OUTPUTS) <= set(outputs)
    return ScenarioResult(scenario.name, tuple(a.name for a in config.arms), times, outputs,
                          status, covs)


@dataclass
class CheckResult:
    scenario: str
    check: Check
    value: float

    @property
    def passed(self) -> bool:
        return not math.isnan(self.value) and self.check.low <= self.value <= self.check.high


@dataclass
class ValidationReport:
    results: list[CheckResult] = field(default_factory=list)
    scenario_results: dict[str, ScenarioResult] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


def validate(size: int = 32, out: str | Path | None = None, progress: bool = True,
             only: tuple[str, ...] | None = None, params=None) -> ValidationReport:
    """Run the scenarios (``only`` by name, default all), evaluate every check and, with
    ``out``, write one figure per scenario and ``validation.json`` there."""
    report = ValidationReport()
    every = scenarios()
    wanted = set(s.name for s in every) if only is None else set(only)
    for s in every:  # a scenario's requirements run too (they come first in the list)
        if s.name in wanted:
            wanted |= set(s.requires)
    chosen = [s for s in every if s.name in wanted]
    for s in _iter(chosen, progress):
        res = run_scenario(s, size, params)
        res.others = {name: report.scenario_results[name] for name in s.requires}
        report.scenario_results[s.name] = res
        for c in s.checks:
            try:
                v = float(c.measure(res))
            except (ValueError, ZeroDivisionError, FloatingPointError):
                v = math.nan
            report.results.append(CheckResult(s.name, c, v))
    if out is not None:
        _write_validation(report, {s.name: s for s in chosen}, Path(out))
    return report


def _write_validation(report: ValidationReport, chosen: dict, out: Path) -> None:
    """One figure per scenario and ``validation.json`` in ``out``, all-or-nothing."""
    from popsim.files import atomic_directory
    from popsim.report import time_course_figure

    with atomic_directory(out) as tmp:
        for name, res in report.scenario_results.items():
            s = chosen[name]
            time_course_figure(res.times, {k: res.outputs[k][:, res.ok()] for k in s.plot},
                               res.arms, tmp / f"{s.name}.png", title=s.title)
        (tmp / "validation.json").write_text(json.dumps([
            dict(scenario=r.scenario, check=r.check.id, what=r.check.what, value=r.value,
                 unit=r.check.unit, expected=r.check.expected(), source=r.check.source,
                 passed=r.passed) for r in report.results], indent=2))


def _iter(items, progress):
    from popsim.progress import Progress

    with Progress("validating", len(items), "scenarios", enabled=progress) as bar:
        for it in items:
            bar.phase(it.name)
            yield it
            bar.advance()


def print_report(report: ValidationReport, console=None) -> None:
    from rich.table import Table

    from popsim.progress import console as make_console

    console = console or make_console()
    t = Table(title="popsim validate: built-in physiology scenarios")
    for col in ("check", "measured", "expected", "unit", "", "source"):
        t.add_column(col, no_wrap=col == "check", overflow="fold")
    for r in report.results:
        v = r.value
        shown = "nan" if math.isnan(v) else (f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}")
        t.add_row(r.check.id, shown, r.check.expected(),
                  r.check.unit, "[green]PASS[/green]" if r.passed else "[red]FAIL[/red]",
                  r.check.source)
    console.print(t)
    n_fail = sum(not r.passed for r in report.results)
    console.print(f"{len(report.results) - n_fail}/{len(report.results)} checks passed")
