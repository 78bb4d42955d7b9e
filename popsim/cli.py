"""Command-line front end: parse, load the config, call the library, map errors to exit codes.

Exit status: 0 success; 1 an unexpected internal error, or checks that failed (``validate``,
``export-sbml``); 2 bad input (config, arguments, files; one line on stderr, nothing written);
3 ``run`` finished and wrote a complete file, but every patient, or more than
``--max-failed-fraction`` of the patient-arms, could not be solved.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_FAILED_PATIENTS = 3
COHORT_SUFFIXES = (".h5", ".hdf5", ".nc")  # as popsim.run.COHORT_SUFFIXES (which imports JAX)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2
        self.exit(EXIT_BAD_INPUT, f"popsim: error: {message}\n")


def _positive_int(name, low: int = 1):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") \
                from None
        if v < low:
            raise argparse.ArgumentTypeError(f"{name} must be " +
                                             ("positive" if low == 1 else f">= {low}") +
                                             f", got {v}")
        return v

    return parse


def _seed(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be a whole number, got {text!r}") from None
    if not 0 <= v < 2**63:
        raise argparse.ArgumentTypeError(f"--seed must be in 0 .. 2**63-1, got {v}")
    return v


def build_parser() -> argparse.ArgumentParser:
    from popsim._version import __version__

    parser = _Parser(prog="popsim", description="Virtual-population simulator of Mg, K and Na "
                     "homeostasis.")
    parser.add_argument("--version", action="version", version=f"popsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="simulate a cohort and write it to an HDF5 file")
    run.add_argument("config", type=Path, help="run config (TOML)")
    run.add_argument("--out", type=Path, default=None,
                     help="output HDF5 file (default: CONFIG with suffix .h5)")
    run.add_argument("--size", type=_positive_int("--size"), help="number of patients")
    run.add_argument("--seed", type=_seed, help="random seed")
    run.add_argument("--chunk-size", type=_positive_int("--chunk-size"), default=1000,
                     help="patients per compiled batch (default 1000)")
    run.add_argument("--force", action="store_true", help="overwrite an existing output file")
    run.add_argument("--figure", type=Path, default=None,
                     help="also write an overview figure (PNG) to this path")
    run.add_argument("--params", type=Path, default=None,
                     help="parameter file from popsim calibrate (default: the shipped "
                          "calibrated set)")
    run.add_argument("--resume", action="store_true",
                     help="finish an interrupted run in --out (same config, seed, size, chunk "
                          "size and parameters), keeping its finished chunks")
    run.add_argument("--devices", type=_devices, default=None,
                     help="shard each chunk over N local devices, or 'all'")
    run.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                     help="several processes (jax.distributed): the coordinator's address")
    run.add_argument("--num-processes", type=_positive_int("--num-processes"), default=None,
                     help="several processes: how many")
    run.add_argument("--process-id", type=_positive_int("--process-id", 0), default=None,
                     help="several processes: this one's index, 0..num-processes-1")
    run.add_argument("--max-failed-fraction", type=float, default=0.01,
                     help="exit with status 3 when more than this fraction of patient-arms "
                          "cannot be solved (default 0.01; the file is written either way)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    cal = sub.add_parser("calibrate", help="fit parameters to reference ranges (optax)")
    cal.add_argument("config", type=Path, help="calibration config (TOML)")
    cal.add_argument("--out", type=Path, required=True,
                     help="parameter file to write (TOML); figures go beside it")
    cal.add_argument("--force", action="store_true", help="overwrite an existing parameter file")
    cal.add_argument("--quiet", action="store_true", help="no progress bar")

    rep = sub.add_parser("report", help="tables and figures for a cohort file")
    rep.add_argument("file", type=Path, help="cohort file (HDF5) written by popsim run")
    rep.add_argument("--out", type=Path, default=None,
                     help="output directory (default: FILE without suffix + _report)")
    rep.add_argument("--days", type=_days, default=None,
                     help="comma-separated saved days for the tables (default: first, middle, "
                          "last)")
    rep.add_argument("--force", action="store_true",
                     help="replace the contents of an existing output directory")

    val = sub.add_parser("validate", help="run the built-in physiology scenarios")
    val.add_argument("--out", type=Path, default=Path("validation"),
                     help="directory for figures and validation.json (default: validation/)")
    val.add_argument("--size", type=_positive_int("--size"), default=32,
                     help="patients per scenario (default 32)")
    val.add_argument("--scenario", action="append", default=None,
                     help="run only this scenario (repeatable)")
    val.add_argument("--params", type=Path, default=None,
                     help="parameter file from popsim calibrate (default: the shipped set)")
    val.add_argument("--force", action="store_true",
                     help="replace the contents of an existing output directory")
    val.add_argument("--quiet", action="store_true", help="no progress bar")
    exp = sub.add_parser("export-sbml", help="write a virtual patient as an SBML Level 3 model")
    exp.add_argument("--out", type=Path, required=True, help="SBML file to write (.xml)")
    exp.add_argument("--params", type=Path, default=None,
                     help="parameter file from popsim calibrate (default: the shipped set)")
    exp.add_argument("--cohort", type=Path, default=None,
                     help="cohort file written by popsim run (with --patient)")
    exp.add_argument("--patient", type=_positive_int("--patient", 0), default=None,
                     help="index of the patient in --cohort (default: the reference adult)")
    exp.add_argument("--arm", default=None,
                     help="include this arm's interventions of the cohort's config")
    exp.add_argument("--force", action="store_true", help="overwrite an existing file")
    bench = sub.add_parser("bench", help="throughput: popsim against SciPy on the same model")
    bench.add_argument("--sizes", type=_sizes, default=[100, 1000, 10_000],
                       help="comma-separated cohort sizes (default 100,1000,10000)")
    bench.add_argument("--scipy-patients", type=_positive_int("--scipy-patients", 0), default=4,
                       help="patients solved one by one with SciPy per method (0: skip)")
    bench.add_argument("--roadrunner-patients", type=_positive_int("--roadrunner-patients", 0),
                       default=200, help="patients solved one by one with libRoadRunner on the "
                       "SBML export (0: skip)")
    bench.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance (1e-6)")
    bench.add_argument("--out", type=Path, default=None,
                       help="write the results (JSON) to this file (default: print only)")
    bench.add_argument("--table", type=Path, default=None,
                       help="write the Markdown table into this file (its popsim bench "
                            "section is replaced; the rest kept)")
    bench.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    return parser


def _sizes(text):
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes must be comma-separated whole numbers, got "
                                         f"{text!r}") from None
    if not sizes or any(n <= 0 for n in sizes):
        raise argparse.ArgumentTypeError(f"--sizes must be positive, got {text!r}")
    return sizes


def _devices(text):
    if text == "all":
        return text
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--devices must be a whole number or 'all', got "
                                         f"{text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"--devices must be positive, got {v}")
    return v


def _days(text):
    try:
        days = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--days must be comma-separated numbers, got {text!r}") \
            from None
    if not days or any(d < 0 for d in days):
        raise argparse.ArgumentTypeError(f"--days must be non-negative days, got {text!r}")
    return days


def _fail(message: str) -> int:
    print(f"popsim: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _load_params(path):
    """``(parameter set, None)``, ``(None, None)`` without a path, or ``(None, error line)``."""
    if path is None:
        return None, None
    from popsim.parameters.io import ParamsFileError, load_params_file

    try:
        return load_params_file(path), None
    except ParamsFileError as e:
        return None, str(e)


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
        return _fail(str(e))
    out = args.out if args.out is not None else args.config.with_suffix(".h5")
    multi = (args.coordinator, args.num_processes, args.process_id)
    if any(x is not None for x in multi):
        if any(x is None for x in multi):
            return _fail("--coordinator, --num-processes and --process-id go together")
        if args.process_id >= args.num_processes:
            return _fail(f"--process-id {args.process_id}: must be 0..{args.num_processes - 1}")
        host, _, port = args.coordinator.rpartition(":")
        if not host or not port.isdigit():
            return _fail(f"--coordinator {args.coordinator!r}: expected HOST:PORT")
    if args.force and args.resume:
        return _fail("--force and --resume exclude each other (overwrite, or finish the file?)")
    from popsim.files import OutputError, check_output

    inputs = (args.config, args.params)
    try:
        check_output(out, suffixes=COHORT_SUFFIXES, force=args.force or args.resume,
                     inputs=inputs, what="cohort file")
        if args.figure is not None:
            check_output(args.figure, flag="--figure", suffixes=(".png",), force=args.force,
                         inputs=(*inputs, out), what="figure")
    except OutputError as e:
        return _fail(str(e))
    if not 0.0 <= args.max_failed_fraction <= 1.0:
        return _fail(f"--max-failed-fraction {args.max_failed_fraction:g}: must be in 0..1")
    params, err = _load_params(args.params)
    if err:
        return _fail(err)
    distributed = args.num_processes is not None and args.num_processes > 1
    if distributed:
        import jax

        jax.distributed.initialize(coordinator_address=args.coordinator,
                                   num_processes=args.num_processes,
                                   process_id=args.process_id)
    try:
        result = run_cohort(config, text, out, size=args.size, seed=args.seed,
                            chunk_size=args.chunk_size, force=args.force, params=params,
                            progress=not args.quiet, resume=args.resume, devices=args.devices,
                            distributed=distributed)
    except (RunError, StoreError) as e:
        return _fail(str(e))
    from popsim.report import print_run_summary

    print_run_summary(result)
    if args.figure is not None:
        from popsim.report import cohort_overview_figure

        cohort_overview_figure(out, args.figure)
        print(f"figure: {args.figure}")
    return _failure_exit(result, args.max_failed_fraction)


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
        return _fail(str(e))
    from popsim.report import ReportError, report

    try:
        summary = report(args.file, out, days=args.days, force=args.force)
    except ReportError as e:
        return _fail(str(e))
    print(f"wrote {out}/summary.json, {out}/summary.csv and "
          f"{len(summary['figures'])} figures in {out}/")
    return 0


def cmd_validate(args) -> int:
    from popsim.files import OutputError, check_output

    try:
        check_output(args.out, directory=True, force=args.force, inputs=(args.params,),
                     what="directory")
    except OutputError as e:
        return _fail(str(e))
    from popsim.validation import print_report, scenarios, validate

    known = [s.name for s in scenarios()]
    for name in args.scenario or []:
        if name not in known:
            return _fail(f"--scenario {name!r}: unknown; allowed: {', '.join(known)}")
    params, err = _load_params(args.params)
    if err:
        return _fail(err)
    result = validate(size=args.size, out=args.out, progress=not args.quiet,
                      only=tuple(args.scenario) if args.scenario else None, params=params)
    print_report(result)
    print(f"figures and validation.json in {args.out}/")
    return 0 if result.passed else 1


def cmd_calibrate(args) -> int:
    from popsim.calibration import build_problem, fit, load_calibration, write_outputs
    from popsim.config import ConfigError
    from popsim.report import print_calibration_table

    try:
        conf, pop, text = load_calibration(args.config)
    except ConfigError as e:
        return _fail(str(e))
    out = args.out
    figures = [out.with_name(out.stem + "_loss.png"), out.with_name(out.stem + "_fit.png")]
    from popsim.files import OutputError, check_output

    try:
        check_output(out, suffixes=(".toml",), force=args.force, inputs=(args.config,),
                     what="parameter file")
        for fig in figures:
            check_output(fig, force=args.force, inputs=(args.config,), what="figure")
    except OutputError as e:
        return _fail(str(e))
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
            check_output(args.table, flag="--table", suffixes=(".md",), force=True,
                         inputs=(args.out,), what="table")
    except OutputError as e:
        return _fail(str(e))
    import jax

    jax.config.update("jax_enable_x64", True)
    from popsim.bench import markdown, run_benchmark

    result = run_benchmark(sizes=args.sizes, scipy_patients=args.scipy_patients,
                           roadrunner_patients=args.roadrunner_patients,
                           rtol=args.rtol, out=args.out, table=args.table)
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
        return _fail(str(e))
    errors = sbml.consistency_errors(args.out.read_text())
    print(f"wrote {args.out}: {spec.title}, SBML L{sbml.SBML_LEVEL}V{sbml.SBML_VERSION}, "
          f"{len(errors)} libSBML consistency errors")
    return 0 if not errors else 1


COMMANDS = {"bench": cmd_bench, "export-sbml": cmd_export_sbml, "run": cmd_run,
            "report": cmd_report, "validate": cmd_validate, "calibrate": cmd_calibrate}


def main(argv: list[str] | None = None) -> int:
    import os

    # XLA's C++ log (e.g. its "Very slow compile? If you want to file a bug..." banner while a
    # program compiles) is not for users; popsim reports compile phases itself. Set
    # TF_CPP_MIN_LOG_LEVEL=0 to see it. Read when JAX's backends start, so set before that.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
