"""The notebook API: :func:`simulate` runs a config and returns an :class:`xarray.Dataset`;
:func:`check_config` validates a config, samples its population and estimates the run time,
writing nothing.

A config is given as a path to a TOML file, a TOML string or a dict (the TOML's tables). Errors
name the keyword argument to change (``force=True``, ``size=0``), see :mod:`popsim.options`.
"""

from __future__ import annotations

import math
import os
import tempfile
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from popsim import config as cfg

RUN_PATIENT_DAYS_PER_SECOND = 15_000
"""Patient-days (per arm) that ``popsim run`` solves and writes per second on one device after
compiling: half of ~30,000 patient-days/s on 2 devices of a 2-core CPU, model version 2
(``benchmarks/RESULTS.md``, "End to end": 20,000 patients x 365 days, every output daily, rtol
1e-6; 7.3 million patient-days in 243 s of steady states, time courses and writing). A stored
measurement, not one of this machine."""
FIRST_CHUNK_SECONDS = 110.0
"""Seconds until the first chunk is on disk in the same measurement with an empty compilation
cache (98 s of XLA compiling and start-up, then the first chunk); a warm cache shortens it."""
CHECK_SAMPLE_MAX = 100_000
"""``check_config`` summarises at most this many patients (the first ones of the run)."""


def _config_from(config) -> tuple[cfg.RunConfig, str]:
    """A run config and its TOML text from a path, a TOML string or a dict."""
    if isinstance(config, dict):
        import tomli_w

        parsed = cfg.parse_config(config)
        try:
            return parsed, tomli_w.dumps(config)
        except TypeError as e:
            raise cfg.ConfigError(f"config: the dict cannot be written as TOML ({e})") from None
    if isinstance(config, os.PathLike):
        return cfg.load_config(Path(config))
    if isinstance(config, str):
        if "\n" in config or "=" in config or "[" in config:
            try:
                return cfg.parse_config(tomllib.loads(config)), config
            except tomllib.TOMLDecodeError as e:
                raise cfg.ConfigError(f"config: not valid TOML ({e})") from None
        return cfg.load_config(config)
    raise TypeError(f"config must be a path, a TOML string or a dict, got "
                    f"{type(config).__name__}")


def _params_from(params):
    if params is None or not isinstance(params, str | os.PathLike):
        return params
    from popsim.parameters.io import load_params_file

    return load_params_file(Path(params))


def simulate(config, *, out: str | os.PathLike | None = None, force: bool = False,
             params=None, size: int | None = None, seed: int | None = None,
             chunk_size: int = 1000, devices: int | str | None = None,
             progress: bool = True):
    """Run a cohort and return it as an :class:`xarray.Dataset` (:func:`popsim.open_dataset`).

    Args:
        config: a run config: path to a TOML file, TOML text, or a dict of its tables.
        out: also keep the cohort file here (default: a temporary file, deleted).
        force: replace an existing ``out``.
        params: a parameter set (:class:`popsim.ParameterSet`) or the path of a parameter file
            from ``popsim calibrate`` (default: the shipped set).
        size, seed: override the config's ``population.size`` / ``population.seed``.
        chunk_size, devices: as for ``popsim run`` (results do not depend on them).
        progress: show a progress bar (on stderr).

    Patient-arms that could not be solved have NaN outputs and their ``status``; a warning
    says how many.

    Raises:
        popsim.ConfigError: a bad config (one line naming the key).
        popsim.RunError: a bad argument or output path (one line naming the keyword).
    """
    from popsim.dataset import open_dataset
    from popsim.run import run_cohort

    conf, text = _config_from(config)
    ps = _params_from(params)
    options: dict[str, Any] = dict(size=size, seed=seed, chunk_size=chunk_size, force=force,
                                   params=ps, devices=devices, progress=progress)
    if out is not None:
        result = run_cohort(conf, text, Path(out), **options)
        ds = open_dataset(out)
    else:
        with tempfile.TemporaryDirectory(prefix="popsim-") as tmp:
            result = run_cohort(conf, text, Path(tmp) / "cohort.h5", **options)
            ds = open_dataset(Path(tmp) / "cohort.h5")
    if result.n_failed:
        total = sum(a.n_ok + a.n_failed for a in result.arms)
        warnings.warn(f"{result.n_failed} of {total} patient-arms not solved; their outputs "
                      "are NaN (see the status variable)", RuntimeWarning, stacklevel=2)
    return ds


