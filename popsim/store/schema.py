"""The layout of the cohort file, its checks, and its creation.

One HDF5 file (h5py) in the netCDF-4 layout, so that
``xarray.open_dataset(path, engine="h5netcdf")`` reads it with named dimensions and a ``units``
and ``long_name`` attribute on every variable.

Layout (``A`` arms, ``N`` patients, ``T`` saved times, ``C`` computation chunks)::

    arm         (arm,)                   variable-length UTF-8 str   coordinate, units "1"
    patient     (patient,)               int64 patient indices       coordinate, units "1"
    time        (time,)                  float64                     coordinate, units "day"
    chunk       (chunk,)                 int64 0..C-1                coordinate, units "1"
    <output>    (arm, patient, time)     float32, NaN until written
    <covariate> (patient,)               float64 (NaN until written), or int8 codes of a category
                                         (-1 until written; ``flag_values``/``flag_meanings``)
    param_<p>   (patient,)               float64, NaN until written; attribute ``parameter`` = p
    candidate   (patient,)               int64, only in a screened run: the patient's index among
                                         the screened candidates (written at creation)
    status      (arm, patient)           int8, -1 until written; ``flag_values``/``flag_meanings``
    chunk_done  (chunk,)                 uint8, 1 once the chunk's patients are written;
                                         attribute ``chunk_size`` (patients per chunk)

Root attributes: ``popsim_format`` = :data:`FORMAT`, ``complete`` (0/1), ``completed`` (ISO time,
set by :func:`finalize`) and whatever the caller passes to :func:`create`.

Every dataset is chunked along ``patient`` (outputs: ``(1, min(chunk_size, N), T)``) and
written with gzip level 4, shuffle and Fletcher-32 checksums, except ``arm``: HDF5 refuses
Fletcher-32 on variable-length strings, so ``arm`` has gzip + shuffle only.

:func:`create` builds the file with every dataset pre-allocated and the file marked incomplete:
as ``<path>.tmp``, fsync'd, then moved into place, so that a failure never leaves a half-written
file at ``path`` nor loses the file that was there before. :func:`_check_format` and
:func:`_inventory` read the layout back for the reader and the writer.

A file of parameter replicates (``popsim run --uncertainty``) has one more leading axis,
``replicate``, on the outputs, the sampled parameters and the status, and the replicates' drawn
values: :mod:`popsim.store.replicates`.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from popsim.options import Message, Option

from .errors import StoreError
from .h5 import dataset
from .journal import _replace
from .replicates import LANE_ORDER, Replicates

#: value of the root attribute ``popsim_format`` of every cohort file
FORMAT = "popsim-cohort/1"
COHORT_SUFFIXES = (".h5", ".hdf5", ".nc")
"""What a cohort file's name may end in (HDF5; ``.nc`` for netCDF-4 tools)."""

_FILTERS = dict(compression="gzip", compression_opts=4, shuffle=True, fletcher32=True)
_DIMS = ("arm", "patient", "time", "chunk")
_RESERVED = frozenset(_DIMS + ("status", "chunk_done", "candidate", "replicate"))
_ROOT_RESERVED = frozenset({"popsim_format", "complete", "completed"})
_FLOAT_FILL = np.nan
_INT_FILL = -1


