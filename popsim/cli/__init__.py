"""Command-line front end: parse, load the config, call the library, map errors to exit codes.

Exit status: 0 success; 1 an unexpected internal error, or checks that failed (``validate``,
``export-sbml``); 2 bad input (config, arguments, files; one line on stderr, nothing written);
3 ``run`` finished and wrote a complete file, but every patient, or more than
``--max-failed-fraction`` of the patient-arms, could not be solved; or ``sensitivity`` found
virtual patients it could not solve (without ``--drop-failed``; nothing written).
"""

from __future__ import annotations

import os
import time

from popsim.cli.args import EXIT_BAD_INPUT as EXIT_BAD_INPUT
from popsim.cli.args import EXIT_FAILED_PATIENTS as EXIT_FAILED_PATIENTS
from popsim.cli.args import build_parser as build_parser
from popsim.cli.calibrate import cmd_calibrate
from popsim.cli.commands import _failure_exit as _failure_exit
from popsim.cli.commands import (
    cmd_bench,
    cmd_cache,
    cmd_evidence,
    cmd_export_sbml,
    cmd_report,
    cmd_run,
    cmd_sensitivity,
    cmd_validate,
)
from popsim.cli.tools import cmd_check, cmd_info, cmd_vpop

STARTED = time.perf_counter()  # when the command line was imported (``popsim run --profile``)

COMMANDS = {"bench": cmd_bench, "evidence": cmd_evidence, "export-sbml": cmd_export_sbml,
            "run": cmd_run, "report": cmd_report, "validate": cmd_validate,
            "calibrate": cmd_calibrate, "sensitivity": cmd_sensitivity,
            "check": cmd_check, "info": cmd_info, "vpop": cmd_vpop, "cache": cmd_cache}


def main(argv: list[str] | None = None) -> int:
    # XLA's C++ log (e.g. its "Very slow compile? If you want to file a bug..." banner while a
    # program compiles) is not for users; popsim reports compile phases itself. Set
    # TF_CPP_MIN_LOG_LEVEL=0 to see it. Read when JAX's backends start, so set before that.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import sys

    args = build_parser().parse_args(argv)
    if getattr(args, "no_compile_cache", False):  # read when popsim.batch is imported
        from popsim.compile_cache import ENV_DIR, OFF

        os.environ[ENV_DIR] = OFF
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by calibrate
    return COMMANDS[args.command](args)

