"""`popsim run`: sample a cohort, solve it chunk by chunk, stream it into one HDF5 file.

The cohort is processed in fixed-size chunks (the last one padded, so one compilation serves all);
every finished chunk is written by a background thread while the next one is computed (at most one
write pending, so host memory is bounded by two chunks, not by the cohort), and an interrupted run
keeps its finished chunks. Each chunk's write is all-or-nothing, even for a
process killed in the middle of it (:mod:`popsim.store`'s undo journal), so ``resume`` can trust
the file's ``chunk_done`` marks.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from popsim import config as cfg
from popsim import store
from popsim._version import MODEL_VERSION, __version__, library_versions
from popsim.observables import OUTPUTS
from popsim.parameters import Params, parameter_specs
from popsim.parameters.io import ParameterSet, default_parameters
from popsim.population import COVARIATE_NAMES, sample_cohort, variability
from popsim.protocols import ADD_CHANNELS, DIET_CHANNELS, Protocol, compile_segments
from popsim.solve import (
    STATUS_DESCRIPTIONS,
    SolverSettings,
    Status,
    batched_simulate_observe,
    compile_ahead,
    parts_steady_states,
    place_parts,
)
from popsim.units import mg_to_mmol_mg

#: thresholds of the summary table, mmol/L
THRESHOLDS = {
    "hypomagnesemia": ("serum_mg", "<", 0.70),
    "hypermagnesemia": ("serum_mg", ">", 1.05),
    "hypokalemia": ("serum_k", "<", 3.5),
    "hyperkalemia": ("serum_k", ">", 5.0),
    "hyponatremia": ("serum_na", "<", 135.0),
    "hypocalcemia": ("serum_ca", "<", 2.15),
}
SUMMARY_MEDIANS = ("serum_mg", "serum_k", "serum_na", "serum_ca")
FALLBACK_AHEAD = 1000
"""A run of at least this many patients (per process) compiles the steady-state fallback with
its other programs: Newton fails for ~0.6% of sampled patients (3-9 per 1,000 in
``configs/scale_year.toml``), so such a run needs it with probability > 99%."""


class RunError(RuntimeError):
    """A run that cannot start or continue (bad output path, ...), in one line."""


def arm_protocol(arm: cfg.Arm, days: float, n_segments: int, dtype) -> Protocol:
    """Compile one arm's interventions (config units) into a protocol (model units)."""
    items = []
    for iv in arm.intervention:
        start = iv.start_day
        end = days if iv.end_day is None else iv.end_day
        rate_days = end - start  # an IV dose is spread over the interval as given
        diet, added = {}, {}
        if iv.kind == "oral_magnesium":
            added["mg_oral"] = mg_to_mmol_mg(iv.dose)
        elif iv.kind == "oral_potassium":
            added["k_oral"] = iv.dose
        elif iv.kind == "iv_magnesium":
            added["mg_iv"] = iv.dose / rate_days
        elif iv.kind == "loop_diuretic":
            added["loop_dose"] = iv.dose
        elif iv.kind == "thiazide_diuretic":
            added["thiazide_dose"] = iv.dose
        elif iv.kind == "diet":
            if iv.mg_intake is not None:
                diet["mg_intake"] = mg_to_mmol_mg(iv.mg_intake)
            if iv.k_intake is not None:
                diet["k_intake"] = iv.k_intake
            if iv.na_intake is not None:
                diet["na_intake"] = iv.na_intake
        assert set(diet) <= set(DIET_CHANNELS) and set(added) <= set(ADD_CHANNELS)
        items.append((start, end, diet, added))
    return compile_segments(items, n_segments=n_segments, dtype=dtype, horizon=days)


def protocols_for(config: cfg.RunConfig, dtype, n_segments: int | None = None) -> list[Protocol]:
    """One protocol per arm, all with the same (static) number of segments: ``n_segments``, or
    the number the arms need rounded up to a power of 2 (fewer distinct compilations)."""
    need = max(2 * len(a.intervention) + 1 for a in config.arms)
    n_seg = 1 << (need - 1).bit_length() if n_segments is None else n_segments
    return [arm_protocol(a, config.simulation.days, n_seg, dtype) for a in config.arms]


def solver_settings(sim: cfg.Simulation) -> SolverSettings:
    return SolverSettings(rtol=sim.rtol, atol=sim.atol, solver=sim.solver,
                          max_steps=sim.step_budget)


