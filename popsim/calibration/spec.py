"""What an evidence calibration fits, to what, and how: checked at the boundary (command line or
config file) with one-line errors, before any JAX work.

A fitted quantity is a parameter's typical value (its name in :class:`popsim.parameters.Params`)
or a between-patient CV (``cv.<name>``), each between bounds, optimised in an unbounded
transformed coordinate ``u`` (:func:`to_transformed`, :func:`from_transformed`):

* ``"log"``: ``v = exp(ln lo + (ln hi - ln lo) * sigmoid(u))``, a logit of the log value between
  the bounds (rate constants, capacities: positive, spanning orders of magnitude);
* ``"logit"``: ``v = lo + (hi - lo) * sigmoid(u)`` (CVs and other quantities whose lower bound is
  0).

Bounds default to the base value / 4 .. x 4 inside the parameter's physical bounds
(``Params`` metadata); ``name=lo:hi`` sets them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from popsim.config import ConfigError, _suggest, read_toml
from popsim.parameters import parameter_specs
from popsim.parameters.uncertainty import CV_PREFIX

DEFAULT_BOUND_FACTOR = 4.0
CV_LIMIT = 2.0  # parameter files accept CVs in 0..2
DEFAULT_CV_UPPER = 0.5
OPTIMIZERS = ("adam", "lbfgs")
GRADIENTS = ("forward", "reverse")
HESSIANS = ("differences", "exact")
TRANSFORMS = {
    "log": "v = exp(ln(lower) + (ln(upper) - ln(lower)) * sigmoid(u))",
    "logit": "v = lower + (upper - lower) * sigmoid(u)",
}
"""How each transform maps the optimised coordinate ``u`` back to the parameter value ``v``."""


class CalibrationError(ConfigError):
    """Bad calibration input, in one line naming the option, the value and what is allowed."""


class FittedName:
    """What a fitted quantity's ``name`` says: a parameter's typical value (its name) or its
    between-patient CV (``cv.<name>``). Shared by the fit's spec (:class:`FitParam`) and the
    calibration config (:class:`popsim.calibration.config.FitParameter`)."""

    if TYPE_CHECKING:
        name: str

    @property
    def is_cv(self) -> bool:
        return self.name.startswith(CV_PREFIX)

    @property
    def parameter(self) -> str:
        """The parameter's name in :class:`popsim.parameters.Params`."""
        return self.name.removeprefix(CV_PREFIX)


@dataclass(frozen=True)
class FitParam(FittedName):
    """One fitted quantity: a typical value (``name``) or a CV (``cv.<name>``)."""

    name: str
    lower: float
    upper: float
    transform: str  # "log" or "logit" (see TRANSFORMS)
    unit: str
    base: float  # the value in the base parameter set


@dataclass(frozen=True)
class FitSpec:
    """A whole evidence calibration."""

    studies: tuple[str, ...]
    parameters: tuple[FitParam, ...]
    holdout: tuple[str, ...] = ()
    starts: int = 4
    seed: int = 0
    size: int | None = None  # virtual patients per trial (default: each file's)
    population_size: int | None = None  # per population study (default: its min_size)
    steps: int = 150
    optimizer: str = "adam"
    learning_rate: float = 0.1
    gradient: str = "reverse"
    profile: tuple[str, ...] = ()
    profile_points: int = 9
    profile_steps: int = 40
    patience: int = 25
    hessian: str = "differences"  # or "exact" (see popsim.calibration.engine)
    source: dict = field(default_factory=dict)  # the exact command line or config, recorded

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)


def _sigmoid(u: float) -> float:
    return 1.0 / (1.0 + math.exp(-u)) if u >= 0 else math.exp(u) / (1.0 + math.exp(u))


def fraction(p: FitParam, v: float) -> float:
    """Where ``v`` lies between the bounds on the transform's scale, 0..1."""
    if p.transform == "log":
        return (math.log(v) - math.log(p.lower)) / (math.log(p.upper) - math.log(p.lower))
    return (v - p.lower) / (p.upper - p.lower)


