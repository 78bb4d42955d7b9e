"""Observations computed from a simulated virtual trial (NumPy; no JAX), and compared with what
the study reported.

:class:`TrialResult` holds a trial's outputs; :func:`evaluate` computes an
:class:`popsim.evidence.Observation` from it, following the steps the observation's docstring
lists; :func:`compare` says whether the model falls inside the reported 95% interval (or the
expected window).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from popsim.evidence import Observation, Study

BALANCE = (("mg", "body_mg", "net_gain_mg"), ("k", "body_k", "net_gain_k"),
           ("na", "body_na", "net_gain_na"), ("p", "body_p", "net_gain_p"))
ABSORBED = {"mg": "mg_absorbed_net", "k": "k_absorbed", "na": "na_absorbed"}
"""(Phosphate is not in the steady-state balance: bone, an open reservoir, may keep giving or
taking it in a steady state.)"""


@dataclass
class TrialResult:
    """A simulated virtual trial: every output ``(arm, patient, time)`` at the saved ``times``
    (days), the patients' covariates and status codes (0 = solved)."""

    study: Study
    arms: tuple[str, ...]
    times: np.ndarray
    outputs: dict[str, np.ndarray]
    status: np.ndarray  # (arm, patient)
    covariates: dict[str, np.ndarray]  # categories as labels (str arrays)

    @property
    def ok(self) -> np.ndarray:
        """Patients solved in every arm."""
        return np.all(self.status == 0, axis=0)

    def arm_index(self, arm: str | None) -> int:
        return 0 if arm is None else self.arms.index(arm)

    def time_index(self, day: float) -> int:
        i = int(np.argmin(np.abs(self.times - day)))
        if abs(self.times[i] - day) > 1e-9 * max(1.0, abs(day)):
            raise ValueError(f"day {day:g} was not saved")
        return i

    def at(self, output: str, arm: str | None, day: float) -> np.ndarray:
        """``output`` of every patient on ``day``, ``(patient,)``."""
        return self.outputs[output][self.arm_index(arm), :, self.time_index(day)]

    def integral(self, output: str, arm: str | None, d0: float, d1: float) -> np.ndarray:
        """Per-patient trapezoid integral of ``output`` from ``d0`` to ``d1`` (saved days)."""
        i0, i1 = self.time_index(d0), self.time_index(d1)
        y = self.outputs[output][self.arm_index(arm), :, i0:i1 + 1]
        return np.trapezoid(y, self.times[i0:i1 + 1], axis=-1)


@dataclass
class Evaluated:
    """An observation with the model's value."""

    study: str
    observation: Observation
    model: float
    n_patients: int
    extra: dict = field(default_factory=dict)

    @property
    def interval(self) -> tuple[float, float] | None:
        return self.observation.interval()

    @property
    def checked(self) -> bool:
        """The observation states a value or window (a component of a ``combine`` does not)."""
        return self.interval is not None

    @property
    def match(self) -> bool:
        """The model's value lies inside the reported 95% interval (or expected window)."""
        iv = self.interval
        return iv is not None and math.isfinite(self.model) and iv[0] <= self.model <= iv[1]

    @property
    def miss(self) -> float:
        """How far outside the interval the model is (0 when inside), in the value's unit."""
        iv = self.interval
        if iv is None or not math.isfinite(self.model):
            return math.inf
        return max(iv[0] - self.model, self.model - iv[1], 0.0)


def _quantity(o: Observation, r: TrialResult, arm: str | None) -> np.ndarray:
    """Steps 1-2 of :class:`Observation`: the per-patient quantity in one arm."""
    if o.integrate is not None:
        x = r.integral(o.output, arm, *o.integrate)  # type: ignore[arg-type]
    else:
        x = r.at(o.output, arm, o.day)  # type: ignore[arg-type]
    if o.change_from_day is not None:
        base = r.at(o.output, arm, o.change_from_day)  # type: ignore[arg-type]
        x = {"difference": x - base, "ratio": x / base,
             "percent": 100.0 * (x / base - 1.0)}[o.change]
    return x


def _subgroup(o: Observation, r: TrialResult) -> np.ndarray:
    mask = np.ones(r.status.shape[1], bool)
    for name, crit in o.subgroup.items():
        if name in r.covariates:
            x = r.covariates[name]
        else:
            x = r.at(name, o.arm, o.day if o.day is not None else 0.0)
        if isinstance(crit, str):
            mask &= x == crit
        else:
            x = np.asarray(x, float)
            if crit.min is not None:
                mask &= x >= crit.min
            if crit.max is not None:
                mask &= x <= crit.max
    return mask


