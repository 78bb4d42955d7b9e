"""What the evidence-fit scripts share: print the ``popsim calibrate`` command, then run it."""

from __future__ import annotations


def run_calibrate(cmd: list[str], force: bool, dry_run: bool) -> int:
    """Print ``popsim CMD`` (with ``--force`` if asked) and run it, unless ``dry_run``; the exit
    status of ``popsim``."""
    cmd = cmd + (["--force"] if force else [])
    print("popsim " + " ".join(cmd))
    if dry_run:
        return 0
    from popsim.cli import main as popsim

    return popsim(cmd)
