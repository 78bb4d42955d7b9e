"""Figures and the before/after table of a reference-range calibration
(:mod:`popsim.calibration.fitting`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from rich.console import JustifyMethod


def figures(res, paths):
    """The loss curve and the fitted distributions against their targets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    ax.semilogy(np.arange(1, len(res.losses) + 1), res.losses, lw=2)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (weighted mean of squared scaled misses)")
    ax.set_title(f"calibration loss: {res.losses[0]:.3g} -> {res.final_loss:.3g}")
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)

    targets = res.problem.conf.target
    groups = {}
    for i, t in enumerate(targets):
        groups.setdefault((t.output, t.arm, t.day), []).append(i)
    n = len(groups)
    ncol = min(3, n)
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.8 * ncol, 3.4 * nrow), squeeze=False,
                             constrained_layout=True)
    for ax, ((o, arm, day), idx) in zip(axes.flat, groups.items(), strict=False):
        before = res.values_before[idx[0]]
        after = res.values_after[idx[0]]
        lo = np.nanmin([np.nanmin(before), np.nanmin(after)])
        hi = np.nanmax([np.nanmax(before), np.nanmax(after)])
        bins = np.linspace(lo, hi, 40)
        ax.hist(before[np.isfinite(before)], bins=bins, histtype="step", lw=1.5, label="before")
        ax.hist(after[np.isfinite(after)], bins=bins, histtype="stepfilled", alpha=0.35,
                label="after")
        for i in idx:
            t = targets[i]
            if t.statistic == "fraction_in_range" or t.value is None:
                ax.axvspan(t.low, t.high, color="tab:green", alpha=0.08)
            if t.statistic in ("quantile", "median", "mean"):
                marks = [t.value] if t.value is not None else [t.low, t.high]
                for m in marks:
                    ax.axvline(m, color="tab:green", ls="--", lw=1)
                ax.axvline(res.stats_after[i], color="k", lw=1)
        where = f", {arm} day {day:g}" if arm else ""
        ax.set_xlabel(f"{o} ({targets[idx[0]].unit}){where}")
        ax.set_ylabel("patients")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("fitted distributions (green: target values and ranges; black: fitted "
                 "statistic)")
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)


def _fmt(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.4g}"


def print_calibration_table(result, console=None) -> None:
    """The before/after table of a calibration: every target, its wanted value or range, the
    (exact, unsmoothed) statistic before and after, its unit, and whether it is met."""
    from rich.table import Table

    from popsim.calibration.fitting import result_table
    from popsim.progress import console as make_console

    console = console or make_console()
    t = Table(title=f"calibration: loss {result.losses[0]:.4g} -> {result.final_loss:.4g} in "
                    f"{result.steps} steps ({result.stopped}); compile {result.compile_seconds:.0f}"
                    f" s, {result.step_seconds:.2f} s/step; {result.problem.n} patients, "
                    f"{result.failed_after} not solved")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("target", "left"), ("wanted", "right"), ("before", "right"), ("after", "right"),
        ("unit", "left"), ("met", "center"))
    for col, just in columns:
        t.add_column(col, justify=just)
    for r in result_table(result):
        met = "yes" if r["met_after"] else "[red]no[/red]"
        t.add_row(r["target"], r["wanted"], _fmt(r["before"]), _fmt(r["after"]), r["unit"], met)
    console.print(t)
    values, cvs = result.fitted
    p = Table(title="fitted parameters")
    for col in ("parameter", "initial", "fitted", "unit"):
        p.add_column(col, justify="left" if col in ("parameter", "unit") else "right")
    for fp in result.problem.fit:
        v = cvs[fp.parameter] if fp.is_cv else values[fp.parameter]
        p.add_row(fp.name, _fmt(fp.start), _fmt(v), fp.unit)
    console.print(p)
