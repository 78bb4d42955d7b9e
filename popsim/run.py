"""`popsim run`: sample a cohort, solve it chunk by chunk, stream it into one HDF5 file.

The cohort is processed in fixed-size chunks (the last one padded, so one compilation serves all);
every finished chunk is written by a background thread while the next one is computed (at most one
write pending, so host memory is bounded by two chunks, not by the cohort), and an interrupted run
keeps its finished chunks. Each chunk's write is all-or-nothing, even for a process killed in the
middle of it (:mod:`popsim.store`'s undo journal), so ``resume`` can trust the file's
``chunk_done`` marks. Solving is :mod:`popsim.devices` (and :mod:`popsim.batch` below it); this
module owns the chunk loop, the file and resuming.

With parameter uncertainty (a fit record and ``replicates``), the same patients are solved once
per parameter replicate: the chunks run over lanes (replicate x patient, :mod:`popsim.lanes`)
and the file has a ``replicate`` axis (:mod:`popsim.store.replicates`).
"""

from __future__ import annotations

import datetime as _dt
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from popsim import config as cfg
from popsim import devices as dev
from popsim import store
from popsim._version import MODEL_VERSION, __version__, library_versions
from popsim.facts import STATUS_MEANINGS
from popsim.lanes import ReplicateLanes, replicate_lanes
from popsim.observables import OUTPUTS
from popsim.parameters import parameter_specs
from popsim.parameters.io import ParameterSet, default_parameters, fingerprint
from popsim.parameters.uncertainty import UncertainFit, options_problem
from popsim.population import COVARIATE_NAMES, sample_cohort, variability
from popsim.protocols import Protocol, protocols_for
from popsim.report import ArmSummary, summarize
from popsim.solve import SolverSettings

FALLBACK_AHEAD = 1000
"""A run of at least this many patients (per process) compiles the steady-state fallback with
its other programs: Newton fails for a few patients per 1,000, so such a run very likely needs
it."""
RESUME_KEYS = ("model_version", "config", "seed", "n_patients", "chunk_size", "params_fingerprint",
               "solver", "rtol", "atol", "precision")
"""What must match between an interrupted file and the run that finishes it."""
REPLICATE_KEYS = ("n_replicates", "uncertainty_fingerprint")
"""What must match too when the run has parameter replicates."""


class RunError(RuntimeError):
    """A run that cannot start or continue (bad output path, ...), in one line."""


@dataclass(frozen=True)
class RunOptions:
    """How to run a config (``popsim run``'s flags).

    Attributes:
        size, seed: override ``population.size`` / ``population.seed``.
        chunk_size: patients per compiled batch (memory and resume granularity); results do not
            depend on it.
        force: replace an existing output file.
        resume: finish an interrupted run in the output file: chunks marked done are kept, the
            rest are computed; refused when the config, seed, size, chunk size or parameters
            differ.
        devices: split each chunk over this many local devices (``"all"``: every one) along the
            patient axis (:mod:`popsim.devices`); results do not depend on it.
        distributed: several processes (after ``jax.distributed.initialize``) share the run:
            process ``i`` of ``P`` computes chunks ``c`` with ``c % P == i`` into its shard file
            (:func:`popsim.store.shard_path`); process 0 then writes the output as a master
            file of HDF5 virtual datasets over the shards.
        progress: show progress (on stderr).
        replicates: with a fit record (``uncertainty=`` of :func:`run_cohort`): the number of
            parameter replicates, 2..:data:`popsim.parameters.uncertainty.MAX_REPLICATES`.
    """

    size: int | None = None
    seed: int | None = None
    chunk_size: int = 1000
    force: bool = False
    resume: bool = False
    devices: int | str | None = None
    distributed: bool = False
    progress: bool = True
    replicates: int | None = None


@dataclass
class RunResult:
    """What a finished run wrote, with the per-arm summary read back from the file."""

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


@dataclass(frozen=True)
class _Job:
    """Everything a chunk needs, fixed for the whole run."""

    config: cfg.RunConfig
    target: Path  # the file this process writes
    n: int
    seed: int
    chunk_size: int
    params: ParameterSet
    protocols: list[Protocol]
    settings: SolverSettings
    ts: jax.Array
    dtype: type
    devices: list | None
    lanes: ReplicateLanes | None = None

    @property
    def n_lanes(self) -> int:
        """Patients times replicates (the patients of a run without replicates)."""
        return self.n * (1 if self.lanes is None else self.lanes.count)


