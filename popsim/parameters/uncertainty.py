"""Fit records (``fit.json``): the uncertainty of fitted parameters, and draws from it.

A fit record is what ``popsim calibrate --evidence`` writes into its output directory:
``fit.json`` and, beside it, ``parameters.toml`` (the fitted parameter file that ``popsim run
--params`` reads, :mod:`popsim.parameters.io`). ``--uncertainty`` takes the directory or the
``fit.json``. The reader is tolerant: it reads the fields below and ignores the others, so a
record may carry anything else (studies, profiles, observations, timings).

Required fields of ``fit.json``:

* ``names``: the fitted quantities, a model parameter (its typical value) or ``cv.<parameter>``
  (its between-patient coefficient of variation, unit ``1``).
* ``parameters``: per name, either an object ``{"value", "lower", "upper", "transform",
  "unit"}`` (the calibration's form; ``unit``, if given, must be the model's) or the value
  alone (then ``bounds`` and ``transform`` give the rest).
* ``transform`` (per name; else ``parameters.<name>.transform``): how the optimised coordinate
  ``u`` maps to the value ``v`` between its bounds (:data:`TRANSFORMS`): ``log`` is
  ``v = exp(ln lower + (ln upper - ln lower) sigmoid(u))``, ``logit`` is
  ``v = lower + (upper - lower) sigmoid(u)``.
* ``mean_transformed`` (``k``) and ``covariance_transformed`` (``k x k``): the estimate of ``u``
  and its covariance (the Laplace approximation: the inverse Hessian of the negative
  log-likelihood), in the order of ``names``.

Optional: ``bounds`` (per name ``[lower, upper]``, when ``parameters`` gives values only);
``transform_definitions`` (if given, each transform used must be defined as above);
``versions.model`` (or ``model_version``: must be this popsim's model version);
``popsim_fit_record`` (format version, 1). Without ``parameters.toml`` the point estimate is what
``--params`` of a parameter file holding the record's values gives (the parameter table with
them).

:func:`load_fit` validates the record (one-line :class:`FitRecordError` naming the flag, the
field, the value and what is allowed); :meth:`UncertainFit.draw` samples parameter sets:
replicate 0 is the point estimate (the values of ``parameters.toml``, so that it is the cohort
of ``--params parameters.toml``), replicates ``1..R-1`` are multivariate normal in ``u``
(NumPy's PCG64 seeded from the run's seed) mapped back through the transforms, so inside the
bounds. Imports no JAX.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

import numpy as np

from popsim._version import MODEL_VERSION
from popsim.config import _suggest
from popsim.parameters import parameter_specs
from popsim.parameters.io import ParameterSet, ParamsFileError, load_params_file, table_parameters

FIT_FILE = "fit.json"
PARAMS_FILE = "parameters.toml"
CV_PREFIX = "cv."
FORMAT_VERSION = 1
TRANSFORMS = {
    "log": "v = exp(ln(lower) + (ln(upper) - ln(lower)) * sigmoid(u))",
    "logit": "v = lower + (upper - lower) * sigmoid(u)",
}
"""How each transform maps the coordinate ``u`` back to the value ``v`` (the calibration's
definitions, as a fit record's ``transform_definitions`` states them)."""
MIN_REPLICATES, MAX_REPLICATES = 2, 1000
"""Parameter replicates a run accepts: at least the point estimate and one draw; at most a
thousand, as each replicate is a whole copy of the cohort (in compute and in the file) and
2.5-97.5% bands are well estimated with a few hundred."""
DRAW_STREAM = 0x0F17
"""Spawn key of the replicates' random stream below the run's seed (NumPy ``SeedSequence``),
independent of the patients' streams (JAX keys)."""
CV_LIMITS = (0.0, 2.0)  # what a parameter file allows for a CV
_SYMMETRY_TOL = 1e-9
_SAME_VALUE = 1e-9  # relative: parameters.toml against the record's values
_SAME_POINT = 1e-5  # in sigmoid(u): the record's values against mean_transformed


class FitRecordError(ValueError):
    """A bad fit record, in one line."""


def _sigmoid(u):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(u, np.float64)))


