"""Parameter files (TOML): what `popsim calibrate` writes and `popsim run --params` reads.

A parameter file holds fitted typical values (``[parameters.<name>] value = ...``) and fitted
between-patient CVs (``[variability.<name>] cv = ...``), each with its unit and the value it
replaced, plus the calibration's targets, final loss, seed and versions (``[meta]``). Any
parameter it does not mention keeps its table value.

The package ships one for its model version, ``popsim/parameters/reference_calibration.toml``
with its fit record ``reference_fit.json``: the blood-pressure fit that
``scripts/fit_blood_pressure.py --ship`` runs on the evidence folder's BP trials.
:func:`default_parameters` applies it (the parameter table when there is none). A file written
for another model version is refused (``meta.model_version``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path

import tomli_w

from popsim._version import MODEL_VERSION
from popsim.config import _suggest, read_toml
from popsim.parameters import Params, parameter_specs

SHIPPED = Path(__file__).with_name("reference_calibration.toml")


class ParamsFileError(ValueError):
    """A bad parameter file, in one line."""


@dataclasses.dataclass(frozen=True)
class ParameterSet:
    params: Params  # typical values
    cvs: dict[str, float]  # between-patient CVs that replace the table's
    source: str  # where they came from (recorded in cohort files)
    meta: dict
    intervals: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)  # 95%


def provenance(name: str, ps: ParameterSet) -> tuple[str, str]:
    """``(provenance, source)`` of a parameter's typical value in the set ``ps``: the table's
    when ``ps`` keeps the table value, else ``fitted`` with the fit's studies, script and 95%
    interval, followed by the table value and provenance it replaced."""
    spec = {s.name: s for s in parameter_specs()}[name]
    if getattr(ps.params, name) == spec.value:
        return spec.provenance, spec.source
    studies = ", ".join(ps.meta.get("studies", []))
    where = f"fitted to {studies}" if studies else f"fitted ({ps.source})"
    details = [f"`{ps.meta['script']}`"] if ps.meta.get("script") else []
    if name in ps.intervals:
        lo, hi = ps.intervals[name]
        details.append(f"95% interval {lo:.3g}-{hi:.3g}")
    if details:
        where += f" ({'; '.join(details)})"
    return "fitted", f"{where}; table value {spec.value:.6g}, {spec.provenance}: {spec.source}"


def load_params_file(path: str | Path) -> ParameterSet:
    """Read and validate a parameter file."""
    path = Path(path)
    data, _ = read_toml(path, "parameter file", ParamsFileError)
    specs = {s.name: s for s in parameter_specs()}
    unknown = set(data) - {"meta", "parameters", "variability", "target"}
    if unknown:
        raise ParamsFileError(f"{path}: unknown section {sorted(unknown)[0]!r}; allowed: meta, "
                              "parameters, variability, target")
    written_for = data.get("meta", {}).get("model_version", MODEL_VERSION)
    if str(written_for) != MODEL_VERSION:
        raise ParamsFileError(f"{path}: meta.model_version = {written_for!r}: written for "
                              f"another model; this popsim runs model version {MODEL_VERSION}")
    values = {}
    for name, entry in data.get("parameters", {}).items():
        if name not in specs:
            raise ParamsFileError(f"{path}: parameters.{name}: unknown parameter"
                                  f"{_suggest(name, specs)}")
        v = entry.get("value") if isinstance(entry, dict) else entry
        if not isinstance(v, int | float) or not math.isfinite(v):
            raise ParamsFileError(f"{path}: parameters.{name}.value must be a finite number, "
                                  f"got {v!r}")
        s = specs[name]
        if not s.lower <= v <= s.upper:
            raise ParamsFileError(f"{path}: parameters.{name}.value = {v:g} is outside "
                                  f"{s.lower:g}..{s.upper:g} {s.unit}")
        if isinstance(entry, dict) and "unit" in entry and entry["unit"] != s.unit:
            raise ParamsFileError(f"{path}: parameters.{name}.unit is {entry['unit']!r}, "
                                  f"the model uses {s.unit!r}")
        values[name] = float(v)
    cvs = {}
    for name, entry in data.get("variability", {}).items():
        if name not in specs:
            raise ParamsFileError(f"{path}: variability.{name}: unknown parameter"
                                  f"{_suggest(name, specs)}")
        v = entry.get("cv") if isinstance(entry, dict) else entry
        if not isinstance(v, int | float) or not math.isfinite(v) or not 0 <= v <= 2:
            raise ParamsFileError(f"{path}: variability.{name}.cv must be a number in 0..2, "
                                  f"got {v!r}")
        cvs[name] = float(v)
    check_fitted_claims(path, data)
    params = dataclasses.replace(Params(), **values)
    intervals = {name: (float(e["interval95"][0]), float(e["interval95"][1]))
                 for name, e in data.get("parameters", {}).items()
                 if isinstance(e, dict) and len(e.get("interval95", ())) == 2}
    return ParameterSet(params, cvs, str(path), data.get("meta", {}), intervals)


def fitted_claims(data: dict) -> dict[str, float]:
    """The quantities a parameter file labels ``status = "fitted"``: typical values by name,
    CVs as ``cv.<name>``, with their values."""
    out = {}
    for section, key, prefix in (("parameters", "value", ""), ("variability", "cv", "cv.")):
        for name, entry in data.get(section, {}).items():
            if isinstance(entry, dict) and entry.get("status") == "fitted":
                out[prefix + name] = entry.get(key)
    return out


def check_fitted_claims(path: str | Path, data: dict) -> None:
    """A parameter may be labelled fitted only with a fit record: ``meta.fit_record`` names a
    ``fit.json`` (relative to the parameter file) whose ``names`` list it, with the same
    value. Raises :class:`ParamsFileError` (one line) otherwise."""
    import json

    claims = fitted_claims(data)
    if not claims:
        return
    path = Path(path)
    first = next(iter(claims))
    record = data.get("meta", {}).get("fit_record")
    if not isinstance(record, str) or not record:
        raise ParamsFileError(f"{path}: {first} is labelled fitted but meta.fit_record names "
                              "no fit record")
    rpath = path.parent / record
    try:
        fit = json.loads(rpath.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ParamsFileError(f"{path}: meta.fit_record {record!r}: cannot read the fit "
                              f"record ({e.__class__.__name__})") from None
    fitted = fit.get("parameters", {}) if isinstance(fit, dict) else {}
    for name, value in claims.items():
        if name not in fit.get("names", []) or name not in fitted:
            raise ParamsFileError(f"{path}: {name} is labelled fitted but the fit record "
                                  f"{rpath} does not list it")
        recorded = fitted[name].get("value")
        if not isinstance(value, int | float) or not isinstance(recorded, int | float) or \
                not math.isclose(value, recorded, rel_tol=1e-12, abs_tol=0.0):
            raise ParamsFileError(f"{path}: {name} = {value!r} differs from its fit record's "
                                  f"value {recorded!r} ({rpath})")


def write_params_file(path: str | Path, values: dict[str, tuple[float, float]],
                      cvs: dict[str, tuple[float, float]], meta: dict,
                      targets: list[dict]) -> None:
    """Write a parameter file. ``values`` and ``cvs`` map a parameter name to
    ``(fitted, initial)``."""
    specs = {s.name: s for s in parameter_specs()}
    doc = {
        "meta": meta,
        "parameters": {k: {"value": float(v), "unit": specs[k].unit, "initial": float(v0),
                           "description": specs[k].description}
                       for k, (v, v0) in values.items()},
        "variability": {k: {"cv": float(v), "initial": float(v0)}
                        for k, (v, v0) in cvs.items()},
        "target": targets,
    }
    text = ("# popsim parameter file: written by `popsim calibrate`, read by "
            "`popsim run --params`.\n" + tomli_w.dumps(doc))
    Path(path).write_text(text, encoding="utf-8")


def fingerprint(params: Params, cvs: dict[str, float]) -> str:
    """SHA-256 of the typical values and CVs a run uses (recorded in cohort files; a resumed run
    and an SBML export of a cohort's patient must use the same)."""
    import hashlib

    items = [(f.name, float(getattr(params, f.name))) for f in dataclasses.fields(params)]
    items += [(f"cv.{k}", float(v)) for k, v in sorted(cvs.items())]
    return hashlib.sha256(repr(items).encode()).hexdigest()


def table_parameters() -> ParameterSet:
    """The parameter table's values, without any calibration."""
    return ParameterSet(Params(), {}, "table", {})


@functools.cache
def default_parameters() -> ParameterSet:
    """The shipped calibrated parameter set if present, else the table."""
    if SHIPPED.exists():
        return dataclasses.replace(load_params_file(SHIPPED),
                                   source="popsim/parameters/reference_calibration.toml")
    return table_parameters()
