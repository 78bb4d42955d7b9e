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
STEADY_STATES_PER_SECOND = 2_600
"""Baseline steady states that a screening solves per second on one device, one per candidate,
when criteria read outputs: 20,000 patients' steady states in 3.77 s on 2 devices of a 2-core
CPU, the same measurement as :data:`RUN_PATIENT_DAYS_PER_SECOND`. A stored measurement."""
DOSE_EDGE_COST = 10.1
"""Slowdown of the time courses per dose edge per arm-day (the start or end of a periodic
administration, where the solver stops and restarts): a run with ``e`` edges per arm-day
solves about ``RUN_PATIENT_DAYS_PER_SECOND / (1 + DOSE_EDGE_COST * e)`` patient-days per second
per device. From one measurement: ``configs/trial_hypokalaemia.toml`` at its own size
(1,000 patients, 2 arms, 84 days; KCl every 12 h over 2 h in both arms and titrated weekly, Mg
every 24 h in one arm: 5 edges per arm-day on average) solved its 168,000 patient-days in 580
s on one device of a 2-core CPU that was running other work (290 patient-days/s)."""
CHECK_SAMPLE_MAX = 100_000
"""``check_config`` summarises at most this many patients (the first ones of the run)."""
CHECK_SCREEN_SAMPLE_MIN = 1_000
"""With enrolment criteria, ``check_config`` samples at least this many candidates (the first
ones the run screens, up to the screening budget) to estimate the fraction that passes the
criteria on covariates."""


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
    import warnings

    from popsim.balance import unbalanced_warning
    from popsim.parameters.io import load_params_file

    loaded = load_params_file(Path(params))
    message = unbalanced_warning(loaded.params)
    if message:
        warnings.warn(f"{params}: {message}", stacklevel=3)
    return loaded


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
    source: str  # "config" or "default" (the US-adult default, popsim.covariates)
    mean: float = math.nan
    sd: float = math.nan
    quantiles: dict[float, float] | None = None  # probability -> value (5, 25, 50, 75, 95 %)
    fractions: dict[str, float] | None = None  # label -> fraction of patients


@dataclass(frozen=True)
class CriterionCheck:
    """One enrolment criterion as :func:`check_config` reports it: its line, e.g.
    ``inclusion: serum_k <= 3.5 mmol/L``; whether it reads an output of the model (applied at
    each candidate's baseline steady state during the run, so not evaluated by the check); and,
    for a criterion on a covariate, the fraction of the sampled candidates that fail it."""

    name: str
    label: str
    on_output: bool
    fail_fraction: float | None = None


@dataclass(frozen=True)
class ConfigCheck:
    """What :func:`check_config` found: the config, the summary of the sampled population and
    the run-time estimate (``RUN_PATIENT_DAYS_PER_SECOND`` per device, slowed by periodic
    doses as :data:`DOSE_EDGE_COST` says, plus ``FIRST_CHUNK_SECONDS`` and the screening's
    steady states).

    With enrolment criteria (``[population.inclusion]``/``[population.exclusion]``), the
    sampled patients are the first candidates the run screens, before screening: the
    covariates summarise candidates, not the enrolled cohort. The criteria on covariates are
    applied to them (``covariate_pass_fraction``); the criteria on outputs need each
    candidate's baseline steady state, so the fraction enrolled is known only by running.
    ``candidates`` is then a lower estimate of the candidates screened, ``size /
    covariate_pass_fraction`` (as if every candidate passing the covariate criteria met the
    criteria on outputs), and ``max_candidates`` the screening budget the run stops at.
    """

    config: cfg.RunConfig
    n_patients: int
    n_sampled: int
    covariates: list[CovariateSummary]
    patient_days: float  # patients x days x arms
    expected_seconds: float
    output_bytes: int  # the saved outputs before compression (float32)
    devices: int
    criteria: tuple[CriterionCheck, ...] = ()
    covariate_pass_fraction: float | None = None  # None: no enrolment criteria
    candidates: float = 0.0  # candidates screened (estimate; inf: none passes); 0 unscreened
    max_candidates: int = 0  # the screening budget (population.max_screened); 0 unscreened
    screening_seconds: float = 0.0  # steady states of ``candidates`` (0 without output criteria)
    expected_seconds_max: float = math.nan  # with the whole budget screened
    patient_days_per_second: float = RUN_PATIENT_DAYS_PER_SECOND  # per device, estimated
    dose_edges_per_day: float = 0.0  # periodic administrations' starts and ends per arm-day

    @property
    def screened(self) -> bool:
        """Whether the run screens candidates (the population has enrolment criteria)."""
        return bool(self.criteria)

    @property
    def enrolment_known(self) -> bool:
        """Whether the check knows the enrolment fraction: no criterion reads an output."""
        return not any(c.on_output for c in self.criteria)


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


