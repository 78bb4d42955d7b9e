"""Reading a cohort file: its marks (chunks done, complete), its attributes, and
:class:`Cohort` for reports. Every open first undoes a write session that was killed
(:func:`popsim.store.journal.recover`).
"""

from __future__ import annotations

import copy
import difflib
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .errors import StoreError
from .h5 import array_attr, dataset, int_attr
from .journal import journal_path, recover
from .replicates import n_replicates, read_drawn
from .schema import _check_format, _inventory, _text


def _suggestion(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _open(path) -> h5py.File:
    """Open a cohort file with h5py for reading (after undoing a write session that was killed,
    see :func:`recover`), or raise :class:`StoreError`."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such file")
    if path.is_file() and journal_path(path).exists():
        recover(path)
    if not path.is_file() or not h5py.is_hdf5(path):
        raise StoreError(f"{path} is not a popsim cohort file (not an HDF5 file)")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise StoreError(f"{path}: cannot open ({str(e).splitlines()[0]})") from None
    _check_format(f, path)
    return f


def chunks_done(path: str | os.PathLike) -> np.ndarray:
    """Which chunks are written: bool, shape ``(n_chunks,)``."""
    with _open(path) as f:
        return dataset(f, "chunk_done")[...].astype(bool)


def read_attrs(path: str | os.PathLike) -> dict:
    """The root attributes (strings as ``str``, numbers as numpy scalars)."""
    with _open(path) as f:
        return {k: (_text(v) if isinstance(v, (bytes, str)) else v) for k, v in f.attrs.items()}


def is_complete(path: str | os.PathLike) -> bool:
    """Whether :func:`finalize` has marked the file complete."""
    with _open(path) as f:
        return bool(f.attrs["complete"])


class Cohort:
    """Read access to a cohort file for reports. Metadata is read on opening; arrays are read
    from the file on each request (only what is asked), so nothing stays open in between.

    Attributes:
        path: the file.
        arms: arm names; ``times``: float64 days ``(time,)``; ``n_patients``: int.
        attrs: root attributes; ``complete``: whether the file was finalized (at opening).
        output_names, covariate_names, parameter_names: what the file holds.
        n_replicates: ``R`` for a file of parameter replicates (``popsim run --uncertainty``),
            whose outputs, status and sampled parameters have a leading ``replicate`` axis;
            ``None`` otherwise, and in the view of one replicate (:meth:`select`).
        replicate: the replicate a view of :meth:`select` shows, else ``None``.
        drawn_names, drawn_units, drawn_values: the fitted parameters of a replicate file and
            their ``(R, k)`` values per replicate (row 0 the point estimate); empty otherwise.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with _open(self.path) as f:
            self.attrs = {k: (_text(v) if isinstance(v, (bytes, str)) else v)
                          for k, v in f.attrs.items()}
            self.arms: tuple[str, ...] = tuple(_text(a) for a in dataset(f, "arm")[...])
            self.times: np.ndarray = dataset(f, "time")[...]
            self.n_patients = int(dataset(f, "patient").shape[0])
            outs, covs, pars = _inventory(f)
            self.output_names, self.covariate_names, self.parameter_names = (
                tuple(outs), tuple(covs), tuple(pars))
            self._units = {k: _text(ds.attrs["units"]) for k, ds in f.items()
                           if isinstance(ds, h5py.Dataset) and "units" in ds.attrs}
            self._long_names = {k: _text(ds.attrs["long_name"]) for k, ds in f.items()
                                if isinstance(ds, h5py.Dataset) and "long_name" in ds.attrs}
            self._categories = {k: tuple(_text(f[k].attrs["flag_meanings"]).split())
                                for k in covs if "flag_meanings" in f[k].attrs}
            self.chunk_size = int_attr(f["chunk_done"], "chunk_size")
            self.n_replicates: int | None = n_replicates(f)
            self.drawn_names, self.drawn_units, self.drawn_values = (
                read_drawn(f) if self.n_replicates else ((), (), np.zeros((0, 0))))
        self.complete = bool(self.attrs.get("complete", 0))
        self.replicate: int | None = None
        self._lead: tuple = () if self.n_replicates is None else (slice(None),)

    def select(self, replicate: int) -> Cohort:
        """The view of one replicate of a replicate file: its outputs, status and parameters
        read as those of a file without replicates (same shapes)."""
        if self.n_replicates is None:
            raise StoreError(f"{self.path}: has no parameter replicates")
        if not 0 <= replicate < self.n_replicates:
            raise StoreError(f"{self.path}: no replicate {replicate} (0..{self.n_replicates - 1})")
        view = copy.copy(self)
        view.n_replicates, view.replicate, view._lead = None, int(replicate), (int(replicate),)
        return view

    def record(self, name: str) -> str:
        """A text stored for provenance (e.g. ``fit_record``, the fit record of a replicate
        run)."""
        with _open(self.path) as f:
            if name not in f or dataset(f, name).ndim != 0:
                raise StoreError(f"{self.path}: no record {name!r}")
            return _text(dataset(f, name)[()])

    def __enter__(self) -> Cohort:
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def __repr__(self) -> str:
        return (f"Cohort({str(self.path)!r}, arms={self.arms}, n_patients={self.n_patients}, "
                f"n_times={len(self.times)}, complete={self.complete})")

    def units(self, name: str) -> str:
        """Unit of a stored variable (a parameter also by its name without ``param_``)."""
        if name in self._units:
            return self._units[name]
        if name in self.parameter_names:
            return self._units[f"param_{name}"]
        raise StoreError(f"{self.path}: no variable {name!r}")

    def long_name(self, name: str) -> str:
        """The ``long_name`` attribute of a stored variable (its name if it has none)."""
        return self._long_names.get(name, name)

    def categories(self, name: str) -> tuple[str, ...] | None:
        """The labels of a category covariate (code ``i`` is ``labels[i]``); ``None`` for a
        continuous one."""
        if name not in self.covariate_names:
            raise StoreError(f"{self.path}: no covariate {name!r}")
        return self._categories.get(name)

    def rows(self, name: str, patients) -> np.ndarray:
        """The stored values of a variable (an output, covariate codes, ``param_<p>``,
        ``status``) for the patients at positions ``patients`` (strictly increasing), patient
        axis as stored (outputs ``(arm, patient, time)``, ``status`` ``(arm, patient)``)."""
        if self._lead:
            raise StoreError(f"{self.path}: has parameter replicates; rows are read from files "
                             "without them")
        index = np.asarray(patients, np.int64)
        if index.size and (np.any(np.diff(index) <= 0) or index[0] < 0
                           or index[-1] >= self.n_patients):
            raise StoreError(f"{self.path}: patient positions must increase strictly inside "
                             f"0..{self.n_patients - 1}")
        with _open(self.path) as f:
            if name not in f or name in ("arm", "time", "chunk", "chunk_done", "patient"):
                raise StoreError(f"{self.path}: no per-patient variable {name!r}")
            ndim = dataset(f, name).ndim
        if index.size == 0:
            raise StoreError(f"{self.path}: no patients selected")
        return self._read(name, (slice(None), index) if ndim > 1 else (index,))

    def _read(self, name: str, sel: Any = Ellipsis) -> np.ndarray:
        with _open(self.path) as f:
            try:
                return dataset(f, name)[sel]
            except OSError as e:  # e.g. a Fletcher-32 checksum mismatch
                raise StoreError(f"{self.path}: cannot read {name} "
                                 f"({str(e).splitlines()[0]})") from None

    def _arm_index(self, arm: int | str | slice) -> int | slice:
        if isinstance(arm, str):
            if arm not in self.arms:
                raise StoreError(f"{self.path}: no arm {arm!r} (arms: {list(self.arms)})")
            return self.arms.index(arm)
        return arm

    def day_index(self, day: float) -> int:
        """The index in :attr:`times` of the saved day ``day`` (days); :class:`StoreError` for a
        day that was not saved (never the nearest one in its place)."""
        times = self.times
        i = int(np.argmin(np.abs(times - day)))
        if abs(times[i] - day) > 1e-9 * max(1.0, float(np.max(np.abs(times)))):
            step = np.diff(times)
            grid = (f"every {step[0]:g} days" if step.size and np.allclose(step[:-1], step[0])
                    else f"{times.size} days")
            raise StoreError(f"{self.path}: day {day:g} is not a saved day (saved: "
                             f"{times[0]:g} to {times[-1]:g}, {grid})")
        return i

    def output(self, name: str, arm: int | str | slice = slice(None),
               time: int | slice = slice(None), *, day: float | None = None,
               replicate: int | None = None) -> np.ndarray:
        """An output, float32 ``(arm, patient, time)``; an integer (or name) ``arm`` and/or an
        integer ``time`` index drop that axis; ``day`` (a saved day, in days) instead of
        ``time`` selects by day and drops the axis. Unwritten values are NaN. In a replicate
        file ``(replicate, arm, patient, time)``, or one ``replicate``'s."""
        if name not in self.output_names:
            raise StoreError(f"{self.path}: no output {name!r}"
                             f"{_suggestion(name, self.output_names)}")
        if day is not None:
            if time != slice(None):
                raise StoreError("give time or day, not both")
            time = self.day_index(day)
        return self._read(name, (*self._replicate(replicate), self._arm_index(arm),
                                 slice(None), time))

    def _replicate(self, replicate: int | None) -> tuple:
        if replicate is None:
            return self._lead
        if self.n_replicates is None:
            raise StoreError(f"{self.path}: has no parameter replicates")
        return (int(replicate),)

    @property
    def patient_ids(self) -> np.ndarray:
        """Each patient's index in the population drawn from the file's config and seed,
        int64 ``(patient,)`` (``0..N-1`` for a run's file)."""
        return self._read("patient")

    def covariate(self, name: str) -> np.ndarray:
        """A covariate, ``(patient,)``: float64 (NaN if unwritten), or for a category its labels
        as an array of ``str`` ("" for patients not yet written)."""
        if name not in self.covariate_names:
            raise StoreError(f"{self.path}: no covariate {name!r}")
        with _open(self.path) as f:
            ds = dataset(f, name)
            try:
                values = ds[...]
            except OSError as e:
                raise StoreError(f"{self.path}: cannot read {name} "
                                 f"({str(e).splitlines()[0]})") from None
            if "flag_meanings" not in ds.attrs:
                return values
            labels = np.array(_text(ds.attrs["flag_meanings"]).split() + [""])
            codes = values.astype(np.int64)
            codes[(codes < 0) | (codes >= len(labels) - 1)] = len(labels) - 1
            return labels[codes]

    def parameter(self, name: str, replicate: int | None = None) -> np.ndarray:
        """A sampled parameter (name without ``param_``), float64 ``(patient,)`` (in a replicate
        file ``(replicate, patient)``, or one ``replicate``'s)."""
        if name not in self.parameter_names:
            raise StoreError(f"{self.path}: no sampled parameter {name!r}")
        return self._read(f"param_{name}", (*self._replicate(replicate), slice(None)))

    @property
    def candidates(self) -> np.ndarray:
        """Each patient's candidate index, int64 ``(patient,)``: its index among the screened
        candidates in a screened run, else the patient index itself."""
        with _open(self.path) as f:
            if "candidate" in f:
                return dataset(f, "candidate")[...]
        return np.arange(self.n_patients, dtype=np.int64)

    @property
    def status(self) -> np.ndarray:
        """Status codes, int8 ``(arm, patient)`` (in a replicate file ``(replicate, arm,
        patient)``); -1 for patients not computed."""
        return self._read("status", (*self._lead, slice(None), slice(None)))

    @property
    def status_meanings(self) -> dict[int, str]:
        """Status code -> meaning, as stored in the file."""
        with _open(self.path) as f:
            status = f["status"]
            return dict(zip((int(v) for v in array_attr(status, "flag_values")),
                            _text(status.attrs["flag_meanings"]).split(), strict=True))


def open_cohort(path: str | os.PathLike) -> Cohort:
    """Open a cohort file for reading.

    Raises:
        StoreError: ``"<path> is not a popsim cohort file"`` for anything that is not one.
    """
    return Cohort(path)