@dataclasses.dataclass(frozen=True)
class UncertainFit:
    """A validated fit record.

    Attributes:
        path: the ``fit.json`` file; ``text``, ``params_text``: ``fit.json`` and
            ``parameters.toml`` as read (``""`` without one; copied into cohort files).
        names: fitted names (parameters, or ``cv.<parameter>``), in the record's order.
        transforms, bounds: per name (bounds in the parameter's unit).
        mean, covariance: of the estimate in the transformed space, ``(k,)`` and ``(k, k)``.
        base: the point estimate as a parameter set (``parameters.toml``, CVs, metadata).
        units: per name (``"1"`` for a CV).
    """

    path: Path
    text: str
    params_text: str
    names: tuple[str, ...]
    transforms: dict[str, str]
    bounds: dict[str, tuple[float, float]]
    mean: np.ndarray
    covariance: np.ndarray
    base: ParameterSet
    units: dict[str, str]

    @property
    def point(self) -> np.ndarray:
        """The point estimate, ``(k,)``: the values of ``parameters.toml``."""
        return np.array([_base_value(self.base, n) for n in self.names], np.float64)

    def fingerprint(self) -> str:
        """SHA-256 of both files (recorded in cohort files; a resumed run must use the same)."""
        return hashlib.sha256((self.text + "\0" + self.params_text).encode()).hexdigest()

    def draw(self, replicates: int, seed: int) -> np.ndarray:
        """``(replicates, k)`` parameter sets in the parameters' units: row 0 the point
        estimate, the others drawn (see the module docstring); the same for the same seed."""
        if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 1:
            raise FitRecordError(f"replicates must be a positive whole number, got "
                                 f"{replicates!r}")
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(
            int(seed), spawn_key=(DRAW_STREAM,))))
        # Cholesky when the covariance is positive definite; eigh also takes a semi-definite one
        try:
            np.linalg.cholesky(self.covariance)
            method = "cholesky"
        except np.linalg.LinAlgError:
            method = "eigh"
        u = rng.multivariate_normal(self.mean, self.covariance, size=replicates - 1,
                                    method=method)
        return np.concatenate([self.point[None, :], self.physical(u)]).reshape(
            replicates, len(self.names))

    def physical(self, u) -> np.ndarray:
        """Values ``(..., k)`` in the parameters' units of coordinates ``u`` ``(..., k)``."""
        u = np.asarray(u, np.float64)
        out = np.empty_like(u)
        for j, name in enumerate(self.names):
            lo, hi = self.bounds[name]
            f = _sigmoid(u[..., j])
            v = np.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * f) \
                if self.transforms[name] == "log" else lo + (hi - lo) * f
            out[..., j] = np.clip(v, lo, hi)  # rounding at the bounds only
        return out

    def transformed(self, values) -> np.ndarray:
        """Coordinates ``u`` ``(..., k)`` of values ``(..., k)`` (the inverse of
        :meth:`physical`)."""
        values = np.asarray(values, np.float64)
        out = np.empty_like(values)
        for j, name in enumerate(self.names):
            f = _fraction(self.transforms[name], self.bounds[name], values[..., j])
            out[..., j] = np.log(f) - np.log1p(-f)
        return out

    def parameter_set(self, values, source: str | None = None) -> ParameterSet:
        """The point estimate with the fitted names set to ``values`` (one row of
        :meth:`draw`): what ``popsim run --params`` would read from a file holding them."""
        return _with_values(self.base, dict(zip(self.names, values, strict=True)),
                            source or str(self.path))


def _with_values(base: ParameterSet, values: dict, source: str) -> ParameterSet:
    """``base`` with the typical values and CVs (``cv.<name>``) of ``values``."""
    typical, cvs = {}, dict(base.cvs)
    for name, v in values.items():
        if name.startswith(CV_PREFIX):
            cvs[name[len(CV_PREFIX):]] = float(v)
        else:
            typical[name] = float(v)
    return ParameterSet(dataclasses.replace(base.params, **typical), cvs, source, base.meta)