def _check_output_path(out: Path, force: bool, resume: bool) -> None:
    from popsim.files import OutputError, check_output

    try:
        check_output(out, suffixes=store.COHORT_SUFFIXES, force=force or resume,
                     what="cohort file")
    except OutputError as e:
        raise RunError(str(e)) from None


def _layout(config: cfg.RunConfig, n: int, chunk_size: int, varying: list[str],
            lanes: ReplicateLanes | None = None) -> store.CohortLayout:
    specs = {s.name: s for s in parameter_specs()}
    covs, cats = {}, {}
    for name in COVARIATE_NAMES:
        unit, kind, labels = cfg.COVARIATES[name]
        covs[name] = (kind, unit)
        if kind == "category":
            cats[name] = labels
    descriptions = {o.name: o.description for o in OUTPUTS}
    descriptions.update({f"param_{k}": specs[k].description for k in varying})
    return store.CohortLayout(
        arms=tuple(a.name for a in config.arms), n_patients=n,
        times=np.asarray(config.simulation.output_times, np.float64),
        outputs={o.name: o.unit for o in OUTPUTS}, covariates=covs, categories=cats,
        parameters={k: specs[k].unit for k in varying}, chunk_size=chunk_size,
        descriptions=descriptions, replicates=None if lanes is None else _replicates(lanes))


def _replicates(lanes: ReplicateLanes) -> store.Replicates:
    """The replicate axis of the file: the drawn values, and the fit record's files."""
    fit = lanes.fit
    specs = {s.name: s for s in parameter_specs()}

    def describe(name):
        p = name.removeprefix("cv.")
        what = specs[p].description
        return what if p == name else f"between-patient CV of: {what}"

    return store.Replicates(
        fit.names, tuple(fit.units[n] for n in fit.names), lanes.values,
        descriptions={n: describe(n) for n in fit.names},
        records={"fit_record": (fit.text, f"fit record ({fit.path.name}) whose uncertainty the "
                                          "replicates sample"),
                 "fit_parameters": (fit.params_text, "the fit record's parameter file: the "
                                    "point estimate (replicate 0) and the rest of every "
                                    "replicate's parameters")})


def _attributes(config: cfg.RunConfig, config_text: str, n: int, seed: int, chunk_size: int,
                ps: ParameterSet) -> dict:
    """The root attributes of the cohort file (what resume compares, and provenance)."""
    sim = config.simulation
    return {
        "popsim_version": __version__, "model_version": MODEL_VERSION, "config": config_text,
        "seed": int(seed), "n_patients": int(n),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "params_source": ps.source, "solver": sim.solver, "rtol": sim.rtol, "atol": sim.atol,
        "precision": sim.precision, "chunk_size": int(chunk_size),
        "params_fingerprint": fingerprint(ps.params, ps.cvs),
        **{f"{k}_version": v for k, v in library_versions().items()},
    }


def _replicate_attributes(fit: UncertainFit, replicates: int) -> dict:
    """The root attributes of a run with parameter replicates."""
    return {"n_replicates": int(replicates), "uncertainty_fingerprint": fit.fingerprint(),
            "uncertainty_source": str(fit.path),
            "replicate_0": "the point estimate (the fit record's parameters.toml)",
            "replicates_drawn": "multivariate normal in the fit record's transformed space, "
                                "from the run's seed (popsim.parameters.uncertainty)"}


def _check_options(opts: RunOptions, n: int, params, uncertainty) -> None:
    """:class:`RunError` for options that cannot go together or are out of range."""
    if n <= 0:
        raise RunError(f"--size {n}: must be a positive number of patients")
    if opts.chunk_size <= 0:
        raise RunError(f"--chunk-size {opts.chunk_size}: must be a positive number of patients")
    problem = options_problem(uncertainty=uncertainty is not None, replicates=opts.replicates,
                              params=params is not None, processes=2 if opts.distributed else 1)
    if problem:
        raise RunError(problem)


