"""Calibration config (TOML), validated like run configs: one clear line per problem."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from popsim import config as runcfg
from popsim.calibration.spec import FittedName
from popsim.config import Arm, Population, Simulation, _Strict, _suggest
from popsim.observables import OUTPUT_UNITS
from popsim.parameters import parameter_specs

_SPECS = {s.name: s for s in parameter_specs()}


class FitParameter(_Strict, FittedName):
    """A parameter to fit: a typical value by its table name, or a between-patient CV as
    ``cv.<name>``."""

    name: str
    lower: float
    upper: float
    transform: Literal["log", "logit"] = "log"
    initial: float | None = None  # default: the table value (or CV)

    @model_validator(mode="after")
    def _check(self):
        base = self.parameter
        if base not in _SPECS:
            raise ValueError(f"unknown parameter {base!r}{_suggest(base, _SPECS)}")
        if self.lower >= self.upper:
            raise ValueError(f"{self.name}: lower ({self.lower:g}) must be below upper "
                             f"({self.upper:g})")
        if self.transform == "log" and self.lower <= 0:
            raise ValueError(f"{self.name}: a log transform needs lower > 0, got {self.lower:g}")
        v = self.start
        if not self.lower <= v <= self.upper:
            raise ValueError(f"{self.name}: bounds {self.lower:g}..{self.upper:g} exclude the "
                             f"current value {v:g}")
        if self.transform == "logit" and not self.lower < v < self.upper:
            raise ValueError(f"{self.name}: a logit transform needs the start strictly inside "
                             f"{self.lower:g}..{self.upper:g}, got {v:g}")
        return self

    @property
    def start(self) -> float:
        if self.initial is not None:
            return self.initial
        s = _SPECS[self.parameter]
        return s.iiv if self.is_cv else s.value

    @property
    def unit(self) -> str:
        return "1" if self.is_cv else _SPECS[self.parameter].unit


class Target(_Strict):
    """One statistic of one output over the cohort, with what it should be.

    ``statistic``: ``quantile`` (with ``q``), ``median``, ``mean`` or ``fraction_in_range``
    (the fraction of patients with the output inside ``low..high``). Give either a ``value``
    (penalised as ``((stat - value) / scale)**2``) or, for the first three, a range ``low..high``
    (no penalty inside); for ``fraction_in_range`` give the wanted ``fraction`` (penalised only
    below it). ``arm`` and ``day`` make it a target on a day of an intervention arm.
    """

    name: str | None = None
    output: str
    statistic: Literal["quantile", "median", "mean", "fraction_in_range"]
    unit: str
    q: Annotated[float, Field(gt=0, lt=1)] | None = None
    value: float | None = None
    low: float | None = None
    high: float | None = None
    fraction: Annotated[float, Field(gt=0, le=1)] | None = None
    scale: Annotated[float, Field(gt=0)] | None = None
    weight: Annotated[float, Field(ge=0)] = 1.0
    arm: str | None = None
    day: Annotated[float, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.output not in OUTPUT_UNITS:
            raise ValueError(f"unknown output {self.output!r}{_suggest(self.output, OUTPUT_UNITS)}")
        want = "1" if self.statistic == "fraction_in_range" and self.unit == "1" \
            else OUTPUT_UNITS[self.output]
        if self.unit != want:
            raise ValueError(f"{self.output}: unit {self.unit!r} does not match the output's "
                             f"unit {OUTPUT_UNITS[self.output]!r}")
        if (self.statistic == "quantile") != (self.q is not None):
            raise ValueError("q is required for statistic 'quantile' and only for it")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"infeasible range: low ({self.low:g}) must be below high "
                             f"({self.high:g})")
        if self.statistic == "fraction_in_range":
            if self.low is None or self.high is None or self.fraction is None:
                raise ValueError("fraction_in_range needs low, high and fraction")
        elif (self.value is None) == (self.low is None or self.high is None):
            raise ValueError("give either value, or both low and high")
        if (self.arm is None) != (self.day is None):
            raise ValueError("arm and day go together (a target on a day of an arm)")
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        stat = f"q{self.q:g}" if self.statistic == "quantile" else self.statistic
        where = f" ({self.arm}, day {self.day:g})" if self.arm else ""
        return f"{stat} {self.output}{where}"

    @property
    def wanted(self) -> str:
        if self.statistic == "fraction_in_range":
            return f">= {self.fraction:g} in {self.low:g}..{self.high:g}"
        if self.value is not None:
            return f"{self.value:g}"
        return f"{self.low:g}..{self.high:g}"

    @property
    def loss_scale(self) -> float:
        if self.scale is not None:
            return self.scale
        if self.statistic == "fraction_in_range":
            return 0.01
        if self.value is not None:
            return max(0.02 * abs(self.value), 1e-6)
        assert self.low is not None and self.high is not None  # _check: no value, a range
        return (self.high - self.low) / 4.0


OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adabelief", "nadam", "yogi")


class Optimizer(_Strict):
    name: Literal["adam", "adamw", "sgd", "rmsprop", "adabelief", "nadam", "yogi"] = "adam"
    learning_rate: Annotated[float, Field(gt=0, le=10)] = 0.05
    schedule: Literal["constant", "cosine", "exponential"] = "constant"
    steps: Annotated[int, Field(gt=0, le=100_000)] = 200
    cohort_size: Annotated[int, Field(gt=0, le=1_000_000)] = 256
    # targets on an intervention arm use the first arm_cohort_size patients of the cohort (their
    # time courses dominate the cost of a step; a median over 64 patients has a standard error
    # of about 0.16 SD)
    arm_cohort_size: Annotated[int, Field(gt=0, le=1_000_000)] = 64
    # "forward": jacfwd through the solves (diffrax ForwardMode, optimistix implicit JVP), cheaper
    # with few fitted parameters; "reverse": value_and_grad (diffrax recursive checkpointing)
    gradient: Literal["forward", "reverse"] = "forward"
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0


class Stopping(_Strict):
    loss_below: Annotated[float, Field(ge=0)] = 1e-8
    patience: Annotated[int, Field(gt=0)] = 40  # steps without relative improvement
    min_relative_improvement: Annotated[float, Field(ge=0)] = 1e-4


class CalibrationConfig(_Strict):
    population: Population | None = None
    population_from: str | None = None  # path of a run config whose [population] to use
    simulation: Simulation = Simulation(days=30.0)
    arm: list[Arm] = []
    parameter: list[FitParameter]
    target: list[Target]
    optimizer: Optimizer = Optimizer()
    stopping: Stopping = Stopping()

    @model_validator(mode="after")
    def _check(self):
        if (self.population is None) == (self.population_from is None):
            raise ValueError("give exactly one of [population] and population_from")
        names = [p.name for p in self.parameter]
        for n in names:
            if names.count(n) > 1:
                raise ValueError(f"parameter {n!r} is listed twice")
        if not self.parameter:
            raise ValueError("no [[parameter]] to fit")
        if not self.target:
            raise ValueError("no [[target]]")
        arms = {a.name for a in self.arm}
        for t in self.target:
            if t.arm is not None:
                if t.arm not in arms:
                    raise ValueError(f"target {t.label!r}: unknown arm {t.arm!r}"
                                     f"{_suggest(t.arm, arms)}")
                assert t.day is not None  # Target._check: arm and day go together
                if t.day > self.simulation.days:
                    raise ValueError(f"target {t.label!r}: day {t.day:g} is after the end of the "
                                     f"simulation (days = {self.simulation.days:g})")
        return self


def parse_calibration(data: dict, base: Path = Path(".")) -> tuple[CalibrationConfig, Population]:
    """Validate a calibration config; returns it and the population it simulates."""
    conf = runcfg.validate_model(CalibrationConfig, data)
    if conf.population is not None:
        return conf, conf.population
    assert conf.population_from is not None  # _check: exactly one of the two
    path = Path(conf.population_from)
    if not path.is_absolute():  # relative to the calibration config, else to the working dir
        path = base / path if (base / path).exists() else Path.cwd() / path
    run_conf, _ = runcfg.load_config(path)
    return conf, run_conf.population


def load_calibration(path: str | Path) -> tuple[CalibrationConfig, Population, str]:
    data, text = runcfg.read_toml(path)
    conf, pop = parse_calibration(data, base=Path(path).parent)
    return conf, pop, text