def _fraction(kind: str, bounds: tuple[float, float], v):
    """Where ``v`` lies between ``bounds`` on the scale of transform ``kind``, 0..1."""
    lo, hi = bounds
    if kind == "log":
        return (np.log(v) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return (np.asarray(v, np.float64) - lo) / (hi - lo)


def check_replicates(replicates) -> int:
    """``replicates`` if it is :data:`MIN_REPLICATES`..:data:`MAX_REPLICATES`, else
    :class:`FitRecordError`."""
    if isinstance(replicates, bool) or not isinstance(replicates, int) \
            or not MIN_REPLICATES <= replicates <= MAX_REPLICATES:
        raise FitRecordError(f"--replicates {replicates}: must be a whole number "
                             f"{MIN_REPLICATES}..{MAX_REPLICATES} (replicate 0 is the point "
                             "estimate, the others are draws)")
    return replicates


def options_problem(*, uncertainty: bool, replicates, params: bool,
                    processes: int = 1, screened: bool = False) -> str | None:
    """The first problem with a run's ``--uncertainty``/``--replicates`` (and the options they
    exclude), in one line, or ``None``."""
    if not uncertainty:
        if replicates is not None:
            return ("--replicates needs --uncertainty FIT (the fit record whose parameter "
                    "uncertainty the replicates sample)")
        return None
    if params:
        return ("--params and --uncertainty exclude each other (the fit record's "
                "parameters.toml is the run's parameter file)")
    if replicates is None:
        return (f"--uncertainty needs --replicates R (the number of parameter sets, "
                f"{MIN_REPLICATES}..{MAX_REPLICATES})")
    try:
        check_replicates(replicates)
    except FitRecordError as e:
        return str(e)
    if processes > 1:
        return ("--uncertainty runs in one process (with --devices); several processes are "
                "not supported for parameter replicates")
    if screened:
        return ("--uncertainty: a population with enrolment criteria ([population.inclusion] "
                "or [population.exclusion]) cannot be run with parameter replicates (each "
                "replicate would enrol other patients); remove the criteria")
    return None


def _base_value(base: ParameterSet, name: str) -> float:
    if name.startswith(CV_PREFIX):
        p = name[len(CV_PREFIX):]
        if p in base.cvs:
            return float(base.cvs[p])
        return float(next(s.iiv for s in parameter_specs() if s.name == p))
    return float(getattr(base.params, name))


def _read_json(path: Path, flag: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FitRecordError(f"{flag}: no such fit record (expected the {FIT_FILE} written by "
                             "popsim calibrate --evidence, or its directory)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FitRecordError(f"{flag}: cannot read ({e})") from None
    except json.JSONDecodeError as e:
        raise FitRecordError(f"{flag}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise FitRecordError(f"{flag}: expected a JSON object, got {type(data).__name__}")
    for key in ("names", "parameters", "mean_transformed", "covariance_transformed"):
        if key not in data:
            raise FitRecordError(f"{flag}: missing field {key!r} (a fit record of popsim "
                                 "calibrate --evidence has it)")
    return data


def _check_versions(flag: str, data: dict) -> None:
    """The record's format and model version must be this popsim's."""
    fmt = data.get("popsim_fit_record", FORMAT_VERSION)
    if fmt != FORMAT_VERSION:
        raise FitRecordError(f"{flag}: popsim_fit_record = {fmt!r}; this popsim reads format "
                             f"{FORMAT_VERSION}")
    versions = data.get("versions")
    model = versions.get("model") if isinstance(versions, dict) else None
    model = data.get("model_version", model)
    if model is not None and str(model) != MODEL_VERSION:
        raise FitRecordError(f"{flag}: a fit of model version {model!r}; this popsim runs "
                             f"model version {MODEL_VERSION!r} (refit with it, or run the popsim "
                             "that made the fit)")
    defs = data.get("transform_definitions")
    if isinstance(defs, dict):
        for kind, text in defs.items():
            if kind in TRANSFORMS and " ".join(str(text).split()) != TRANSFORMS[kind]:
                raise FitRecordError(f"{flag}: transform_definitions.{kind} = {text!r}; this "
                                     f"popsim reads {kind} as {TRANSFORMS[kind]!r}")


def _names(flag: str, data: dict) -> tuple[tuple[str, ...], dict[str, tuple]]:
    """The names, checked against the model; returns them and each one's (lower, upper, unit)
    physical limits."""
    names = data["names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise FitRecordError(f"{flag}: names must be a non-empty list of parameter names, got "
                             f"{names!r}")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise FitRecordError(f"{flag}: names: {dup!r} appears twice")
    specs = {s.name: s for s in parameter_specs()}
    limits = {}
    for i, name in enumerate(names):
        p = name[len(CV_PREFIX):] if name.startswith(CV_PREFIX) else name
        if p not in specs:
            raise FitRecordError(f"{flag}: names[{i}] = {name!r} is not a parameter of the "
                                 f"model{_suggest(p, specs)}")
        limits[name] = (*CV_LIMITS, "1") if name != p else \
            (specs[p].lower, specs[p].upper, specs[p].unit)
    return tuple(names), limits


def _number(flag: str, where: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v):
        raise FitRecordError(f"{flag}: {where} must be a number, got {v!r}")
    return float(v)


def _entry(flag: str, data: dict, name: str, unit: str) -> tuple[float, object, object]:
    """``(value, transform, [lower, upper])`` of ``name`` from ``parameters.<name>`` (an
    object or a value) and the top-level ``transform`` and ``bounds``."""
    p = data["parameters"].get(name) if isinstance(data["parameters"], dict) else None
    if p is None:
        raise FitRecordError(f"{flag}: parameters.{name}: missing (the point estimate of every "
                             "name)")
    top_t, top_b = data.get("transform") or {}, data.get("bounds") or {}
    if not isinstance(top_t, dict) or not isinstance(top_b, dict):
        raise FitRecordError(f"{flag}: transform and bounds must be objects keyed by name")
    if isinstance(p, dict):
        where = f"parameters.{name}.value"
        if "unit" in p and p["unit"] != unit:
            raise FitRecordError(f"{flag}: parameters.{name}.unit = {p['unit']!r}; the model's "
                                 f"unit is {unit!r}")
        value, kind = p.get("value"), top_t.get(name, p.get("transform"))
        bounds = [p["lower"], p["upper"]] if "lower" in p and "upper" in p else \
            top_b.get(name)
    else:
        where, value, kind, bounds = f"parameters.{name}", p, top_t.get(name), top_b.get(name)
    return _number(flag, where, value), kind, bounds


def _transform_and_bounds(flag: str, name: str, kind, b, limits) -> tuple[str, tuple[float, float]]:
    if kind not in TRANSFORMS:
        raise FitRecordError(f"{flag}: transform.{name} = {kind!r}; allowed: "
                             f"{', '.join(TRANSFORMS)}")
    if not isinstance(b, list) or len(b) != 2:
        raise FitRecordError(f"{flag}: bounds of {name} must be [lower, upper] "
                             f"(parameters.{name}.lower/upper or bounds.{name}), got {b!r}")
    lo, hi = (_number(flag, f"bounds of {name}", x) for x in b)
    low, high, unit = limits
    if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi or lo < low or hi > high:
        shown = "" if unit == "1" else f" {unit}"
        raise FitRecordError(f"{flag}: bounds of {name} = [{lo:g}, {hi:g}] must be finite, "
                             f"increasing and inside the parameter's limits {low:g}..{high:g}"
                             f"{shown}")
    if kind == "log" and lo <= 0:
        raise FitRecordError(f"{flag}: bounds of {name}: a log transform needs lower > 0, got "
                             f"{lo:g}")
    return kind, (lo, hi)


def _moments(flag: str, data: dict, k: int) -> tuple[np.ndarray, np.ndarray]:
    mean, cov = data["mean_transformed"], data["covariance_transformed"]
    if not isinstance(mean, list) or len(mean) != k:
        raise FitRecordError(f"{flag}: mean_transformed must be a list of {k} numbers (one per "
                             "name)")
    m = np.array([_number(flag, f"mean_transformed[{i}]", x) for i, x in enumerate(mean)])
    if not isinstance(cov, list) or len(cov) != k or \
            not all(isinstance(row, list) and len(row) == k for row in cov):
        raise FitRecordError(f"{flag}: covariance_transformed must be a {k}x{k} matrix (a list "
                             f"of {k} rows of {k} numbers, one per name)")
    c = np.array([[_number(flag, f"covariance_transformed[{i}][{j}]", x)
                   for j, x in enumerate(row)] for i, row in enumerate(cov)])
    if not (np.all(np.isfinite(m)) and np.all(np.isfinite(c))):
        raise FitRecordError(f"{flag}: mean_transformed and covariance_transformed must be "
                             "finite")
    scale = max(float(np.max(np.abs(c))), 1e-300)
    if np.max(np.abs(c - c.T)) > _SYMMETRY_TOL * scale:
        raise FitRecordError(f"{flag}: covariance_transformed is not symmetric")
    c = (c + c.T) / 2
    low = float(np.min(np.linalg.eigvalsh(c)))
    if low < -_SYMMETRY_TOL * scale:
        raise FitRecordError(f"{flag}: covariance_transformed is not positive semi-definite "
                             f"(smallest eigenvalue {low:.3g})")
    return m, c


def fit_files(path: str | Path) -> tuple[Path, Path]:
    """``(fit.json, parameters.toml)`` of a fit record given as a directory or its
    ``fit.json``."""
    path = Path(path)
    fit = path / FIT_FILE if path.is_dir() else path
    return fit, fit.with_name(PARAMS_FILE)


def _base(flag: str, params_path: Path, point: dict[str, float]) -> tuple[ParameterSet, str]:
    """The point estimate as a parameter set, and the parameter file's text: ``parameters.toml``
    (its values of the fitted names must be the record's), or the table with them."""
    if not params_path.exists():
        return _with_values(table_parameters(), point, str(params_path.parent)), ""
    try:
        base = load_params_file(params_path)
        text = params_path.read_text(encoding="utf-8")
    except (ParamsFileError, OSError) as e:
        raise FitRecordError(f"{flag}: its parameter file: {e}") from None
    for name, v in point.items():
        mine = _base_value(base, name)
        if not math.isclose(v, mine, rel_tol=_SAME_VALUE, abs_tol=1e-300):
            raise FitRecordError(f"{flag}: parameters.{name} = {v:g} differs from "
                                 f"{params_path.name}'s {mine:g}")
    return base, text


def load_fit(path: str | Path) -> UncertainFit:
    """Read and validate a fit record (a directory, or its ``fit.json``)."""
    fit_path, params_path = fit_files(path)
    flag = f"--uncertainty {fit_path}"
    data = _read_json(fit_path, flag)
    _check_versions(flag, data)
    names, limits = _names(flag, data)
    mean, cov = _moments(flag, data, len(names))
    point, transforms, bounds = {}, {}, {}
    for i, name in enumerate(names):
        value, kind, b = _entry(flag, data, name, limits[name][2])
        transforms[name], bounds[name] = _transform_and_bounds(flag, name, kind, b,
                                                               limits[name])
        lo, hi = bounds[name]
        if not lo <= value <= hi:
            raise FitRecordError(f"{flag}: parameters.{name} = {value:g} is outside its bounds "
                                 f"[{lo:g}, {hi:g}]")
        f = float(_fraction(transforms[name], bounds[name], value))
        if abs(f - float(_sigmoid(mean[i]))) > _SAME_POINT:
            raise FitRecordError(f"{flag}: parameters.{name} = {value:g} is not the value of "
                                 f"mean_transformed[{i}] = {mean[i]:g} (names and "
                                 "mean_transformed must be in the same order)")
        point[name] = value
    base, params_text = _base(flag, params_path, point)
    return UncertainFit(fit_path, fit_path.read_text(encoding="utf-8"), params_text, names,
                        transforms, bounds, mean, cov, base,
                        {n: limits[n][2] for n in names})