def run_cohort(config: cfg.RunConfig, config_text: str, out: str | Path,
               params: ParameterSet | None = None, uncertainty: UncertainFit | None = None,
               **options) -> RunResult:
    """Run the cohort of ``config`` and write it to ``out`` (HDF5). See the module docstring.

    Args:
        config_text: the config as written (stored in the file).
        params: typical values and between-patient CVs, e.g. from ``popsim calibrate``
            (default: the shipped set, :func:`default_parameters`); its ``source`` is recorded
            in the file (``params_source`` attribute).
        uncertainty: a fit record (:func:`popsim.parameters.uncertainty.load_fit`, instead of
            ``params``): the cohort is run once per parameter replicate (``replicates=``), each
            replicate's parameters drawn from the record's uncertainty (replicate 0 its point
            estimate), into a file with a ``replicate`` axis.
        options: the fields of :class:`RunOptions` (``size=``, ``seed=``, ``chunk_size=``,
            ``force=``, ``resume=``, ``devices=``, ``distributed=``, ``progress=``,
            ``replicates=``).
    """
    opts = RunOptions(**options)
    out = Path(out)
    n = config.population.size if opts.size is None else opts.size
    seed = config.population.seed if opts.seed is None else opts.seed
    _check_options(opts, n, params, uncertainty)
    _check_output_path(out, opts.force, resume=opts.resume)
    chunk_size = min(opts.chunk_size, n * (opts.replicates or 1))
    try:
        split = dev.patient_devices(opts.devices)
    except dev.DeviceError as e:
        raise RunError(str(e)) from None
    pid, nproc = (jax.process_index(), jax.process_count()) if opts.distributed else (0, 1)
    target = out if nproc == 1 else store.shard_path(out, pid, nproc)
    if nproc > 1:
        _check_output_path(target, opts.force, resume=opts.resume)
    ps = uncertainty.base if uncertainty is not None else \
        default_parameters() if params is None else params
    dtype = jnp.float64 if config.simulation.precision == "float64" else jnp.float32
    t_start = time.perf_counter()
    with jax.enable_x64(True):
        attrs = _attributes(config, config_text, n, seed, chunk_size, ps)
        if uncertainty is not None:
            attrs.update(_replicate_attributes(uncertainty, int(opts.replicates or 0)))
        if nproc > 1:
            attrs["process_id"], attrs["n_processes"] = int(pid), int(nproc)
        done, lanes = _open_target(target, config, n, chunk_size, ps, attrs, opts, uncertainty,
                                   seed)
        job = _Job(config, target, n, seed, chunk_size, ps,
                   protocols_for(config.arms, config.simulation.days, dtype),
                   SolverSettings.from_simulation(config.simulation),
                   jnp.asarray(config.simulation.output_times, dtype), dtype, split, lanes)
        _run_chunks(job, done, pid, nproc, opts.progress)
        if nproc == 1:
            if not store.is_complete(out):
                store.finalize(out)
        else:
            _stitch_when_all_done(out, nproc, pid)
    return RunResult(out, n, config.simulation.days, summarize(out),
                     time.perf_counter() - t_start,
                     {} if uncertainty is None else {"replicates": opts.replicates})


def _open_target(target: Path, config, n, chunk_size, ps: ParameterSet, attrs: dict,
                 opts: RunOptions, fit: UncertainFit | None = None,
                 seed: int = 0) -> tuple[np.ndarray, ReplicateLanes | None]:
    """Create the cohort file (or check the one to resume); returns its finished chunks and
    the replicates' lanes (drawn now, or those of the file being resumed)."""
    resuming = opts.resume and target.exists()
    done = _resumable(target, attrs) if resuming else None
    lanes = None
    if fit is not None:
        try:
            values = store.open_cohort(target).drawn_values if resuming else \
                fit.draw(int(opts.replicates or 0), seed)
        except store.StoreError as e:
            raise RunError(f"--resume: {e}") from None
        lanes = replicate_lanes(config.population, fit, values, n)
    if done is not None:
        return done, lanes
    varying = lanes.varying if lanes is not None else \
        sorted(variability(config.population, ps.cvs))
    try:
        layout = _layout(config, n, chunk_size, varying, lanes)
        store.create(target, layout, attrs, status_meanings=STATUS_MEANINGS,
                     force=opts.force or opts.resume)
    except store.StoreError as e:
        raise RunError(str(e)) from None
    return np.zeros(layout.n_chunks, bool), lanes


