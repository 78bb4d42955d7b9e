"""The command line's arguments: one function per command adds its options; argument types give
one-line errors (exit status 2). Imports no JAX."""

from __future__ import annotations

import argparse
from pathlib import Path

EXIT_BAD_INPUT = 2
EXIT_FAILED_PATIENTS = 3


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


def build_parser() -> argparse.ArgumentParser:
    from popsim._version import __version__

    parser = _Parser(prog="popsim", description="Virtual-population simulator of Mg, K and Na "
                     "homeostasis.")
    parser.add_argument("--version", action="version", version=f"popsim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_run(sub)
    _add_calibrate(sub)
    _add_report(sub)
    _add_validate(sub)
    _add_evidence(sub)
    _add_export_sbml(sub)
    _add_bench(sub)
    return parser


def _add_run(sub) -> None:
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
    run.add_argument("--uncertainty", type=Path, default=None, metavar="FIT",
                     help="fit record (a directory, or its fit.json, with parameters.toml "
                          "beside it): run the cohort once per parameter set drawn from the "
                          "fit's uncertainty (instead of --params)")
    run.add_argument("--replicates", type=_positive_int("--replicates", 2), default=None,
                     help="number of parameter sets with --uncertainty, 2..1000 (replicate 0 is "
                          "the point estimate, the others are draws)")
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

def _add_calibrate(sub) -> None:
    cal = sub.add_parser("calibrate", help="fit parameters to reference ranges (optax)")
    cal.add_argument("config", type=Path, help="calibration config (TOML)")
    cal.add_argument("--out", type=Path, required=True,
                     help="parameter file to write (TOML); figures go beside it")
    cal.add_argument("--force", action="store_true", help="overwrite an existing parameter file")
    cal.add_argument("--quiet", action="store_true", help="no progress bar")

def _add_report(sub) -> None:
    rep = sub.add_parser("report", help="tables and figures for a cohort file")
    rep.add_argument("file", type=Path, help="cohort file (HDF5) written by popsim run")
    rep.add_argument("--out", type=Path, default=None,
                     help="output directory (default: FILE without suffix + _report)")
    rep.add_argument("--days", type=_days, default=None,
                     help="comma-separated saved days for the tables (default: first, middle, "
                          "last)")
    rep.add_argument("--force", action="store_true",
                     help="replace the contents of an existing output directory")

def _add_validate(sub) -> None:
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

def _add_evidence(sub) -> None:
    ev = sub.add_parser("evidence", help="published studies as data: list them, or run them "
                        "as virtual trials against the model")
    ev.add_argument("action", choices=("list", "run"))
    ev.add_argument("study", nargs="*", help="study ids (run)")
    ev.add_argument("--all", action="store_true", help="run every study that is not reserved")
    ev.add_argument("--reserved", action="store_true",
                    help="include the studies reserved for independent validation")
    ev.add_argument("--size", type=_positive_int("--size"), default=None,
                    help="virtual patients per study (default: each file's)")
    ev.add_argument("--out", type=Path, default=None,
                    help="directory for figures and evidence.json")
    ev.add_argument("--params", type=Path, default=None,
                    help="parameter file (default: the shipped set)")
    ev.add_argument("--force", action="store_true",
                    help="replace the contents of an existing output directory")
    ev.add_argument("--quiet", action="store_true", help="no progress display")

def _add_export_sbml(sub) -> None:
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

def _add_bench(sub) -> None:
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
