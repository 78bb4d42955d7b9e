"""Virtual-population selection (Allen, Rieger & Musante 2016, CPT Pharmacometrics Syst
Pharmacol 5:140): from a cohort of plausible patients, choose those whose outputs at one day
follow target distributions, by acceptance-rejection. Imports no JAX.

The plausible patients are those solved (``status`` ok) in every arm. Each is accepted with the
probability of inclusion ``p_i = r_i / max_j r_j``, ``r = f_target(x) / f_cohort(x)``: the
target density (the product of the per-output targets) over the cohort's own density, estimated
by a Gaussian kernel density (SciPy ``gaussian_kde``, Scott's bandwidth) over every targeted
output at once. Accepted patients then follow the target wherever the cohort covers it. Allen
et al. also scale ``p`` up by a factor fitted for yield; popsim keeps the exact rule (factor 1),
so the fit does not trade against the number selected. Densities of a log-normal target are
compared on the log scale, where the kernel estimate is better behaved (the ratio is the same).

Targets are a TOML file (:func:`load_targets`), e.g. ``configs/vpop_targets_low_mg.toml``::

    day = 0          # saved day whose outputs are matched (default: the first, the baseline)
    seed = 1         # seed of the acceptance draws
    [target.serum_mg]
    distribution = "normal"       # or "lognormal" (mean, sd of the values themselves)
    mean = 0.78                   # in the output's unit (unit = "mmol/L" checks it)
    sd = 0.05
    [target.serum_k]
    distribution = "quantiles"    # piecewise-linear CDF through the points, linear tails
    probabilities = [0.05, 0.5, 0.95]
    values = [3.6, 4.1, 4.6]

:func:`select` writes the chosen patients as an ordinary cohort file (every arm, output,
covariate and parameter; ``patient`` keeps their indices in the source) with the selection in
its attributes (``vpop_*``: the source's SHA-256, the targets, the seed, the fit).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, cast

import numpy as np
from pydantic import Field, model_validator

from popsim import store
from popsim._schema import ConfigError, _Strict, _suggest
from popsim.config import read_toml, validate_model
from popsim.facts import Status

MAX_KDE_POINTS = 5000
"""Kernel centres of the cohort's density estimate: a random subset of the plausible patients
when there are more (the estimate's cost grows with centres x patients)."""
METHOD = ("Allen, Rieger & Musante 2016 (CPT Pharmacometrics Syst Pharmacol 5:140): "
          "acceptance with probability target density / cohort kernel density, scaled by "
          "its maximum")


class VpopError(ValueError):
    """A selection that cannot be made (targets against the cohort), in one line."""


class Normal(_Strict):
    distribution: Literal["normal"]
    mean: float
    sd: Annotated[float, Field(gt=0)]
    unit: str | None = None

    def frozen(self):
        from scipy import stats

        return stats.norm(self.mean, self.sd)


class LogNormal(_Strict):
    distribution: Literal["lognormal"]
    mean: Annotated[float, Field(gt=0)]  # of the values (not of their logarithm)
    sd: Annotated[float, Field(gt=0)]
    unit: str | None = None

    @property
    def log_mean_sd(self) -> tuple[float, float]:
        """Mean and SD of log(values)."""
        s2 = math.log1p((self.sd / self.mean) ** 2)
        return math.log(self.mean) - s2 / 2, math.sqrt(s2)

    def frozen(self):
        from scipy import stats

        mu, s = self.log_mean_sd
        return stats.lognorm(s, scale=math.exp(mu))


class Quantiles(_Strict):
    distribution: Literal["quantiles"]
    probabilities: list[Annotated[float, Field(gt=0, lt=1)]]
    values: list[float]
    unit: str | None = None

    @model_validator(mode="after")
    def _points(self):
        p, v = self.probabilities, self.values
        if len(p) != len(v):
            raise ValueError(f"probabilities ({len(p)}) and values ({len(v)}) differ in length")
        if len(p) < 2:
            raise ValueError("give at least two quantiles")
        if any(b <= a for a, b in zip(p, p[1:], strict=False)) or \
                any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("probabilities and values must both increase strictly")
        return self

    def knots(self) -> tuple[np.ndarray, np.ndarray]:
        """``(x, F)``: the CDF's corners, the tails extended linearly with the slope of the
        neighbouring segment until F reaches 0 and 1."""
        x, q = np.array(self.values, float), np.array(self.probabilities, float)
        lo = x[0] - q[0] * (x[1] - x[0]) / (q[1] - q[0])
        hi = x[-1] + (1 - q[-1]) * (x[-1] - x[-2]) / (q[-1] - q[-2])
        return np.concatenate([[lo], x, [hi]]), np.concatenate([[0.0], q, [1.0]])

    def frozen(self):
        return _PiecewiseLinear(*self.knots())


@dataclass(frozen=True)
class _PiecewiseLinear:
    """A distribution whose CDF is piecewise linear through ``(x, F)``."""

    x: np.ndarray
    F: np.ndarray

    def cdf(self, v):
        return np.interp(v, self.x, self.F, left=0.0, right=1.0)

    def pdf(self, v):
        v = np.asarray(v, float)
        slope = np.diff(self.F) / np.diff(self.x)
        i = np.clip(np.searchsorted(self.x, v, side="right") - 1, 0, slope.size - 1)
        return np.where((v >= self.x[0]) & (v <= self.x[-1]), slope[i], 0.0)


Target = Annotated[Normal | LogNormal | Quantiles, Field(discriminator="distribution")]


class Targets(_Strict):
    day: Annotated[float, Field(ge=0)] | None = None
    arm: str | None = None
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    target: dict[str, Target]


DISTRIBUTIONS: dict[str, type[_Strict]] = {"normal": Normal, "lognormal": LogNormal,
                                            "quantiles": Quantiles}


def _unknown_keys(where: str, table: dict, model: type[_Strict]) -> None:
    allowed = list(model.model_fields)
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}unknown key {key!r}{_suggest(key, allowed)}; allowed: "
                              f"{', '.join(allowed)}")


