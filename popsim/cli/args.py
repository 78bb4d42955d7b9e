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


PARAMS_TABLE = "table"
"""``--params table``: the parameter table, without the shipped fit."""


def _params(text: str) -> Path | str:
    """``--params``: a parameter file's path, or the word :data:`PARAMS_TABLE` (a file of that
    name is ``./table``)."""
    return text if text == PARAMS_TABLE else Path(text)


def _names(flag):
    def parse(text):
        names = [x.strip() for x in text.split(",") if x.strip()]
        if not names:
            raise argparse.ArgumentTypeError(f"{flag} must be comma-separated names, got "
                                             f"{text!r}")
        return names

    return parse


def _day(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--day must be a number of days, got {text!r}") \
            from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"--day must be a non-negative day, got {text!r}")
    return v


def _factor_range(text):
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--range must be LOW,HIGH factors, got {text!r}") \
            from None
    if not 0 < lo < hi < float("inf"):
        raise argparse.ArgumentTypeError(f"--range {text}: factors must be 0 < LOW < HIGH")
    return lo, hi


def _power_of_two(text):
    v = _positive_int("--samples", 2)(text)
    if v & (v - 1):
        raise argparse.ArgumentTypeError(f"--samples must be a power of 2 (the Sobol' "
                                         f"sequence's balance needs it), got {v}")
    return v


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
    _add_sensitivity(sub)
    _add_bench(sub)
    _add_check(sub)
    _add_info(sub)
    _add_vpop(sub)
    _add_cache(sub)
    return parser


def _no_compile_cache(parser) -> None:
    parser.add_argument("--no-compile-cache", action="store_true",
                        help="neither load nor save compiled programs on disk (same as "
                             "POPSIM_CACHE_DIR=off)")


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
                     help="also write a figure (PNG) to this path: a trial's arms side by "
                          "side over time, or for one arm without interventions serum Mg and "
                          "K against Mg intake and eGFR")
    run.add_argument("--params", type=_params, default=None,
                     help="parameter file from popsim calibrate (default: the shipped set; "
                          "'table': the parameter table without the shipped fit)")
    run.add_argument("--precision", choices=("float64", "float32"), default=None,
                     help="floating-point precision, instead of the config's [simulation] "
                          "precision (float32 agrees with float64 to < 1e-3; slower on CPU)")
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
    run.add_argument("--profile", type=Path, default=None,
                     help="write where the time went (JSON: seconds per phase, programs "
                          "compiled or loaded from the compile cache) to this file")
    _no_compile_cache(run)


def _add_calibrate(sub) -> None:
    cal = sub.add_parser(
        "calibrate", help="fit parameters: to published studies with uncertainty (--evidence, "
        "or a config with a [fit] table), or to reference ranges (a calibration config)")
    cal.add_argument("config", type=Path, nargs="?", default=None,
                     help="calibration config (TOML): reference-range targets, or a [fit] "
                          "table with the options below")
    cal.add_argument("--evidence", nargs="+", default=None, metavar="STUDY",
                     help="study ids to fit (space- or comma-separated; reserved studies are "
                          "refused)")
    cal.add_argument("--fit", nargs="+", default=None, metavar="NAME[=LO:HI]",
                     help="parameters to fit (cv.NAME: a between-patient CV), with optional "
                          "bounds; default bounds: the value / 4 .. x 4")
    cal.add_argument("--holdout", nargs="+", default=None, metavar="STUDY",
                     help="studies predicted at the fitted parameters, never fitted")
    cal.add_argument("--starts", type=_positive_int("--starts"), default=None,
                     help="optimisations from the base set and a Latin hypercube (default 4)")
    cal.add_argument("--seed", type=_seed, default=None, help="seed of the starts (default 0)")
    cal.add_argument("--size", type=_positive_int("--size", 2), default=None,
                     help="virtual patients per trial (default: each file's)")
    cal.add_argument("--population-size", type=_positive_int("--population-size", 2),
                     default=None, help="virtual patients per population study (default: each "
                     "file's min_size)")
    cal.add_argument("--steps", type=_positive_int("--steps"), default=None,
                     help="optimiser steps per start (default 150)")
    cal.add_argument("--optimizer", choices=("adam", "lbfgs"), default=None,
                     help="optax optimiser (default adam)")
    cal.add_argument("--learning-rate", type=float, default=None,
                     help="adam's learning rate in the transformed coordinates (default 0.1)")
    cal.add_argument("--gradient", choices=("reverse", "forward"), default=None,
                     help="reverse (value_and_grad) or forward (jacfwd) mode (default reverse)")
    cal.add_argument("--hessian", choices=("differences", "exact"), default=None,
                     help="Laplace Hessian: central differences of the JAX gradient (default) "
                          "or exact forward-over-forward (one more compile)")
    cal.add_argument("--profile", nargs="+", default=None, metavar="NAME",
                     help="profile likelihoods of these fitted parameters (a figure each)")
    cal.add_argument("--profile-points", type=_positive_int("--profile-points", 3),
                     default=None, help="grid points per profile (default 9)")
    cal.add_argument("--params", type=_params, default=None,
                     help="base parameter set (default: the shipped set; 'table': the "
                          "parameter table without the shipped fit)")
    cal.add_argument("--out", type=Path, required=True,
                     help="--evidence: directory for fit.json, parameters.toml and figures; "
                          "reference ranges: the parameter file (figures beside it)")
    cal.add_argument("--force", action="store_true", help="replace an existing output")
    cal.add_argument("--quiet", action="store_true", help="no progress bar")
    _no_compile_cache(cal)


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
    val.add_argument("--params", type=_params, default=None,
                     help="parameter file from popsim calibrate (default: the shipped set; "
                          "'table': the parameter table without the shipped fit)")
    val.add_argument("--force", action="store_true",
                     help="replace the contents of an existing output directory")
    val.add_argument("--quiet", action="store_true", help="no progress bar")
    _no_compile_cache(val)


