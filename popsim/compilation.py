"""JAX's side of the compile cache: :func:`enable` points JAX's persistent compilation cache at
popsim's folder (:mod:`popsim.compile_cache`), and :class:`CompileCounter` counts what XLA
compiled and what came from the cache.

:mod:`popsim.batch` calls :func:`enable` when it is imported, so every application (runs,
validation, studies, calibration, benchmarks) and the Python API use the cache before their
first compilation. Every program is eligible: no minimum compile time, no minimum entry size.
A compiled program loaded from the cache is the executable XLA built before, so results are the
same bits with and without it.
"""

from __future__ import annotations

import gc
import threading
from dataclasses import dataclass, field
from pathlib import Path

import jax

from popsim import compile_cache
from popsim.programs import LOADED_EVENT, WRITTEN_EVENT

_SET_BY_POPSIM: list[str] = []  # the folder this process gave JAX, if any


def enable() -> str | None:
    """Point JAX at :func:`popsim.compile_cache.directory` (again, if the environment changed);
    returns the folder, or ``None`` when the cache is off or the user's
    ``JAX_COMPILATION_CACHE_DIR`` decides (then JAX's settings are left alone).

    Call before the first compilation of the process: JAX opens its cache at the first
    compilation after its folder is set."""
    from jax.experimental.compilation_cache import compilation_cache as cc

    if compile_cache.jax_dir_chosen_by_user():
        return None
    folder = compile_cache.directory()
    current = jax.config.jax_compilation_cache_dir  # pyright: ignore[reportAttributeAccessIssue]  # a flag JAX sets at run time
    if folder is None:
        if _SET_BY_POPSIM and current == _SET_BY_POPSIM[-1]:  # turned off since popsim set it
            jax.config.update("jax_compilation_cache_dir", None)
            cc.reset_cache()
            _SET_BY_POPSIM.clear()
        return None
    target = str(folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # -1: no size limit
    if current != target:
        jax.config.update("jax_compilation_cache_dir", target)
        cc.reset_cache()  # reopen at the new folder on the next compilation
    _SET_BY_POPSIM[:] = [target]
    share_programs_between_devices()
    return target


def share_programs_between_devices() -> bool:
    """Key JAX's compile cache without the device a program is compiled for, so a program
    compiled for one device is loaded, not compiled again, for the others. Returns whether the
    key is device-free.

    JAX's key includes the device assignment, except on GPU, where it puts every assignment in
    a canonical form (``strip_device_assignment`` of ``jax._src.cache_key``) so that processes
    of one job share programs; on CPU each host device of ``popsim run --devices N`` would compile
    its own copy of every program. This asks for the GPU's canonical form on every platform. A
    program loaded for another device is the executable XLA built for the first, given the
    requesting call's device assignment when JAX loads it (as on GPU), so results are the same
    bits (``tests/test_scale.py`` runs a chunk on 4 host devices against one). With a JAX whose
    private key function lacks that option, nothing changes and each device compiles its own.
    """
    import inspect

    from jax._src import cache_key

    hash_options = cache_key._hash_serialized_compile_options
    if getattr(hash_options, "device_free", False):
        return True
    if "strip_device_assignment" not in inspect.signature(hash_options).parameters:
        return False

    def device_free(hash_obj, compile_options_obj, strip_device_assignment=False):
        return hash_options(hash_obj, compile_options_obj, strip_device_assignment=True)

    device_free.device_free = True  # pyright: ignore[reportFunctionMemberAccess]
    cache_key._hash_serialized_compile_options = device_free
    return True


def programs_shared_between_devices() -> bool:
    """Whether a program compiled for one device is found in the compile cache by the others:
    the cache is on and keyed without the device (:func:`share_programs_between_devices`)."""
    from jax._src import cache_key

    return (jax.config.jax_compilation_cache_dir is not None  # pyright: ignore[reportAttributeAccessIssue]  # a flag JAX sets at run time
            and getattr(cache_key._hash_serialized_compile_options, "device_free", False))


MAP_HEADROOM = 30_000
"""Memory maps kept free for the next programs. Linux limits a process to ``vm.max_map_count``
maps (65,530 by default) and XLA's CPU code takes many: one set of ``popsim run``'s programs on 2
devices ~11,000. Past the limit XLA aborts the process ("LLVM ERROR: Unable to allocate section
memory"), taking a notebook's kernel with it, after about five different configs or solver
settings in one process."""


def memory_maps() -> tuple[int, int] | None:
    """``(maps, limit)``: this process's memory maps and the most Linux allows it; ``None``
    where ``/proc`` does not say (not Linux)."""
    try:
        with open("/proc/self/maps", "rb") as f:
            n = sum(1 for _ in f)
        return n, int(Path("/proc/sys/vm/max_map_count").read_text())
    except (OSError, ValueError):
        return None


def release_programs() -> None:
    """Drop every program this process has compiled (JAX's in-memory caches, and with them
    their memory maps). A program needed again is loaded from the on-disk cache in seconds, the
    same executable, so results do not change."""
    jax.clear_caches()
    gc.collect()


def make_room_for_programs(headroom: int = MAP_HEADROOM) -> bool:
    """Release this process's programs (:func:`release_programs`) when fewer than ``headroom``
    memory maps are left below the limit; returns whether it did. Called before programs are
    compiled ahead of a run (:func:`popsim.devices.compile_ahead`) and before a batch is
    simulated (:func:`popsim.devices.simulate_arms`), so a long session of runs, studies or
    benchmarks never reaches the limit."""
    maps = memory_maps()
    if maps is None or maps[0] + headroom <= maps[1]:
        return False
    release_programs()
    return True


_BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
_TRACE = "/jax/core/compile/jaxpr_trace_duration"
_LOWER = "/jax/core/compile/jaxpr_to_mlir_module_duration"
_HIT = "/jax/compilation_cache/cache_hits"
_WRITE = "/jax/compilation_cache/cache_misses"  # recorded when an entry is written


@dataclass
class CompileCounter:
    """Counts, while active (a context manager), XLA compilations and compile-cache hits of this
    process, from JAX's monitoring events (every thread).

    Attributes:
        requests: programs handed to XLA (compiled, or loaded from the cache).
        cache_hits: of those, loaded from the persistent cache.
        cache_writes: programs written to the cache.
        backend_seconds: wall time in XLA compilation or cache loading, summed over programs
            (programs compiled in parallel threads overlap).
        trace_seconds, lower_seconds: Python tracing and lowering to MLIR, summed (nested
            traces count in their own and in the enclosing one).
        traced_loaded, traced_written: traced programs read from, or written to, the disk
            store of :mod:`popsim.programs` (a loaded one is not traced again).
        programs: the name of every program XLA compiled (not loaded).
    """

    requests: int = 0
    cache_hits: int = 0
    cache_writes: int = 0
    backend_seconds: float = 0.0
    trace_seconds: float = 0.0
    lower_seconds: float = 0.0
    traced_loaded: int = 0
    traced_written: int = 0
    programs: list[str] = field(default_factory=list)
    _hit_threads: set[int] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def compilations(self) -> int:
        """Programs XLA compiled (not loaded from the cache)."""
        return self.requests - self.cache_hits

    def _on_event(self, event: str, **kw) -> None:
        if event in (LOADED_EVENT, WRITTEN_EVENT):
            with self._lock:
                if event == LOADED_EVENT:
                    self.traced_loaded += 1
                else:
                    self.traced_written += 1
        elif event in (_HIT, _WRITE):
            with self._lock:
                if event == _HIT:  # inside the backend compile event of this thread
                    self.cache_hits += 1
                    self._hit_threads.add(threading.get_ident())
                else:
                    self.cache_writes += 1

    def _on_duration(self, event: str, duration_secs: float, **kw) -> None:
        with self._lock:
            if event == _BACKEND_COMPILE:
                self.requests += 1
                self.backend_seconds += duration_secs
                if threading.get_ident() in self._hit_threads:
                    self._hit_threads.discard(threading.get_ident())
                else:
                    self.programs.append(str(kw.get("fun_name", "?")))
            elif event == _TRACE:
                self.trace_seconds += duration_secs
            elif event == _LOWER:
                self.lower_seconds += duration_secs

    def __enter__(self) -> CompileCounter:
        jax.monitoring.register_event_listener(self._on_event)
        jax.monitoring.register_event_duration_secs_listener(self._on_duration)
        return self

    def __exit__(self, *exc) -> bool:
        jax.monitoring.unregister_event_listener(self._on_event)
        jax.monitoring.unregister_event_duration_listener(self._on_duration)
        return False

    def summary(self) -> dict:
        """The counts and seconds as a plain dict (for JSON)."""
        return {"compilations": self.compilations, "cache_hits": self.cache_hits,
                "cache_writes": self.cache_writes, "programs_requested": self.requests,
                "backend_seconds": round(self.backend_seconds, 3),
                "trace_seconds": round(self.trace_seconds, 3),
                "lower_seconds": round(self.lower_seconds, 3),
                "traced_programs_loaded": self.traced_loaded,
                "traced_programs_written": self.traced_written}