@dataclass(frozen=True)
class CovariateSummary:
    """One covariate of a sampled population: its unit and either the statistics of a
    continuous one or the fractions of a category's labels."""

    name: str
    unit: str
    source: str  # "config" or "default" (the US-adult default of SPEC §2)
    mean: float = math.nan
    sd: float = math.nan
    quantiles: dict[float, float] | None = None  # probability -> value (5, 25, 50, 75, 95 %)
    fractions: dict[str, float] | None = None  # label -> fraction of patients


@dataclass(frozen=True)
class ConfigCheck:
    """What :func:`check_config` found: the config, the population summary and the run-time
    estimate (``RUN_PATIENT_DAYS_PER_SECOND`` per device plus ``FIRST_CHUNK_SECONDS``)."""

    config: cfg.RunConfig
    n_patients: int
    n_sampled: int
    covariates: list[CovariateSummary]
    patient_days: float  # patients x days x arms
    expected_seconds: float
    output_bytes: int  # the saved outputs before compression (float32)
    devices: int


QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _summaries(conf: cfg.RunConfig, cov: dict) -> list[CovariateSummary]:
    out = []
    for name, (unit, kind, labels) in cfg.COVARIATES.items():
        x = np.asarray(cov[name])
        source = "config" if name in conf.population.covariates else "default"
        if kind == "category":
            fractions = {label: float(np.mean(x == i)) for i, label in enumerate(labels)}
            out.append(CovariateSummary(name, unit, source, fractions=fractions))
        else:
            q = np.quantile(x, QUANTILES)
            out.append(CovariateSummary(name, unit, source, float(np.mean(x)),
                                        float(np.std(x, ddof=1)) if x.size > 1 else 0.0,
                                        dict(zip(QUANTILES, map(float, q), strict=True))))
    return out


def check_config(config, *, size: int | None = None, seed: int | None = None,
                 devices: int = 1) -> ConfigCheck:
    """Validate a config, sample its population (the first ``CHECK_SAMPLE_MAX`` patients at
    most, the same draws a run makes) and estimate the run time on ``devices`` devices from the
    stored throughput (:data:`RUN_PATIENT_DAYS_PER_SECOND`). Writes nothing."""
    import jax

    from popsim.options import Message, Option
    from popsim.population import sample_draws
    from popsim.run import RunError

    conf, _ = _config_from(config)
    n = conf.population.size if size is None else size
    if n <= 0:
        raise RunError(Message(Option("size", n), ": must be a positive number of patients"))
    if devices < 1:
        raise RunError(Message(Option("devices", devices), ": must be positive"))
    seed = conf.population.seed if seed is None else seed
    m = min(n, CHECK_SAMPLE_MAX)
    with jax.enable_x64(True):
        _, cov, _ = sample_draws(conf.population, seed, 0, m, ())
        cov = {k: np.asarray(v) for k, v in cov.items()}
    sim = conf.simulation
    patient_days = n * sim.days * len(conf.arms)
    seconds = FIRST_CHUNK_SECONDS + patient_days / (RUN_PATIENT_DAYS_PER_SECOND * devices)
    nbytes = 4 * n * len(conf.arms) * sim.n_times * len(conf.output.saved)
    return ConfigCheck(conf, n, m, _summaries(conf, cov), patient_days, seconds, nbytes,
                       devices)
