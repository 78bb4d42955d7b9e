"""Tables and figures, read from the cohort file only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from popsim import store
from popsim.solve import Status

REFERENCE_RANGES = {  # mmol/L (SPEC §1)
    "serum_mg": (0.70, 1.00), "serum_k": (3.5, 5.0), "serum_na": (135.0, 145.0),
    "serum_ca": (2.15, 2.55),
}
LABELS = {
    "serum_mg": "serum Mg (mmol/L)", "serum_k": "serum K (mmol/L)",
    "serum_na": "serum Na (mmol/L)", "serum_ca": "serum Ca (mmol/L)",
    "mg_intake": "dietary Mg intake (mg/day)", "egfr": "eGFR (mL/min/1.73 m²)",
}


def print_run_summary(result, console=None) -> None:
    """The end-of-run table: per arm (columns), medians and prevalences at the last saved day."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    t = Table(title=f"{result.path}: {result.n_patients:,} patients, day {result.days:g}, "
                    f"{result.wall_seconds:.1f} s")
    t.add_column("")
    for a in result.arms:
        t.add_column(a.name, justify="right")
    rows = [("patients solved", lambda a: f"{a.n_ok:,}"),
            ("patients failed", lambda a: f"{a.n_failed:,}")]
    for key, label in (("serum_mg", "median serum Mg (mmol/L)"),
                       ("serum_k", "median serum K (mmol/L)"),
                       ("serum_na", "median serum Na (mmol/L)"),
                       ("serum_ca", "median serum Ca (mmol/L)")):
        digits = 1 if key == "serum_na" else (3 if key == "serum_mg" else 2)
        rows.append((label, lambda a, k=key, d=digits: f"{a.medians[k]:.{d}f}"))
    for key, label in (("hypomagnesemia", "hypomagnesaemia (Mg < 0.70)"),
                       ("hypermagnesemia", "hypermagnesaemia (Mg > 1.05)"),
                       ("hypokalemia", "hypokalaemia (K < 3.5)"),
                       ("hyperkalemia", "hyperkalaemia (K > 5.0)"),
                       ("hyponatremia", "hyponatraemia (Na < 135)"),
                       ("hypocalcemia", "hypocalcaemia (Ca < 2.15)")):
        rows.append((label, lambda a, k=key: f"{100 * a.prevalence[k]:.1f}%"))
    for label, fn in rows:
        t.add_row(label, *(fn(a) for a in result.arms))
    console.print(t)


def _binned(x, y, edges):
    idx = np.digitize(x, edges) - 1
    mids, med, lo, hi = [], [], [], []
    for b in range(len(edges) - 1):
        sel = idx == b
        if sel.sum() >= 5:
            mids.append(np.median(x[sel]))
            q = np.percentile(y[sel], [5, 50, 95])
            lo.append(q[0]), med.append(q[1]), hi.append(q[2])
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
                ax.set_xscale("log")
            ax.set_xlabel(LABELS[xname])
            ax.set_ylabel(LABELS[yname])
            if i == 0 and j == 0:
                ax.legend(loc="lower right", fontsize=8)
    axes[0, 0].set_title("EAR: 265 mg/day (women, dotted), 350 mg/day (men, dashed)", fontsize=9)
    arm_name = coh.arms[arm]
    fig.suptitle(f"{Path(path).name}: {int(ok.sum()):,} patients, arm '{arm_name}', "
                 f"day {day:g}")
    fig.savefig(png, dpi=120)
    plt.close(fig)
