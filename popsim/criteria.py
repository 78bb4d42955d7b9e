"""Enrolment criteria of a virtual trial: ``[population.inclusion]`` and
``[population.exclusion]``. Imports no JAX.

A criterion names a covariate (:data:`popsim.covariates.COVARIATES`) or an output of the model
(:data:`popsim.outputs.OUTPUT_SPECS`) and says which values meet it:

* a continuous covariate or an output: a range ``{ min = ..., max = ... }`` (either bound may be
  left out; both bounds are inclusive), in the variable's unit;
* a categorical covariate: one category (``sex = "female"``) or a list of them
  (``diuretic = ["none", "thiazide"]``).

A candidate is enrolled when it meets every inclusion criterion and no exclusion criterion.
Criteria on outputs are checked at the candidate's baseline steady state, before any
intervention (:mod:`popsim.screening`). :func:`parse_criterion` turns a TOML value into a
:class:`Criterion` or raises :class:`CriterionError` with one line; :meth:`Criterion.meets`
evaluates it on NumPy arrays (of the sampler's category codes or of a cohort file's labels).
"""

from __future__ import annotations

import math

import numpy as np

from popsim._schema import _Strict, _suggest
from popsim.covariates import COVARIATES
from popsim.outputs import OUTPUT_SPECS


class CriterionError(ValueError):
    """A criterion that cannot be evaluated: ``name`` is the criterion's key."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


class Criterion(_Strict):
    """One enrolment criterion (see the module docstring); ``values`` for a category,
    ``min``/``max`` otherwise."""

    name: str
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] | None = None

    @property
    def on_output(self) -> bool:
        """Whether it reads an output of the model (checked at the baseline steady state)."""
        return self.name in OUTPUT_SPECS

    @property
    def unit(self) -> str:
        return OUTPUT_SPECS[self.name][0] if self.on_output else COVARIATES[self.name][0]

    def meets(self, x) -> np.ndarray:
        """Which of the values ``x`` (an array) meet the criterion: bounds inclusive, NaN never
        meets a range; categories as the sampler's integer codes or as label strings."""
        x = np.asarray(x)
        if self.values is not None:
            if x.dtype.kind in "iub":
                labels = COVARIATES[self.name][2]
                return np.isin(x, [labels.index(v) for v in self.values])
            return np.isin(x.astype(str), list(self.values))
        ok = np.isfinite(x.astype(np.float64))
        if self.min is not None:
            ok &= x >= self.min
        if self.max is not None:
            ok &= x <= self.max
        return ok

    def describe(self) -> str:
        """E.g. ``serum_k <= 3.5 mmol/L``, ``30 <= egfr <= 90 mL/min/1.73 m2``,
        ``diuretic in (none, thiazide)``."""
        if self.values is not None:
            return (f"{self.name} = {self.values[0]}" if len(self.values) == 1
                    else f"{self.name} in ({', '.join(self.values)})")
        unit = "" if self.unit == "1" else f" {self.unit}"
        if self.min is not None and self.max is not None:
            return f"{self.min:g} <= {self.name} <= {self.max:g}{unit}"
        if self.min is not None:
            return f"{self.name} >= {self.min:g}{unit}"
        return f"{self.name} <= {self.max:g}{unit}"


def _number(name: str, key: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise CriterionError(name, f"{key} must be a finite number, got {v!r}")
    return float(v)


def _categories(name: str, value) -> tuple[str, ...]:
    labels = COVARIATES[name][2]
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise CriterionError(name, f"{name} is categorical: give a category or a list of them "
                                   f"(allowed: {', '.join(labels)}), got {value!r}")
    for v in values:
        if not isinstance(v, str) or v not in labels:
            raise CriterionError(name, f"{v!r} is not a category of {name}"
                                       f"{_suggest(str(v), labels)}; allowed: {', '.join(labels)}")
    if len(set(values)) != len(values):
        raise CriterionError(name, f"categories are repeated in {values!r}")
    return tuple(values)


def _range(name: str, value) -> tuple[float | None, float | None]:
    unit = OUTPUT_SPECS[name][0] if name in OUTPUT_SPECS else COVARIATES[name][0]
    if not isinstance(value, dict):
        raise CriterionError(name, f"{name} is continuous ({unit}): give a range such as "
                                   f"{{ min = ..., max = ... }}, got {value!r}")
    for key in value:
        if key not in ("min", "max"):
            raise CriterionError(name, f"unknown key {key!r}{_suggest(str(key), ('min', 'max'))}"
                                       "; allowed: min, max")
    if not value:
        raise CriterionError(name, "give min, max or both")
    lo = _number(name, "min", value["min"]) if "min" in value else None
    hi = _number(name, "max", value["max"]) if "max" in value else None
    if lo is not None and hi is not None and lo >= hi:
        raise CriterionError(name, f"min ({lo:g}) must be below max ({hi:g})")
    return lo, hi


def parse_criterion(name: str, value) -> Criterion:
    """The criterion ``name = value`` of a config table, or :class:`CriterionError`."""
    if isinstance(value, Criterion):
        return value
    if name not in COVARIATES and name not in OUTPUT_SPECS:
        known = [*COVARIATES, *OUTPUT_SPECS]
        raise CriterionError(name, f"unknown covariate or output {name!r}{_suggest(name, known)}"
                                   f"; allowed: a covariate ({', '.join(COVARIATES)}) or an "
                                   "output of the model (serum_mg, serum_k, ...: see the README)")
    if name in COVARIATES and COVARIATES[name][1] == "category":
        return Criterion(name=name, values=_categories(name, value))
    lo, hi = _range(name, value)
    return Criterion(name=name, min=lo, max=hi)


def parse_criteria(table) -> dict[str, Criterion]:
    """Every criterion of an ``inclusion``/``exclusion`` table (name -> value)."""
    if not isinstance(table, dict):
        raise CriterionError("", f"must be a table of criteria, got {table!r}")
    return {name: parse_criterion(name, v) for name, v in table.items()}


def failures(inclusion: dict[str, Criterion], exclusion: dict[str, Criterion],
             values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per criterion (keyed ``inclusion: <description>`` or ``exclusion: <description>``), which
    candidates fail it: an inclusion criterion they do not meet, or an exclusion criterion
    they do. ``values``: variable name -> array over candidates."""
    out = {}
    for c in inclusion.values():
        out[f"inclusion: {c.describe()}"] = ~c.meets(values[c.name])
    for c in exclusion.values():
        out[f"exclusion: {c.describe()}"] = c.meets(values[c.name])
    return out