def _reduce(o: Observation, x: np.ndarray) -> float:
    if x.size == 0:
        return math.nan
    s = o.statistic
    if s == "mean":
        return float(np.mean(x))
    if s == "median":
        return float(np.median(x))
    if s == "sd":
        return float(np.std(x, ddof=1)) if x.size > 1 else math.nan
    if s == "quantile":
        assert o.q is not None  # Observation: a quantile needs q
        return float(np.quantile(x, o.q))
    if s == "min":
        return float(np.min(x))
    if s == "max":
        return float(np.max(x))
    if s == "fraction_below":
        return float(np.mean(x < o.threshold))
    if s == "fraction_above":
        return float(np.mean(x > o.threshold))
    if s == "fraction_between":
        lo, hi = o.thresholds  # type: ignore[misc]
        return float(np.mean((x >= lo) & (x <= hi)))
    raise ValueError(f"statistic {s!r} is not a statistic over patients")


def _over_time(o: Observation, r: TrialResult, ok: np.ndarray) -> float:
    assert o.output is not None  # Observation: required without combine
    course = np.median(r.outputs[o.output][r.arm_index(o.arm)][ok], axis=0)
    if o.statistic == "range_over_time":
        return float(np.ptp(course))
    hit = course < o.threshold if o.statistic == "first_day_below" else course > o.threshold
    return float(r.times[np.argmax(hit)]) if hit.any() else math.inf


def mass_balance_error(r: TrialResult, ok: np.ndarray) -> float:
    """Largest relative error of Mg, K and Na balance: the change of body content minus the
    integrated net external gain, relative to the body content, over arms, patients and
    times."""
    worst = 0.0
    for _, body, gain in BALANCE:
        b = r.outputs[body][:, ok]
        err = np.abs((b - b[..., :1]) - r.outputs[gain][:, ok]) / b
        worst = max(worst, float(np.max(err)))
    return worst


def steady_state_balance_error(r: TrialResult, ok: np.ndarray, day: float) -> float:
    """Largest |urine - net absorption| / urine of Mg, K and Na over patients on ``day``."""
    worst = 0.0
    for el, absorbed in ABSORBED.items():
        u = r.at(f"urine_{el}", None, day)[ok]
        a = r.at(absorbed, None, day)[ok]
        worst = max(worst, float(np.max(np.abs(u - a) / u)))
    return worst


def evaluate(o: Observation, r: TrialResult, known: dict[str, float] | None = None) -> Evaluated:
    """The model's value of observation ``o`` in trial ``r`` (``known``: values of the
    observations ``combine`` may refer to, by ``id`` or ``study:id``)."""
    sid = r.study.study.id
    ok = r.ok
    if o.combine is not None:
        known = known or {}
        a, b = (known[ref if ":" in ref else f"{sid}:{ref}"] for ref in o.combine.of)
        value = a / b if o.combine.op == "ratio" else a - b
        return Evaluated(sid, o, float(value), int(ok.sum()))
    if o.statistic == "mass_balance":
        return Evaluated(sid, o, mass_balance_error(r, ok), int(ok.sum()))
    if o.statistic == "steady_state_balance":
        return Evaluated(sid, o, steady_state_balance_error(r, ok, o.day or 0.0),
                         int(ok.sum()))
    if o.statistic in ("first_day_below", "first_day_above", "range_over_time"):
        return Evaluated(sid, o, _over_time(o, r, ok), int(ok.sum()))
    x = _quantity(o, r, o.arm)
    if o.versus_arm is not None:
        x = x - _quantity(o, r, o.versus_arm)
    if o.divide_by is not None:
        x = x / o.divide_by
    mask = ok & _subgroup(o, r)
    return Evaluated(sid, o, _reduce(o, x[mask]), int(mask.sum()))


def evaluate_all(results: list[TrialResult]) -> list[Evaluated]:
    """Every observation of every trial, in file order (a ``combine`` may read observations of
    earlier trials and earlier in its own file)."""
    known: dict[str, float] = {}
    out = []
    for r in results:
        sid = r.study.study.id
        for o in r.study.observation:
            e = evaluate(o, r, known)
            if o.id:
                known[f"{sid}:{o.id}"] = e.model
            out.append(e)
    return out
