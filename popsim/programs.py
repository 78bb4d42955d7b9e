"""Compiled entry points whose traced programs are kept on disk, so that a warm start neither
traces nor compiles.

JAX's compile cache (:mod:`popsim.compilation`) skips XLA, but not Python: before looking a
program up, ``jax.jit`` traces the function and lowers it to StableHLO, and for the Newton steady
states, the steady-state fallback and the time course with its outputs that tracing (diffrax,
optimistix, the model's right-hand side traced once per Jacobian column and stage) is most of a
warm ``popsim run`` (benchmarks/RESULTS.md, "Time to first result").

A :class:`StoredProgram` traces its function once per distinct call signature and keeps the
traced program with ``jax.export`` (serialized StableHLO) in the ``traced`` subfolder of the
compile cache's folder (:func:`popsim.compile_cache.directory`: the same key of popsim's
sources and the library versions, the same switch ``--no-compile-cache`` /
``POPSIM_CACHE_DIR=off``, cleared by ``popsim cache clear``). Later processes deserialize it and
call it through a plain ``jax.jit``, whose XLA program then comes from the compile cache. Every
call goes through the exported program, with the disk store on or off (then it lives in memory
only), so the numbers are the same bits either way.

A program ``jax.export`` refuses (a custom call outside its list of stable ones, which popsim's
programs do not contain on CPU) is traced in every process, as a plain ``jax.jit`` is.

A call signature is the function, the static arguments' ``repr``, the structure of the other
arguments (with the static fields of their modules) and every array's shape, dtype and weak
type, the backend and the x64 flag; so static values must have a ``repr`` that shows their
value (dataclasses, strings, numbers, tuples do). A structure showing an object's address
(``<... at 0x...>``) has no key that holds across processes and is kept in memory only. Calls
inside another trace (a tracer among the arguments, e.g. under ``jax.grad``) and arguments
sharded over several devices use the plain ``jax.jit`` of the function instead: an exported
program is neither differentiated nor partitioned here.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import tempfile
import threading
from pathlib import Path

import jax
from jax import export as jax_export
from jax.core import Tracer

from popsim import compile_cache

LOADED_EVENT = "/popsim/traced_program/loaded"
WRITTEN_EVENT = "/popsim/traced_program/written"
"""JAX monitoring events recorded when a traced program is read from, or written to, the disk
store (:class:`popsim.compilation.CompileCounter` counts them)."""


def folder() -> Path | None:
    """Where traced programs are kept, or ``None`` when the compile cache is off."""
    base = compile_cache.directory()
    return None if base is None else base / compile_cache.TRACED_SUBFOLDER


def _spec(x) -> jax.ShapeDtypeStruct:
    aval = jax.typeof(x)
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype,  # pyright: ignore[reportAttributeAccessIssue]
                                weak_type=aval.weak_type)  # pyright: ignore[reportAttributeAccessIssue]


def _sharded_or_traced(leaves) -> bool:
    for x in leaves:
        if isinstance(x, Tracer):
            return True
        if isinstance(x, jax.Array) and len(x.sharding.device_set) > 1:
            return True
    return False


def _named(fn, name: str):
    """``fn`` under another name: XLA's program (compile logs, the compile cache's entries,
    :class:`popsim.compilation.CompileCounter`) is then named after the stored function, not
    ``call``."""
    def wrapper(*args):
        return fn(*args)

    wrapper.__name__ = wrapper.__qualname__ = name
    return wrapper


class StoredProgram:
    """``jax.jit(fn, static_argnames=...)`` whose traced program is stored on disk (see the
    module docstring). Called like the function; :meth:`trace` and :meth:`lower` as those of
    ``jax.jit`` (ahead-of-time compilation, :func:`popsim.devices.compile_ahead`)."""

    def __init__(self, fn, static_argnames: tuple[str, ...] = (),
                 compiler_options: dict[str, object] | None = None):
        self._fn = fn
        self._static = tuple(static_argnames)
        self._signature = inspect.signature(fn)
        self._name = f"{fn.__module__}.{fn.__qualname__}"
        self._options = compiler_options
        self._plain = jax.jit(fn, static_argnames=self._static, compiler_options=compiler_options)
        self._calls: dict[str, object] = {}  # call signature -> jax.jit of the exported call
        self._lock = threading.Lock()
        functools.update_wrapper(self, fn)

    def _split(self, args, kwargs):
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        static = {k: v for k, v in bound.arguments.items() if k in self._static}
        dynamic = {k: v for k, v in bound.arguments.items() if k not in self._static}
        return static, dynamic

    def _key(self, static: dict, tree, specs) -> str:
        text = repr((self._name, sorted((k, repr(v)) for k, v in static.items()), str(tree),
                     [(s.shape, str(s.dtype), s.weak_type) for s in specs],
                     jax.default_backend(), bool(jax.config.jax_enable_x64)))  # pyright: ignore[reportAttributeAccessIssue]
        return hashlib.sha256(text.encode()).hexdigest()

    def _flat(self, static: dict, tree):
        fn = self._fn

        def flat(*leaves):
            return fn(**jax.tree.unflatten(tree, leaves), **static)

        return jax.jit(_named(flat, fn.__name__), compiler_options=self._options)

    def _load(self, path: Path | None):
        if path is None or not path.is_file():
            return None
        try:
            exported = jax_export.deserialize(bytearray(path.read_bytes()))
        except Exception:  # truncated or from another writer: traced again and replaced
            return None
        jax.monitoring.record_event(LOADED_EVENT)
        return exported

    @staticmethod
    def _store(path: Path | None, exported) -> None:
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(exported.serialize())
            os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new
        except OSError:  # a read-only or full cache folder: kept in memory only
            return
        jax.monitoring.record_event(WRITTEN_EVENT)

    def _call_for(self, static: dict, leaves: list, tree):
        specs = [_spec(x) for x in leaves]
        key = self._key(static, tree, specs)
        with self._lock:
            call = self._calls.get(key)
            if call is None:
                store = folder()
                path = None if store is None else store / f"{self._fn.__name__}-{key}"
                if " at 0x" in str(tree):  # an object's identity in the structure: no
                    path = None            # faithful key across processes, memory only
                exported = self._load(path)
                if exported is None:
                    flat = self._flat(static, tree)
                    try:
                        exported = jax_export.export(flat)(*specs)
                    except ValueError:  # e.g. a custom call jax.export does not allow
                        self._calls[key] = flat  # traced in every process, as plain jit is
                        return flat
                    self._store(path, exported)
                call = self._calls[key] = jax.jit(_named(exported.call, self._fn.__name__),
                                                  compiler_options=self._options)
        return call

    def _resolve(self, args, kwargs):
        """The jitted callable for a call and the arguments to give it: the stored program and
        the flat leaves, or the plain jit and the call's own arguments."""
        static, dynamic = self._split(args, kwargs)
        leaves, tree = jax.tree.flatten(dynamic)
        if _sharded_or_traced(leaves):
            return self._plain, args, kwargs
        return self._call_for(static, leaves, tree), leaves, {}

    def __call__(self, *args, **kwargs):
        call, a, k = self._resolve(args, kwargs)
        return call(*a, **k)  # pyright: ignore[reportCallIssue]

    def trace(self, *args, **kwargs):
        """The ``jax.stages.Traced`` of a call (``.lower().compile()`` compiles it ahead)."""
        call, a, k = self._resolve(args, kwargs)
        return call.trace(*a, **k)  # pyright: ignore[reportAttributeAccessIssue]

    def lower(self, *args, **kwargs):
        """The ``jax.stages.Lowered`` of a call."""
        return self.trace(*args, **kwargs).lower()

    def signatures(self) -> int:
        """How many distinct call signatures this process has traced or loaded."""
        with self._lock:
            return len(self._calls)
