"""The model as a function of its parameters for :func:`popsim.sensitivity.indices.sobol`:
the question checked without JAX (:func:`model_setup`), the design solved as a cohort
(:func:`model_sobol`). See :mod:`popsim.sensitivity` for the choices."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from popsim import config as cfg
from popsim._schema import _suggest
from popsim.facts import STATUS_MEANINGS
from popsim.outputs import OUTPUT_UNITS
from popsim.parameters import parameter_specs
from popsim.sensitivity.indices import (
    DEFAULT_BOOTSTRAP,
    FailedEvaluations,
    SensitivityError,
    SobolResult,
    sobol,
)

if TYPE_CHECKING:
    from popsim.parameters.io import ParameterSet

DEFAULT_PARAMETERS = ("nka_km_mg", "romk_mg_kd", "mg_cell_brake_k", "k_aldo_exponent",
                      "k_flow_exponent", "aldo_k_sensitivity", "mg_gut_km", "mg_dct_half_load",
                      "mg_tal_casr_hill", "renin_md_gain")
"""Varied when no parameters are named: the Mg -> K link (cell Mg on the Na+/K+-ATPase, on
ROMK and on its own entry), distal K secretion (its aldosterone and flow drives, and the
aldosterone response to K), Mg absorption and renal Mg handling, and the renin drive."""
DEFAULT_RANGE = (0.67, 1.5)  # typical value x 0.67 .. x 1.5 (clipped to the physical bounds)
DEFAULT_SAMPLES = 1024  # base points N (evaluations: N * (d + 2))
DEFAULT_CHUNK = 1024  # patients per compiled batch


# --- the model question ----------------------------------------------------------------------

@dataclass(frozen=True)
class ParameterRange:
    """One varied parameter: its typical value, range and how it is sampled."""

    name: str
    unit: str
    typical: float
    lower: float
    upper: float
    log: bool  # uniform in log(value) (multiplicative ranges), else uniform in the value

    @property
    def bounds(self) -> tuple[float, float]:
        """The sampled interval (of log(value) when :attr:`log`)."""
        return (math.log(self.lower), math.log(self.upper)) if self.log else \
            (self.lower, self.upper)

    def values(self, x: np.ndarray) -> np.ndarray:
        """Parameter values from sampled ``x`` (the clip only absorbs rounding)."""
        return np.clip(np.exp(x) if self.log else x, self.lower, self.upper)


@dataclass(frozen=True)
class ModelSetup:
    """A checked model question (:func:`model_setup`)."""

    config: cfg.RunConfig
    outputs: tuple[str, ...]
    arm: str
    day: float
    day_index: int
    ranges: tuple[ParameterRange, ...]
    change: bool
    parameter_set: ParameterSet


def model_setup(config: cfg.RunConfig, outputs: Sequence[str], day: float,
                arm: str | None = None, parameters: Sequence[str] | None = None,
                relative_range: tuple[float, float] = DEFAULT_RANGE,
                ranges: dict[str, tuple[float, float]] | None = None, change: bool = False,
                parameter_set=None) -> ModelSetup:
    """Check a model question before any work (:class:`SensitivityError`, one line, naming the
    allowed values). ``parameters``: names of :class:`popsim.parameters.Params` fields (default
    :data:`DEFAULT_PARAMETERS`); ``ranges``: explicit ``(lower, upper)`` for some of them."""
    from popsim.parameters.io import default_parameters

    ps = default_parameters() if parameter_set is None else parameter_set
    outputs = (outputs,) if isinstance(outputs, str) else tuple(outputs)
    _check_names("output", outputs, OUTPUT_UNITS)
    arms = [a.name for a in config.arms]
    arm = arms[-1] if arm is None else arm
    _check_names("arm", [arm], arms)
    times = config.simulation.output_times
    near = [i for i, t in enumerate(times) if abs(t - day) <= 1e-9 * max(1.0, times[-1])]
    if not near:
        shown = ", ".join(f"{t:g}" for t in times) if len(times) <= 8 else \
            f"{times[0]:g}, {times[1]:g}, ..., {times[-1]:g}"
        raise SensitivityError(f"day {day:g} is not a saved day of the config; saved days: "
                               f"{shown} (every {config.simulation.output_interval_days:g})")
    names = tuple(DEFAULT_PARAMETERS if parameters is None else
                  [parameters] if isinstance(parameters, str) else parameters)
    specs = {s.name: s for s in parameter_specs()}
    _check_names("parameter", names, specs)
    for name in ranges or {}:
        if name not in names:
            raise SensitivityError(f"a range is given for {name!r}, which is not varied "
                                   f"(varied: {', '.join(names)})")
    lo, hi = relative_range
    if not 0 < lo < hi < math.inf:
        raise SensitivityError(f"range {lo:g},{hi:g}: factors must be 0 < low < high")
    found = tuple(_range(specs[n], getattr(ps.params, n), (ranges or {}).get(n), lo, hi)
                  for n in names)
    return ModelSetup(config, outputs, arm, float(times[near[0]]), near[0], found, change, ps)


def _check_names(what: str, names: Sequence[str], allowed) -> None:
    for name in names:
        if name not in allowed:
            raise SensitivityError(f"unknown {what} {name!r}{_suggest(name, allowed)}; "
                                   f"allowed: {', '.join(allowed)}")
        if list(names).count(name) > 1:
            raise SensitivityError(f"{what} {name!r} is named twice")
    if not names:
        raise SensitivityError(f"no {what} named")


def _range(spec, typical: float, explicit, lo: float, hi: float) -> ParameterRange:
    if explicit is not None:
        a, b = (float(v) for v in explicit)
        if not (spec.lower <= a < b <= spec.upper):
            raise SensitivityError(f"{spec.name}: range {a:g}..{b:g} must have lower < upper "
                                   f"within its bounds {spec.lower:g}..{spec.upper:g} "
                                   f"{spec.unit}")
        return ParameterRange(spec.name, spec.unit, typical, a, b, log=False)
    if typical <= 0:
        raise SensitivityError(f"{spec.name}: typical value {typical:g} is not positive, so a "
                               "multiplicative range is undefined; give an explicit range")
    a, b = max(typical * lo, spec.lower), min(typical * hi, spec.upper)
    if not 0 < a < b:
        raise SensitivityError(f"{spec.name}: x{lo:g}..x{hi:g} of {typical:g} clipped to its "
                               f"bounds {spec.lower:g}..{spec.upper:g} leaves no range")
    return ParameterRange(spec.name, spec.unit, typical, a, b, log=True)


def model_sobol(setup: ModelSetup, n: int = DEFAULT_SAMPLES, seed: int = 0, *,
                patient: int = 0, calc_second_order: bool = False,
                n_bootstrap: int = DEFAULT_BOOTSTRAP, chunk_size: int = DEFAULT_CHUNK,
                devices=None, drop_failed: bool = False, progress: bool = False) -> SobolResult:
    """Sobol' indices of the question ``setup`` (see :mod:`popsim.sensitivity`): ``n`` base
    points (a power of 2), ``n * (d + 2)`` virtual patients (``n * (2d + 2)`` with second-order
    indices) with the covariates of ``patient``, solved in chunks of ``chunk_size`` over
    ``devices`` (as ``popsim run --devices``). A patient that cannot be solved raises
    :class:`FailedEvaluations` (with their count), unless ``drop_failed``: then the base points
    whose rows hold one are dropped whole (``n_failed``, ``n_dropped`` in the result)."""
    import jax

    from popsim import devices as dev

    try:
        split = dev.patient_devices(devices)
    except dev.DeviceError as e:
        raise SensitivityError(str(e)) from None
    if chunk_size < 1 or patient < 0:
        raise SensitivityError(f"chunk_size ({chunk_size}) must be >= 1 and patient "
                               f"({patient}) >= 0")
    evaluator = _CohortEvaluator(setup, patient, chunk_size, split, progress, drop_failed)
    with jax.enable_x64(True):
        result = sobol(evaluator, [r.name for r in setup.ranges],
                       [r.bounds for r in setup.ranges], n, seed, calc_second_order,
                       n_bootstrap, output_names=setup.outputs, drop_nonfinite=drop_failed)
    context = {
        "arm": setup.arm, "day": setup.day, "change": setup.change,
        "units": {o: OUTPUT_UNITS[o] for o in setup.outputs},
        "ranges": [dataclasses.asdict(r) for r in setup.ranges],
        "patient": {"index": patient, **evaluator.covariates},
        "parameter_source": setup.parameter_set.source, "solver": setup.config.simulation.solver,
        "days": setup.config.simulation.days, "failures": evaluator.failures}
    return dataclasses.replace(result, n_failed=evaluator.n_failed, context=context,
                               compile_seconds=evaluator.compile_seconds,
                               run_seconds=result.run_seconds - evaluator.compile_seconds)


class _CohortEvaluator:
    """``evaluate(X)`` of the model: the rows of ``X`` (sampled bounds of the setup's ranges)
    solved as virtual patients in fixed-size chunks; failed patients give NaN rows."""

    def __init__(self, setup: ModelSetup, patient: int, chunk_size: int, split,
                 progress: bool, drop_failed: bool):
        self.setup, self.patient, self.chunk_size = setup, patient, chunk_size
        self.split, self.progress, self.drop_failed = split, progress, drop_failed
        self.compile_seconds, self.n_failed, self.failures = 0.0, 0, {}
        self.covariates: dict = {}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from popsim.population import batch_size
        from popsim.progress import Progress

        total, split = len(x), self.split
        size = batch_size(min(self.chunk_size, total), len(split) if split else 1)
        values = np.column_stack([r.values(x[:, j]) for j, r in enumerate(self.setup.ranges)])
        y = np.empty((total, len(self.setup.outputs)))
        status = np.empty(total, np.int64)
        bar = Progress("sensitivity", total, "patients", enabled=self.progress)
        bar.phase("compiling XLA programs")  # the first chunk compiles
        with bar:
            for start in range(0, total, size):
                n_real = min(size, total - start)
                rows = values[start:start + n_real]
                rows = np.concatenate([rows, np.repeat(rows[-1:], size - n_real, axis=0)])
                if start == 0:
                    self._prepare(rows, total, split)
                    bar.advance(0)  # the rate counts from here
                y[start:start + n_real], status[start:start + n_real] = \
                    (a[:n_real] for a in self._solve(rows, split))
                bar(n_real)
        return self._failures(y, status)

    def _prepare(self, rows, total: int, split) -> None:
        """Everything fixed for the design: the patient, the arm, the settings; compile
        (timed as ``compile_seconds``)."""
        import jax.numpy as jnp

        from popsim import devices as dev
        from popsim.population import sample_draws
        from popsim.protocols import protocols_for
        from popsim.solve import SolverSettings

        t0 = time.perf_counter()  # the patient's draw compiles too
        conf = self.setup.config
        sim = conf.simulation
        self.dtype = jnp.float64 if sim.precision == "float64" else jnp.float32
        _, cov, _ = sample_draws(conf.population, conf.population.seed, self.patient, 1, ())
        self._cov = {k: np.asarray(v) for k, v in cov.items()}
        self.covariates = _covariate_values(self._cov)
        arm = next(a for a in conf.arms if a.name == self.setup.arm)
        self.protocol = protocols_for([arm], sim.days, self.dtype)[0]
        self.ts = jnp.asarray(sim.output_times, self.dtype)
        self.settings = SolverSettings.from_simulation(sim)
        parts = dev.batch_parts(self._cohort(rows), split)
        dev.compile_ahead([p.inputs(self.dtype) for p in parts], [self.protocol], self.ts,
                          self.settings, fallback=total >= dev.FALLBACK_AHEAD)
        self.compile_seconds = time.perf_counter() - t0

    def _cohort(self, rows: np.ndarray):
        import jax.numpy as jnp

        from popsim.parameters import Params
        from popsim.population import Cohort, patients_from_covariates

        size = len(rows)
        typical = self.setup.parameter_set.params
        fields = {f.name: np.full(size, getattr(typical, f.name), np.float64)
                  for f in dataclasses.fields(Params)}
        for j, r in enumerate(self.setup.ranges):
            fields[r.name] = rows[:, j]
        per = Params(**{k: jnp.asarray(v, jnp.float64) for k, v in fields.items()})  # pyright: ignore[reportArgumentType]  # arrays: a value per patient
        cov = {k: jnp.asarray(np.repeat(v, size)) for k, v in self._cov.items()}
        pts = patients_from_covariates(per, cov, self.setup.config.population.chronic_diuretic_dose)
        return Cohort(index=jnp.arange(size), covariates=cov, params=per, patients=pts,
                      varying=tuple(r.name for r in self.setup.ranges))

    def _solve(self, rows: np.ndarray, split):
        from popsim import devices as dev

        outs, status = dev.simulate_arms(self._cohort(rows), [self.protocol], self.ts,
                                         self.settings, self.dtype, devices=split)
        i = self.setup.day_index
        y = np.stack([np.asarray(outs[o][0, :, i], np.float64)
                      - (np.asarray(outs[o][0, :, 0], np.float64) if self.setup.change else 0)
                      for o in self.setup.outputs], axis=1)
        return y, status[0]

    def _failures(self, y: np.ndarray, status: np.ndarray) -> np.ndarray:
        bad = status != 0
        self.n_failed = int(bad.sum())
        codes, counts = np.unique(status[bad], return_counts=True)
        self.failures = {STATUS_MEANINGS.get(int(c), str(c)): int(k)
                         for c, k in sorted(zip(codes, counts, strict=True), key=lambda t: -t[1])}
        if self.n_failed and not self.drop_failed:
            common, k = next(iter(self.failures.items()))
            raise FailedEvaluations(
                f"{self.n_failed:,} of {len(y):,} virtual patients could not be solved (most "
                f"common: {common}, {k:,}); Sobol' indices need every one: narrow the ranges "
                "(--range), leave out the parameter that causes it, or drop their base points "
                "(drop_failed, --drop-failed)")
        y[bad] = np.nan
        return y


def _covariate_values(cov: dict) -> dict:
    """The fixed patient's covariates, categories by label (for the JSON)."""
    out = {}
    for name, v in cov.items():
        x = v.reshape(-1)[0]
        labels = cfg.COVARIATES[name][2]
        out[name] = labels[int(x)] if labels else float(x)
    return out
