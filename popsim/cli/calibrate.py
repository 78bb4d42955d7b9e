"""`popsim calibrate`: an evidence fit (``--evidence`` or a config with a ``[fit]`` table), or a
fit to reference ranges (a calibration config with ``[[target]]`` tables)."""

from __future__ import annotations

import shlex
import tomllib
from typing import Any

OPTION_KEYS = {"evidence": "studies", "fit": "fit", "holdout": "holdout", "starts": "starts",
               "seed": "seed", "size": "size", "population_size": "population_size",
               "steps": "steps", "optimizer": "optimizer",
               "learning_rate": "learning_rate", "gradient": "gradient", "hessian": "hessian",
               "profile": "profile", "profile_points": "profile_points"}
"""Command-line option -> key of the spec (and of a config's ``[fit]`` table)."""


def _fail(problem) -> int:
    from popsim.cli.commands import _fail as fail

    return fail(problem)


def _is_evidence_config(path) -> bool:
    try:
        return isinstance(tomllib.loads(path.read_text(encoding="utf-8")).get("fit"), dict)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False  # the reference-range loader reports it


def cmd_calibrate(args) -> int:
    evidence_mode = args.evidence is not None or args.fit is not None or (
        args.config is not None and _is_evidence_config(args.config))
    if evidence_mode:
        return cmd_calibrate_evidence(args)
    if args.config is None:
        return _fail("calibrate: give a calibration config, or --evidence STUDY... --fit "
                     "NAME,...")
    from popsim.cli.commands import cmd_calibrate_ranges

    return cmd_calibrate_ranges(args)


def _options(args) -> tuple[dict, dict, Any]:
    """``(options, source record, base parameter file)`` from the config file (if any) and
    the flags (flags override the file)."""
    from pathlib import Path

    from popsim.calibration.spec import read_config

    options, source, params_path = {}, {"command": "popsim " + shlex.join(args.argv)}, None
    if args.config is not None:
        table = read_config(args.config)
        options.update({k: v for k, v in table.items() if k != "params"})
        source["config"] = args.config.read_text(encoding="utf-8")
        if "params" in table:
            params_path = Path(args.config).parent / table["params"]
    for flag, key in OPTION_KEYS.items():
        v = getattr(args, flag)
        if v is not None:
            options[key] = v
    if args.params is not None:
        params_path = args.params
    return options, source, params_path


def cmd_calibrate_evidence(args) -> int:
    from popsim.calibration.spec import CalibrationError, build_spec
    from popsim.cli.commands import _load_params
    from popsim.files import OutputError, check_output

    try:
        options, source, params_path = _options(args)
    except CalibrationError as e:
        return _fail(str(e))
    base, err = _load_params(params_path)
    if err:
        return _fail(err)
    if base is None:
        from popsim.parameters.io import default_parameters

        base = default_parameters()
    import dataclasses

    values = {f.name: float(getattr(base.params, f.name))
              for f in dataclasses.fields(base.params)}
    try:
        spec = build_spec(options, values, base.cvs, source)
        check_output(args.out, directory=True, force=args.force,
                     inputs=(args.config, params_path), what="fit directory")
    except (CalibrationError, OutputError) as e:
        return _fail(e)
    from popsim.calibration.evidence_fit import fit_evidence
    from popsim.calibration.figures import print_fit
    from popsim.calibration.record import write_fit

    result = fit_evidence(spec, base, progress=not args.quiet)
    written = write_fit(result, args.out)  # first: the fit is saved whatever happens to stdout
    print_fit(result)
    print(f"wrote {', '.join(str(p) for p in written[:2])} and {len(written) - 2} more files "
          f"in {args.out}/")
    return 0