def output_times(sim: cfg.Simulation) -> np.ndarray:
    """Saved times, days: 0, interval, 2*interval, ... up to ``days``, and ``days`` itself when
    the interval does not divide it (:attr:`popsim.config.Simulation.output_times`). The solver's
    steps do not depend on them (diffrax interpolates at the saved times), so a coarser interval
    stores exactly the values a finer one stores at the same days."""
    return np.asarray(sim.output_times, dtype=np.float64)


@dataclass
class ArmSummary:
    name: str
    n_ok: int
    n_failed: int
    medians: dict[str, float]  # output -> median at the last time, mmol/L
    prevalence: dict[str, float]  # disorder -> fraction of patients (ok ones) at the last time
    failures: dict[str, int] = field(default_factory=dict)  # status meaning -> patients


@dataclass
class RunResult:
    path: Path
    n_patients: int
    days: float
    arms: list[ArmSummary]
    wall_seconds: float
    extra: dict = field(default_factory=dict)

    @property
    def n_failed(self) -> int:
        """Patient-arms not solved (their outputs are NaN in the file)."""
        return sum(a.n_failed for a in self.arms)

    @property
    def failed_fraction(self) -> float:
        """:attr:`n_failed` over all patient-arms."""
        return self.n_failed / max(1, sum(a.n_ok + a.n_failed for a in self.arms))

    def failure_counts(self) -> dict[str, int]:
        """Status meaning -> patient-arms with it, over every arm, most common first."""
        total: dict[str, int] = {}
        for a in self.arms:
            for k, v in a.failures.items():
                total[k] = total.get(k, 0) + v
        return dict(sorted(total.items(), key=lambda kv: -kv[1]))


COHORT_SUFFIXES = (".h5", ".hdf5", ".nc")


def _check_output_path(out: Path, force: bool, resume: bool) -> None:
    from popsim.files import OutputError, check_output

    try:
        check_output(out, suffixes=COHORT_SUFFIXES, force=force or resume, what="cohort file")
    except OutputError as e:
        raise RunError(str(e)) from None


def _layout(config: cfg.RunConfig, n: int, chunk_size: int,
            varying: list[str]) -> store.CohortLayout:
    specs = {s.name: s for s in parameter_specs()}
    covs = {}
    cats = {}
    for name in COVARIATE_NAMES:
        unit, kind, labels = cfg.COVARIATES[name]
        covs[name] = (kind, unit)
        if kind == "category":
            cats[name] = labels
    descriptions = {o.name: o.description for o in OUTPUTS}
    descriptions.update({f"param_{k}": specs[k].description for k in varying})
    return store.CohortLayout(
        arms=tuple(a.name for a in config.arms), n_patients=n,
        times=output_times(config.simulation), outputs={o.name: o.unit for o in OUTPUTS},
        covariates=covs, categories=cats,
        parameters={k: specs[k].unit for k in varying}, chunk_size=chunk_size,
        descriptions=descriptions)


