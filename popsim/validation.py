"""`popsim validate` and `popsim evidence run`: simulate study files (:mod:`popsim.evidence`) as
virtual trials and compare every observation with the model.

``popsim validate`` runs the built-in behaviour scenarios (``popsim/evidence/scenarios``);
``popsim evidence run`` runs published studies. Both print model against data with a
match/miss column and write one figure per study (the data's 95% intervals drawn on the
model's time courses) and a JSON file of every comparison.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from popsim import evidence
from popsim.evidence.statistics import Evaluated, TrialResult, evaluate_all
from popsim.outputs import OUTPUT_UNITS

DEFAULT_SIZE = 32


@dataclass
class Decomposed:
    """One observation of a study with its ``decomposition``: the full model's value and the
    value with each mechanism switched off (by label)."""

    study: str
    observation: str
    unit: str
    values: dict[str, float]


@dataclass
class ValidationReport:
    """Every observation compared, the trials they came from and the decompositions."""

    results: list[Evaluated] = field(default_factory=list)
    trials: dict[str, TrialResult] = field(default_factory=dict)
    decompositions: list[Decomposed] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.misses()

    def checked(self) -> list[Evaluated]:
        """The observations with a value or window (not components of a ``combine``)."""
        return [r for r in self.results if r.checked]

    def misses(self) -> list[Evaluated]:
        return [r for r in self.checked() if not r.match]


def run_studies(chosen: list[evidence.Study], size: int | None = None, params=None,
                progress: bool = True, population_size: int | None = None) -> ValidationReport:
    """Simulate every study (each after the ones it requires) and evaluate its observations.
    ``size``: patients per trial; ``population_size``: per population study (default: each
    file's, see :func:`popsim.evidence.design_config`)."""
    from popsim.evidence.trial import simulate_study
    from popsim.progress import Progress

    report = ValidationReport()
    with Progress("simulating studies", len(chosen), "studies", enabled=progress) as bar:
        for s in chosen:
            bar.phase(f"{s.study.id} (compiling on first use)" if not report.trials
                      else s.study.id)
            report.trials[s.study.id] = simulate_study(s, size, params, population_size)
            bar.advance()
    report.results = evaluate_all(list(report.trials.values()))
    report.decompositions = decompose(chosen, report, size, params, population_size)
    return report


def decompose(chosen: list[evidence.Study], report: ValidationReport, size: int | None,
              params=None, population_size: int | None = None) -> list[Decomposed]:
    """Re-run each study that has a ``decomposition`` once per switched-off mechanism (its
    parameter overrides on top of ``params``) and collect the named observations."""
    from popsim.evidence.trial import simulate_study
    from popsim.parameters.io import ParameterSet, default_parameters

    base = params if params is not None else default_parameters()
    out: list[Decomposed] = []
    for s in chosen:
        if s.decomposition is None:
            continue
        sid = s.study.id
        full = {r.observation.id: r.model for r in report.results if r.study == sid}
        rows = {oid: Decomposed(sid, oid, s.observation_by_id(oid).unit or "",
                                {"full model": full[oid]})
                for oid in s.decomposition.observations}
        for label, overrides in s.decomposition.without.items():
            switched = ParameterSet(dataclasses.replace(base.params, **overrides), base.cvs,
                                    f"{base.source} without {label}", base.meta)
            needed = [report.trials[r] for r in s.study.requires]
            results = evaluate_all([*needed, simulate_study(s, size, switched,
                                                            population_size)])
            by_id = {r.observation.id: r.model for r in results if r.study == sid}
            for oid, row in rows.items():
                row.values[f"without {label}"] = by_id[oid]
        out.extend(rows.values())
    return out


def validate(size: int = DEFAULT_SIZE, out: str | Path | None = None, progress: bool = True,
             only: tuple[str, ...] | None = None, params=None) -> ValidationReport:
    """Run the built-in scenarios (``only`` by id, default all) and, with ``out``, write one
    figure per scenario and ``validation.json`` there."""
    ids = [s.study.id for s in evidence.scenarios()] if only is None else list(only)
    report = run_studies(evidence.resolve(ids), size, params, progress)
    if out is not None:
        write_results(report, Path(out), "validation.json")
    return report


def write_results(report: ValidationReport, out: Path, name: str) -> None:
    """One figure per study and the JSON of every comparison in ``out``, all-or-nothing."""
    from popsim.files import atomic_directory

    with atomic_directory(out) as tmp:
        for sid, trial in report.trials.items():
            study_figure(trial, [r for r in report.results if r.study == sid],
                         tmp / f"{sid}.png")
        (tmp / name).write_text(json.dumps([_record(r) for r in report.results], indent=2))
        if report.decompositions:
            (tmp / "decomposition.json").write_text(json.dumps(
                [dataclasses.asdict(d) for d in report.decompositions], indent=2))


BASIS = {"se": "SE", "ci95": "95% CI", "sd": "SD, n", "iqr": "IQR, n", "tolerance": "tolerance",
         "binomial": "binomial, n"}
"""How each observation's 95% interval was obtained (:meth:`Observation.uncertainty_basis`)."""


def _basis(o) -> str:
    if o.expected is not None:
        return "expected window"
    b = o.uncertainty_basis()
    return BASIS.get(b, "-") if b else "-"


def _record(r: Evaluated) -> dict:
    o = r.observation
    iv = r.interval
    return dict(study=r.study, observation=o.label, statistic=o.statistic, output=o.output,
                arm=o.arm, day=o.day, model=None if not math.isfinite(r.model) else r.model,
                value=o.value, interval=list(iv) if iv else None, basis=_basis(o),
                unit=o.unit, checked=r.checked, match=r.match if r.checked else None,
                miss=None if not math.isfinite(r.miss) else r.miss, fitted=o.fit,
                patients=r.n_patients, tolerance_reason=o.tolerance_reason,
                source=o.source or o.quote)


def write_table(report: ValidationReport, path: Path) -> None:
    """Every comparison as a table: JSON (a list of rows) or CSV, by the file's suffix."""
    import csv
    import io

    from popsim.files import write_text

    rows = [_record(r) for r in report.results]
    if Path(path).suffix.lower() == ".json":
        write_text(path, json.dumps(rows, indent=1) + "\n")
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["study"])
    w.writeheader()
    for r in rows:
        w.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in r.items()})
    write_text(path, buf.getvalue())