def _add_evidence(sub) -> None:
    ev = sub.add_parser("evidence", help="published studies as data: list them, or run them "
                        "as virtual trials against the model")
    ev.add_argument("action", choices=("list", "run"))
    ev.add_argument("study", nargs="*", help="study ids (run)")
    ev.add_argument("--all", action="store_true", help="run every study that is not reserved")
    ev.add_argument("--reserved", action="store_true",
                    help="include the studies reserved for independent validation")
    ev.add_argument("--size", type=_positive_int("--size"), default=None,
                    help="virtual patients per trial (default: each file's)")
    ev.add_argument("--population-size", type=_positive_int("--population-size", 2),
                    default=None, help="virtual patients per population study (default: each "
                    "file's min_size; fewer give noisier statistics, quicker)")
    ev.add_argument("--out", type=Path, default=None,
                    help="directory for figures and evidence.json")
    ev.add_argument("--table", type=Path, default=None,
                    help="also write the comparison table to this file (.json or .csv)")
    ev.add_argument("--params", type=_params, default=None,
                    help="parameter file (default: the shipped set; 'table': the parameter "
                         "table without the shipped fit)")
    ev.add_argument("--force", action="store_true",
                    help="replace the contents of an existing output directory")
    ev.add_argument("--quiet", action="store_true", help="no progress display")
    _no_compile_cache(ev)


def _add_export_sbml(sub) -> None:
    exp = sub.add_parser("export-sbml", help="write a virtual patient as an SBML Level 3 model")
    exp.add_argument("--out", type=Path, required=True, help="SBML file to write (.xml)")
    exp.add_argument("--params", type=_params, default=None,
                     help="parameter file from popsim calibrate (default: the shipped set; "
                          "'table': the parameter table without the shipped fit)")
    exp.add_argument("--cohort", type=Path, default=None,
                     help="cohort file written by popsim run (with --patient)")
    exp.add_argument("--patient", type=_positive_int("--patient", 0), default=None,
                     help="index of the patient in --cohort (default: the reference adult)")
    exp.add_argument("--arm", default=None,
                     help="include this arm's interventions of the cohort's config")
    exp.add_argument("--force", action="store_true", help="overwrite an existing file")
    _no_compile_cache(exp)


def _add_sensitivity(sub) -> None:
    sen = sub.add_parser("sensitivity", help="global sensitivity: Sobol' indices of outputs "
                         "with respect to model parameters")
    sen.add_argument("config", type=Path, help="run config (TOML): population, arms, days")
    sen.add_argument("--outputs", type=_names("--outputs"), required=True,
                     help="comma-separated outputs, e.g. serum_k,serum_mg")
    sen.add_argument("--day", type=_day, required=True, help="saved day of the config at which "
                     "the outputs are read")
    sen.add_argument("--change", action="store_true",
                     help="the change of each output from day 0 instead of its value")
    sen.add_argument("--arm", default=None, help="arm of the config (default: the last)")
    sen.add_argument("--params", type=_names("--params"), default=None,
                     help="comma-separated parameters to vary (default: a set covering the "
                          "Mg -> K link and the main fluxes)")
    sen.add_argument("--range", type=_factor_range, default=None, metavar="LOW,HIGH",
                     help="each parameter varies over its typical value times LOW..HIGH, "
                          "clipped to its bounds, log-uniformly (default 0.67,1.5)")
    sen.add_argument("--samples", type=_power_of_two, default=None, metavar="N",
                     help="base points, a power of 2 (default 1024); N * (parameters + 2) "
                          "virtual patients are solved")
    sen.add_argument("--seed", type=_seed, default=0, help="seed of the Sobol' sequence "
                     "(default 0)")
    sen.add_argument("--patient", type=_positive_int("--patient", 0), default=0,
                     help="whose covariates: this patient of the config's population "
                          "(default 0)")
    sen.add_argument("--drop-failed", action="store_true",
                     help="drop the base points of patients that cannot be solved (default: "
                          "refuse, exit status 3)")
    sen.add_argument("--chunk-size", type=_positive_int("--chunk-size"), default=None,
                     help="patients per compiled batch (default 1024)")
    sen.add_argument("--devices", type=_devices, default=None,
                     help="split each chunk over N local devices, or 'all'")
    sen.add_argument("--out", type=Path, default=None,
                     help="output directory (default: CONFIG without suffix + _sensitivity)")
    sen.add_argument("--force", action="store_true",
                     help="replace the contents of an existing output directory")
    sen.add_argument("--quiet", action="store_true", help="no progress display")
    _no_compile_cache(sen)