def _target(name: str, table) -> _Strict:
    """One ``[target.<name>]`` table validated by the class of its distribution."""
    where = f"target.{name}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table with a distribution")
    kind = table.get("distribution")
    if kind not in DISTRIBUTIONS:
        raise ConfigError(f"{where}.distribution: {'missing' if kind is None else repr(kind)}; "
                          f"allowed: {', '.join(DISTRIBUTIONS)}")
    model = DISTRIBUTIONS[kind]
    _unknown_keys(f"{where}: ", table, model)
    try:
        return cast(_Strict, validate_model(model, table))
    except ConfigError as e:
        key = str(e).split(":", 1)[0].split(".", 1)[0]
        raise ConfigError(f"{where}.{e}" if key in model.model_fields else f"{where}: {e}") \
            from None


def parse_targets(data: dict) -> Targets:
    """Validate targets already parsed from TOML; :class:`popsim.ConfigError` in one line."""
    _unknown_keys("", data, Targets)
    target = data.get("target")
    if not isinstance(target, dict) or not target:
        raise ConfigError("target: name at least one output in a [target.<output>] table")
    parsed = {name: _target(name, table) for name, table in target.items()}
    return cast(Targets, validate_model(Targets, {**data, "target": parsed}))


def load_targets(path: str | os.PathLike) -> tuple[Targets, str]:
    """Read and validate a targets file; :class:`popsim.ConfigError` in one line naming the
    file and the key. Returns the targets and the file's text (recorded in the selection)."""
    data, text = read_toml(Path(path))
    try:
        return parse_targets(data), text
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


@dataclass(frozen=True)
class Fit:
    """Kolmogorov-Smirnov test of one output against its target (SciPy ``kstest``)."""

    output: str
    unit: str
    statistic_before: float  # the plausible cohort
    pvalue_before: float
    statistic_after: float  # the selected patients
    pvalue_after: float


@dataclass(frozen=True)
class Selection:
    """The result of :func:`select`."""

    path: Path | None
    source: Path
    day: float
    arm: str
    seed: int
    n_cohort: int
    n_plausible: int
    n_selected: int
    fits: list[Fit] = field(default_factory=list)
    patients: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # positions

    @property
    def efficiency(self) -> float:
        """Selected over plausible patients."""
        return self.n_selected / self.n_plausible if self.n_plausible else 0.0