@dataclass(frozen=True)
class CohortLayout:
    """What a cohort file holds: names, units and sizes.

    Attributes:
        arms: arm names (coordinate ``arm``).
        n_patients: number of patients ``N`` (coordinate ``patient`` = 0..N-1).
        times: saved times, days, shape ``(T,)``, strictly increasing.
        outputs: output name -> unit; each stored float32 ``(arm, patient, time)``.
        covariates: covariate name -> ``(kind, unit)``, kind ``"float"`` (float64) or
            ``"category"`` (int8 codes indexing ``categories[name]``).
        categories: category covariate name -> its labels (code ``i`` is ``labels[i]``).
        parameters: sampled per-patient parameter name -> unit; stored float64 ``(patient,)``
            as ``param_<name>``.
        chunk_size: patients per computation chunk (the resume granularity).
        descriptions: optional ``long_name`` per stored variable name (outputs, covariates,
            ``param_<name>``); the name itself otherwise.
        patient_ids: each patient's index in the population drawn from the run's config and
            seed, strictly increasing (default ``0..N-1``; a virtual population selected from a
            cohort keeps its patients' indices in that cohort).
        candidates: for a screened run, each patient's candidate index (int, ``(N,)``),
            stored whole at creation as ``candidate``; ``None``: no such variable.
        replicates: the parameter-replicate axis (:mod:`popsim.store.replicates`), or
            ``None`` for a file without one.
    """

    arms: tuple[str, ...]
    n_patients: int
    times: np.ndarray
    outputs: dict[str, str]
    covariates: dict[str, tuple[str, str]]
    categories: dict[str, tuple[str, ...]]
    parameters: dict[str, str]
    chunk_size: int
    descriptions: dict[str, str] = field(default_factory=dict)
    patient_ids: np.ndarray | None = None
    candidates: np.ndarray | None = None
    replicates: Replicates | None = None

    @property
    def n_lanes(self) -> int:
        """Patients times replicates (the patients without replicates)."""
        return self.n_patients * (1 if self.replicates is None else self.replicates.count)

    @property
    def n_chunks(self) -> int:
        """Number of computation chunks, ``ceil(n_lanes / chunk_size)``."""
        return -(-self.n_lanes // self.chunk_size)


# --- creation -------------------------------------------------------------------------------


def _check_unit(name: str, unit) -> None:
    if not isinstance(unit, str) or not unit:
        raise StoreError(f"variable {name!r}: unit must be a non-empty string (\"1\" for "
                         f"dimensionless), got {unit!r}")


def _check_words(what: str, words) -> None:
    for w in words:
        if not isinstance(w, str) or not w or any(c.isspace() for c in w):
            raise StoreError(f"{what}: {w!r} must be a non-empty string without spaces "
                             "(CF flag_meanings are space-separated)")
    if len(set(words)) != len(words):
        raise StoreError(f"{what}: duplicate labels in {list(words)}")


def _check_positive_integer(what: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise StoreError(f"{what} must be a positive integer, got {value!r}")


def _check_layout(layout: CohortLayout, status_meanings: dict[int, str]) -> None:
    _check_positive_integer("n_patients", layout.n_patients)
    _check_positive_integer("chunk_size", layout.chunk_size)
    if not layout.arms or len(set(layout.arms)) != len(layout.arms) \
            or not all(isinstance(a, str) and a for a in layout.arms):
        raise StoreError(f"arms must be distinct non-empty names, got {layout.arms!r}")
    t = np.asarray(layout.times)
    if t.ndim != 1 or t.size == 0 or not np.issubdtype(t.dtype, np.number) \
            or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise StoreError("times must be a non-empty, finite, strictly increasing 1-D array of "
                         "days")
    if layout.patient_ids is not None:
        ids = np.asarray(layout.patient_ids)
        if ids.shape != (layout.n_patients,) or not np.issubdtype(ids.dtype, np.integer) \
                or (ids.size and ids[0] < 0) or np.any(np.diff(ids) <= 0):
            raise StoreError(f"patient_ids must be {layout.n_patients} strictly increasing "
                             "non-negative integers")
    names: list[str] = [*layout.outputs, *layout.covariates,
                        *(f"param_{p}" for p in layout.parameters)]
    if layout.replicates is not None:
        layout.replicates.check()
        names += [n for n in layout.replicates.stored_names() if n != "replicate"]
    clash = sorted({n for n in names if names.count(n) > 1} | (set(names) & _RESERVED))
    if clash:
        raise StoreError(f"variable names clash with each other or with reserved names: {clash}")
    for name, unit in layout.outputs.items():
        _check_unit(name, unit)
    for name, unit in layout.parameters.items():
        _check_unit(f"param_{name}", unit)
    for name, spec in layout.covariates.items():
        if not (isinstance(spec, tuple) and len(spec) == 2):
            raise StoreError(f"covariate {name!r}: expected (kind, unit), got {spec!r}")
        kind, unit = spec
        _check_unit(name, unit)
        if kind == "category":
            labels = layout.categories.get(name)
            if not labels:
                raise StoreError(f"category covariate {name!r} has no labels in categories")
            if len(labels) > 127:
                raise StoreError(f"category covariate {name!r}: more than 127 labels")
            _check_words(f"categories of {name!r}", tuple(labels))
        elif kind != "float":
            raise StoreError(f"covariate {name!r}: kind must be 'float' or 'category', "
                             f"got {kind!r}")
    if layout.candidates is not None:
        c = np.asarray(layout.candidates)
        if c.shape != (layout.n_patients,) or not np.issubdtype(c.dtype, np.integer) \
                or (c.size and (c.min() < 0 or np.any(np.diff(c) <= 0))):
            raise StoreError("candidates must be increasing non-negative integers, one per "
                             "patient")
    if not status_meanings:
        raise StoreError("status_meanings must not be empty")
    for code in status_meanings:
        if isinstance(code, bool) or not isinstance(code, numbers.Integral) \
                or not 0 <= code <= 127:
            raise StoreError(f"status code {code!r} must be an integer 0..127 (-1 means "
                             "not computed)")
    _check_words("status_meanings", tuple(status_meanings.values()))


def _attr_value(key: str, value):
    """An attribute value h5py and xarray both read back: str, int64 or float64."""
    if isinstance(value, (bool, np.bool_)):
        return np.int64(value)
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        if not -(2**63) <= int(value) < 2**63:
            raise StoreError(f"attribute {key!r}: integer {value} does not fit in int64")
        return np.int64(value)
    if isinstance(value, numbers.Real):
        return np.float64(value)
    raise StoreError(f"attribute {key!r}: value must be str, int or float, got "
                     f"{type(value).__name__}")


def _coordinate(f: h5py.File, name: str, data: np.ndarray, unit: str, long_name: str,
                filters: dict) -> None:
    ds = f.create_dataset(name, data=data, chunks=data.shape, **filters)
    ds.make_scale(name)
    ds.attrs["units"] = unit
    ds.attrs["long_name"] = long_name


def _variable(f: h5py.File, name: str, dims: tuple[str, ...], dtype, chunks: tuple[int, ...],
              unit: str, long_name: str) -> h5py.Dataset:
    shape = tuple(dataset(f, d).shape[0] for d in dims)
    floating = np.issubdtype(dtype, np.floating)
    fill = _FLOAT_FILL if floating else _INT_FILL
    ds = f.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks, fillvalue=fill,
                          **_FILTERS)
    if floating:  # netCDF's way of saying what unwritten values are (NaN: no masking needed)
        ds.attrs["_FillValue"] = np.array(fill, dtype=dtype)
    # integer variables get no _FillValue attribute: xarray would turn them into float + NaN
    ds.attrs["units"] = unit
    ds.attrs["long_name"] = long_name
    for i, d in enumerate(dims):
        ds.dims[i].attach_scale(f[d])
    return ds


def _build(tmp: Path, layout: CohortLayout, attrs: dict, status_meanings: dict[int, str]) -> None:
    """Write the whole (empty) cohort file to ``tmp``."""
    n, nt, n_chunks = int(layout.n_patients), len(layout.times), layout.n_chunks
    pc = min(int(layout.chunk_size), n)
    desc = layout.descriptions
    lead = () if layout.replicates is None else ("replicate",)
    one = (1,) * len(lead)
    with h5py.File(tmp, "w") as f:
        f.attrs["popsim_format"] = FORMAT
        f.attrs["complete"] = np.int64(0)
        for k, v in attrs.items():
            f.attrs[k] = v
        vlen_filters = {k: v for k, v in _FILTERS.items() if k != "fletcher32"}
        _coordinate(f, "arm", np.array(layout.arms, dtype=h5py.string_dtype()), "1",
                    "intervention arm", vlen_filters)
        ids = np.arange(n) if layout.patient_ids is None else layout.patient_ids
        _coordinate(f, "patient", np.asarray(ids, np.int64), "1",
                    "patient index in the population of the config and seed", _FILTERS)
        _coordinate(f, "time", np.asarray(layout.times, np.float64), "day",
                    "time since the start of the simulation", _FILTERS)
        _coordinate(f, "chunk", np.arange(n_chunks, dtype=np.int64), "1",
                    "computation chunk index", _FILTERS)
        if layout.replicates is not None:
            layout.replicates.build(f, _FILTERS)
        for name, unit in layout.outputs.items():
            _variable(f, name, (*lead, "arm", "patient", "time"), np.float32,
                      (*one, 1, pc, nt), unit, desc.get(name, name))
        for name, (kind, unit) in layout.covariates.items():
            if kind == "category":
                labels = tuple(layout.categories[name])
                ds = _variable(f, name, ("patient",), np.int8, (pc,), "1",
                               desc.get(name, name))
                ds.attrs["flag_values"] = np.arange(len(labels), dtype=np.int8)
                ds.attrs["flag_meanings"] = " ".join(labels)
            else:
                _variable(f, name, ("patient",), np.float64, (pc,), unit, desc.get(name, name))
        for name, unit in layout.parameters.items():
            stored = f"param_{name}"
            ds = _variable(f, stored, (*lead, "patient"), np.float64, (*one, pc), unit,
                           desc.get(stored, name))
            ds.attrs["parameter"] = name
        if layout.candidates is not None:
            ds = _variable(f, "candidate", ("patient",), np.int64, (pc,), "1",
                           "index of the patient among the screened candidates")
            ds[...] = np.asarray(layout.candidates, np.int64)
        codes = sorted(int(c) for c in status_meanings)
        ds = _variable(f, "status", (*lead, "arm", "patient"), np.int8, (*one, 1, pc), "1",
                       "outcome of the simulation per arm and patient (-1: not computed)")
        ds.attrs["flag_values"] = np.array(codes, dtype=np.int8)
        ds.attrs["flag_meanings"] = " ".join(status_meanings[c] for c in codes)
        ds = _variable(f, "chunk_done", ("chunk",), np.uint8, (n_chunks,), "1",
                       "1 once the chunk's patients are written, else 0")
        ds[...] = 0
        ds.attrs["chunk_size"] = np.int64(layout.chunk_size)
        if layout.replicates is not None:
            ds.attrs["lanes"] = LANE_ORDER
    with open(tmp, "rb") as fh:  # on disk before it replaces anything
        os.fsync(fh.fileno())


def create(path: str | os.PathLike, layout: CohortLayout, attrs: dict[str, str | int | float],
           *, status_meanings: dict[int, str], force: bool = False) -> None:
    """Create the (incomplete) cohort file at ``path``, every dataset pre-allocated.

    Args:
        layout: names, units and sizes (see :class:`CohortLayout`).
        attrs: root attributes (config text, seed, versions, ...): str, int or float values.
        status_meanings: status code (0..127) -> one-word meaning, stored CF-style on
            ``status`` (``flag_values``/``flag_meanings``); -1 is reserved for "not computed".
        force: replace an existing file at ``path``.

    The file is built as ``<path>.tmp`` and moved into place only once complete, so a failure
    never leaves a half-written file at ``path`` nor loses a file that was there before.

    Raises:
        StoreError: ``path`` exists (without ``force``), its directory is missing or not
            writable, or the layout / attributes are invalid.
    """
    path = Path(path)
    _check_layout(layout, status_meanings)
    bad = sorted(_ROOT_RESERVED & set(attrs))
    if bad:
        raise StoreError(f"attributes {bad} are reserved for the cohort file itself")
    stored = {str(k): _attr_value(str(k), v) for k, v in attrs.items()}
    parent = path.parent
    if path.is_dir():
        raise StoreError(f"{path}: is a directory, expected a file path")
    if path.exists() and not force:
        raise StoreError(Message(f"{path}: file exists; pass ", Option("force", True),
                                 " to overwrite it"))
    if not parent.is_dir():
        raise StoreError(f"{path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"{path}: directory {parent} is not writable")
    tmp = path.with_name(path.name + ".tmp")
    try:
        _build(tmp, layout, stored, status_meanings)
        _replace(tmp, path)
    except BaseException as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise StoreError(f"{path}: cannot write the cohort file "
                             f"({e.strerror or str(e).splitlines()[0]})") from None
        if isinstance(e, (TypeError, ValueError)):
            raise StoreError(f"{path}: cannot write the cohort file ({e})") from None
        raise


# --- reading the layout back -----------------------------------------------------------------


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_format(f: h5py.File, path) -> None:
    fmt = f.attrs.get("popsim_format")
    if fmt is None or _text(fmt) != FORMAT:
        f.close()
        if fmt is not None and _text(fmt).startswith("popsim-cohort/"):
            raise StoreError(f"{path}: cohort file format {_text(fmt)!r} is not supported "
                             f"(expected {FORMAT!r})")
        raise StoreError(f"{path} is not a popsim cohort file")


def _inventory(f: h5py.File) -> tuple[list[str], list[str], list[str]]:
    """(outputs, covariates, parameter names without ``param_``) stored in ``f``."""
    outputs, covariates, parameters = [], [], []
    lead = 1 if "replicate" in f else 0
    for name, obj in f.items():
        if not isinstance(obj, h5py.Dataset) or name in _RESERVED \
                or "drawn_parameter" in obj.attrs:
            continue
        if obj.ndim == 3 + lead:
            outputs.append(name)
        elif obj.ndim == 1 + lead and "parameter" in obj.attrs:
            parameters.append(_text(obj.attrs["parameter"]))
        elif obj.ndim == 1:
            covariates.append(name)
    return outputs, covariates, parameters
