"""Where popsim keeps compiled XLA programs between processes, and what invalidates them. Imports
no JAX (``popsim cache info|clear`` run without it); :mod:`popsim.compilation` points JAX at the
folder.

The cache lives in a root folder: ``$POPSIM_CACHE_DIR``, else ``$XDG_CACHE_HOME/popsim``, else
``~/.cache/popsim`` (``POPSIM_CACHE_DIR=off``, or ``--no-compile-cache`` on the command line,
turns it off). Inside it, one folder per :func:`cache_key`: popsim's version, JAX's and jaxlib's
versions and a fingerprint of popsim's program sources and of the numerical libraries' versions.
A change to any of them starts a new, empty folder, so a program of an older model is never
loaded; the old folders stay until ``popsim cache clear`` removes them (``info`` lists them as
stale). Within a folder, JAX's own key (a hash of the program, its compile options and the
backend) names each entry; its ``traced`` subfolder holds the traced programs of
:mod:`popsim.programs`, so that a warm start does not trace them either.

When ``JAX_COMPILATION_CACHE_DIR`` is set and ``POPSIM_CACHE_DIR`` is not, the user has chosen
JAX's cache folder: popsim uses it as it is and neither reports nor clears it (nor keeps traced
programs on disk).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

ENV_DIR = "POPSIM_CACHE_DIR"
OFF = "off"
JAX_ENV_DIR = "JAX_COMPILATION_CACHE_DIR"

ENTRY_SUFFIX = "-cache"
"""JAX's cache writes one file ``<program>-<hash>-cache`` per compiled program."""

TRACED_SUBFOLDER = "traced"
"""Subfolder of a key folder where :mod:`popsim.programs` keeps traced programs."""

NOT_PROGRAM_SOURCES = ("cli", "store", "report.py", "progress.py", "files.py",
                       "compile_cache.py")
"""Package paths (relative to ``popsim/``) left out of the fingerprint: the command line, the
cohort file, reports and progress display, which shape no compiled program. Every other ``.py``
file is in it, so a new module counts until it is listed here."""

LIBRARIES = ("diffrax", "equinox", "optimistix", "lineax", "optax", "numpy")
"""Libraries whose version is part of the fingerprint (their code is traced into programs)."""

_KEY = re.compile(r"^popsim-[0-9A-Za-z.+!-]+_jax-[0-9A-Za-z.+!-]+_jaxlib-[0-9A-Za-z.+!-]+_"
                  r"[0-9a-f]{16}$")


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "none"


def _package_root() -> Path:
    return Path(__file__).resolve().parent


def program_sources() -> list[Path]:
    """The source files of popsim that define compiled programs, in a fixed order."""
    root = _package_root()
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if not any(rel == x or rel.startswith(x + "/") for x in NOT_PROGRAM_SOURCES):
            out.append(path)
    return out


def fingerprint() -> str:
    """16 hex digits of SHA-256 over :func:`program_sources` (paths and bytes) and the versions
    of :data:`LIBRARIES`."""
    h = hashlib.sha256()
    root = _package_root()
    for path in program_sources():
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    for lib in LIBRARIES:
        h.update(f"{lib}={_version(lib)}\0".encode())
    return h.hexdigest()[:16]


def cache_key() -> str:
    """The name of this installation's folder: ``popsim-V_jax-V_jaxlib-V_<fingerprint>``."""
    from popsim._version import __version__

    return (f"popsim-{__version__}_jax-{_version('jax')}_jaxlib-{_version('jaxlib')}_"
            f"{fingerprint()}")


def root() -> Path | None:
    """The cache root (see the module docstring), or ``None`` when the cache is off."""
    value = os.environ.get(ENV_DIR)
    if value is not None and value.strip():
        if value.strip().lower() == OFF:
            return None
        return Path(value).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg and xdg.strip() else Path.home() / ".cache"
    return base / "popsim"


def jax_dir_chosen_by_user() -> str | None:
    """``JAX_COMPILATION_CACHE_DIR`` when it decides the folder (set, and ``POPSIM_CACHE_DIR``
    not set)."""
    own = os.environ.get(ENV_DIR)
    theirs = os.environ.get(JAX_ENV_DIR)
    if (own is None or not own.strip()) and theirs:
        return theirs
    return None


def directory() -> Path | None:
    """The folder JAX should use for popsim's programs, or ``None`` (cache off, or the user's
    ``JAX_COMPILATION_CACHE_DIR`` decides)."""
    base = root()
    if base is None or jax_dir_chosen_by_user():
        return None
    return base / cache_key()


@dataclass(frozen=True)
class FolderInfo:
    """One key folder of the cache root."""

    path: Path
    entries: int  # compiled programs
    size_bytes: int  # everything in it, traced programs included
    current: bool  # this installation's key
    traced: int = 0  # traced programs (popsim.programs) in its TRACED_SUBFOLDER


def _folder_info(path: Path, current: bool) -> FolderInfo:
    entries, traced, size = 0, 0, 0
    for f in path.rglob("*"):
        if f.is_file() and not f.is_symlink():
            size += f.stat().st_size
            if f.parent == path:
                entries += f.name.endswith(ENTRY_SUFFIX)
            elif f.parent == path / TRACED_SUBFOLDER and not f.name.startswith("."):
                traced += 1
    return FolderInfo(path, entries, size, current, traced)


def folders(base: Path | None = None) -> list[FolderInfo]:
    """Every key folder in the cache root (this installation's first, if it exists)."""
    base = root() if base is None else base
    if base is None or not base.is_dir():
        return []
    key = cache_key()
    out = [_folder_info(p, p.name == key) for p in sorted(base.iterdir())
           if p.is_dir() and not p.is_symlink() and _KEY.match(p.name)]
    return sorted(out, key=lambda f: not f.current)


def clear(stale_only: bool = False, base: Path | None = None) -> list[FolderInfo]:
    """Delete the key folders of the cache root (only folders named like :func:`cache_key`,
    directly inside it, never symlinks; with ``stale_only``, all but this installation's);
    returns what was deleted."""
    gone = []
    for f in folders(base):
        if stale_only and f.current:
            continue
        shutil.rmtree(f.path)
        gone.append(f)
    return gone


def human_size(n: int) -> str:
    """``n`` bytes as B, kB, MB or GB (powers of 1000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"