def _add_bench(sub) -> None:
    bench = sub.add_parser("bench", help="throughput: popsim against SciPy on the same model")
    bench.add_argument("--quick", action="store_true",
                       help="a short run: 1,000 patients, 100 with libRoadRunner, no SciPy, no "
                            "accuracy reference, no previous solver (each can still be given)")
    bench.add_argument("--sizes", type=_sizes, default=None,
                       help="comma-separated cohort sizes (default 100,1000,10000; --quick: "
                            "1000)")
    bench.add_argument("--scipy-patients", type=_positive_int("--scipy-patients", 0),
                       default=None, help="patients solved one by one with SciPy per method "
                       "(default 4, --quick 0; 0: skip)")
    bench.add_argument("--roadrunner-patients", type=_positive_int("--roadrunner-patients", 0),
                       default=None, help="patients solved one by one with libRoadRunner on the "
                       "SBML export (default 200, --quick 100; 0: skip)")
    bench.add_argument("--end-to-end", type=_positive_int("--end-to-end", 0), default=0,
                       metavar="N", help="also time a whole `popsim run` of N patients on the "
                       "same workload, by phase (default 0: skip)")
    bench.add_argument("--repeats", type=_positive_int("--repeats"), default=1,
                       help="--end-to-end: runs in fresh processes, the median reported "
                            "(default 1)")
    bench.add_argument("--devices", type=_devices, default=None,
                       help="run popsim on N local devices, or 'all' (default: JAX's local "
                            "devices)")
    bench.add_argument("--rtol", type=float, default=1e-6, help="relative tolerance (1e-6)")
    bench.add_argument("--out", type=Path, default=None,
                       help="write the results (JSON) to this file (default: print only)")
    bench.add_argument("--table", type=Path, default=None,
                       help="write the Markdown table into this file (its popsim bench "
                            "section is replaced; the rest kept)")
    bench.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    _no_compile_cache(bench)


def _add_check(sub) -> None:
    chk = sub.add_parser("check", help="validate a run config, summarise its population and "
                         "estimate the run time; writes nothing")
    chk.add_argument("config", type=Path, help="run config (TOML)")
    chk.add_argument("--size", type=_positive_int("--size"), help="number of patients")
    chk.add_argument("--seed", type=_seed, help="random seed")
    chk.add_argument("--devices", type=_positive_int("--devices"), default=1,
                     help="devices the run would use, for the time estimate (default 1)")

INFO_TOPICS = ("outputs", "covariates", "parameters", "interventions")


def _add_info(sub) -> None:
    info = sub.add_parser("info", help="names, units and meanings of the outputs, covariates, "
                          "parameters or intervention kinds")
    info.add_argument("topic", choices=INFO_TOPICS)


def _add_vpop(sub) -> None:
    vp = sub.add_parser("vpop", help="virtual populations: select patients of a cohort so that "
                        "outputs match target distributions (Allen et al. 2016)")
    vp.add_argument("action", choices=("select",))
    vp.add_argument("cohort", type=Path, help="cohort file of plausible patients (popsim run)")
    vp.add_argument("--targets", type=Path, required=True, help="targets file (TOML)")
    vp.add_argument("--out", type=Path, required=True, help="cohort file to write (HDF5)")
    vp.add_argument("--seed", type=_seed, default=None,
                    help="seed of the acceptance draws (default: the targets file's)")
    vp.add_argument("--force", action="store_true", help="overwrite an existing output file")


def _add_cache(sub) -> None:
    cache = sub.add_parser("cache", help="the on-disk cache of compiled programs: where it is, "
                           "how big, and clearing it")
    cache.add_argument("action", choices=("info", "clear"))
    cache.add_argument("--stale", action="store_true",
                       help="clear: only the folders of other popsim versions or sources")
    cache.add_argument("--yes", action="store_true", help="clear: really delete")
