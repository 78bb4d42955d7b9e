"""Sobol' indices of any function of a box of inputs, by SALib: the Saltelli design from a
scrambled Sobol' sequence and the estimators with bootstrap confidence intervals. See
:mod:`popsim.sensitivity`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np

DEFAULT_BOOTSTRAP = 1000  # bootstrap resamples for the confidence intervals


class SensitivityError(ValueError):
    """A sensitivity question that cannot be answered as asked, in one line."""


class FailedEvaluations(SensitivityError):
    """Virtual patients of the design could not be solved (and ``drop_failed`` is off)."""


@dataclass(frozen=True)
class SobolResult:
    """Sobol' indices: arrays ``(parameter, output)`` (``S2``: ``(parameter, parameter,
    output)``, upper triangle) with their bootstrap confidence half-widths (``*_conf``)."""

    names: tuple[str, ...]
    outputs: tuple[str, ...]
    S1: np.ndarray
    S1_conf: np.ndarray
    ST: np.ndarray
    ST_conf: np.ndarray
    n_base: int  # base points N of the design
    n_evaluations: int  # rows evaluated
    seed: int
    n_bootstrap: int
    conf_level: float
    S2: np.ndarray | None = None
    S2_conf: np.ndarray | None = None
    n_failed: int = 0  # rows with non-finite outputs (model: patients not solved)
    n_dropped: int = 0  # base points dropped for them (drop_failed)
    constant: tuple[str, ...] = ()  # outputs without variance: every index set to 0
    compile_seconds: float = 0.0
    run_seconds: float = 0.0  # evaluating the design, compilation excluded
    analyze_seconds: float = 0.0
    context: dict = field(default_factory=dict)  # the model question (model_sobol)

    def ranked(self, output: int | str = 0) -> list[int]:
        """Parameter indices by decreasing ST for ``output`` (index or name)."""
        j = self.outputs.index(output) if isinstance(output, str) else output
        return sorted(range(len(self.names)), key=lambda i: -self.ST[i, j])



# --- estimation --------------------------------------------------------------------------------

def sobol(evaluate: Callable[[np.ndarray], np.ndarray], names: Sequence[str],
          bounds: Sequence[tuple[float, float]], n: int, seed: int = 0,
          calc_second_order: bool = False, n_bootstrap: int = DEFAULT_BOOTSTRAP,
          conf_level: float = 0.95, output_names: Sequence[str] | None = None,
          drop_nonfinite: bool = False) -> SobolResult:
    """Sobol' indices of ``evaluate`` over the box ``bounds`` (uniform inputs).

    ``n``: base points (a power of 2); ``seed`` scrambles the Sobol' sequence, and ``seed + 1``
    draws the bootstrap resamples (SALib ignores a seed of 0). Non-finite outputs: a
    :class:`SensitivityError`, or with ``drop_nonfinite`` their base points are dropped whole.
    """
    names = tuple(names)
    _check_design(names, bounds, n, n_bootstrap, conf_level)
    from SALib.sample import sobol as salib_sample

    problem = {"num_vars": len(names), "names": list(names),
               "bounds": [[float(lo), float(hi)] for lo, hi in bounds]}
    n = int(n)
    x = salib_sample.sample(problem, n, calc_second_order=calc_second_order, seed=seed)
    t0 = time.perf_counter()
    y = np.asarray(evaluate(x), np.float64)
    run_seconds = time.perf_counter() - t0
    if y.shape[:1] != x.shape[:1] or y.ndim not in (1, 2):
        raise SensitivityError(f"evaluate returned shape {y.shape} for {len(x)} rows; expected "
                               f"({len(x)},) or ({len(x)}, k)")
    y = y.reshape(len(x), -1)
    if output_names is None:
        output_names = ("y",) if y.shape[1] == 1 else tuple(f"y{j}" for j in range(y.shape[1]))
    if len(output_names) != y.shape[1]:
        raise SensitivityError(f"{len(output_names)} output names for {y.shape[1]} outputs")
    group = (2 if calc_second_order else 1) * len(names) + 2  # rows per base point
    bad = ~np.isfinite(y).all(axis=1)
    keep = ~bad.reshape(n, group).any(axis=1)
    if bad.any() and not drop_nonfinite:
        raise SensitivityError(f"{bad.sum():,} of {len(y):,} evaluations gave non-finite "
                               "outputs; Sobol' indices need every one (or drop_nonfinite)")
    if not keep.any():
        raise SensitivityError(f"every base point has a non-finite output ({bad.sum():,} of "
                               f"{len(y):,} evaluations)")
    y = y.reshape(n, group, -1)[keep].reshape(-1, y.shape[1])
    t0 = time.perf_counter()
    per_output = [_analyze(problem, y[:, j], calc_second_order, n_bootstrap, conf_level, seed)
                  for j in range(y.shape[1])]
    stack = lambda key: (None if per_output[0].get(key) is None  # noqa: E731
                         else np.stack([s[key] for s in per_output], axis=-1))
    return SobolResult(  # only S2 and S2_conf may be None
        names, tuple(output_names), cast(np.ndarray, stack("S1")),
        cast(np.ndarray, stack("S1_conf")), cast(np.ndarray, stack("ST")),
        cast(np.ndarray, stack("ST_conf")), n_base=n, n_evaluations=len(x), seed=seed,
        n_bootstrap=n_bootstrap, conf_level=conf_level, S2=stack("S2"), S2_conf=stack("S2_conf"),
        n_failed=int(bad.sum()), n_dropped=int((~keep).sum()),
        constant=tuple(o for o, s in zip(output_names, per_output, strict=True)
                       if s["constant"]),
        run_seconds=run_seconds, analyze_seconds=time.perf_counter() - t0)


def _check_design(names, bounds, n, n_bootstrap, conf_level) -> None:
    if not names or len(set(names)) != len(names):
        raise SensitivityError(f"names must be distinct and at least one, got {list(names)}")
    if len(bounds) != len(names):
        raise SensitivityError(f"{len(bounds)} bounds for {len(names)} names")
    for name, (lo, hi) in zip(names, bounds, strict=True):
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise SensitivityError(f"{name}: bounds {lo:g}..{hi:g} must be finite, lower < upper")
    if not isinstance(n, int | np.integer) or n < 2 or n & (n - 1):
        raise SensitivityError(f"samples {n}: must be a power of 2 >= 2 (the Sobol' sequence's "
                               "balance needs it)")
    if n_bootstrap < 2 or not 0 < conf_level < 1:
        raise SensitivityError("n_bootstrap must be >= 2 and conf_level in (0, 1)")


def _analyze(problem, y, second, n_bootstrap, conf_level, seed) -> dict:
    """SALib's indices of one output (every index 0 when the output does not vary)."""
    d = problem["num_vars"]
    if np.ptp(y) == 0:
        zero: dict[str, np.ndarray | None] = {k: np.zeros(d)
                                              for k in ("S1", "S1_conf", "ST", "ST_conf")}
        zero.update({k: np.zeros((d, d)) if second else None for k in ("S2", "S2_conf")})
        return {**zero, "constant": True}
    from SALib.analyze import sobol as salib_analyze

    s = salib_analyze.analyze(problem, y, calc_second_order=second, num_resamples=n_bootstrap,
                              conf_level=conf_level, seed=seed + 1)
    out: dict[str, np.ndarray | None] = {k: np.asarray(s[k], np.float64)
                                         for k in ("S1", "S1_conf", "ST", "ST_conf")}
    out.update({k: np.asarray(s[k], np.float64) if second else None for k in ("S2", "S2_conf")})
    return {**out, "constant": False}
