"""What the evidence-fit scripts share: print the ``popsim calibrate`` command, then run it."""

from __future__ import annotations

import argparse


def run_calibrate(cmd: list[str], force: bool, dry_run: bool) -> int:
    """Print ``popsim CMD`` (with ``--force`` if asked) and run it, unless ``dry_run``; the exit
    status of ``popsim``."""
    cmd = cmd + (["--force"] if force else [])
    print("popsim " + " ".join(cmd))
    if dry_run:
        return 0
    from popsim.cli import main as popsim

    return popsim(cmd)


def parser(doc: str | None, out: str, size: int, steps: int) -> argparse.ArgumentParser:
    """The options every fit script takes: ``--out --fit --size --steps --seed --force
    --dry-run``, with the script's defaults."""
    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    ap.add_argument("--out", default=out, help="fit directory")
    ap.add_argument("--fit", default=None, help="NAME[=LO:HI],... (default: FIT)")
    ap.add_argument("--size", type=int, default=size, help="virtual patients per trial")
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--dry-run", action="store_true", help="print the command only")
    return ap


def table_fit_command(studies, fit, holdout, args: argparse.Namespace) -> list[str]:
    """``popsim calibrate`` of ``fit`` (or ``--fit``) to ``studies`` from the parameter table,
    one start, predicting ``holdout``."""
    names = args.fit.split(",") if args.fit else list(fit)
    return ["calibrate", "--evidence", *studies, "--fit", *names, "--holdout", *holdout,
            "--params", "table", "--size", str(args.size), "--starts", "1", "--steps",
            str(args.steps), "--seed", str(args.seed), "--out", args.out]
