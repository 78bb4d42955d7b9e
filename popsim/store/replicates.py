"""The parameter-replicate axis of a cohort file (``popsim run --uncertainty``).

A file with ``R`` replicates holds the same ``N`` patients simulated with ``R`` parameter sets.
What differs from the layout of :mod:`popsim.store.schema` (a file without replicates has none
of this, and reads exactly as before)::

    replicate      (replicate,)                     int64 0..R-1 coordinate, units "1"
    <output>       (replicate, arm, patient, time)  float32, NaN until written
    param_<p>      (replicate, patient)             float64 (a patient's value depends on the
                                                    replicate's typical value)
    status         (replicate, arm, patient)        int8, -1 until written
    <covariate>    (patient,)                       as before: the same patients in every
                                                    replicate
    drawn_<name>   (replicate,)                     float64, the replicate's value of fitted
                                                    parameter <name> (attributes
                                                    ``drawn_parameter`` = name, ``drawn_index``
                                                    = its position in the fit record, ``units``)
    <record>       ()                               str: texts kept for provenance (the run
                                                    stores ``fit_record``, ``fit_parameters``)

Computation chunks run over lanes, replicate-major: lane ``r * N + p`` is patient ``p`` in
replicate ``r``, and chunk ``c`` holds lanes ``c * chunk_size ..`` (it may span replicates);
``chunk_done`` has ``ceil(R * N / chunk_size)`` entries and the attribute ``lanes`` saying so.
Outputs are chunked ``(1, 1, min(chunk_size, N), T)`` in HDF5.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import h5py
import numpy as np

from .errors import StoreError
from .h5 import dataset, int_attr

DRAWN_PREFIX = "drawn_"
LANE_ORDER = "replicate-major: lane r * n_patients + p is patient p in replicate r"


@dataclass(frozen=True)
class Replicates:
    """The replicate axis of a layout.

    Attributes:
        names: fitted parameter names, in the fit record's order.
        units: their units (same order).
        values: ``(R, len(names))`` the replicates' values (row 0 the point estimate).
        descriptions: ``long_name`` per name (optional).
        records: texts stored as scalar string variables (name -> ``(text, long_name)``).
    """

    names: tuple[str, ...]
    units: tuple[str, ...]
    values: np.ndarray
    descriptions: dict[str, str] = field(default_factory=dict)
    records: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """``R``, the number of replicates."""
        return int(np.shape(self.values)[0])

    def variable(self, name: str) -> str:
        """The stored variable of fitted parameter ``name``."""
        return DRAWN_PREFIX + name.replace(".", "_")

    def check(self) -> None:
        """:class:`StoreError` for an inconsistent replicate axis."""
        v = np.asarray(self.values)
        k = len(self.names)
        if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] != k or len(self.units) != k:
            raise StoreError(f"replicates: values must be (R >= 1, {k}) with one unit per name, "
                             f"got {v.shape} and {len(self.units)} units")
        if not np.issubdtype(v.dtype, np.number) or not np.all(np.isfinite(v)):
            raise StoreError("replicates: values must be finite numbers")
        stored = [self.variable(n) for n in self.names]
        if len(set(stored)) != k or not all(isinstance(n, str) and n for n in self.names):
            raise StoreError(f"replicates: names must be distinct non-empty strings, got "
                             f"{list(self.names)}")
        for name, unit in zip(self.names, self.units, strict=True):
            if not isinstance(unit, str) or not unit:
                raise StoreError(f"replicates: {name!r} needs a unit (\"1\" for dimensionless)")

    def stored_names(self) -> list[str]:
        """Every variable name this axis adds."""
        return ["replicate", *(self.variable(n) for n in self.names), *self.records]

    def build(self, f: h5py.File, filters: dict) -> None:
        """Write the coordinate, the drawn values and the records into a new file."""
        r = np.arange(self.count, dtype=np.int64)
        ds = f.create_dataset("replicate", data=r, chunks=r.shape, **filters)
        ds.make_scale("replicate")
        ds.attrs["units"] = "1"
        ds.attrs["long_name"] = "parameter replicate (0: the point estimate)"
        values = np.asarray(self.values, np.float64)
        for j, (name, unit) in enumerate(zip(self.names, self.units, strict=True)):
            ds = f.create_dataset(self.variable(name), data=values[:, j],
                                  chunks=(self.count,), **filters)
            ds.dims[0].attach_scale(f["replicate"])
            ds.attrs["units"] = unit
            ds.attrs["long_name"] = self.descriptions.get(name, name)
            ds.attrs["drawn_parameter"] = name
            ds.attrs["drawn_index"] = np.int64(j)
        for key, (text, long_name) in self.records.items():
            ds = f.create_dataset(key, data=text, dtype=h5py.string_dtype())
            ds.attrs["units"] = "1"
            ds.attrs["long_name"] = long_name


def read_drawn(f: h5py.File) -> tuple[tuple[str, ...], tuple[str, ...], np.ndarray]:
    """``(names, units, values (R, k))`` of the fitted parameters of a replicate file."""
    found = sorted((int_attr(ds, "drawn_index"), ds) for ds in f.values()
                   if isinstance(ds, h5py.Dataset) and "drawn_parameter" in ds.attrs)
    names = tuple(_text(ds.attrs["drawn_parameter"]) for _, ds in found)
    units = tuple(_text(ds.attrs["units"]) for _, ds in found)
    values = np.stack([ds[...] for _, ds in found], axis=1) if found else \
        np.zeros((dataset(f, "replicate").shape[0], 0))
    return names, units, values


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def n_replicates(f: h5py.File) -> int | None:
    """``R`` for a replicate file, ``None`` for a file without the replicate axis."""
    return int(dataset(f, "replicate").shape[0]) if "replicate" in f else None


def segments(start: int, n: int, n_patients: int) -> list[tuple[int, int, int, int, int]]:
    """Lanes ``start .. start+n-1`` as pieces ``(replicate, i0, i1, p0, p1)``: lanes
    ``i0:i1`` of the chunk are patients ``p0:p1`` of ``replicate``."""
    out, lane = [], start
    while lane < start + n:
        r, p0 = divmod(lane, n_patients)
        p1 = min(n_patients, p0 + start + n - lane)
        out.append((r, lane - start, lane - start + p1 - p0, p0, p1))
        lane += p1 - p0
    return out
