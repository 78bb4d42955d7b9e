"""Tables and figures, read from the cohort file only: this module imports the store and the
clinical facts, never the engine (no JAX). Units come from the file's ``units`` attributes."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from popsim import bands, store
from popsim.facts import DISORDERS, EGFR_STRATA, REFERENCE_RANGES, SUMMARY_MEDIANS, Status, title


def print_run_summary(result, console=None) -> None:
    """The end-of-run table: per arm (columns), medians and prevalences at the last saved day."""
    from rich.table import Table

    from popsim.progress import console as make_console

    console = console or make_console()
    reps = result.arms[0].replicates if result.arms else 0
    what = f" x {reps} parameter replicates" if reps else ""
    t = Table(title=f"{result.path}: {result.n_patients:,} patients{what}, day "
                    f"{result.days:g}, {result.wall_seconds:.1f} s")
    t.add_column("")
    for a in result.arms:
        t.add_column(a.name, justify="right")
    who = "patient-replicates" if reps else "patients"
    rows = [(f"{who} solved", lambda a: f"{a.n_ok:,}"),
            (f"{who} failed", lambda a: f"{a.n_failed:,}")]
    digits = {"serum_mg": 3, "serum_na": 1}
    first = result.arms[0] if result.arms else None
    for key in SUMMARY_MEDIANS:
        if first is not None and key in first.medians:  # outputs the run saved
            rows.append((f"median {title(key)} (mmol/L)" + (", point estimate" if reps else ""),
                         lambda a, k=key: f"{a.medians[k]:.{digits.get(k, 2)}f}"))
            if reps:
                rows.append(("  2.5-97.5% across replicates",
                             lambda a, k=key: f"{a.bands[k][0]:.{digits.get(k, 2)}f}-"
                                              f"{a.bands[k][2]:.{digits.get(k, 2)}f}"))
    for d in DISORDERS:
        if first is not None and d.name in first.prevalence:
            rows.append((d.label, lambda a, k=d.name: f"{100 * a.prevalence[k]:.1f}%"))
    for label, fn in rows:
        t.add_row(label, *(fn(a) for a in result.arms))
    console.print(t)
    if getattr(result, "screening", None):
        from popsim.trial_report import screening_table

        console.print(screening_table(result.screening))


def _binned(x, y, edges):
    idx = np.digitize(x, edges) - 1
    mids, med, lo, hi = [], [], [], []
    for b in range(len(edges) - 1):
        sel = idx == b
        if sel.sum() >= 5:
            mids.append(np.median(x[sel]))
            q = np.percentile(y[sel], [5, 50, 95])
            for column, value in zip((lo, med, hi), q, strict=True):
                column.append(value)
    return np.array(mids), np.array(med), np.array(lo), np.array(hi)


def cohort_overview_figure(path: str | Path, png: str | Path, arm: int = 0,
                           time_index: int = -1) -> None:
    """Serum Mg and K against Mg intake and eGFR (one arm, one day): dots for patients, median
    and 5-95% band by bin, reference ranges shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    coh = store.open_cohort(path)
    ok = coh.status[arm] == Status.OK
    day = coh.times[time_index]
    xs = {"mg_intake": coh.covariate("mg_intake")[ok], "egfr": coh.covariate("egfr")[ok]}
    ys = {k: coh.output(k, arm=arm, time=time_index)[ok] for k in ("serum_mg", "serum_k")}
    edges = {"mg_intake": np.quantile(xs["mg_intake"], np.linspace(0, 1, 13)),
             "egfr": np.array([0, 15, 30, 45, 60, 75, 90, 105, 120, 200.0])}
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), constrained_layout=True)
    for i, yname in enumerate(("serum_mg", "serum_k")):
        for j, xname in enumerate(("mg_intake", "egfr")):
            ax = axes[i, j]
            lo, hi = REFERENCE_RANGES[yname]
            ax.axhspan(lo, hi, color="tab:green", alpha=0.08, label="reference range")
            ax.scatter(xs[xname], ys[yname], s=3, alpha=0.25, color="tab:gray", label="patients",
                       rasterized=True)
            m, med, q5, q95 = _binned(xs[xname], ys[yname], edges[xname])
            ax.fill_between(m, q5, q95, color="tab:blue", alpha=0.2, label="5-95% by bin")
            ax.plot(m, med, color="tab:blue", lw=2, label="median by bin")
            if xname == "mg_intake":
                for ear, style in ((265, ":"), (350, "--")):
                    ax.axvline(ear, color="k", ls=style, lw=1)
                if _spans_a_decade(xs[xname]):  # a log axis without a decade shows no ticks
                    ax.set_xscale("log")
            ax.set_xlabel(_label(xname, coh.units(xname)))
            ax.set_ylabel(_label(yname, coh.units(yname)))
            if i == 0 and j == 0:
                ax.legend(loc="lower right", fontsize=8)
    axes[0, 0].set_title("EAR: 265 mg/day (women, dotted), 350 mg/day (men, dashed)", fontsize=9)
    arm_name = coh.arms[arm]
    fig.suptitle(f"{Path(path).name}: {int(ok.sum()):,} patients, arm '{arm_name}', "
                 f"day {day:g}")
    fig.savefig(png, dpi=120)
    plt.close(fig)