def _criteria_checks(pop: cfg.Population, cov: dict) -> tuple[tuple[CriterionCheck, ...],
                                                              float | None]:
    """Each enrolment criterion of ``pop`` with the fraction of the candidates ``cov`` that
    fail it when it is on a covariate, and the fraction that pass every criterion on a
    covariate (``None`` without criteria)."""
    from popsim.criteria import failures

    if not pop.screened:
        return (), None
    inclusion, exclusion = ({k: c for k, c in table.items() if not c.on_output}
                            for table in (pop.inclusion, pop.exclusion))
    fails = failures(inclusion, exclusion, cov)
    m = len(next(iter(cov.values())))
    passed = ~np.any(np.stack(list(fails.values())), axis=0) if fails else np.ones(m, bool)
    checks = []
    for kind, table in (("inclusion", pop.inclusion), ("exclusion", pop.exclusion)):
        for c in table.values():
            label = f"{kind}: {c.describe()}"
            checks.append(CriterionCheck(c.name, label, True) if c.on_output else
                          CriterionCheck(c.name, label, False, float(np.mean(fails[label]))))
    return tuple(checks), float(np.mean(passed))


def check_config(config, *, size: int | None = None, seed: int | None = None,
                 devices: int = 1) -> ConfigCheck:
    """Validate a config, sample its population (the first ``CHECK_SAMPLE_MAX`` patients at
    most, the same draws a run makes) and estimate the run time on ``devices`` devices from the
    stored throughput (:data:`RUN_PATIENT_DAYS_PER_SECOND`). Writes nothing and solves no
    steady state.

    With enrolment criteria the sample is of candidates before screening (at least
    :data:`CHECK_SCREEN_SAMPLE_MIN`): the criteria on covariates are applied to it, and the
    screening's steady states (one per candidate, :data:`STEADY_STATES_PER_SECOND`) are added
    to the estimate for ``size / covariate_pass_fraction`` candidates, or up to the screening
    budget (``expected_seconds_max``); see :class:`ConfigCheck`."""
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
    pop = conf.population
    budget = pop.screening_budget(n) if pop.screened else 0
    m = min(max(n, CHECK_SCREEN_SAMPLE_MIN), budget) if pop.screened else n
    m = min(m, CHECK_SAMPLE_MAX)
    with jax.enable_x64(True):
        _, cov, _ = sample_draws(pop, seed, 0, m, ())
        cov = {k: np.asarray(v) for k, v in cov.items()}
    criteria, passing = _criteria_checks(pop, cov)
    sim = conf.simulation
    patient_days = n * sim.days * len(conf.arms)
    edges = dose_edges_per_day(conf)
    per_device = RUN_PATIENT_DAYS_PER_SECOND / (1.0 + DOSE_EDGE_COST * edges)
    seconds = FIRST_CHUNK_SECONDS + patient_days / (per_device * devices)
    candidates, screening, most = 0.0, 0.0, seconds
    if passing is not None:
        candidates = n / passing if passing > 0 else math.inf
        if any(c.on_output for c in criteria):  # one baseline steady state per candidate
            rate = STEADY_STATES_PER_SECOND * devices
            screening = min(candidates, budget) / rate
            most = seconds + budget / rate
        else:
            most = seconds
        seconds += screening
    nbytes = 4 * n * len(conf.arms) * sim.n_times * len(conf.output.saved)
    return ConfigCheck(conf, n, m, _summaries(conf, cov), patient_days, seconds, nbytes,
                       devices, criteria, passing, candidates, budget, screening, most,
                       per_device, edges)


def dose_edges_per_day(conf: cfg.RunConfig) -> float:
    """Starts and ends of periodic administrations (``every_hours``) per day of the run,
    averaged over the arms: two per administration of each periodic intervention, counted by
    :meth:`popsim.interventions.Scheduled.n_administrations` (the protocol's own count)."""
    from popsim.interventions import Scheduled

    days = conf.simulation.days
    if not conf.arms or days <= 0:
        return 0.0
    per_arm = [sum(2 * i.n_administrations(days) for i in arm.intervention
                   if isinstance(i, Scheduled) and i.every_hours is not None) / days
               for arm in conf.arms]
    return float(np.mean(per_arm))
