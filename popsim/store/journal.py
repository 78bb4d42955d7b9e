"""Crash safety of the cohort file: write sessions with an undo journal.

Every change to an existing cohort file is one all-or-nothing *write session*
(:func:`_writing`) with an undo journal ``<path>.journal``: before HDF5 overwrites any byte the
file had when the session began, the old bytes are appended to the journal (see
:class:`_UndoFile`); the session ends by deleting the journal. A process killed at any moment
(SIGKILL included) leaves either the state before the session or the state after it: the next
popsim open of the file (reading, ``--resume``) finds the journal, copies the old bytes back and
truncates the file to its old size (:func:`recover`). The journal is needed because HDF5 updates
its metadata in place, in no crash-safe order: a writer killed mid-write can leave a file that
cannot be opened (docs/DESIGN.md, "Cohort store").

Journal format: a header (magic, size of the file when the session began, CRC-32), then records
(offset, length, the old bytes, CRC-32), each complete before the write it protects starts; a
torn last record protects a write that never happened and is ignored.

Locking: a write session and an undo hold an exclusive ``flock`` on the file, so there is one
writer at a time and no undo under a live writer; HDF5 readers hold a shared lock while they
have the file open.

Process death is covered; an OS crash or power loss is not (nothing is fsync'd in order).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import struct
import time
import zlib
from pathlib import Path

import h5py

from .errors import StoreError

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


def _open_for_writing(path: Path) -> int:
    """The file descriptor of ``path`` open read-write and locked, once a write session that
    was killed is undone."""
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
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def _hdf5_file(path: Path, raw: _UndoFile, what: str):
    """``raw`` open with h5py. Closing it writes HDF5's metadata (through ``raw``, journaled);
    then a failure ``raw`` kept is raised (an ``OSError`` as :class:`StoreError`)."""
    try:
        f = h5py.File(raw, "r+")
    except OSError as e:
        raise StoreError(f"{path}: cannot open ({str(e).splitlines()[0]})") from None
    try:
        yield f
    finally:
        try:
            f.close()
        except OSError as e:
            raw.failure = raw.failure or e
    if isinstance(raw.failure, OSError):
        reason = raw.failure.strerror or str(raw.failure)
        raise StoreError(f"{path}: cannot write {what} ({reason})") from None
    if raw.failure is not None:
        raise raw.failure


@contextlib.contextmanager
def _writing(path: str | os.PathLike, what: str):
    """The cohort file open for writing (an ``h5py.File``) as one all-or-nothing session: any
    exception, or the death of the process, leaves the file as it was before. ``what`` names
    the change in error messages. The caller checks that the file is a cohort file."""
    path = Path(path)
    fd = _open_for_writing(path)
    try:
        jpath = journal_path(path)
        try:
            jfd = os.open(jpath, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            raise StoreError(f"{path}: cannot create its journal {jpath.name} "
                             f"({e.strerror})") from None
        try:
            size = os.fstat(fd).st_size
            head = _HEAD.pack(_MAGIC, size)
            _write_all(jfd, head + _CRC.pack(zlib.crc32(head)))
            with _hdf5_file(path, _UndoFile(fd, jfd, size), what) as f:
                yield f
        except BaseException:
            os.close(jfd)
            with contextlib.suppress(OSError):  # else the next open undoes it
                _undo(path, fd)
            raise
        os.close(jfd)
        os.unlink(jpath)  # the commit: the session's changes stay
    finally:
        os.close(fd)


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