def _check_targets(coh: store.Cohort, targets: Targets) -> tuple[int, int]:
    """The arm and day indices of the targets in ``coh``, once every target names an output of
    the file in its unit."""
    if not targets.target:
        raise VpopError("target: name at least one output")
    for name, t in targets.target.items():
        if name not in coh.output_names:
            raise VpopError(f"target.{name}: the cohort {coh.path} has no output {name!r}"
                            f"{_suggest(name, coh.output_names)}")
        if t.unit is not None and t.unit != coh.units(name):
            raise VpopError(f"target.{name}.unit: {t.unit!r}, but the cohort stores {name} in "
                            f"{coh.units(name)!r}")
    arm = coh.arms[0] if targets.arm is None else targets.arm
    if arm not in coh.arms:
        raise VpopError(f"arm: {arm!r} is not an arm of {coh.path} (arms: "
                        f"{', '.join(coh.arms)})")
    day = float(coh.times[0]) if targets.day is None else targets.day
    try:
        return coh.arms.index(arm), coh.day_index(day)
    except store.StoreError as e:
        raise VpopError(f"day: {e}") from None


def inclusion_probability(values: np.ndarray, targets: list, rng) -> np.ndarray:
    """Allen et al.'s probability of inclusion of each patient: target density over the
    kernel estimate of the cohort's density, divided by its maximum.

    Args:
        values: ``(patient, output)`` values of the plausible patients.
        targets: one target per column (:class:`Normal`, :class:`LogNormal`,
            :class:`Quantiles`).
        rng: draws the kernel centres when there are more than :data:`MAX_KDE_POINTS`.
    """
    from scipy import stats

    u = np.empty_like(values, dtype=np.float64)
    log_target = np.zeros(values.shape[0])
    with np.errstate(divide="ignore"):
        for j, t in enumerate(targets):
            x = values[:, j].astype(np.float64)
            if isinstance(t, LogNormal):
                mu, s = t.log_mean_sd
                u[:, j] = np.log(x)
                log_target += stats.norm.logpdf(u[:, j], mu, s)
            else:
                u[:, j] = x
                log_target += np.log(t.frozen().pdf(x))
    centres = u if len(u) <= MAX_KDE_POINTS else \
        u[np.sort(rng.choice(len(u), MAX_KDE_POINTS, replace=False))]
    try:
        log_cohort = stats.gaussian_kde(centres.T).logpdf(u.T)
    except (np.linalg.LinAlgError, ValueError) as e:
        raise VpopError("cannot estimate the cohort's density of the targeted outputs (too "
                        f"few patients, or values that do not vary): {e}") from None
    log_ratio = log_target - log_cohort
    if not np.isfinite(log_ratio).any():
        raise VpopError("no plausible patient lies where the targets have any probability")
    return np.exp(log_ratio - np.max(log_ratio))


def _ks(x: np.ndarray, t) -> tuple[float, float]:
    from scipy import stats

    if x.size == 0:
        return math.nan, math.nan
    r = stats.kstest(x, t.frozen().cdf)
    return float(r.statistic), float(r.pvalue)


def select(cohort: str | os.PathLike, targets, *, out: str | os.PathLike | None = None,
           seed: int | None = None, force: bool = False) -> Selection:
    """Select a virtual population from ``cohort`` (see the module docstring).

    Args:
        cohort: a cohort file of plausible patients (``popsim run``); never modified.
        targets: a targets file, its tables as a dict, or :class:`Targets`.
        out: write the selected patients here as a cohort file (default: write nothing).
        seed: the acceptance draws' seed (default: the targets' ``seed``).
        force: replace an existing ``out``.

    Raises:
        popsim.ConfigError: a bad targets file. VpopError: targets that do not fit the cohort,
        a bad ``out``, or no patient selected.
    """
    targets_text, inputs = "", (cohort,)
    if isinstance(targets, dict):
        targets = parse_targets(targets)
    elif not isinstance(targets, Targets):
        inputs = (cohort, targets)
        targets, targets_text = load_targets(targets)
    if out is not None:
        from popsim.files import OutputError, check_output

        try:
            check_output(out, suffixes=store.COHORT_SUFFIXES, force=force, inputs=inputs,
                         what="cohort file")
        except OutputError as e:
            raise VpopError(*e.args) from None
    try:
        coh = store.open_cohort(cohort)
    except store.StoreError as e:
        raise VpopError(*e.args) from None
    result = _select(coh, targets, targets.seed if seed is None else seed)
    if out is not None:
        write_selection(coh, result, out, targets_text or _targets_toml(targets))
        result = dataclasses.replace(result, path=Path(out))
    return result


