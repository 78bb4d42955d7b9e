"""Output files that never destroy inputs or leave half-written results. Imports no JAX.

Every command that writes checks its output paths before any work (:func:`check_output`):
the path must not be (or resolve to) one of the command's inputs, even with ``force``; it must
have an allowed suffix; an existing file is replaced only with ``force``. Results are written
under a temporary name in the same directory and renamed into place when complete
(:func:`atomic_file`, :func:`atomic_directory`), so a failure or a kill leaves either the old
result or the new one, never a mixture.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from popsim.options import Message, Option


class OutputError(ValueError):
    """An output path that cannot be used, in one line."""


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file (hard and symbolic links included)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output(path: str | os.PathLike, *, flag: str = "out", suffixes: tuple[str, ...] = (),
                 force: bool = False, inputs: Iterable[str | os.PathLike | None] = (),
                 directory: bool = False, what: str = "file") -> Path:
    """Check an output path before any work; returns it as a :class:`Path`.

    Args:
        flag: the option that gave the path (``out``, ``figure``; ``--out`` works too), named
            in the message as the front end shows it (:mod:`popsim.options`).
        suffixes: allowed suffixes (lower case, with the dot); empty: any.
        force: an existing output may be replaced.
        inputs: the command's input files: the output may never be one of them.
        directory: the output is a directory (created by the command).
        what: what the output is, for the message (``cohort file``, ``figure``).

    Raises:
        OutputError: one line naming the option, the path and what is allowed.
    """
    path = Path(path)
    given = Option(flag, path)
    force_ = Option("force", True)

    def fail(*parts):
        return OutputError(Message(given, ": ", *parts))

    for source in inputs:
        if source is not None and same_file(path, source):
            raise fail(f"is an input of this command ({source}); choose another path (",
                       force_, " never overwrites inputs)")
    if not directory and path.is_dir():
        raise fail("is a directory, expected a file path")
    if suffixes and path.suffix.lower() not in suffixes:
        raise fail(f"a {what} must end in {', '.join(suffixes)}")
    if directory:
        if path.exists() and not path.is_dir():
            raise fail("exists and is not a directory")
        if path.is_dir() and any(path.iterdir()) and not force:
            raise fail("directory exists and is not empty; pass ", force_,
                       " to replace its contents")
    elif path.exists() and not force:
        raise fail("file exists; pass ", force_, " to overwrite it")
    parent = path.parent
    if not parent.is_dir():
        raise fail(f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise fail(f"directory {parent} is not writable")
    return path


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``, on an
    error it is removed (``path`` keeps what it had)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file all-or-nothing (:func:`atomic_file`)."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``path``; on success it replaces ``path`` (an
    old ``path`` is moved aside first and deleted after), on an error it is removed and ``path``
    is untouched."""
    path = Path(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
