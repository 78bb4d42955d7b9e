"""Writing a cohort file: one chunk of patients at a time, then the completion mark.

Each call is one write session (:mod:`popsim.store.journal`), so a process killed at any point
leaves the chunk either written and marked done, or absent and unmarked, and the completion mark
either set or not. Everything is validated before anything is written.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import numbers
import os

import h5py
import numpy as np

from .errors import StoreError
from .h5 import array_attr, dataset, int_attr
from .journal import _writing
from .replicates import n_replicates, segments
from .schema import _check_format, _inventory


@contextlib.contextmanager
def _cohort_session(path: str | os.PathLike, what: str):
    """A write session (:func:`~popsim.store.journal._writing`) on a cohort file."""
    with _writing(path, what) as f:
        _check_format(f, path)
        yield f


def _same_names(path, what: str, given, expected) -> None:
    given, expected = set(given), set(expected)
    if given != expected:
        parts = []
        if given - expected:
            parts.append(f"unknown {sorted(given - expected)}")
        if expected - given:
            parts.append(f"missing {sorted(expected - given)}")
        raise StoreError(f"{path}: {what} do not match the file: {', '.join(parts)}")


def _real_array(path, name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    a = np.asarray(value)
    if a.shape != shape:
        raise StoreError(f"{path}: {name} has shape {a.shape}, expected {shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)
            or a.dtype == np.bool_):
        raise StoreError(f"{path}: {name} must be numeric, got dtype {a.dtype}")
    return a


def _codes(path, name: str, value, shape: tuple[int, ...], allowed: np.ndarray) -> np.ndarray:
    a = _real_array(path, name, value, shape)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(a) & (a == np.round(a)) if np.issubdtype(a.dtype, np.floating) \
            else np.ones(a.shape, bool)
    if not ok.all() or not np.isin(a[ok], allowed).all():
        bad = sorted(set(a[~ok].tolist()) | set(a[ok][~np.isin(a[ok], allowed)].tolist()))
        raise StoreError(f"{path}: {name} has codes {bad[:5]} outside {allowed.tolist()}")
    return a.astype(np.int8)


def _chunk_length(path, f: h5py.File, chunk_index: int, start: int, status) -> int:
    """The number of patients ``n`` of chunk ``chunk_index``, once ``chunk_index``, ``start``
    and the shape of ``status`` are checked against the file."""
    done = dataset(f, "chunk_done")
    csize = int_attr(done, "chunk_size")
    n_total = len(dataset(f, "patient")) * (n_replicates(f) or 1)
    if isinstance(chunk_index, bool) or not isinstance(chunk_index, numbers.Integral) \
            or not 0 <= chunk_index < done.shape[0]:
        raise StoreError(f"{path}: chunk index {chunk_index!r} is outside "
                         f"0..{done.shape[0] - 1}")
    shape = np.shape(status)
    if len(shape) != 2:
        raise StoreError(f"{path}: status has shape {shape}, expected (arm, patient)")
    n = shape[1]
    expected_start = int(chunk_index) * csize
    expected_n = min(csize, n_total - expected_start)
    if start != expected_start or n != expected_n:
        what = "lanes" if "replicate" in f else "patients"
        raise StoreError(f"{path}: chunk {chunk_index} holds {what} {expected_start}.."
                         f"{expected_start + expected_n - 1}, got {n} {what} from {start}")
    return n


def _chunk_arrays(path, f: h5py.File, n: int, covariates: dict, parameters: dict,
                  outputs: dict) -> dict[str, np.ndarray]:
    """The chunk's arrays by stored name, checked against the file (names, shapes, codes) and
    converted to the stored dtypes."""
    out_names, cov_names, par_names = _inventory(f)
    na, nt = len(dataset(f, "arm")), len(dataset(f, "time"))
    _same_names(path, "outputs", outputs, out_names)
    _same_names(path, "covariates", covariates, cov_names)
    _same_names(path, "parameters", parameters, par_names)
    data: dict[str, np.ndarray] = {}
    for name, v in outputs.items():
        data[name] = _real_array(path, name, v, (na, n, nt)).astype(np.float32)
    for name, v in covariates.items():
        ds = f[name]
        if "flag_values" in ds.attrs:
            data[name] = _codes(path, name, v, (n,), array_attr(ds, "flag_values"))
        else:
            data[name] = _real_array(path, name, v, (n,)).astype(np.float64)
    for name, v in parameters.items():
        data[f"param_{name}"] = _real_array(path, name, v, (n,)).astype(np.float64)
    return data


def write_chunk(path: str | os.PathLike, chunk_index: int, start: int,
                covariates: dict[str, np.ndarray], parameters: dict[str, np.ndarray],
                outputs: dict[str, np.ndarray], status: np.ndarray) -> None:
    """Write patients ``start .. start+n-1`` (chunk ``chunk_index``), then mark it done and flush.

    In a file of parameter replicates, ``start`` and ``n`` count lanes (patient ``p`` of
    replicate ``r`` is lane ``r * n_patients + p``, :mod:`popsim.store.replicates`), every
    array's patient axis holds the chunk's lanes, and the covariates are stored from the lanes
    of replicate 0 (they are the same patients in every replicate).

    Args:
        chunk_index: which chunk; ``start`` must be ``chunk_index * chunk_size`` and ``n``
            (from ``status``) the chunk's size (``chunk_size``, or fewer for the last chunk).
        covariates: every covariate of the file, shape ``(n,)``; categories as integer codes.
        parameters: every sampled parameter of the file (names without ``param_``), ``(n,)``.
        outputs: every output of the file, shape ``(arm, n, time)``, stored as float32.
        status: ``(arm, n)`` integer codes among the file's ``flag_values``.

    Everything is validated before anything is written; on a mismatch (names, shapes, codes,
    chunk position) :class:`StoreError` is raised and the chunk is not marked done. The data and
    the mark are one write session: after a crash at any point the chunk is either complete and
    marked, or absent and unmarked.
    """
    with _cohort_session(path, f"chunk {chunk_index}") as f:
        n = _chunk_length(path, f, chunk_index, start, status)
        status = _codes(path, "status", status, (len(dataset(f, "arm")), n),
                        array_attr(f["status"], "flag_values"))
        data = _chunk_arrays(path, f, n, covariates, parameters, outputs)
        try:
            if "replicate" in f:
                _write_lanes(f, start, n, data, status, set(covariates))
            else:
                stop = start + n
                for name, a in data.items():
                    if a.ndim == 3:
                        dataset(f, name)[:, start:stop, :] = a
                    else:
                        dataset(f, name)[start:stop] = a
                dataset(f, "status")[:, start:stop] = status
            dataset(f, "chunk_done")[chunk_index] = 1
        except OSError as e:
            raise StoreError(f"{path}: cannot write chunk {chunk_index} "
                             f"({str(e).splitlines()[0]})") from None


def _write_lanes(f: h5py.File, start: int, n: int, data: dict, status: np.ndarray,
                 covariates: set[str]) -> None:
    """Write lanes ``start .. start+n-1`` of a replicate file, one piece per replicate."""
    for r, i0, i1, p0, p1 in segments(start, n, len(dataset(f, "patient"))):
        for name, a in data.items():
            if a.ndim == 3:
                dataset(f, name)[r, :, p0:p1, :] = a[:, i0:i1, :]
            elif name not in covariates:
                dataset(f, name)[r, p0:p1] = a[i0:i1]
            elif r == 0:
                dataset(f, name)[p0:p1] = a[i0:i1]
        dataset(f, "status")[r, :, p0:p1] = status[:, i0:i1]


def finalize(path: str | os.PathLike) -> None:
    """Mark the file complete (root ``complete`` = 1); every chunk must be done."""
    with _cohort_session(path, "the completion mark") as f:
        done = dataset(f, "chunk_done")[...].astype(bool)
        if not done.all():
            missing = np.flatnonzero(~done)
            raise StoreError(f"{path}: {missing.size} of {done.size} chunks are not written "
                             f"yet (first: chunk {missing[0]})")
        f.attrs["complete"] = np.int64(1)
        f.attrs["completed"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