def run_cohort(
    config: cfg.RunConfig,
    config_text: str,
    out: str | Path,
    *,
    size: int | None = None,
    seed: int | None = None,
    chunk_size: int = 1000,
    force: bool = False,
    params: ParameterSet | None = None,
    progress: bool = True,
    resume: bool = False,
    devices: int | str | None = None,
    distributed: bool = False,
) -> RunResult:
    """Run the cohort of ``config`` and write it to ``out`` (HDF5). See the module docstring.

    Args:
        size, seed: override ``population.size`` / ``population.seed``.
        chunk_size: patients per compiled batch (memory and resume granularity); results do not
            depend on it.
        params: typical values and between-patient CVs, e.g. from ``popsim calibrate``
            (default: the shipped calibrated set, :func:`default_parameters`); its ``source``
            is recorded in the file (``params_source`` attribute).
        resume: finish an interrupted run in ``out``: chunks marked done are kept, the rest are
            computed; refused when the config, seed, size, chunk size or parameters differ.
        devices: shard each chunk over this many local devices (``"all"``: every one) along the
            patient axis, each part committed to its device (:func:`simulate_arms`); results do not
            depend on it.
        distributed: several processes (after ``jax.distributed.initialize``) share the run:
            process ``i`` of ``P`` computes chunks ``c`` with ``c % P == i`` into its shard file
            (:func:`popsim.store.shard_path`); process 0 then writes ``out`` as a master file of
            HDF5 virtual datasets over the shards.
    """
    out = Path(out)
    n = config.population.size if size is None else size
    seed = config.population.seed if seed is None else seed
    if n <= 0:
        raise RunError(f"--size {n}: must be a positive number of patients")
    if chunk_size <= 0:
        raise RunError(f"--chunk-size {chunk_size}: must be a positive number of patients")
    _check_output_path(out, force, resume=resume)
    chunk_size = min(chunk_size, n)
    split = patient_devices(devices)
    pid, nproc = (jax.process_index(), jax.process_count()) if distributed else (0, 1)
    target = out if nproc == 1 else store.shard_path(out, pid, nproc)
    if nproc > 1:
        _check_output_path(target, force, resume=resume)
    ps = default_parameters() if params is None else params
    params, cvs, params_source = ps.params, ps.cvs, ps.source
    dtype = jnp.float64 if config.simulation.precision == "float64" else jnp.float32
    t_start = time.perf_counter()
    with jax.enable_x64(True):
        varying = sorted(variability(config.population, cvs))
        layout = _layout(config, n, chunk_size, varying)
        attrs = {
            "popsim_version": __version__, "model_version": MODEL_VERSION,
            "config": config_text, "seed": int(seed), "n_patients": int(n),
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "params_source": params_source, "solver": config.simulation.solver,
            "rtol": config.simulation.rtol, "atol": config.simulation.atol,
            "precision": config.simulation.precision, "chunk_size": int(chunk_size),
            "params_fingerprint": params_fingerprint(params, cvs),
            **{f"{k}_version": v for k, v in library_versions().items()},
        }
        n_chunks = math.ceil(n / chunk_size)
        if nproc > 1:
            attrs["process_id"], attrs["n_processes"] = int(pid), int(nproc)
        if resume and target.exists():
            done = _resumable(target, attrs)
        else:
            try:
                store.create(target, layout, attrs, status_meanings=STATUS_DESCRIPTIONS,
                             force=force or resume)
            except store.StoreError as e:
                raise RunError(str(e)) from None
            done = np.zeros(n_chunks, bool)
        protocols = protocols_for(config, dtype)
        settings = solver_settings(config.simulation)
        ts = jnp.asarray(output_times(config.simulation), dtype)
        mine = [c for c in range(n_chunks) if c % nproc == pid]
        n_mine = sum(min(chunk_size, n - c * chunk_size) for c in mine)
        first = True  # the first chunk computed compiles every program ahead; the steady-state
        # fallback (Newton failed: ~0.6% of patients) only when it will very likely be needed
        from popsim.progress import Progress

        with Progress("simulating", n_mine, "patients", enabled=progress) as bar, \
                _Writer(bar) as writer:
            for c in mine:
                start = c * chunk_size
                n_real = min(chunk_size, n - start)
                if done[c]:
                    bar(n_real)
                else:
                    if first:
                        bar.phase("compiling XLA programs")
                    _run_chunk(config, target, c, start, n_real, chunk_size, seed, params, cvs,
                               protocols, settings, ts, dtype, split, writer,
                               precompile=first, precompile_fallback=n_mine >= FALLBACK_AHEAD,
                               on_compiled=lambda: bar.phase("first chunk"))
                    first = False
        if nproc == 1:
            if not store.is_complete(out):
                store.finalize(out)
        else:
            _stitch_when_all_done(out, nproc, pid)
    summaries = summarize(out)
    return RunResult(out, n, config.simulation.days, summaries, time.perf_counter() - t_start)


def _stitch_when_all_done(out: Path, nproc: int, pid: int) -> None:
    """Every process waits for the others; process 0 writes the master file; all wait again."""
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices("popsim: shards written")
    if pid == 0:
        try:
            store.stitch(out, [store.shard_path(out, i, nproc) for i in range(nproc)],
                         owner=lambda c: c % nproc)
        except store.StoreError as e:
            raise RunError(str(e)) from None
    multihost_utils.sync_global_devices("popsim: master written")


# resume: what must match between an interrupted file and the run that finishes it
RESUME_KEYS = ("model_version", "config", "seed", "n_patients", "chunk_size", "params_fingerprint",
               "solver", "rtol", "atol", "precision")


