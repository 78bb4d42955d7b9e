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
from dataclasses import dataclass, field, replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from popsim import config as cfg
from popsim import devices as dev
from popsim import lanes as rl
from popsim import store
from popsim._version import MODEL_VERSION, __version__, library_versions
from popsim.compilation import CompileCounter
from popsim.facts import STATUS_MEANINGS
from popsim.interventions import dose_outputs
from popsim.observables import OUTPUTS
from popsim.options import Message, Option
from popsim.parameters import parameter_specs
from popsim.parameters.io import ParameterSet, default_parameters, fingerprint
from popsim.parameters.uncertainty import UncertainFit, options_problem
from popsim.population import COVARIATE_NAMES, batch_size, sample_cohort, variability
from popsim.progress import Phases
from popsim.protocols import Protocol, protocols_for
from popsim.report import ArmSummary, summarize
from popsim.solve import SolverSettings
from popsim.trial_report import screening_summary

RESUME_KEYS = ("model_version", "config", "seed", "n_patients", "chunk_size", "params_fingerprint",
               "solver", "rtol", "atol", "precision")
"""What must match between an interrupted file and the run that finishes it."""


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
    profile: dict = field(default_factory=dict)
    """Where the time went (``popsim run --profile``): ``phases`` (seconds per phase, see
    :func:`run_cohort`), ``compile`` (programs compiled and loaded from the compile cache,
    :class:`popsim.compilation.CompileCounter`), ``wall_seconds``, ``patient_days_per_s``."""
    screening: dict | None = None  # a screened run: report.screening_summary of the file

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
    phases: Phases = field(default_factory=Phases)
    candidates: np.ndarray | None = None  # a screened run: each patient's candidate index
    lanes: rl.ReplicateLanes | None = None  # a run with parameter replicates

    @property
    def n_lanes(self) -> int:
        """Patients times replicates (the patients of a run without replicates)."""
        return self.n * (1 if self.lanes is None else self.lanes.count)

    @property
    def batch_size(self) -> int:
        """Patients per compute batch: the chunk, padded to one of a few fixed sizes and a
        multiple of the device count (:func:`popsim.population.batch_size`; the padding patients
        are real draws, discarded)."""
        return batch_size(self.chunk_size, len(self.devices) if self.devices else 1)


def _check_output_path(out: Path, force: bool, resume: bool) -> None:
    from popsim.files import OutputError, check_output

    try:
        check_output(out, suffixes=store.COHORT_SUFFIXES, force=force or resume,
                     what="cohort file")
    except OutputError as e:
        raise RunError(*e.args) from None


