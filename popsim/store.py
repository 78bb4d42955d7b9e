"""The cohort file: one HDF5 file (h5py) in the netCDF-4 layout, so that
``xarray.open_dataset(path, engine="h5netcdf")`` reads it with named dimensions and a ``units``
and ``long_name`` attribute on every variable. Imports no JAX (numpy and h5py only).

Layout (``A`` arms, ``N`` patients, ``T`` saved times, ``C`` computation chunks)::

    arm         (arm,)                   variable-length UTF-8 str   coordinate, units "1"
    patient     (patient,)               int64 0..N-1                coordinate, units "1"
    time        (time,)                  float64                     coordinate, units "day"
    chunk       (chunk,)                 int64 0..C-1                coordinate, units "1"
    <output>    (arm, patient, time)     float32, NaN until written
    <covariate> (patient,)               float64 (NaN until written), or int8 codes of a category
                                         (-1 until written; ``flag_values``/``flag_meanings``)
    param_<p>   (patient,)               float64, NaN until written; attribute ``parameter`` = p
    status      (arm, patient)           int8, -1 until written; ``flag_values``/``flag_meanings``
    chunk_done  (chunk,)                 uint8, 1 once the chunk's patients are written;
                                         attribute ``chunk_size`` (patients per chunk)

Root attributes: ``popsim_format`` = :data:`FORMAT`, ``complete`` (0/1), ``completed`` (ISO time,
set by :func:`finalize`) and whatever the caller passes to :func:`create`.

Every dataset is chunked along ``patient`` (outputs: ``(1, min(chunk_size, N), T)``) and
written with gzip level 4, shuffle and Fletcher-32 checksums, except ``arm``: HDF5 refuses
Fletcher-32 on variable-length strings, so ``arm`` has gzip + shuffle only.

Life cycle: :func:`create` pre-allocates everything and marks the file incomplete (built as
``<path>.tmp`` and moved into place, so it is atomic); :func:`write_chunk` fills one chunk of
patients and marks it done; :func:`finalize` marks the file complete. :func:`open_cohort` reads it
back for reports. Every problem with a file is a :class:`StoreError` with a one-line message
naming the path.

Crash safety: every change to an existing file (:func:`write_chunk`, :func:`finalize`) is one
all-or-nothing *write session* with an undo journal ``<path>.journal`` (see :class:`_UndoFile`):
before HDF5 overwrites any byte the file had when the session began, the old bytes are appended to
the journal; the session ends by deleting the journal. A process killed at any moment (SIGKILL
included) leaves either the state before the session or the state after it: the next popsim open
of the file (reading, ``--resume``) finds the journal, copies the old bytes back and truncates the
file to its old size (:func:`recover`). The journal is needed because HDF5 updates its metadata
in place, in no crash-safe order: a writer killed mid-write can leave a file that cannot be
opened (docs/DESIGN.md, "Cohort store"). Process death is covered; an OS crash or power loss
is not (nothing is fsync'd in order).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import io
import numbers
import os
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

#: value of the root attribute ``popsim_format`` of every cohort file
FORMAT = "popsim-cohort/1"

_FILTERS = dict(compression="gzip", compression_opts=4, shuffle=True, fletcher32=True)
_DIMS = ("arm", "patient", "time", "chunk")
_RESERVED = frozenset(_DIMS + ("status", "chunk_done"))
_ROOT_RESERVED = frozenset({"popsim_format", "complete", "completed"})
_FLOAT_FILL = np.nan
_INT_FILL = -1


class StoreError(Exception):
    """A problem with a cohort file (missing, not a cohort, mismatched data), in one line."""


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

    @property
    def n_chunks(self) -> int:
        """Number of computation chunks, ``ceil(n_patients / chunk_size)``."""
        return -(-self.n_patients // self.chunk_size)


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


def _check_layout(layout: CohortLayout, status_meanings: dict[int, str]) -> None:
    if isinstance(layout.n_patients, bool) or not isinstance(layout.n_patients, numbers.Integral) \
            or layout.n_patients <= 0:
        raise StoreError(f"n_patients must be a positive integer, got {layout.n_patients!r}")
    if isinstance(layout.chunk_size, bool) or not isinstance(layout.chunk_size, numbers.Integral) \
            or layout.chunk_size <= 0:
        raise StoreError(f"chunk_size must be a positive integer, got {layout.chunk_size!r}")
    if not layout.arms or len(set(layout.arms)) != len(layout.arms) \
            or not all(isinstance(a, str) and a for a in layout.arms):
        raise StoreError(f"arms must be distinct non-empty names, got {layout.arms!r}")
    t = np.asarray(layout.times)
    if t.ndim != 1 or t.size == 0 or not np.issubdtype(t.dtype, np.number) \
            or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise StoreError("times must be a non-empty, finite, strictly increasing 1-D array of "
                         "days")
    names: list[str] = [*layout.outputs, *layout.covariates,
                        *(f"param_{p}" for p in layout.parameters)]
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
    shape = tuple(f[d].shape[0] for d in dims)
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
    with h5py.File(tmp, "w") as f:
        f.attrs["popsim_format"] = FORMAT
        f.attrs["complete"] = np.int64(0)
        for k, v in attrs.items():
            f.attrs[k] = v
        vlen_filters = {k: v for k, v in _FILTERS.items() if k != "fletcher32"}
        _coordinate(f, "arm", np.array(layout.arms, dtype=h5py.string_dtype()), "1",
                    "intervention arm", vlen_filters)
        _coordinate(f, "patient", np.arange(n, dtype=np.int64), "1", "patient index", _FILTERS)
        _coordinate(f, "time", np.asarray(layout.times, np.float64), "day",
                    "time since the start of the simulation", _FILTERS)
        _coordinate(f, "chunk", np.arange(n_chunks, dtype=np.int64), "1",
                    "computation chunk index", _FILTERS)
        for name, unit in layout.outputs.items():
            _variable(f, name, ("arm", "patient", "time"), np.float32, (1, pc, nt), unit,
                      desc.get(name, name))
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
            ds = _variable(f, stored, ("patient",), np.float64, (pc,), unit,
                           desc.get(stored, name))
            ds.attrs["parameter"] = name
        codes = sorted(int(c) for c in status_meanings)
        ds = _variable(f, "status", ("arm", "patient"), np.int8, (1, pc), "1",
                       "outcome of the simulation per arm and patient (-1: not computed)")
        ds.attrs["flag_values"] = np.array(codes, dtype=np.int8)
        ds.attrs["flag_meanings"] = " ".join(status_meanings[c] for c in codes)
        ds = _variable(f, "chunk_done", ("chunk",), np.uint8, (n_chunks,), "1",
                       "1 once the chunk's patients are written, else 0")
        ds[...] = 0
        ds.attrs["chunk_size"] = np.int64(layout.chunk_size)
    with open(tmp, "rb") as fh:  # on disk before it replaces anything
        os.fsync(fh.fileno())


def _replace(tmp: Path, path: Path) -> None:
    """Move a finished file into place. A journal left beside ``path`` belongs to the file being
    replaced: it is settled first (undone, or deleted if that file is gone), so that it can
    never be applied to the new file."""
    if journal_path(path).exists():
        if path.exists():
            recover(path)
        else:
            journal_path(path).unlink(missing_ok=True)
    os.replace(tmp, path)


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
    attrs = {str(k): _attr_value(str(k), v) for k, v in attrs.items()}
    parent = path.parent
    if path.is_dir():
        raise StoreError(f"{path}: is a directory, expected a file path")
    if path.exists() and not force:
        raise StoreError(f"{path}: file exists; pass --force to overwrite it")
    if not parent.is_dir():
        raise StoreError(f"{path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"{path}: directory {parent} is not writable")
    tmp = path.with_name(path.name + ".tmp")
    try:
        _build(tmp, layout, attrs, status_meanings)
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


# --- opening --------------------------------------------------------------------------------


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


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
    for name, obj in f.items():
        if not isinstance(obj, h5py.Dataset) or name in _RESERVED:
            continue
        if obj.ndim == 3:
            outputs.append(name)
        elif obj.ndim == 1 and "parameter" in obj.attrs:
            parameters.append(_text(obj.attrs["parameter"]))
        elif obj.ndim == 1:
            covariates.append(name)
    return outputs, covariates, parameters


# --- crash safety: write sessions with an undo journal -----------------------------------------

JOURNAL_SUFFIX = ".journal"
_MAGIC = b"popsim-journal/1"
_HEAD = struct.Struct("<16sQ")  # magic, size of the cohort file when the session began
_REC = struct.Struct("<QQ")  # offset, length (then the old bytes)
_CRC = struct.Struct("<I")  # zlib.crc32 of the header / of a record (offset, length, bytes)
_WRITER_WAIT = 30.0  # seconds a write session waits for readers (e.g. a report) to close the file


def journal_path(path: str | os.PathLike) -> Path:
    """The undo journal of the cohort file ``path`` (``<path>.journal``); it exists only while a
    write session is running or after one was killed."""
    path = Path(path)
    return path.with_name(path.name + JOURNAL_SUFFIX)


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _pwrite_all(fd: int, data, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


class _UndoFile(io.RawIOBase):
    """The cohort file as HDF5 sees it during a write session (h5py's ``fileobj`` driver).

    Reads go to the file. Before a write (or truncation) changes bytes the file held when the
    session began (offset < ``size``), the old bytes are appended to the journal as a checksummed
    record, each byte range once (the first copy is the original). Bytes past ``size`` (new chunk
    data, which is almost everything a chunk writes) need no record: undoing truncates them away.
    A record is complete in the journal before the file write it protects starts, so a kill at
    any point leaves a journal that undoes every change made so far (a torn last record protects
    a write that never happened).

    h5py does not always pass on an exception raised here (when HDF5 writes from an object's
    destructor it prints the exception and goes on), so an exception in a write or truncation
    (an ``OSError``, or a ``KeyboardInterrupt`` that lands here) is kept in ``failure``
    instead, later writes are skipped, and the session is undone and the exception raised when
    it ends.
    """

    def __init__(self, fd: int, journal_fd: int, size: int):
        super().__init__()
        self._fd, self._jfd, self._size = fd, journal_fd, size
        self._pos = 0
        self._saved: list[tuple[int, int]] = []  # disjoint, sorted byte ranges already journaled
        self.journaled_bytes = 0
        self.failure: BaseException | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos,
                os.SEEK_END: os.fstat(self._fd).st_size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:
        try:
            n = os.preadv(self._fd, [buffer], self._pos)
        except BaseException as e:
            self.failure = self.failure or e
            raise
        self._pos += n
        return n

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.failure is None:
            try:
                self._save(self._pos, self._pos + len(view))
                _pwrite_all(self._fd, view, self._pos)
            except BaseException as e:
                self.failure = e
        self._pos += len(view)
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        if self.failure is None:
            try:
                self._save(size, self._size)
                os.ftruncate(self._fd, size)
            except BaseException as e:
                self.failure = e
        return size

    def flush(self) -> None:
        pass

    def _save(self, start: int, stop: int) -> None:
        """Journal the original bytes of ``[start, stop)`` that are not journaled yet."""
        todo, cursor, stop = [], start, min(stop, self._size)
        for a, b in self._saved:
            if a >= stop:
                break
            if b <= cursor:
                continue
            if a > cursor:
                todo.append((cursor, a))
            cursor = max(cursor, b)
        if cursor < stop:
            todo.append((cursor, stop))
        for a, b in todo:
            old = os.pread(self._fd, b - a, a)
            head = _REC.pack(a, len(old))
            _write_all(self._jfd, head + old + _CRC.pack(zlib.crc32(old, zlib.crc32(head))))
            self.journaled_bytes += len(old)
        if todo:
            merged: list[tuple[int, int]] = []
            for a, b in sorted(self._saved + todo):
                if merged and a <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], b))
                else:
                    merged.append((a, b))
            self._saved = merged


def _lock(fd: int, path: Path, wait: float = 0.0) -> None:
    """An exclusive lock on the open cohort file (released when ``fd`` is closed, also when the
    process is killed): one writer at a time, and no undo under a live writer. HDF5 readers hold
    a shared lock on the file while they have it open; a writer waits up to ``wait`` seconds
    for them to close it."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StoreError(f"{path}: is open in another process (a run writing it, or a "
                                 "reader); try again when it is closed") from None
            time.sleep(0.05)
        except OSError as e:
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                return  # a file system without locks: go on, as HDF5 does
            raise StoreError(f"{path}: cannot lock ({e.strerror})") from None


def _undo(path: Path, fd: int) -> bool:
    """Undo the session that left ``<path>.journal`` (``fd``: the file, open and locked).
    Returns whether there was a journal. Safe to repeat if this itself is interrupted."""
    jpath = journal_path(path)
    try:
        data = jpath.read_bytes()
    except FileNotFoundError:
        return False
    n = _HEAD.size + _CRC.size
    if len(data) >= n and _CRC.unpack_from(data, _HEAD.size)[0] == zlib.crc32(data[:_HEAD.size]):
        magic, size = _HEAD.unpack_from(data)
        if magic == _MAGIC:
            pos = n
            while pos + _REC.size <= len(data):
                offset, length = _REC.unpack_from(data, pos)
                end = pos + _REC.size + length
                if end + _CRC.size > len(data) or _CRC.unpack_from(data, end)[0] != zlib.crc32(
                        data[pos + _REC.size:end], zlib.crc32(data[pos:pos + _REC.size])):
                    break  # torn last record: the write it protects never started
                _pwrite_all(fd, memoryview(data)[pos + _REC.size:end], offset)
                pos = end + _CRC.size
            os.ftruncate(fd, size)
    # (a torn header: the session died before it touched the file)
    os.unlink(jpath)
    return True


def recover(path: str | os.PathLike) -> bool:
    """Undo a write session that was killed, restoring the file as it was before the session
    (this is automatic on every popsim open of the file). Returns whether there was one.

    Raises:
        StoreError: another process has the file open, or it is not writable here.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as e:
        raise StoreError(f"{path}: an interrupted write left {journal_path(path).name}, which "
                         f"cannot be undone here ({e.strerror})") from None
    try:
        _lock(fd, path)
        return _undo(path, fd)
    except OSError as e:
        raise StoreError(f"{path}: cannot undo the interrupted write in "
                         f"{journal_path(path).name} ({e.strerror})") from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def _writing(path: str | os.PathLike, what: str):
    """The cohort file open for writing (an ``h5py.File``) as one all-or-nothing session: any
    exception, or the death of the process, leaves the file as it was before. ``what`` names
    the change in error messages."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such file")
    if not path.is_file() or not h5py.is_hdf5(path):
        raise StoreError(f"{path} is not a popsim cohort file (not an HDF5 file)")
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as e:
        raise StoreError(f"{path}: cannot open for writing ({e.strerror})") from None
    try:
        _lock(fd, path, wait=_WRITER_WAIT)
        try:
            _undo(path, fd)
        except OSError as e:
            raise StoreError(f"{path}: cannot undo the interrupted write in "
                             f"{journal_path(path).name} ({e.strerror})") from None
        jpath = journal_path(path)
        try:
            jfd = os.open(jpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            raise StoreError(f"{path}: cannot create its journal {jpath.name} "
                             f"({e.strerror})") from None
        try:
            head = _HEAD.pack(_MAGIC, os.fstat(fd).st_size)
            _write_all(jfd, head + _CRC.pack(zlib.crc32(head)))
            raw = _UndoFile(fd, jfd, os.fstat(fd).st_size)
            try:
                f = h5py.File(raw, "r+")
            except OSError as e:
                raise StoreError(f"{path}: cannot open ({str(e).splitlines()[0]})") from None
            try:
                _check_format(f, path)
                yield f
            finally:
                try:
                    f.close()  # HDF5 writes its metadata (through raw, journaled)
                except OSError as e:
                    raw.failure = raw.failure or e
            if isinstance(raw.failure, OSError):
                reason = raw.failure.strerror or str(raw.failure)
                raise StoreError(f"{path}: cannot write {what} ({reason})") from None
            if raw.failure is not None:
                raise raw.failure
        except BaseException:
            os.close(jfd)
            with contextlib.suppress(OSError):  # else the next open undoes it
                _undo(path, fd)
            raise
        os.close(jfd)
        os.unlink(jpath)  # the commit: the session's changes stay
    finally:
        os.close(fd)


# --- writing --------------------------------------------------------------------------------


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


def write_chunk(path: str | os.PathLike, chunk_index: int, start: int,
                covariates: dict[str, np.ndarray], parameters: dict[str, np.ndarray],
                outputs: dict[str, np.ndarray], status: np.ndarray) -> None:
    """Write patients ``start .. start+n-1`` (chunk ``chunk_index``), then mark it done and flush.

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
    with _writing(path, f"chunk {chunk_index}") as f:
        out_names, cov_names, par_names = _inventory(f)
        na, n_total, nt = len(f["arm"]), len(f["patient"]), len(f["time"])
        done = f["chunk_done"]
        csize = int(done.attrs["chunk_size"])
        if isinstance(chunk_index, bool) or not isinstance(chunk_index, numbers.Integral) \
                or not 0 <= chunk_index < done.shape[0]:
            raise StoreError(f"{path}: chunk index {chunk_index!r} is outside "
                             f"0..{done.shape[0] - 1}")
        status = np.asarray(status)
        if status.ndim != 2:
            raise StoreError(f"{path}: status has shape {status.shape}, expected (arm, patient)")
        n = status.shape[1]
        expected_start = int(chunk_index) * csize
        expected_n = min(csize, n_total - expected_start)
        if start != expected_start or n != expected_n:
            raise StoreError(f"{path}: chunk {chunk_index} holds patients {expected_start}.."
                             f"{expected_start + expected_n - 1}, got {n} patients from {start}")
        stop = start + n
        status = _codes(path, "status", status, (na, n), f["status"].attrs["flag_values"])
        _same_names(path, "outputs", outputs, out_names)
        _same_names(path, "covariates", covariates, cov_names)
        _same_names(path, "parameters", parameters, par_names)
        data: dict[str, np.ndarray] = {}
        for name, v in outputs.items():
            data[name] = _real_array(path, name, v, (na, n, nt)).astype(np.float32)
        for name, v in covariates.items():
            ds = f[name]
            if "flag_values" in ds.attrs:
                data[name] = _codes(path, name, v, (n,), ds.attrs["flag_values"])
            else:
                data[name] = _real_array(path, name, v, (n,)).astype(np.float64)
        for name, v in parameters.items():
            data[f"param_{name}"] = _real_array(path, name, v, (n,)).astype(np.float64)
        try:
            for name, a in data.items():
                if a.ndim == 3:
                    f[name][:, start:stop, :] = a
                else:
                    f[name][start:stop] = a
            f["status"][:, start:stop] = status
            done[chunk_index] = 1
        except OSError as e:
            raise StoreError(f"{path}: cannot write chunk {chunk_index} "
                             f"({str(e).splitlines()[0]})") from None


def finalize(path: str | os.PathLike) -> None:
    """Mark the file complete (root ``complete`` = 1); every chunk must be done."""
    with _writing(path, "the completion mark") as f:
        done = f["chunk_done"][...].astype(bool)
        if not done.all():
            missing = np.flatnonzero(~done)
            raise StoreError(f"{path}: {missing.size} of {done.size} chunks are not written "
                             f"yet (first: chunk {missing[0]})")
        f.attrs["complete"] = np.int64(1)
        f.attrs["completed"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def chunks_done(path: str | os.PathLike) -> np.ndarray:
    """Which chunks are written: bool, shape ``(n_chunks,)``."""
    with _open(path) as f:
        return f["chunk_done"][...].astype(bool)


def read_attrs(path: str | os.PathLike) -> dict:
    """The root attributes (strings as ``str``, numbers as numpy scalars)."""
    with _open(path) as f:
        return {k: (_text(v) if isinstance(v, (bytes, str)) else v) for k, v in f.attrs.items()}


def is_complete(path: str | os.PathLike) -> bool:
    """Whether :func:`finalize` has marked the file complete."""
    with _open(path) as f:
        return bool(f.attrs["complete"])


# --- reading --------------------------------------------------------------------------------


class Cohort:
    """Read access to a cohort file for reports. Metadata is read on opening; arrays are read
    from the file on each request (only what is asked), so nothing stays open in between.

    Attributes:
        path: the file.
        arms: arm names; ``times``: float64 days ``(time,)``; ``n_patients``: int.
        attrs: root attributes; ``complete``: whether the file was finalized (at opening).
        output_names, covariate_names, parameter_names: what the file holds.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        with _open(self.path) as f:
            self.attrs = {k: (_text(v) if isinstance(v, (bytes, str)) else v)
                          for k, v in f.attrs.items()}
            self.arms: tuple[str, ...] = tuple(_text(a) for a in f["arm"][...])
            self.times: np.ndarray = f["time"][...]
            self.n_patients = int(f["patient"].shape[0])
            outs, covs, pars = _inventory(f)
            self.output_names, self.covariate_names, self.parameter_names = (
                tuple(outs), tuple(covs), tuple(pars))
            self._units = {k: _text(ds.attrs["units"]) for k, ds in f.items()
                           if isinstance(ds, h5py.Dataset) and "units" in ds.attrs}
        self.complete = bool(self.attrs.get("complete", 0))

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

    def _read(self, name: str, sel=Ellipsis) -> np.ndarray:
        with _open(self.path) as f:
            try:
                return f[name][sel]
            except OSError as e:  # e.g. a Fletcher-32 checksum mismatch
                raise StoreError(f"{self.path}: cannot read {name} "
                                 f"({str(e).splitlines()[0]})") from None

    def _arm_index(self, arm: int | str | slice) -> int | slice:
        if isinstance(arm, str):
            if arm not in self.arms:
                raise StoreError(f"{self.path}: no arm {arm!r} (arms: {list(self.arms)})")
            return self.arms.index(arm)
        return arm

    def output(self, name: str, arm: int | str | slice = slice(None),
               time: int | slice = slice(None)) -> np.ndarray:
        """An output, float32 ``(arm, patient, time)``; an integer (or name) ``arm`` and/or an
        integer ``time`` index drop that axis. Unwritten values are NaN."""
        if name not in self.output_names:
            raise StoreError(f"{self.path}: no output {name!r}")
        return self._read(name, (self._arm_index(arm), slice(None), time))

    def covariate(self, name: str) -> np.ndarray:
        """A covariate, ``(patient,)``: float64 (NaN if unwritten), or for a category its labels
        as an array of ``str`` ("" for patients not yet written)."""
        if name not in self.covariate_names:
            raise StoreError(f"{self.path}: no covariate {name!r}")
        with _open(self.path) as f:
            ds = f[name]
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

    def parameter(self, name: str) -> np.ndarray:
        """A sampled parameter (name without ``param_``), float64 ``(patient,)``."""
        if name not in self.parameter_names:
            raise StoreError(f"{self.path}: no sampled parameter {name!r}")
        return self._read(f"param_{name}")

    @property
    def status(self) -> np.ndarray:
        """Status codes, int8 ``(arm, patient)``; -1 for patients not computed."""
        return self._read("status")

    @property
    def status_meanings(self) -> dict[int, str]:
        """Status code -> meaning, as stored in the file."""
        with _open(self.path) as f:
            a = f["status"].attrs
            return dict(zip((int(v) for v in a["flag_values"]),
                            _text(a["flag_meanings"]).split(), strict=True))


def open_cohort(path: str | os.PathLike) -> Cohort:
    """Open a cohort file for reading.

    Raises:
        StoreError: ``"<path> is not a popsim cohort file"`` for anything that is not one.
    """
    return Cohort(path)


# --- several processes: one shard file each, stitched by virtual datasets ---------------------

def shard_path(path: str | os.PathLike, process: int, n_processes: int) -> Path:
    """The shard file of ``process`` for the master file ``path``: ``<stem>.part<i>of<n>.h5``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.part{process}of{n_processes}{path.suffix}")


def _dim_names(ds: h5py.Dataset) -> list[str]:
    return [ds.dims[i][0].name.lstrip("/") if len(ds.dims[i]) else "" for i in range(ds.ndim)]


def stitch(path: str | os.PathLike, shards: list[str | os.PathLike], owner) -> None:
    """Write the master file ``path``: the layout of the shards, every patient-axis variable a
    virtual dataset whose chunk ``c`` comes from ``shards[owner(c)]`` (shard files named by their
    base name, so the set can be moved together). Each shard must hold its chunks."""
    import shutil

    path = Path(path)
    shards = [Path(s) for s in shards]
    for k, s in enumerate(shards):
        done = chunks_done(s)
        mine = [c for c in range(done.size) if owner(c) == k]
        if not done[mine].all():
            raise StoreError(f"{s}: {int((~done[mine]).sum())} of its chunks are not written")
    tmp = path.with_name(path.name + ".tmp")
    shutil.copyfile(shards[0], tmp)
    with h5py.File(tmp, "r+") as f:
        n = f["patient"].shape[0]
        size = int(f["chunk_done"].attrs["chunk_size"])
        n_chunks = f["chunk_done"].shape[0]
        for name in list(f):
            ds = f[name]
            dims = _dim_names(ds)
            if "patient" not in dims or name == "patient":
                continue
            axis = dims.index("patient")
            attrs = {k: v for k, v in ds.attrs.items() if k != "DIMENSION_LIST"}
            layout = h5py.VirtualLayout(shape=ds.shape, dtype=ds.dtype)
            for c in range(n_chunks):
                sel = [slice(None)] * ds.ndim
                sel[axis] = slice(c * size, min((c + 1) * size, n))
                src = h5py.VirtualSource(shards[owner(c)].name, name, shape=ds.shape)
                layout[tuple(sel)] = src[tuple(sel)]
            fill = ds.fillvalue
            for i, d in enumerate(dims):
                if d:
                    ds.dims[i].detach_scale(f[d])
            del f[name]
            v = f.create_virtual_dataset(name, layout, fillvalue=fill)
            for i, d in enumerate(dims):
                if d:
                    v.dims[i].attach_scale(f[d])
            for k, val in attrs.items():
                v.attrs[k] = val
        f["chunk_done"][...] = 1
        f.attrs["shards"] = ",".join(s.name for s in shards)
        for k in ("process_id",):
            if k in f.attrs:
                del f.attrs[k]
        f.attrs["complete"] = np.int64(1)
        f.attrs["completed"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    _replace(tmp, path)