def _spans_a_decade(x: np.ndarray) -> bool:
    """Whether positive values ``x`` span at least a factor of 10 (worth a log axis)."""
    x = x[np.isfinite(x) & (x > 0)]
    return bool(x.size) and float(x.max()) >= 10.0 * float(x.min())


def _label(name: str, unit: str) -> str:
    return f"{title(name)} ({unit})"


def time_course_figure(times, outputs: dict, arms, png, units: dict[str, str],
                       heading: str = "", n_patients_note: str = "") -> None:
    """Median and 5-95% band over time for each arm, one panel per output.

    ``outputs``: name -> array (arm, patient, time) (only the patients to summarise);
    ``units``: name -> unit.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(outputs)
    ncol = 2 if len(names) > 1 else 1
    nrow = -(-len(names) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6 * ncol, 3.4 * nrow), squeeze=False,
                             constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes.flat, names, strict=False):
        data = outputs[name]
        if data.shape[1] == 0:  # nobody to summarise (every patient failed)
            ax.text(0.5, 0.5, "no patient solved", transform=ax.transAxes, ha="center")
        for a, arm in enumerate(arms):
            if data.shape[1] == 0:
                break
            q = np.nanpercentile(data[a], [5, 50, 95], axis=0)
            c = colors[a % len(colors)]
            ax.fill_between(times, q[0], q[2], color=c, alpha=0.15, lw=0)
            ax.plot(times, q[1], color=c, lw=2, label=f"{arm} (median, 5-95%)")
        if name in REFERENCE_RANGES:
            lo, hi = REFERENCE_RANGES[name]
            ax.axhline(lo, color="k", ls=":", lw=1, label="reference range")
            ax.axhline(hi, color="k", ls=":", lw=1)
        ax.set_xlabel("time (days)")
        ax.set_ylabel(_label(name, units[name]))
        ax.set_title(title(name))
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(heading + (f"\n{n_patients_note}" if n_patients_note else ""))
    fig.savefig(png, dpi=110)
    plt.close(fig)


# --- popsim report ---------------------------------------------------------------------------

REPORT_VARIABLES = ("serum_mg", "serum_k", "serum_na", "serum_ca", "intracellular_na")
MAX_PLOT_PATIENTS = 20_000


class ReportError(Exception):
    """A file that cannot be reported on, in one line."""


def _disorders() -> dict[str, tuple[str, str, float]]:
    return {d.name: (d.output, d.op, d.threshold) for d in DISORDERS}


def saved_day_indices(times: np.ndarray, days, what: str = "--days") -> list[int]:
    """Indices of ``days`` in the saved ``times`` (days); :class:`ReportError` for a day that
    was not saved (never the nearest one in its place)."""
    times = np.asarray(times, float)
    tol = 1e-9 * max(1.0, float(np.max(np.abs(times))))
    out = []
    for d in days:
        i = int(np.argmin(np.abs(times - d)))
        if abs(times[i] - d) > tol:
            step = np.diff(times)
            grid = (f"every {step[0]:g} days" if step.size and np.allclose(step[:-1], step[0])
                    else f"{times.size} days")
            raise ReportError(f"{what} {d:g}: not a saved day of this cohort (saved: "
                              f"{times[0]:g} to {times[-1]:g}, {grid})")
        out.append(i)
    return out


def report(path, out_dir, days=None, console=None, force: bool = False) -> dict:
    """Tables and figures for a cohort file; returns the machine-readable summary (also written
    as ``summary.json`` and ``summary.csv`` in ``out_dir``, with the figures).

    Everything is written to a temporary directory beside ``out_dir`` and moved into place when
    complete: a file that cannot be read leaves ``out_dir`` as it was. An existing non-empty
    ``out_dir`` is replaced only with ``force``.
    """
    from popsim.files import OutputError, atomic_directory, check_output

    try:
        coh = store.open_cohort(path)
    except store.StoreError as e:
        raise ReportError(str(e)) from None
    try:
        check_output(out_dir, directory=True, force=force, inputs=(path,), what="directory")
    except OutputError as e:
        raise ReportError(str(e)) from None
    if not coh.complete:
        done = store.chunks_done(path)
        raise ReportError(f"{path} is incomplete ({int(done.sum())} of {done.size} chunks "
                          "written); finish it with popsim run --resume")
    times = coh.times
    if days is None:
        days = sorted({float(times[0]), float(times[len(times) // 2]), float(times[-1])})
    tidx = saved_day_indices(times, days)
    try:
        with atomic_directory(out_dir) as tmp:
            # a file of parameter replicates: the patient tables of the point estimate, and
            # the prediction bands across replicates
            summary = _write_report(coh.select(0) if coh.n_replicates else coh, path, tmp, tidx)
            if coh.n_replicates:
                summary["prediction_bands"] = bands.band_summary(coh, tmp)
                summary["figures"].append(str(bands.bands_figure(coh,
                                                                 tmp / "prediction_bands.png")))
            summary["figures"] = [str(Path(out_dir) / Path(f).name) for f in summary["figures"]]
            (tmp / "summary.json").write_text(json.dumps(summary, indent=2))
    except store.StoreError as e:
        raise ReportError(str(e)) from None
    _print_report_tables(summary, console)
    if "prediction_bands" in summary:
        bands.print_band_table(summary["prediction_bands"], console)
    return summary


def _write_report(coh, path, out_dir: Path, tidx: list[int]) -> dict:
    """The report's tables (``summary.csv``) and figures in ``out_dir``; returns the summary."""
    units = {v: coh.units(v) for v in REPORT_VARIABLES}
    times = coh.times
    status = coh.status
    ok_all = np.all(status == Status.OK, axis=0)
    arms = coh.arms
    rows = []  # long format: arm, day, variable, statistic, value, unit
    summary = {"file": str(path), "n_patients": coh.n_patients, "arms": list(arms),
               "patients_ok_all_arms": int(ok_all.sum()),
               "failed_per_arm": {a: int((status[i] != Status.OK).sum())
                                  for i, a in enumerate(arms)},
               "days": [float(times[i]) for i in tidx], "units": units, "tables": {},
               "prevalence": {}, "paired_difference": {}}
    slices = {}
    for v in set(REPORT_VARIABLES) | {x[0] for x in _disorders().values()}:
        slices[v] = {i: coh.output(v, time=i) for i in tidx}  # (arm, patient)
    for a, arm in enumerate(arms):
        ok = status[a] == Status.OK
        for i in tidx:
            day = float(times[i])
            for v in REPORT_VARIABLES:
                x = slices[v][i][a][ok]
                q = np.percentile(x, [5, 50, 95]) if x.size else [np.nan] * 3
                for stat, val in zip(("p5", "median", "p95"), q, strict=True):
                    rows.append((arm, day, v, stat, float(val), units[v]))
                summary["tables"].setdefault(arm, {}).setdefault(str(day), {})[v] = dict(
                    p5=float(q[0]), median=float(q[1]), p95=float(q[2]), unit=units[v])
            for disorder, (v, op, thr) in _disorders().items():
                x = slices[v][i][a][ok]
                prev = float(np.mean(x < thr if op == "<" else x > thr)) if x.size else np.nan
                rows.append((arm, day, disorder, "prevalence", prev, "1"))
                summary["prevalence"].setdefault(arm, {}).setdefault(str(day), {})[disorder] = prev
    # paired differences against the first arm, patients solved in both arms
    for a, arm in enumerate(arms[1:], start=1):
        both = (status[0] == Status.OK) & (status[a] == Status.OK)
        for i in tidx:
            day = float(times[i])
            for v in REPORT_VARIABLES:
                d = slices[v][i][a][both] - slices[v][i][0][both]
                n = d.size
                mean = float(d.mean()) if n else np.nan
                half = float(1.96 * d.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
                rows.append((arm, day, v, f"mean_difference_vs_{arms[0]}", mean, units[v]))
                rows.append((arm, day, v, "ci95_low", mean - half, units[v]))
                rows.append((arm, day, v, "ci95_high", mean + half, units[v]))
                summary["paired_difference"].setdefault(arm, {}).setdefault(str(day), {})[v] = \
                    dict(mean=mean, ci95=[mean - half, mean + half], n=n, unit=units[v],
                         reference_arm=arms[0])
    from popsim.trial_report import responder_rows

    rows += responder_rows(coh, tidx, summary)
    with open(out_dir / "summary.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("arm", "day", "variable", "statistic", "value", "unit"))
        w.writerows(rows)
    summary["figures"] = [str(f) for f in _report_figures(coh, out_dir, status)]
    return summary


def _print_report_tables(summary, console=None):
    from rich.table import Table

    from popsim.progress import console as make_console

    console = console or make_console()
    point = ", point estimate (replicate 0)" if "prediction_bands" in summary else ""
    for day in (str(d) for d in summary["days"]):
        t = Table(title=f"day {float(day):g}: median (5th-95th percentile){point}")
        t.add_column("arm")
        for v in REPORT_VARIABLES:
            t.add_column(f"{title(v)}\n({summary['units'][v]})", justify="right")
        for arm in summary["arms"]:
            cells = []
            for v in REPORT_VARIABLES:
                s = summary["tables"][arm][day][v]
                digits = 1 if v in ("serum_na", "intracellular_na") else 2
                cells.append(f"{s['median']:.{digits + 1}f}\n({s['p5']:.{digits}f}-"
                             f"{s['p95']:.{digits}f})")
            t.add_row(arm, *cells)
        console.print(t)
        p = Table(title=f"day {float(day):g}: prevalence")
        p.add_column("arm")
        for d in _disorders():
            p.add_column(d, justify="right")
        for arm in summary["arms"]:
            p.add_row(arm, *(f"{100 * summary['prevalence'][arm][day][d]:.1f}%"
                             for d in _disorders()))
        console.print(p)
    if summary["paired_difference"]:
        last = str(summary["days"][-1])
        t = Table(title=f"day {float(last):g}: mean paired difference vs "
                        f"'{summary['arms'][0]}' (95% CI)")
        t.add_column("arm")
        for v in REPORT_VARIABLES:
            t.add_column(f"{title(v)}\n({summary['units'][v]})", justify="right")
        for arm, by_day in summary["paired_difference"].items():
            cells = []
            for v in REPORT_VARIABLES:
                s = by_day[last][v]
                cells.append(f"{s['mean']:+.3f}\n({s['ci95'][0]:+.3f}, {s['ci95'][1]:+.3f})")
            t.add_row(arm, *cells)
        console.print(t)


def _report_figures(coh, out_dir: Path, status) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    from popsim.trial_report import write_trial_figure

    return [_time_courses_png(coh, out_dir, status), _distributions_png(coh, out_dir, status),
            *_prevalence_pngs(coh, out_dir, status),
            write_trial_figure(coh, out_dir / "trial.png")]


def _time_courses_png(coh, out_dir: Path, status) -> Path:
    ok_all = np.all(status == Status.OK, axis=0)
    idx = np.flatnonzero(ok_all)
    note = ""
    if idx.size > MAX_PLOT_PATIENTS:
        idx = np.sort(np.random.default_rng(0).choice(idx, MAX_PLOT_PATIENTS, replace=False))
        note = f"time courses summarise a random sample of {MAX_PLOT_PATIENTS:,} patients"
    names = ("serum_mg", "serum_k", "serum_na", "serum_ca", "intracellular_na",
             "intracellular_k", "intracellular_mg_free", "urine_mg")
    data = {n: coh.output(n)[:, idx] for n in names}
    png = out_dir / "time_courses.png"
    time_course_figure(coh.times, data, coh.arms, png, {n: coh.units(n) for n in names},
                       heading=f"{Path(coh.path).name}: {int(ok_all.sum()):,} patients",
                       n_patients_note=note)
    return png


def _distributions_png(coh, out_dir: Path, status) -> Path:
    """End-of-run distributions of the serum values, per arm, reference ranges shaded."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
    for ax, v in zip(axes.flat, ("serum_mg", "serum_k", "serum_na", "serum_ca"), strict=True):
        end = coh.output(v, time=-1)
        lo, hi = REFERENCE_RANGES[v]
        ax.axvspan(lo, hi, color="tab:green", alpha=0.08, label="reference range")
        for a, arm in enumerate(coh.arms):
            x = end[a][status[a] == Status.OK]
            ax.hist(x, bins=60, histtype="step", lw=1.8, density=True, label=arm)
        ax.set_xlabel(_label(v, coh.units(v)))
        ax.set_ylabel("density")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"distributions on day {coh.times[-1]:g}")
    png = out_dir / "distributions.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def _prevalence_pngs(coh, out_dir: Path, status) -> list[Path]:
    """Prevalence of the disorders by Mg-intake quintile and by eGFR stratum, per arm."""
    mg = coh.covariate("mg_intake")
    egfr = coh.covariate("egfr")
    quint = np.quantile(mg, [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    groups = {
        "prevalence_by_mg_intake.png": (
            "dietary Mg intake quintile (mg/day)",
            [(f"Q{k + 1}\n{quint[k]:.0f}-{quint[k + 1]:.0f}",
              (mg >= quint[k]) & (mg <= quint[k + 1] if k == 4 else mg < quint[k + 1]))
             for k in range(5)]),
        "prevalence_by_egfr.png": (
            "eGFR stratum (mL/min/1.73 m²)",
            [(label, (egfr >= lo) & (egfr < hi)) for lo, hi, label in EGFR_STRATA]),
    }
    ends = {v: coh.output(v, time=-1) for v in ("serum_mg", "serum_k")}
    return [_prevalence_png(coh, out_dir / fname, status, ends, xlabel, strata)
            for fname, (xlabel, strata) in groups.items()]


def _prevalence_png(coh, png: Path, status, ends, xlabel, strata) -> Path:
    import matplotlib.pyplot as plt

    disorders = ("hypomagnesemia", "hypokalemia", "hypermagnesemia", "hyperkalemia")
    arms = coh.arms
    fig, axes = plt.subplots(1, len(disorders), figsize=(4.2 * len(disorders), 4),
                             constrained_layout=True, sharey=False)
    width = 0.8 / len(arms)
    counts = [int((sel & (status[0] == Status.OK)).sum()) for _, sel in strata]
    for ax, d in zip(axes, disorders, strict=True):
        v, op, thr = _disorders()[d]
        top = 0.0
        for a, arm in enumerate(arms):
            prev = []
            for _, sel in strata:
                x = ends[v][a][sel & (status[a] == Status.OK)]
                prev.append(100 * np.mean(x < thr if op == "<" else x > thr)
                            if x.size else np.nan)
            top = max(top, np.nanmax(prev) if np.isfinite(prev).any() else 0.0)
            pos = np.arange(len(strata)) + (a - (len(arms) - 1) / 2) * width
            ax.bar(pos, prev, width, label=arm)
        ax.set_ylim(0, max(5.0, 1.15 * top))
        ax.set_xticks(np.arange(len(strata)),
                      [f"{s[0]}\nn={n:,}" for s, n in zip(strata, counts, strict=True)],
                      fontsize=7)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("prevalence (%)")
        ax.set_title(f"{d} ({v.split('_')[1].title()} {op} {thr:g} mmol/L)", fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8)
    fig.suptitle(f"prevalence on day {coh.times[-1]:g} by {xlabel.split(' (')[0]}")
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


# --- the end-of-run summary ----------------------------------------------------------------

@dataclass
class ArmSummary:
    """One arm at one saved time (patients solved in it only)."""

    name: str
    n_ok: int
    n_failed: int
    medians: dict[str, float]  # output -> median, in the file's units
    prevalence: dict[str, float]  # disorder -> fraction of the patients solved
    failures: dict[str, int] = field(default_factory=dict)  # status meaning -> patients
    replicates: int = 0  # parameter replicates (0: a file without them)
    bands: dict[str, tuple] = field(default_factory=dict)  # output -> (2.5, 50, 97.5)%


def summarize(path: str | Path, time_index: int = -1) -> list[ArmSummary]:
    """Per-arm medians and prevalences at one saved time (default: the last), from the file;
    only for the outputs the file holds (a run may save a subset). For a file of parameter
    replicates: those of the point estimate (replicate 0), each median's band across
    replicates (:func:`popsim.bands.summary_bands`) and solved/failed counts over them all."""
    full = store.open_cohort(path)
    coh = full.select(0) if full.n_replicates else full
    every = full.status.reshape(-1, len(full.arms), full.n_patients)  # (replicate, arm, patient)
    band = bands.summary_bands(full, time_index) if full.n_replicates else {}
    status = coh.status
    meanings = coh.status_meanings
    result = []
    disorders = [d for d in DISORDERS if d.output in coh.output_names]
    medians = [k for k in SUMMARY_MEDIANS if k in coh.output_names]
    for a, arm in enumerate(coh.arms):
        ok = status[a] == Status.OK
        names = {d.output for d in disorders} | set(medians)
        vals = {name: coh.output(name, arm=a, time=time_index)[ok] for name in names}
        n_ok = int(ok.sum())
        prev = {d.name: float(np.mean(d.present(vals[d.output]))) if n_ok else math.nan
                for d in disorders}
        med = {k: float(np.median(vals[k])) if n_ok else math.nan for k in medians}
        codes, counts = np.unique(every[:, a][every[:, a] != Status.OK], return_counts=True)
        failures = {meanings.get(int(c), str(int(c))): int(k)
                    for c, k in zip(codes, counts, strict=True)}
        result.append(ArmSummary(arm, int((every[:, a] == Status.OK).sum()), int(counts.sum()),
                                 med, prev, failures, full.n_replicates or 0,
                                 {k: v[a] for k, v in band.items()}))
    return result