def _layout(config: cfg.RunConfig, n: int, chunk_size: int, varying: list[str],
            candidates: np.ndarray | None = None,
            lanes: rl.ReplicateLanes | None = None) -> store.CohortLayout:
    specs = {s.name: s for s in parameter_specs()}
    covs, cats = {}, {}
    for name in COVARIATE_NAMES:
        unit, kind, labels = cfg.COVARIATES[name]
        covs[name] = (kind, unit)
        if kind == "category":
            cats[name] = labels
    saved = config.output.saved
    doses = dose_outputs(config.arms)
    descriptions = {o.name: o.description for o in OUTPUTS if o.name in saved}
    descriptions.update({k: f"daily dose of {k.removeprefix('dose_')} in force"
                         for k in doses})
    descriptions.update({f"param_{k}": specs[k].description for k in varying})
    return store.CohortLayout(
        arms=tuple(a.name for a in config.arms), n_patients=n,
        times=np.asarray(config.simulation.output_times, np.float64),
        outputs={**{o.name: o.unit for o in OUTPUTS if o.name in saved}, **doses},
        covariates=covs,
        categories=cats,
        parameters={k: specs[k].unit for k in varying}, chunk_size=chunk_size,
        descriptions=descriptions, candidates=candidates,
        replicates=None if lanes is None else rl.file_replicates(lanes))


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
            ``params``): the cohort once per parameter replicate (``replicates=``) drawn from
            its uncertainty (replicate 0: the point estimate), in a file with a replicate axis.
        options: the fields of :class:`RunOptions` (``size=``, ``seed=``, ``force=``, ...).

    The result's :attr:`RunResult.profile` has the wall seconds of each phase: ``setup``
    (checks, creating the file), ``sample`` (covariates and parameters), ``compile`` (every
    program, before the first chunk), ``steady_state``, ``time_course`` (integration and
    outputs), ``collect`` (outputs to float32 on the host), ``write`` (in the writer thread,
    overlapping the next chunk), ``write_wait`` (the part of it the solver waited for) and
    ``finalize`` (marking the file complete and reading the summary back).
    """
    entered = time.perf_counter()
    with CompileCounter() as counter:
        result = _run_cohort(config, config_text, Path(out), params, uncertainty,
                             RunOptions(**options), entered)
    result.profile["compile"] = counter.summary()
    return result


def _run_cohort(config: cfg.RunConfig, config_text: str, out: Path, params,
                uncertainty: UncertainFit | None, opts: RunOptions, entered: float) -> RunResult:
    phases = Phases()
    out = Path(out)
    n = config.population.size if opts.size is None else opts.size
    seed = config.population.seed if opts.seed is None else opts.seed
    if n <= 0:
        raise RunError(Message(Option("size", n), ": must be a positive number of patients"))
    if opts.chunk_size <= 0:
        raise RunError(Message(Option("chunk_size", opts.chunk_size),
                               ": must be a positive number of patients"))
    if opts.force and opts.resume:
        raise RunError(Message(Option("force", True), " and ", Option("resume", True),
                               " exclude each other (overwrite, or finish the file?)"))
    _check_uncertainty(config, opts, params, uncertainty)
    _check_output_path(out, opts.force, resume=opts.resume)
    chunk_size = min(opts.chunk_size, n * (opts.replicates or 1))
    try:
        split = dev.patient_devices(opts.devices)
    except dev.DeviceError as e:
        raise RunError(*e.args) from None
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
            attrs.update(rl.replicate_attributes(uncertainty, int(opts.replicates or 0)))
        if nproc > 1:
            attrs["process_id"], attrs["n_processes"] = int(pid), int(nproc)
        job = _Job(config, target, n, seed, chunk_size, ps,
                   protocols_for(config.arms, config.simulation.days, dtype),
                   SolverSettings.from_simulation(config.simulation, config.extra_steps),
                   jnp.asarray(config.simulation.output_times, dtype), dtype, split, phases)
        done, job, compiled = _open_target(job, attrs, opts, uncertainty)
        phases.add("setup", time.perf_counter() - entered)
        _run_chunks(job, done, pid, nproc, opts.progress, compiled)
        with phases("finalize"):
            if nproc == 1:
                if not store.is_complete(out):
                    store.finalize(out)
            else:
                _stitch_when_all_done(out, nproc, pid)
            arms = summarize(out)
    wall = time.perf_counter() - t_start
    computed = sum(min(chunk_size, job.n_lanes - c * chunk_size) for c in range(done.size)
                   if c % nproc == pid and not done[c])
    profile = {"phases": phases.as_dict(), "wall_seconds": round(time.perf_counter() - entered, 3),
               "patients_computed": computed,
               "patient_days_per_s": computed * config.simulation.days / max(wall, 1e-9)}
    return RunResult(out, n, config.simulation.days, arms, wall,
                     {} if uncertainty is None else {"replicates": opts.replicates},
                     profile=profile, screening=screening_summary(out))


def _check_uncertainty(config: cfg.RunConfig, opts: RunOptions, params, uncertainty) -> None:
    """:class:`RunError` for parameter replicates combined with what they cannot go with."""
    problem = options_problem(uncertainty=uncertainty is not None, replicates=opts.replicates,
                              params=params is not None, processes=2 if opts.distributed else 1,
                              screened=config.population.screened)
    if problem:
        raise RunError(problem)


def _open_target(job: _Job, attrs: dict, opts: RunOptions,
                 fit: UncertainFit | None = None) -> tuple[np.ndarray, _Job, bool]:
    """Check the file to resume, or screen the candidates (a population with enrolment
    criteria) and create the cohort file. Returns the finished chunks, the job (with the
    enrolled candidates, or the replicates' lanes: drawn now, or those of the file being
    resumed) and whether its programs are compiled already."""
    screened = job.config.population.screened
    resuming = opts.resume and job.target.exists()
    done = _resumable(job.target, attrs) if resuming else None
    if fit is not None:
        try:
            values = store.open_cohort(job.target).drawn_values if resuming else \
                fit.draw(int(opts.replicates or 0), job.seed)
        except store.StoreError as e:
            raise RunError(Message(Option("resume", True), ": ", *e.args)) from None
        job = replace(job, lanes=rl.replicate_lanes(job.config.population, fit, values,
                                                    job.n))
    if done is not None:
        if screened:
            job = replace(job, candidates=store.open_cohort(job.target).candidates)
        return done, job, False
    compiled = False
    if screened:
        screening, compiled = _screen(job, opts.progress)
        job = replace(job, candidates=screening.candidates)
        attrs = {**attrs, **screening.attributes()}
    varying = job.lanes.varying if job.lanes is not None else \
        sorted(variability(job.config.population, job.params.cvs))
    try:
        layout = _layout(job.config, job.n, job.chunk_size, varying, job.candidates, job.lanes)
        store.create(job.target, layout, attrs, status_meanings=STATUS_MEANINGS,
                     force=opts.force or opts.resume)
    except store.StoreError as e:
        raise RunError(*e.args) from None
    return np.zeros(layout.n_chunks, bool), job, compiled


def _screen(job: _Job, progress: bool):
    """Enrol the cohort (:func:`popsim.screening.screen`) before the file is created, so
    criteria that enrol too few leave any existing file alone. When the criteria need steady
    states, every program of the run is compiled ahead on the first block (the same shapes
    as a chunk). Returns ``(screening, compiled)``."""
    from popsim.progress import Progress
    from popsim.screening import ScreeningError, screen

    pop = job.config.population
    compiled = []

    def prepare(cohort):
        if not any(c.on_output for c in [*pop.inclusion.values(), *pop.exclusion.values()]):
            return
        bar.phase("compiling XLA programs")
        dev.compile_ahead([part.inputs(job.dtype) for part in dev.batch_parts(cohort,
                                                                              job.devices)],
                          job.protocols, job.ts, job.settings, fallback=job.n >= dev.FALLBACK_AHEAD)
        compiled.append(True)
        bar.phase(None)

    with Progress("screening", job.n, "enrolled", enabled=progress) as bar:
        try:
            result = screen(pop, job.seed, job.n, job.params, job.settings, job.dtype,
                            job.batch_size, job.devices, prepare, bar)
        except ScreeningError as e:
            raise RunError(str(e)) from None
    return result, bool(compiled)


def _run_chunks(job: _Job, done: np.ndarray, pid: int, nproc: int, progress: bool,
                compiled: bool = False) -> None:
    """Compute and write every chunk of this process that is not done yet. Unless
    ``compiled``, the first chunk computed compiles every program ahead
    (:func:`popsim.devices.compile_ahead`); the steady-state fallback too when the run is large
    enough to need it."""
    from popsim.progress import Progress

    mine = [c for c in range(done.size) if c % nproc == pid]
    n_mine = sum(min(job.chunk_size, job.n_lanes - c * job.chunk_size) for c in mine)
    first = not compiled
    unit = "patients" if job.lanes is None else "patient-replicates"
    with Progress("simulating", n_mine, unit, enabled=progress) as bar, \
            store.BackgroundWriter(bar, job.phases) as writer:
        for c in mine:
            n_real = min(job.chunk_size, job.n_lanes - c * job.chunk_size)
            if done[c]:
                bar(n_real)
                continue
            if first:
                bar.phase("compiling XLA programs")
            _run_chunk(job, c, writer, precompile=first,
                       precompile_fallback=n_mine >= dev.FALLBACK_AHEAD,
                       on_compiled=lambda: bar.phase("first chunk"))
            first = False


def _stitch_when_all_done(out: Path, nproc: int, pid: int) -> None:
    """Every process waits for the others; process 0 writes the master file; all wait again."""
    dev.barrier(f"popsim: shards of {out.name} written")
    if pid == 0:
        try:
            store.stitch(out, [store.shard_path(out, i, nproc) for i in range(nproc)],
                         owner=lambda c: c % nproc)
        except store.StoreError as e:
            raise RunError(*e.args) from None
    dev.barrier(f"popsim: master {out.name} written")


def _resumable(out: Path, attrs: dict) -> np.ndarray:
    """Check that ``out`` is an interrupted run of the same job; returns its finished chunks."""
    try:
        old = store.read_attrs(out)
        done = store.chunks_done(out)
    except store.StoreError as e:
        raise RunError(Message(Option("resume", True), ": ", *e.args)) from None
    resume = Option("resume", True)
    mine_rep, theirs_rep = "n_replicates" in attrs, "n_replicates" in old
    if mine_rep != theirs_rep:
        raise RunError(Message(resume, f": {out}: the interrupted run " + (
            "had no" if mine_rep else "had") + " parameter replicates; use the same ",
            Option("uncertainty"), " and ", Option("replicates"), ", or start again with ",
            Option("force", True)))
    for key in RESUME_KEYS + tuple(k for k in ("process_id", "n_processes") if k in attrs) \
            + (rl.REPLICATE_KEYS if mine_rep else ()):
        if key not in old:
            raise RunError(Message(resume, f": {out} has no {key!r} attribute; it was not "
                                   "written by this version of popsim run"))
        mine, theirs = attrs[key], old[key]
        same = (float(mine) == float(theirs) if isinstance(mine, float | int)
                else str(mine) == str(theirs))
        if not same:
            what = {"config": "the config text", "params_fingerprint": "the parameters",
                    "uncertainty_fingerprint": "the fit record"}.get(key, key)
            shown = "" if key in ("config", "params_fingerprint", "uncertainty_fingerprint") \
                else f" (file: {theirs}, now: {mine})"
            raise RunError(Message(
                resume, f": {out}: {what} differs from the interrupted run's{shown}; use the "
                "same config, ", Option("size"), ", ", Option("seed"), ", ", Option("chunk_size"),
                ", ", Option("params"), " or ", Option("uncertainty"), " and ",
                Option("replicates"), ", or start again with ", Option("force", True)))
    return done


def _run_chunk(job: _Job, c: int, writer=None, precompile=False, precompile_fallback=False,
               on_compiled=None) -> None:
    """Compute chunk ``c`` and write it: at once, or through ``writer`` (a
    :class:`popsim.store.BackgroundWriter`: in the background while the next chunk is
    computed). ``precompile`` (the
    first chunk a run computes): compile its programs for every device in parallel first, the
    steady-state fallback too if ``precompile_fallback``; then call ``on_compiled``."""
    start = c * job.chunk_size
    n_real = min(job.chunk_size, job.n_lanes - start)
    with job.phases("sample"):
        if job.lanes is not None:
            cohort = job.lanes.cohort(job.config.population, job.seed, start, job.batch_size)
        elif job.candidates is None:
            cohort = sample_cohort(job.config.population, job.seed, start, job.batch_size,
                                   job.params.params, job.params.cvs)
        else:
            from popsim.screening import enrolled_cohort

            cohort = enrolled_cohort(job.config.population, job.seed,
                                     job.candidates[start:start + n_real], job.params,
                                     job.batch_size)
    if precompile:
        with job.phases("compile"):
            dev.compile_ahead([part.inputs(job.dtype)
                               for part in dev.batch_parts(cohort, job.devices)],
                              job.protocols, job.ts, job.settings, fallback=precompile_fallback)
        if on_compiled is not None:
            on_compiled()
    outs, status = dev.simulate_arms(cohort, job.protocols, job.ts, job.settings, job.dtype,
                                     devices=job.devices, phases=job.phases, needed=n_real)
    with job.phases("collect"):
        covs = {k: np.asarray(v[:n_real]) for k, v in cohort.covariates.items()}
        pars = {k: v[:n_real] for k, v in cohort.varying_parameters().items()}
        names = list(job.config.output.saved) + list(dose_outputs(job.config.arms))
        outputs = {k: outs[k][:, :n_real].astype(np.float32) for k in names}
        del outs

    def write():
        with job.phases("write"):
            store.write_chunk(job.target, c, start, covs, pars, outputs, status[:, :n_real])

    if writer is None:
        write()
    else:
        writer.submit(write, n_real)
