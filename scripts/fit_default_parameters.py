"""Fit popsim's default parameter set to the evidence folder, reproducibly.

Runs ``popsim calibrate --evidence`` on every non-reserved study file of
``popsim/evidence/studies/`` (reserved studies are never read), fitting the parameters listed in
``FIT`` that the installed model has (looked up by name in ``dataclasses.fields(Params)``, so the
list survives model changes: a name the model lacks is reported and skipped). ``--holdout``
keeps studies out of the fit and reports their prediction. The output directory gets the fit
record (``fit.json``) and ``parameters.toml``, whose fitted values are labelled ``fitted`` with
that record; copying both into ``popsim/parameters/`` makes them the shipped defaults.

Usage: python scripts/fit_default_parameters.py [--out build/default_fit] [--holdout ID ...]
       [--fit NAME[=LO:HI],...] [--size N] [--starts N] [--steps N] [--seed S] [--force]
       [--dry-run]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

FIT = (
    # gut absorption and endogenous secretion of Mg
    "mg_gut_absorbed_ref", "mg_gut_km", "mg_gut_paracellular_fraction", "mg_secretion_clearance",
    # renal Mg handling
    "mg_tal_max_fraction", "mg_tal_casr_hill", "mg_dct_half_load", "mg_dct_max_fraction",
    # cell Mg and the Mg -> K link (NKA, ROMK block by cell Mg)
    "mg_cell_exchange", "mg_cell_brake_k", "nka_vmax", "nka_km_mg", "romk_mg_kd",
    # renal K handling and aldosterone
    "k_aldo_exponent", "k_flow_exponent", "aldo_k_sensitivity",
    # diuretics
    "loop_max_block", "thiazide_max_block", "mg_thiazide_trpm6",
    # Na and volume
    "na_cd_max_fraction", "na_cd_aldosterone_gain",
)
"""Parameters fitted by default: the ones the studies inform (gut and renal Mg, the Mg -> K link,
renal K, diuretics, Na balance)."""


def fit_names(requested: str | None) -> tuple[list[str], list[str]]:
    """``(names to fit, names the model does not have)``."""
    from popsim.parameters import Params

    have = {f.name for f in dataclasses.fields(Params)}
    items = requested.split(",") if requested else list(FIT)
    base = lambda item: item.split("=")[0].strip().removeprefix("cv.")  # noqa: E731
    return ([i for i in items if base(i) in have], [i for i in items if base(i) not in have])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--out", default="build/default_fit", help="fit directory")
    ap.add_argument("--holdout", nargs="+", default=[], metavar="STUDY")
    ap.add_argument("--fit", default=None, help="NAME[=LO:HI],... (default: FIT)")
    ap.add_argument("--size", type=int, default=None, help="virtual patients per study")
    ap.add_argument("--starts", type=int, default=4)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--dry-run", action="store_true", help="print the command only")
    args = ap.parse_args(argv)

    from popsim import evidence

    names, missing = fit_names(args.fit)
    for name in missing:
        print(f"skipped: the model has no parameter {name!r}", file=sys.stderr)
    ids = [s.study.id for s in evidence.studies() if s.study.id not in args.holdout]
    cmd = ["calibrate", "--evidence", *ids, "--fit", ",".join(names), "--starts",
           str(args.starts), "--steps", str(args.steps), "--seed", str(args.seed),
           "--out", args.out]
    cmd += ["--holdout", *args.holdout] if args.holdout else []
    cmd += ["--size", str(args.size)] if args.size else []
    cmd += ["--force"] if args.force else []
    print("popsim " + " ".join(cmd))
    if args.dry_run:
        return 0
    from popsim.cli import main as popsim

    return popsim(cmd)


if __name__ == "__main__":
    sys.exit(main())