def params_fingerprint(params: Params, cvs: dict) -> str:
    """SHA-256 of the typical values and CVs a run uses (recorded; checked on resume)."""
    import hashlib

    items = [(f.name, float(getattr(params, f.name))) for f in dataclasses.fields(params)]
    items += [(f"cv.{k}", float(v)) for k, v in sorted(cvs.items())]
    return hashlib.sha256(repr(items).encode()).hexdigest()


def _resumable(out: Path, attrs: dict) -> np.ndarray:
    """Check that ``out`` is an interrupted run of the same job; returns its finished chunks."""
    try:
        old = store.read_attrs(out)
        done = store.chunks_done(out)
    except store.StoreError as e:
        raise RunError(f"--resume: {e}") from None
    for key in RESUME_KEYS + tuple(k for k in ("process_id", "n_processes") if k in attrs):
        if key not in old:
            raise RunError(f"--resume {out}: the file has no {key!r} attribute; it was not "
                           "written by this version of popsim run")
        mine, theirs = attrs[key], old[key]
        same = (float(mine) == float(theirs) if isinstance(mine, float | int)
                else str(mine) == str(theirs))
        if not same:
            what = {"config": "the config text", "params_fingerprint": "the parameters"}.get(
                key, key)
            shown = "" if key in ("config", "params_fingerprint") else \
                f" (file: {theirs}, now: {mine})"
            raise RunError(f"--resume {out}: {what} differs from the interrupted run's{shown}; "
                           "use the same config, --size, --seed, --chunk-size and --params, or "
                           "start again with --force")
    return done


def patient_devices(devices: int | str | None) -> list | None:
    """The local devices a chunk is split over along the patient axis (``--devices``), or
    ``None`` for one device."""
    if devices is None:
        return None
    local = jax.local_devices()
    n = len(local) if devices == "all" else int(devices)
    if not 1 <= n <= len(local):
        raise RunError(f"--devices {devices}: must be 1..{len(local)} (local devices: "
                       f"{len(local)} {local[0].platform.upper()}) or 'all'")
    return None if n == 1 else local[:n]


def solve_inputs(cohort, dtype=jnp.float64):
    """A sampled cohort's ``(params, patients)`` as arrays of ``dtype`` on the cohort's device."""
    return (jax.tree.map(lambda x: jnp.asarray(x, dtype), cohort.params),
            jax.tree.map(lambda x: jnp.asarray(x, dtype), cohort.patients))


def simulate_arms(cohort, protocols: list[Protocol], ts, settings: SolverSettings,
                  dtype=jnp.float64, track_balance: bool = False, devices=None):
    """Steady states of a sampled cohort, then every arm from them, on one device or split over
    ``devices`` along the patient axis (the cohort's size a multiple of their number).

    Returns ``(outputs, status)``: a dict of NumPy arrays ``(arm, patient, time)`` and the
    status codes ``(arm, patient)``; a patient without a steady state has status 1 in every arm.

    With several devices, each runs on its contiguous part the same one-device programs that a
    one-device run runs, so every patient gets the same bits (see
    :func:`popsim.solve.split_over_devices`); every device's Newton starts before any result is
    waited for, the Newton failures of all parts are retried together
    (:func:`popsim.solve.parts_steady_states`), then every device's time courses start before
    any is collected.
    """
    parts = place_parts(cohort, devices)
    inputs = [solve_inputs(part, dtype) for part in parts]
    starts = parts_steady_states(inputs, settings)
    results = [_arms(p, pts, y0, ok, protocols, ts, settings, track_balance)
               for (p, pts), (y0, ok) in zip(inputs, starts, strict=True)]
    results = [jax.tree.map(np.asarray, r) for r in results]  # every device has started
    if len(results) == 1:
        return results[0]
    return jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *results)


def _arms(p, pts, y0, ok, protocols, ts, settings, track_balance):
    """Every arm's time course from ``y0`` (dispatched, not waited for)."""
    outs, statuses = {}, []
    for prot in protocols:
        res, status, _ = batched_simulate_observe(p, pts, prot, y0, ts, settings, track_balance)
        status = jnp.where(ok, status, Status.STEADY_STATE_FAILED)
        for k, v in _failed_as_nan(res, status).items():
            outs.setdefault(k, []).append(v)
        statuses.append(status.astype(jnp.int8))
    return {k: jnp.stack(v) for k, v in outs.items()}, jnp.stack(statuses)