def from_fraction(p: FitParam, f: float) -> float:
    if p.transform == "log":
        return math.exp(math.log(p.lower) + (math.log(p.upper) - math.log(p.lower)) * f)
    return p.lower + (p.upper - p.lower) * f


def to_transformed(p: FitParam, v: float, margin: float = 1e-6) -> float:
    """The coordinate ``u`` of value ``v`` (a value on a bound is moved ``margin`` inside)."""
    f = min(max(fraction(p, v), margin), 1.0 - margin)
    return math.log(f) - math.log1p(-f)


def from_transformed(p: FitParam, u: float) -> float:
    """The value of coordinate ``u`` (plain floats; the JAX version is in
    :mod:`popsim.calibration.problem`)."""
    return from_fraction(p, _sigmoid(u))


def parse_fit(text: str, base_values: dict[str, float], base_cvs: dict[str, float],
              flag: str = "--fit") -> tuple[FitParam, ...]:
    """``name,name=lo:hi,cv.name`` -> fitted quantities; ``base_*``: the base parameter set."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise CalibrationError(f"{flag}: name at least one parameter")
    out, seen = [], set()
    for item in items:
        p = parse_param(item, base_values, base_cvs, flag)
        if p.name in seen:
            raise CalibrationError(f"{flag}: {p.name!r} is listed twice")
        seen.add(p.name)
        out.append(p)
    return tuple(out)


def parse_param(item: str, base_values: dict[str, float], base_cvs: dict[str, float],
                flag: str = "--fit") -> FitParam:
    """One ``name`` or ``name=lower:upper``, checked against the parameter table."""
    name, _, bounds = item.partition("=")
    name = name.strip()
    specs = {s.name: s for s in parameter_specs()}
    base = name.removeprefix(CV_PREFIX)
    if base not in specs:
        raise CalibrationError(f"{flag}: unknown parameter {base!r}{_suggest(base, specs)}")
    spec = specs[base]
    is_cv = name.startswith(CV_PREFIX)
    value = base_cvs.get(base, spec.iiv) if is_cv else base_values[base]
    phys = (0.0, CV_LIMIT) if is_cv else (spec.lower, spec.upper)
    unit = "1" if is_cv else spec.unit
    if bounds:
        lo, hi = _parse_bounds(flag, name, bounds)
    elif is_cv:
        lo, hi = 0.0, max(DEFAULT_CV_UPPER, DEFAULT_BOUND_FACTOR * value)
    elif value > 0:
        lo = max(phys[0], value / DEFAULT_BOUND_FACTOR)
        hi = min(phys[1], value * DEFAULT_BOUND_FACTOR)
    else:
        raise CalibrationError(f"{flag} {name}: its value is {value:g}, so no default bounds; "
                               f"give them as {name}=LOWER:UPPER")
    where = f"{flag} {name}={lo:g}:{hi:g}"
    if not lo < hi:
        raise CalibrationError(f"{where}: the lower bound must be below the upper bound")
    if lo < phys[0] or hi > phys[1]:
        raise CalibrationError(f"{where}: outside the physical bounds {phys[0]:g}..{phys[1]:g} "
                               f"{unit} of {name}")
    transform = "log" if lo > 0 else "logit"
    return FitParam(name, lo, hi, transform, unit, float(value))


def _parse_bounds(flag: str, name: str, text: str) -> tuple[float, float]:
    lo_text, sep, hi_text = text.partition(":")
    try:
        if not sep:
            raise ValueError
        lo, hi = float(lo_text), float(hi_text)
    except ValueError:
        raise CalibrationError(f"{flag} {name}={text}: bounds must be LOWER:UPPER numbers") \
            from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise CalibrationError(f"{flag} {name}={text}: bounds must be finite numbers")
    return lo, hi


def split_ids(text: str | list[str] | None) -> tuple[str, ...]:
    """Study ids from repeated options and/or comma-separated lists."""
    if text is None:
        return ()
    parts = [text] if isinstance(text, str) else list(text)
    return tuple(i.strip() for p in parts for i in p.split(",") if i.strip())


CONFIG_KEYS = {"studies", "holdout", "fit", "starts", "seed", "size", "population_size",
               "steps", "optimizer",
               "hessian", "learning_rate", "gradient", "profile", "profile_points", "profile_steps",
               "patience", "params"}


def read_config(path: str | Path) -> dict:
    """A calibration config file (``[fit]`` table: the command line's options as keys; ``fit``
    and ``profile`` lists of names, bounds written ``name=lo:hi``)."""
    path = Path(path)
    data, _ = read_toml(path, "calibration config", CalibrationError)
    table = data.get("fit")
    if not isinstance(table, dict):
        raise CalibrationError(f"{path}: no [fit] table (an evidence calibration config)")
    unknown = sorted(set(table) - CONFIG_KEYS)
    if unknown:
        raise CalibrationError(f"{path}: fit.{unknown[0]}: unknown key"
                               f"{_suggest(unknown[0], CONFIG_KEYS)}; allowed: "
                               f"{', '.join(sorted(CONFIG_KEYS))}")
    return table


def _number(options: dict, key: str, default, kind: type = int, low: float = 1,
            flag: str | None = None) -> Any:
    v = options.get(key)
    v = default if v is None else v
    flag = flag or "--" + key.replace("_", "-")
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or (kind is int and v != int(v)):
        raise CalibrationError(f"{flag} {v!r}: must be a {'whole ' if kind is int else ''}"
                               "number")
    if not v >= low or not math.isfinite(v):
        raise CalibrationError(f"{flag} {v:g}: must be >= {low:g}")
    return kind(v)


def _choice(options: dict, key: str, default: str, allowed) -> str:
    v = options.get(key) or default
    if v not in allowed:
        raise CalibrationError(f"--{key} {v!r}: allowed: {', '.join(allowed)}")
    return v


def build_spec(options: dict, base_values: dict[str, float], base_cvs: dict[str, float],
               source: dict | None = None) -> FitSpec:
    """A checked :class:`FitSpec` from options (command-line flags or a config's ``[fit]``
    table, same keys): unknown and reserved studies, unknown parameters, bad bounds and bad
    numbers each give one :class:`CalibrationError` line."""
    from popsim import evidence

    studies = split_ids(options.get("studies"))
    holdout = split_ids(options.get("holdout"))
    if not studies:
        raise CalibrationError("--evidence: name at least one study to fit "
                               "(`popsim evidence list` shows them)")
    for flag, ids in (("--evidence", studies), ("--holdout", holdout)):
        try:
            evidence.resolve(list(ids))
        except evidence.StudyError as e:
            raise CalibrationError(f"{flag}: {e}") from None
    both = sorted(set(studies) & set(holdout))
    if both:
        raise CalibrationError(f"--holdout {both[0]}: also in --evidence; a study is either "
                               "fitted or held out")
    fit = options.get("fit")
    if not fit:
        raise CalibrationError("--fit: name the parameters to fit, e.g. --fit "
                               "mg_gut_absorbed_ref,k_aldo_exponent=0.1:1")
    params = parse_fit(fit if isinstance(fit, str) else ",".join(fit), base_values, base_cvs)
    profile = split_ids(options.get("profile"))
    names = [p.name for p in params]
    for name in profile:
        if name not in names:
            raise CalibrationError(f"--profile {name}: not a fitted parameter; fitted: "
                                   f"{', '.join(names)}")
    return FitSpec(
        studies, params, holdout, starts=_number(options, "starts", 4),
        seed=_number(options, "seed", 0, low=0), size=_number(options, "size", None, low=2),
        population_size=_number(options, "population_size", None, low=2),
        steps=_number(options, "steps", 150),
        optimizer=_choice(options, "optimizer", "adam", OPTIMIZERS),
        learning_rate=_number(options, "learning_rate", 0.1, float, 1e-9),
        gradient=_choice(options, "gradient", "reverse", GRADIENTS),
        hessian=_choice(options, "hessian", "differences", HESSIANS), profile=profile,
        profile_points=_number(options, "profile_points", 9, low=3),
        profile_steps=_number(options, "profile_steps", 40),
        patience=_number(options, "patience", 25), source=source or {})
