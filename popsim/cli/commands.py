"""The commands: each checks its inputs and outputs (one line and exit status 2 on bad input,
before any work), calls one application of the library, prints, and returns an exit status.
Heavy modules are imported inside the commands, so ``popsim --help`` imports no JAX."""

from __future__ import annotations

import os
import sys
import time

from popsim.cli.args import EXIT_BAD_INPUT, EXIT_FAILED_PATIENTS, PARAMS_TABLE
from popsim.cli.run_args import load_fit_record, run_arguments_problem

SHUTDOWN_TIMEOUT_SECONDS = 30 * 24 * 3600
"""How long (s) a process of a multi-process run waits at exit for the others: 30 days, longer
than any run, so that processes finishing minutes or hours apart never abort."""


def _fail(problem) -> int:
    """Print a one-line error (a string, or an exception in the command line's wording, see
    :mod:`popsim.options`); returns :data:`EXIT_BAD_INPUT`."""
    from popsim.options import cli_text

    print(f"popsim: error: {cli_text(problem)}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _load_params(path):
    """``(parameter set, None)``, ``(None, None)`` without a path, or ``(None, error line)``.
    The string ``table`` (``--params table``; a file of that name arrives as a path) is the
    parameter table without the shipped fit."""
    if path is None:
        return None, None
    from popsim.parameters.io import ParamsFileError, load_params_file, table_parameters

    if isinstance(path, str) and path == PARAMS_TABLE:
        return table_parameters(), None

    try:
        ps = load_params_file(path)
    except ParamsFileError as e:
        return None, str(e)
    _warn_unbalanced(path, ps.params)
    return ps, None


def _warn_unbalanced(path, params) -> None:
    """The parameter set's balance warning (:func:`popsim.balance.unbalanced_warning`), if
    any, as one line on stderr."""
    from popsim.balance import unbalanced_warning

    message = unbalanced_warning(params)
    if message:
        print(f"popsim: warning: {path}: {message}", file=sys.stderr)


def _host_devices(devices) -> None:
    """Before JAX starts: let ``--devices N|all`` use N CPU cores as N host devices.

    XLA's CPU backend shows one device for all cores and runs these small per-patient kernels on
    one of them, so without this ``--devices 2`` would have nothing to shard over on a CPU-only
    machine. The flag only affects the CPU platform (on a GPU machine the GPUs are the local
    devices), is capped at the number of cores (so a count above it is refused by the device
    check with the real number), and is left alone if already set or once JAX's backends exist."""
    import os

    flags = os.environ.get("XLA_FLAGS", "")
    if devices is None or "xla_force_host_platform_device_count" in flags:
        return
    try:  # importing JAX reads no flags; creating its backends (first device query) does
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            return
    except (ImportError, AttributeError):
        return
    cores = os.cpu_count() or 1
    n = cores if devices == "all" else min(int(devices), cores)
    if n > 1:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


def cmd_run(args) -> int:
    _host_devices(args.devices)
    from popsim.config import ConfigError, load_config
    from popsim.run import RunError, run_cohort
    from popsim.store import StoreError

    try:
        config, text = load_config(args.config)
    except ConfigError as e:
        return _fail(e)
    if args.precision is not None:
        config = config.model_copy(update={"simulation": config.simulation.model_copy(
            update={"precision": args.precision})})
    out = args.out if args.out is not None else args.config.with_suffix(".h5")
    problem = run_arguments_problem(args, out)
    if problem:
        return _fail(problem)
    params, err = _load_params(args.params)
    if err:
        return _fail(err)
    fit, err = load_fit_record(args.uncertainty)
    if err:
        return _fail(err)
    distributed = args.num_processes is not None and args.num_processes > 1
    if distributed:
        import jax

        # a process that finishes its chunks early waits at JAX's shutdown barrier for the
        # others (process 0 also stitches the master file): as long as the run takes, not the
        # default 5 minutes, after which the waiting process aborts
        jax.distributed.initialize(coordinator_address=args.coordinator,
                                   num_processes=args.num_processes,
                                   process_id=args.process_id,
                                   shutdown_timeout_seconds=SHUTDOWN_TIMEOUT_SECONDS)
    entered = time.perf_counter()
    try:
        result = run_cohort(config, text, out, size=args.size, seed=args.seed,
                            chunk_size=args.chunk_size, force=args.force, params=params,
                            progress=not args.quiet, resume=args.resume, devices=args.devices,
                            distributed=distributed, uncertainty=fit,
                            replicates=args.replicates)
    except (RunError, StoreError) as e:
        return _fail(e)
    if args.profile is not None:
        _write_profile(args.profile, result, entered)
    from popsim.report import print_run_summary

    print_run_summary(result)
    if args.figure is not None:
        if any(a.intervention for a in config.arms) or len(config.arms) > 1:
            from popsim.trial_report import write_trial_figure

            write_trial_figure(out, args.figure)
        else:
            from popsim.report import cohort_overview_figure

            cohort_overview_figure(out, args.figure)
        print(f"figure: {args.figure}")
    return _failure_exit(result, args.max_failed_fraction)


def _write_profile(path, result, entered: float) -> None:
    """``popsim run --profile``: the run's :attr:`popsim.run.RunResult.profile` and the seconds
    from the command line's import to the run (importing JAX and popsim, reading the config)."""
    import json

    from popsim.cli import STARTED
    from popsim.files import write_text

    profile = {"startup_seconds": round(entered - STARTED, 3), **result.profile,
               "patients": result.n_patients, "days": result.days, "output": str(result.path)}
    write_text(path, json.dumps(profile, indent=2) + "\n")


def _failure_exit(result, max_fraction: float) -> int:
    """Warn about patients not solved; :data:`EXIT_FAILED_PATIENTS` when all, or more than
    ``max_fraction`` of the patient-arms, failed (the file is written and complete either way)."""
    if not result.n_failed:
        return 0
    total = sum(a.n_ok + a.n_failed for a in result.arms)
    counts = result.failure_counts()
    common, k = next(iter(counts.items()))
    print(f"popsim: warning: {result.n_failed:,} of {total:,} patient-arms not solved "
          f"({100 * result.failed_fraction:.2f}%; most common status: {common}, {k:,}); their "
          "outputs are NaN in the file", file=sys.stderr)
    if result.n_failed == total or result.failed_fraction > max_fraction:
        print(f"popsim: error: {100 * result.failed_fraction:.2f}% of patient-arms not solved, "
              f"more than --max-failed-fraction {max_fraction:g}; the file {result.path} is "
              "complete, with every patient's outcome in `status`", file=sys.stderr)
        return EXIT_FAILED_PATIENTS
    return 0


def cmd_report(args) -> int:
    from popsim.files import OutputError, check_output

    out = args.out if args.out is not None else args.file.with_name(args.file.stem + "_report")
    try:
        check_output(out, directory=True, force=args.force, inputs=(args.file,),
                     what="directory")
    except OutputError as e:
        return _fail(e)
    from popsim.report import ReportError, report

    try:
        summary = report(args.file, out, days=args.days, force=args.force)
    except ReportError as e:
        return _fail(e)
    print(f"wrote {out}/summary.json, {out}/summary.csv and "
          f"{len(summary['figures'])} figures in {out}/")
    return 0


def cmd_validate(args) -> int:
    from popsim.files import OutputError, check_output

    try:
        check_output(args.out, directory=True, force=args.force, inputs=(args.params,),
                     what="directory")
    except OutputError as e:
        return _fail(e)
    from popsim import evidence

    known = [s.study.id for s in evidence.scenarios()]
    for name in args.scenario or []:
        if name not in known:
            return _fail(f"--scenario {name!r}: unknown; allowed: {', '.join(known)}")
    params, err = _load_params(args.params)
    if err:
        return _fail(err)
    from popsim.validation import print_report, validate

    result = validate(size=args.size, out=args.out, progress=not args.quiet,
                      only=tuple(args.scenario) if args.scenario else None, params=params)
    print_report(result, heading="popsim validate: built-in physiology scenarios")
    print(f"figures and validation.json in {args.out}/")
    return 0 if result.passed else 1


def cmd_evidence(args) -> int:
    from popsim import evidence

    try:
        catalogue = evidence.catalogue()
    except evidence.StudyError as e:
        return _fail(e)
    if args.action == "list":
        _print_catalogue(catalogue.values(), args.reserved)
        return 0
    if not args.all and not args.study:
        return _fail("evidence run: name one or more STUDY ids, or --all")
    ids = ([s.study.id for s in evidence.studies(args.reserved)] if args.all
           else list(args.study))
    try:
        chosen = evidence.resolve(ids, include_reserved=args.reserved)
    except evidence.StudyError as e:
        return _fail(e)
    from popsim.files import OutputError, check_output

    try:
        if args.out is not None:
            check_output(args.out, directory=True, force=args.force, inputs=(args.params,),
                         what="directory")
        if args.table is not None:
            check_output(args.table, flag="--table", suffixes=(".json", ".csv"),
                         force=args.force, inputs=(args.params,), what="table")
    except OutputError as e:
        return _fail(e)
    params, err = _load_params(args.params)
    if err:
        return _fail(err)
    from popsim.validation import print_report, run_studies, write_results, write_table

    report = run_studies(chosen, args.size, params, progress=not args.quiet,
                         population_size=args.population_size)
    if args.table is not None:  # first: the results are saved whatever happens to stdout
        write_table(report, args.table)
    if args.out is not None:
        write_results(report, args.out, "evidence.json")
    print_report(report, heading="popsim evidence: model against published data")
    for path in (args.out, args.table):
        if path is not None:
            print(f"wrote {path}")
    return 0


def _print_catalogue(studies, reserved: bool) -> None:
    from rich.table import Table

    from popsim.progress import console

    t = Table(title="popsim evidence: study files")
    for col in ("id", "kind", "reserved", "citation", "observations", "mechanisms"):
        t.add_column(col, no_wrap=col == "id", overflow="fold")
    for s in studies:
        m = s.study
        if m.reserved and not reserved:
            continue
        cite = f"{m.authors.split(',')[0]} {m.year or ''} {m.journal}".strip()
        t.add_row(m.id, m.kind, "yes" if m.reserved else "", cite or m.title,
                  str(len(s.observation)), ", ".join(m.mechanisms))
    console().print(t)


def cmd_calibrate_ranges(args) -> int:
    """`popsim calibrate CONFIG --out PARAMS`: reference-range targets."""
    from popsim.calibration import build_problem, fit, load_calibration, write_outputs
    from popsim.calibration.ranges_report import print_calibration_table
    from popsim.config import ConfigError

    try:
        conf, pop, text = load_calibration(args.config)
    except ConfigError as e:
        return _fail(e)
    out = args.out
    figures = [out.with_name(out.stem + "_loss.png"), out.with_name(out.stem + "_fit.png")]
    from popsim.files import OutputError, check_output

    try:
        check_output(out, suffixes=(".toml",), force=args.force, inputs=(args.config,),
                     what="parameter file")
        for fig in figures:
            check_output(fig, force=args.force, inputs=(args.config,), what="figure")
    except OutputError as e:
        return _fail(e)
    result = fit(build_problem(conf, pop), progress=not args.quiet)
    write_outputs(result, out, text)  # first: the fit is saved whatever happens to stdout
    print_calibration_table(result)
    print(f"wrote {out}, {figures[0]} and {figures[1]}")
    return 0


def cmd_bench(args) -> int:
    if not 0 < args.rtol < 1e-2:
        return _fail(f"--rtol {args.rtol:g}: must be in (0, 0.01)")
    from popsim.files import OutputError, check_output

    try:
        if args.out is not None:
            check_output(args.out, suffixes=(".json",), force=args.force, what="results file")
        if args.table is not None:  # a Markdown file whose bench section is rewritten
            check_output(args.table, flag="table", suffixes=(".md",), force=True,
                         inputs=(args.out,), what="table")
    except OutputError as e:
        return _fail(e)
    _host_devices(args.devices)
    import jax

    jax.config.update("jax_enable_x64", True)
    from popsim.bench import BenchError, require_roadrunner, run_benchmark
    from popsim.bench_report import markdown

    quick = args.quick

    def pick(value, full, short):
        return value if value is not None else (short if quick else full)

    roadrunner_patients = pick(args.roadrunner_patients, 200, 100)
    try:
        require_roadrunner(roadrunner_patients)
    except BenchError as e:
        return _fail(e)
    devices = jax.local_devices()
    if args.devices not in (None, "all"):
        if args.devices > len(devices):
            return _fail(f"--devices {args.devices}: only {len(devices)} local device(s)")
        devices = devices[:args.devices]
    result = run_benchmark(sizes=pick(args.sizes, [100, 1000, 10_000], [1000]),
                           scipy_patients=pick(args.scipy_patients, 4, 0),
                           roadrunner_patients=roadrunner_patients,
                           rtol=args.rtol, out=args.out, table=args.table, devices=devices,
                           previous=None if quick else "kvaerno3", accuracy=not quick,
                           end_to_end=args.end_to_end, end_to_end_repeats=args.repeats)
    print(markdown(result))
    written = [str(p) for p in (args.out, args.table) if p is not None]
    if written:
        print(f"wrote {' and '.join(written)}")
    return 0


def cmd_export_sbml(args) -> int:
    if (args.cohort is None) != (args.patient is None):
        return _fail("--cohort and --patient go together (without them: the reference adult)")
    if args.arm is not None and args.cohort is None:
        return _fail("--arm needs --cohort FILE --patient I (the arms are the cohort's)")
    if args.out.suffix.lower() not in (".xml", ".sbml"):
        return _fail(f"--out {args.out}: an SBML file must end in .xml or .sbml")
    if args.out.is_dir():
        return _fail(f"--out {args.out}: is a directory")
    if not args.out.parent.exists():
        return _fail(f"--out {args.out}: directory {args.out.parent} does not exist")
    if args.out.exists() and not args.force:
        return _fail(f"--out {args.out}: file exists; use --force to overwrite it")
    import os

    if not os.access(args.out.parent, os.W_OK):
        return _fail(f"--out {args.out}: directory {args.out.parent} is not writable")
    if args.cohort is not None and not args.cohort.is_file():
        return _fail(f"--cohort {args.cohort}: no such file")
    params, err = _load_params(args.params)
    if err:
        return _fail(err)
    from popsim import sbml
    from popsim.parameters.io import default_parameters

    params = default_parameters() if params is None else params
    try:
        if args.cohort is None:
            spec = sbml.patient_spec(params.params, sbml.reference_covariates(),
                                     title="reference adult",
                                     notes=(f"Parameters: {params.source}.",))
        else:
            spec = sbml.cohort_patient(args.cohort, args.patient, params, args.arm)
        sbml.write(spec, args.out, force=args.force)
    except sbml.ExportError as e:
        return _fail(e)
    errors = sbml.consistency_errors(args.out.read_text())
    print(f"wrote {args.out}: {spec.title}, SBML L{sbml.SBML_LEVEL}V{sbml.SBML_VERSION}, "
          f"{len(errors)} libSBML consistency errors")
    return 0 if not errors else 1


def cmd_sensitivity(args) -> int:
    _host_devices(args.devices)
    from popsim import sensitivity as sa
    from popsim.config import ConfigError, load_config
    from popsim.files import OutputError, check_output

    try:
        config, _ = load_config(args.config)
    except ConfigError as e:
        return _fail(str(e))
    out = args.out if args.out is not None else \
        args.config.with_name(args.config.stem + "_sensitivity")
    try:
        setup = sa.model_setup(config, args.outputs, args.day, arm=args.arm,
                               parameters=args.params, change=args.change,
                               relative_range=args.range or sa.DEFAULT_RANGE)
        check_output(out, directory=True, force=args.force, inputs=(args.config,),
                     what="directory")
    except (sa.SensitivityError, OutputError) as e:
        return _fail(str(e))
    try:
        result = sa.model_sobol(setup, n=args.samples or sa.DEFAULT_SAMPLES, seed=args.seed,
                                patient=args.patient, drop_failed=args.drop_failed,
                                chunk_size=args.chunk_size or sa.DEFAULT_CHUNK,
                                devices=args.devices, progress=not args.quiet)
    except sa.FailedEvaluations as e:
        print(f"popsim: error: {e}", file=sys.stderr)
        return EXIT_FAILED_PATIENTS
    except sa.SensitivityError as e:
        return _fail(str(e))
    sa.write_results(result, out)  # first: the results are saved whatever happens to stdout
    sa.print_table(result)
    print(f"wrote {out}/sobol.json, {out}/sobol.csv and {out}/sobol.png")
    return 0


def cmd_cache(args) -> int:
    from popsim import compile_cache as cc

    if args.action == "info":
        _print_cache_info()
        return 0
    base = cc.root()
    if base is None or cc.jax_dir_chosen_by_user():
        return _fail("cache clear: popsim's cache is not in use (" + (
            f"{cc.ENV_DIR}=off" if base is None else
            f"{cc.JAX_ENV_DIR} is set; that folder is JAX's, not popsim's") + "); nothing to clear")
    doomed = [f for f in cc.folders() if not (args.stale and f.current)]
    if not doomed:
        print(f"nothing to delete under {base}")
        return 0
    size = cc.human_size(sum(f.size_bytes for f in doomed))
    what = (f"{len(doomed)} folder(s), {sum(f.entries for f in doomed)} compiled programs, "
            f"{size}, under {base}")
    if not args.yes:
        return _fail(f"cache clear: would delete {what}; add --yes to delete")
    cc.clear(stale_only=args.stale)
    print(f"deleted {what}")
    return 0


def _print_cache_info() -> None:
    from popsim import compile_cache as cc

    base, theirs = cc.root(), cc.jax_dir_chosen_by_user()
    if base is None:
        print(f"compile cache: off ({cc.ENV_DIR}={cc.OFF})")
        return
    if theirs:
        print(f"compile cache: JAX's folder {theirs} ({cc.JAX_ENV_DIR} is set and "
              f"{cc.ENV_DIR} is not); popsim neither reports nor clears it")
        return
    key = cc.cache_key()
    found = cc.folders()
    mine = next((f for f in found if f.current), None)
    stale = [f for f in found if not f.current]
    print("compile cache: on" + (f" ({cc.ENV_DIR})" if cc.ENV_DIR in os.environ else ""))
    print(f"root:    {base}")
    print(f"key:     {key}")
    print(f"folder:  {base / key}" + ("" if mine else " (not created yet)"))
    print(f"entries: {mine.entries if mine else 0} compiled programs, "
          f"{mine.traced if mine else 0} traced programs, "
          f"{cc.human_size(mine.size_bytes if mine else 0)}")
    print(f"stale:   {len(stale)} folder(s) of other versions or sources, "
          f"{cc.human_size(sum(f.size_bytes for f in stale))}" +
          ("; `popsim cache clear --stale --yes` deletes them" if stale else ""))