def _select(coh: store.Cohort, targets: Targets, seed: int) -> Selection:
    a, t = _check_targets(coh, targets)
    names = list(targets.target)
    plausible = np.all(coh.status == Status.OK, axis=0)
    values = np.stack([coh.output(n, arm=a, time=t) for n in names], axis=1)
    plausible &= np.all(np.isfinite(values), axis=1)
    if not plausible.any():
        raise VpopError(f"{coh.path}: no plausible patient (none solved in every arm)")
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero(plausible)
    p = inclusion_probability(values[pos], [targets.target[n] for n in names], rng)
    chosen = pos[rng.uniform(size=pos.size) < p]
    fits = []
    for j, n in enumerate(names):
        before = _ks(values[pos, j].astype(np.float64), targets.target[n])
        after = _ks(values[chosen, j].astype(np.float64), targets.target[n])
        fits.append(Fit(n, coh.units(n), *before, *after))
    return Selection(None, coh.path, float(coh.times[t]), coh.arms[a], seed, coh.n_patients,
                     int(pos.size), int(chosen.size), fits, chosen)


def _targets_toml(targets: Targets) -> str:
    import tomli_w

    return tomli_w.dumps(targets.model_dump(exclude_none=True))


def sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (the fingerprint of the source cohort)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_selection(coh: store.Cohort, sel: Selection, out: str | os.PathLike,
                    targets_text: str) -> None:
    """Write the selected patients of ``coh`` to ``out`` as a complete cohort file, all or
    nothing (built beside ``out`` and renamed into place)."""
    from popsim.files import atomic_file

    if sel.n_selected == 0:
        raise VpopError(f"no patient of {coh.path} was selected; nothing to write")
    fit = {f.output: {"unit": f.unit, "ks_before": [f.statistic_before, f.pvalue_before],
                      "ks_after": [f.statistic_after, f.pvalue_after]} for f in sel.fits}
    reserved = ("popsim_format", "complete", "completed")
    attrs = {k: v for k, v in coh.attrs.items() if k not in reserved}
    attrs.update(
        n_patients=sel.n_selected, created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        chunk_size=min(coh.chunk_size, sel.n_selected), vpop_source=str(coh.path.resolve()),
        vpop_source_sha256=sha256(coh.path), vpop_targets=targets_text, vpop_seed=sel.seed,
        vpop_day=sel.day, vpop_arm=sel.arm, vpop_method=METHOD,
        vpop_n_plausible=sel.n_plausible, vpop_n_selected=sel.n_selected,
        vpop_efficiency=sel.efficiency, vpop_fit=json.dumps(fit))
    with atomic_file(out) as tmp:
        _copy_patients(coh, sel.patients, tmp, attrs)


def _copy_patients(coh: store.Cohort, positions: np.ndarray, path: Path, attrs: dict) -> None:
    """A new cohort file at ``path`` holding the patients of ``coh`` at ``positions``."""
    n, size = positions.size, int(attrs["chunk_size"])
    covariates = {name: ("float" if coh.categories(name) is None else "category",
                         coh.units(name)) for name in coh.covariate_names}
    names = [*coh.output_names, *coh.covariate_names,
             *(f"param_{p}" for p in coh.parameter_names)]
    layout = store.CohortLayout(
        arms=coh.arms, n_patients=n, times=coh.times,
        outputs={k: coh.units(k) for k in coh.output_names}, covariates=covariates,
        categories={k: labels for k in coh.covariate_names
                    if (labels := coh.categories(k)) is not None},
        parameters={p: coh.units(p) for p in coh.parameter_names}, chunk_size=size,
        descriptions={k: coh.long_name(k) for k in names},
        patient_ids=coh.patient_ids[positions])
    store.create(path, layout, attrs, status_meanings=coh.status_meanings, force=True)
    for c in range(-(-n // size)):
        rows = positions[c * size:(c + 1) * size]
        store.write_chunk(
            path, c, c * size, {k: coh.rows(k, rows) for k in coh.covariate_names},
            {p: coh.rows(f"param_{p}", rows) for p in coh.parameter_names},
            {k: coh.rows(k, rows) for k in coh.output_names}, coh.rows("status", rows))
    store.finalize(path)