@jax.jit
def _failed_as_nan(outputs: dict, status):
    """Outputs of patients not solved (``status != OK``) replaced by NaN: a failed patient's
    numbers are never plausible-looking values."""
    bad = (status != Status.OK)[:, None]
    return {k: jnp.where(bad, jnp.nan, v) for k, v in outputs.items()}


def _run_chunk(config, out, c, start, n_real, chunk_size, seed, params, cvs, protocols, settings,
               ts, dtype, devices=None, writer=None, precompile=False,
               precompile_fallback=False, on_compiled=None):
    """Compute chunk ``c`` and write it to ``out``: at once, or through ``writer`` (a
    :class:`_Writer`, which writes it in the background while the next chunk is computed).
    ``precompile`` (the first chunk a run computes): compile its programs for every device in
    parallel first (:func:`popsim.solve.compile_ahead`), the steady-state fallback too if
    ``precompile_fallback``."""
    # the compute batch is the chunk padded to a multiple of the device count; the padding
    # patients are real draws (indices past the chunk) and are discarded
    batch = chunk_size if devices is None else -(-chunk_size // len(devices)) * len(devices)
    cohort = sample_cohort(config.population, seed, start, batch, params, cvs)
    if precompile:
        compile_ahead([solve_inputs(part, dtype) for part in place_parts(cohort, devices)],
                      protocols, ts, settings, fallback=precompile_fallback)
        if on_compiled is not None:
            on_compiled()
    outs, status = simulate_arms(cohort, protocols, ts, settings, dtype, devices=devices)
    covs = {k: np.asarray(v[:n_real]) for k, v in cohort.covariates.items()}
    pars = {k: v[:n_real] for k, v in cohort.varying_parameters().items()}
    outputs = {o.name: outs[o.name][:, :n_real].astype(np.float32) for o in OUTPUTS}
    del outs

    def write():
        store.write_chunk(out, c, start, covs, pars, outputs, status[:, :n_real])

    if writer is None:
        write()
    else:
        writer.submit(write, n_real)


class _Writer:
    """Writes finished chunks in one background thread while the next chunk is computed.

    At most one write is pending: :meth:`submit` first waits for the previous one (so host memory
    holds at most two chunks of outputs, and chunks reach the file in order), re-raises its error
    if it failed, and reports its patients to ``done``. On leaving the ``with`` block, also after
    an error or Ctrl-C in the main thread, the pending write is finished, so a chunk that was
    computed is on disk and marked done (its write session is all-or-nothing either way). Writing
    (gzip) in parallel with the solve hides its cost on a multi-core machine
    (``benchmarks/scaling.py``)."""

    def __init__(self, done):
        from concurrent.futures import ThreadPoolExecutor

        self._pool = ThreadPoolExecutor(1, thread_name_prefix="popsim-writer")
        self._pending = None
        self._done = done

    def submit(self, write, n: int) -> None:
        self.wait()
        self._pending = (self._pool.submit(write), n)

    def wait(self) -> None:
        if self._pending is not None:
            future, n = self._pending
            self._pending = None
            future.result()
            self._done(n)

    def __enter__(self):
        return self

    def __exit__(self, kind, *exc):
        try:
            if kind is None:
                self.wait()
        finally:
            self._pool.shutdown(wait=True)
        return False


def summarize(path: str | Path, time_index: int = -1) -> list[ArmSummary]:
    """Per-arm medians and prevalences at one saved time (default: the last), from the file."""
    coh = store.open_cohort(path)
    status = coh.status
    result = []
    for a, arm in enumerate(coh.arms):
        ok = status[a] == Status.OK
        vals = {}
        for name in {v[0] for v in THRESHOLDS.values()} | set(SUMMARY_MEDIANS):
            vals[name] = coh.output(name, arm=a, time=time_index)[ok]
        n_ok = int(ok.sum())
        prev = {}
        for disorder, (name, op, thr) in THRESHOLDS.items():
            x = vals[name]
            prev[disorder] = float(np.mean(x < thr if op == "<" else x > thr)) if n_ok else math.nan
        med = {k: float(np.median(vals[k])) if n_ok else math.nan for k in SUMMARY_MEDIANS}
        codes, counts = np.unique(status[a][~ok], return_counts=True)
        meanings = coh.status_meanings
        failures = {meanings.get(int(c), str(int(c))): int(k)
                    for c, k in zip(codes, counts, strict=True)}
        result.append(ArmSummary(arm, n_ok, int((~ok).sum()), med, prev, failures))
    return result