def study_figure(trial: TrialResult, results: list[Evaluated], png: Path) -> None:
    """The study's plotted outputs over time, median and 5-95% band per arm, with each
    observation's reported value and 95% interval drawn at its day."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from popsim.facts import title

    names = list(trial.study.study.plot) or sorted(
        {r.observation.output for r in results if r.observation.output})[:4]
    ncol = 2 if len(names) > 1 else 1
    nrow = -(-len(names) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6 * ncol, 3.3 * nrow), squeeze=False,
                             constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ok = trial.ok
    for ax, name in zip(axes.flat, names, strict=False):
        for a, arm in enumerate(trial.arms):
            data = trial.outputs[name][a][ok]
            if not data.size:
                continue
            q = np.nanpercentile(data, [5, 50, 95], axis=0)
            c = colors[a % len(colors)]
            ax.fill_between(trial.times, q[0], q[2], color=c, alpha=0.15, lw=0)
            ax.plot(trial.times, q[1], color=c, lw=2, label=f"{arm} (median, 5-95%)")
        for r in results:  # plain values of this output on a day: data with error bars
            o = r.observation
            if (o.output != name or o.day is None or o.versus_arm or o.change_from_day
                    is not None or o.integrate or o.statistic not in ("mean", "median")):
                continue
            iv = r.interval
            if iv is None:
                continue
            bottom, top = ax.get_ylim()  # open windows (1e9) are drawn to the axis edge
            lo, hi = max(iv[0], bottom), min(iv[1], top)
            if lo > hi:
                continue
            mid = o.value if o.value is not None else 0.5 * (lo + hi)
            mid = min(max(mid, lo), hi)
            ax.errorbar([o.day], [mid], yerr=[[mid - lo], [hi - mid]], fmt="o", color="k",
                        ms=4, capsize=3, label="data (95% interval)" if o.value is not None
                        else "expected")
        ax.set_xlabel("time (days)")
        ax.set_ylabel(f"{title(name)} ({OUTPUT_UNITS[name]})")
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        ax.legend(unique.values(), unique.keys(), fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    s = trial.study.study
    fig.suptitle(f"{s.id}: {s.title}\n{int(ok.sum())} virtual patients", fontsize=10)
    fig.savefig(png, dpi=100)
    plt.close(fig)


def _shown(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "nan" if x is None or math.isnan(x) else ("inf" if x > 0 else "-inf")
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.3e}"


def _window(r: Evaluated) -> str:
    o = r.observation
    iv = r.interval
    if iv is None:
        return "-"
    lo, hi = iv
    if o.value is not None:
        return f"{_shown(o.value)} ({_shown(lo)} .. {_shown(hi)})"
    if lo <= -1e8:
        return f"< {_shown(hi)}"
    if hi >= 1e8:
        return f"> {_shown(lo)}"
    return f"{_shown(lo)} .. {_shown(hi)}"


def print_report(report: ValidationReport, console=None, heading: str = "") -> None:
    """The comparison table: observation, model, data (95% interval) or expected window, unit,
    MATCH/MISS and the source."""
    from rich.table import Table

    from popsim.progress import console as make_console

    console = console or make_console()
    t = Table(title=heading or "model against data")
    for col in ("study", "observation", "model", "data (95% interval) / expected", "from", "unit",
                "", "source"):
        t.add_column(col, no_wrap=col in ("study", "observation"), overflow="fold")
    for r in report.results:
        o = r.observation
        verdict = ("" if not r.checked else "[green]MATCH[/green]" if r.match
                   else "[red]MISS[/red]")
        t.add_row(r.study, o.label, _shown(r.model), _window(r), _basis(o), o.unit, verdict,
                  o.source or o.quote)
    console.print(t)
    if report.decompositions:
        print_decomposition(report.decompositions, console)
    n_checked, n_miss = len(report.checked()), len(report.misses())
    console.print(f"{n_checked - n_miss}/{n_checked} observations inside their 95% interval "
                  "or expected window")


def print_decomposition(rows: list[Decomposed], console) -> None:
    """Which mechanism carries each decomposed effect: the observation with the full model and
    with each mechanism switched off."""
    from rich.table import Table

    labels = list(dict.fromkeys(k for r in rows for k in r.values))
    t = Table(title="which mechanism carries the effect (the observation re-simulated with "
              "each mechanism switched off)")
    for col in ("study", "observation", *labels, "unit"):
        t.add_column(col, no_wrap=col in ("study", "observation"), overflow="fold")
    for r in rows:
        t.add_row(r.study, r.observation, *(_shown(r.values.get(k, math.nan)) for k in labels),
                  r.unit)
    console.print(t)