def _run_chunks(job: _Job, done: np.ndarray, pid: int, nproc: int, progress: bool) -> None:
    """Compute and write every chunk of this process that is not done yet. The first chunk
    computed compiles every program ahead (:func:`popsim.devices.compile_ahead`); the
    steady-state fallback too when the run is large enough to need it."""
    from popsim.progress import Progress

    mine = [c for c in range(done.size) if c % nproc == pid]
    n_mine = sum(min(job.chunk_size, job.n_lanes - c * job.chunk_size) for c in mine)
    first = True
    unit = "patients" if job.lanes is None else "patient-replicates"
    with Progress("simulating", n_mine, unit, enabled=progress) as bar, \
            _Writer(bar) as writer:
        for c in mine:
            n_real = min(job.chunk_size, job.n_lanes - c * job.chunk_size)
            if done[c]:
                bar(n_real)
                continue
            if first:
                bar.phase("compiling XLA programs")
            _run_chunk(job, c, writer, precompile=first,
                       precompile_fallback=n_mine >= FALLBACK_AHEAD,
                       on_compiled=lambda: bar.phase("first chunk"))
            first = False


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


def _resumable(out: Path, attrs: dict) -> np.ndarray:
    """Check that ``out`` is an interrupted run of the same job; returns its finished chunks."""
    try:
        old = store.read_attrs(out)
        done = store.chunks_done(out)
    except store.StoreError as e:
        raise RunError(f"--resume: {e}") from None
    mine_rep, theirs_rep = "n_replicates" in attrs, "n_replicates" in old
    if mine_rep != theirs_rep:
        raise RunError(f"--resume {out}: the interrupted run " +
                       ("had no" if mine_rep else "had") + " parameter replicates; use the "
                       "same --uncertainty and --replicates, or start again with --force")
    for key in RESUME_KEYS + tuple(k for k in ("process_id", "n_processes") if k in attrs) \
            + (REPLICATE_KEYS if mine_rep else ()):
        if key not in old:
            raise RunError(f"--resume {out}: the file has no {key!r} attribute; it was not "
                           "written by this version of popsim run")
        mine, theirs = attrs[key], old[key]
        same = (float(mine) == float(theirs) if isinstance(mine, float | int)
                else str(mine) == str(theirs))
        if not same:
            what = {"config": "the config text", "params_fingerprint": "the parameters",
                    "uncertainty_fingerprint": "the fit record"}.get(key, key)
            shown = "" if key in ("config", "params_fingerprint", "uncertainty_fingerprint") \
                else f" (file: {theirs}, now: {mine})"
            raise RunError(f"--resume {out}: {what} differs from the interrupted run's{shown}; "
                           "use the same config, --size, --seed, --chunk-size, --params or "
                           "--uncertainty and --replicates, or start again with --force")
    return done


def _run_chunk(job: _Job, c: int, writer=None, precompile=False, precompile_fallback=False,
               on_compiled=None) -> None:
    """Compute chunk ``c`` and write it: at once, or through ``writer`` (a :class:`_Writer`,
    which writes it in the background while the next chunk is computed). ``precompile`` (the
    first chunk a run computes): compile its programs for every device in parallel first, the
    steady-state fallback too if ``precompile_fallback``; then call ``on_compiled``."""
    start = c * job.chunk_size
    n_real = min(job.chunk_size, job.n_lanes - start)
    # the compute batch is the chunk padded to a multiple of the device count; the padding
    # patients are real draws (indices past the chunk) and are discarded
    size = job.chunk_size if job.devices is None else \
        -(-job.chunk_size // len(job.devices)) * len(job.devices)
    if job.lanes is None:
        cohort = sample_cohort(job.config.population, job.seed, start, size, job.params.params,
                               job.params.cvs)
    else:
        cohort = job.lanes.cohort(job.config.population, job.seed, start, size)
    if precompile:
        dev.compile_ahead([part.inputs(job.dtype) for part in dev.place_parts(cohort,
                                                                              job.devices)],
                          job.protocols, job.ts, job.settings, fallback=precompile_fallback)
        if on_compiled is not None:
            on_compiled()
    outs, status = dev.simulate_arms(cohort, job.protocols, job.ts, job.settings, job.dtype,
                                     devices=job.devices)
    covs = {k: np.asarray(v[:n_real]) for k, v in cohort.covariates.items()}
    pars = {k: v[:n_real] for k, v in cohort.varying_parameters().items()}
    outputs = {o.name: outs[o.name][:, :n_real].astype(np.float32) for o in OUTPUTS}
    del outs

    def write():
        store.write_chunk(job.target, c, start, covs, pars, outputs, status[:, :n_real])

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
    (gzip) in parallel with the solve hides its cost on a multi-core machine."""

    def __init__(self, done):
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
