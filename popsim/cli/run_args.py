"""The checks of ``popsim run``'s arguments, before any work: one line naming the flag, or
``None``."""

from __future__ import annotations


def run_arguments_problem(args, out) -> str | None:
    """The first problem with ``popsim run``'s arguments and output paths, or ``None``."""
    multi = (args.coordinator, args.num_processes, args.process_id)
    if any(x is not None for x in multi):
        if any(x is None for x in multi):
            return "--coordinator, --num-processes and --process-id go together"
        if args.process_id >= args.num_processes:
            return f"--process-id {args.process_id}: must be 0..{args.num_processes - 1}"
        host, _, port = args.coordinator.rpartition(":")
        if not host or not port.isdigit():
            return f"--coordinator {args.coordinator!r}: expected HOST:PORT"
    if args.force and args.resume:
        return "--force and --resume exclude each other (overwrite, or finish the file?)"
    problem = _replicates_problem(args)
    if problem:
        return problem
    if not 0.0 <= args.max_failed_fraction <= 1.0:
        return f"--max-failed-fraction {args.max_failed_fraction:g}: must be in 0..1"
    from popsim.files import OutputError, check_output
    from popsim.store import COHORT_SUFFIXES

    inputs = (args.config, args.params)
    if args.uncertainty is not None:
        from popsim.parameters.uncertainty import fit_files

        inputs += fit_files(args.uncertainty)
    try:
        check_output(out, suffixes=COHORT_SUFFIXES, force=args.force or args.resume,
                     inputs=inputs, what="cohort file")
        if args.figure is not None:
            check_output(args.figure, flag="figure", suffixes=(".png",), force=args.force,
                         inputs=(*inputs, out), what="figure")
        if args.profile is not None:
            check_output(args.profile, flag="--profile", suffixes=(".json",), force=args.force,
                         inputs=(*inputs, out, args.figure), what="profile")
    except OutputError as e:
        from popsim.options import cli_text

        return cli_text(e)
    return None


def _replicates_problem(args) -> str | None:
    """The first problem with ``--uncertainty``/``--replicates``, or ``None``."""
    from popsim.parameters.uncertainty import options_problem

    return options_problem(uncertainty=args.uncertainty is not None,
                           replicates=args.replicates, params=args.params is not None,
                           processes=args.num_processes or 1)


def load_fit_record(path):
    """``(fit record, None)``, ``(None, None)`` without a path, or ``(None, error line)``."""
    if path is None:
        return None, None
    from popsim.parameters.uncertainty import FitRecordError, load_fit

    try:
        return load_fit(path), None
    except FitRecordError as e:
        return None, str(e)
