"""Prediction bands of a cohort file with parameter replicates (``popsim run --uncertainty``).

Parameter uncertainty and between-patient variability are different spreads, shown apart:

* the **prediction band** of an output: in each replicate, the cohort median (over the patients
  solved in that replicate and arm) at each saved time; then across replicates their median and
  their 2.5th and 97.5th percentiles (:data:`BAND_PERCENTILES`): where the cohort median lies
  given what the fit does not pin down;
* the **between-patient band**: the 5th-95th percentiles over the patients of replicate 0 (the
  point estimate): how patients differ at fixed parameters.

Replicate 0 (the point estimate) is one of the replicates the band is taken over. Reads the file
only (no JAX), one replicate at a time.
"""

from __future__ import annotations

import contextlib
import csv
import warnings
from pathlib import Path

import numpy as np

from popsim.facts import REFERENCE_RANGES, SUMMARY_MEDIANS, Status, title
from popsim.outputs import OUTPUT_SPECS

BAND_PERCENTILES = (2.5, 50.0, 97.5)
BETWEEN_PATIENTS = (5.0, 50.0, 95.0)
FIGURE_OUTPUTS = ("serum_mg", "serum_k", "serum_na", "serum_ca", "intracellular_mg_free",
                  "urine_mg")


@contextlib.contextmanager
def _quiet_nan():
    """All-NaN slices (an arm where no patient was solved) give NaN, without warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def cohort_medians(coh, name: str, time: int | slice = slice(None)) -> np.ndarray:
    """The cohort median of output ``name`` per replicate, arm and saved time, float64
    ``(replicate, arm, time)`` (NaN where no patient was solved); ``time`` an index drops that
    axis."""
    status = coh.status
    medians = []
    for r in range(coh.n_replicates):
        x = coh.output(name, time=time, replicate=r).astype(np.float64)
        ok = status[r] == Status.OK  # (arm, patient)
        x = np.where(ok if x.ndim == 2 else ok[:, :, None], x, np.nan)
        with _quiet_nan():
            medians.append(np.nanmedian(x, axis=1))
    return np.stack(medians)


def prediction_band(coh, name: str, time: int | slice = slice(None)) -> np.ndarray:
    """``(3, arm, time)``: the 2.5th, 50th and 97.5th percentiles across replicates of the
    cohort median (see the module docstring)."""
    medians = cohort_medians(coh, name, time)
    with _quiet_nan():
        return np.nanpercentile(medians, BAND_PERCENTILES, axis=0)


def between_patient_band(coh, name: str, time: int | slice = slice(None)) -> np.ndarray:
    """``(3, arm, time)``: the 5th, 50th and 95th percentiles over the patients of replicate 0
    (the point estimate)."""
    x = coh.output(name, time=time, replicate=0).astype(np.float64)
    ok = coh.status[0] == Status.OK
    x = np.where(ok if x.ndim == 2 else ok[:, :, None], x, np.nan)
    with _quiet_nan():
        return np.nanpercentile(x, BETWEEN_PATIENTS, axis=1)


def band_summary(coh, out_dir: Path) -> dict:
    """The bands of every output: ``prediction_bands.csv`` (every saved time) in ``out_dir``,
    and the summary at the last saved day (returned, for ``summary.json`` and the table)."""
    times, arms = coh.times, coh.arms
    names = [n for n in OUTPUT_SPECS if n in coh.output_names]
    names += sorted(set(coh.output_names) - set(names))
    last = {}
    with open(out_dir / "prediction_bands.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("arm", "day", "output", "p2_5", "median", "p97_5", "unit"))
        for name in names:
            band = prediction_band(coh, name)
            unit = coh.units(name)
            for a, arm in enumerate(arms):
                w.writerows((arm, float(t), name, *(float(v) for v in band[:, a, i]), unit)
                            for i, t in enumerate(times))
                last.setdefault(arm, {})[name] = dict(
                    p2_5=float(band[0, a, -1]), median=float(band[1, a, -1]),
                    p97_5=float(band[2, a, -1]), unit=unit)
    return {"replicates": int(coh.n_replicates), "day": float(times[-1]),
            "percentiles": list(BAND_PERCENTILES), "statistic": "cohort median",
            "drawn_parameters": {n: coh.drawn_values[:, j].tolist()
                                 for j, n in enumerate(coh.drawn_names)},
            "drawn_units": dict(zip(coh.drawn_names, coh.drawn_units, strict=True)),
            "arms": last}


def print_band_table(bands: dict, console=None) -> None:
    """One row per output: the prediction band of the cohort median at the last day, per arm."""
    from rich.table import Table

    from popsim.progress import console as make_console

    console = console or make_console()
    t = Table(title=f"day {bands['day']:g}: cohort median across {bands['replicates']} "
                    "parameter replicates, median (2.5th-97.5th percentile)")
    t.add_column("output")
    t.add_column("unit")
    for arm in bands["arms"]:
        t.add_column(arm, justify="right")
    first = next(iter(bands["arms"].values()))
    for name in first:
        cells = []
        for arm in bands["arms"]:
            b = bands["arms"][arm][name]
            cells.append(f"{_fmt(b['median'])} ({_fmt(b['p2_5'])}-{_fmt(b['p97_5'])})")
        t.add_row(title(name), first[name]["unit"], *cells)
    console.print(t)


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def summary_bands(coh, time_index: int = -1) -> dict[str, list[tuple[float, float, float]]]:
    """Per :data:`popsim.facts.SUMMARY_MEDIANS` output, per arm: the prediction band
    ``(2.5th, 50th, 97.5th percentile)`` of the cohort median at one saved time (the run's
    printed summary); only the outputs the file holds."""
    out = {}
    for name in (n for n in SUMMARY_MEDIANS if n in coh.output_names):
        band = prediction_band(coh, name, time=time_index)  # (3, arm)
        out[name] = [tuple(float(v) for v in band[:, a]) for a in range(len(coh.arms))]
    return out


def bands_figure(coh, png: Path) -> Path:
    """One panel per output of :data:`FIGURE_OUTPUTS`, per arm: the cohort median's prediction
    band across replicates (filled) and the between-patient 5-95% band of the point estimate
    (dashed lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in FIGURE_OUTPUTS if n in coh.output_names]
    ncol = 2
    nrow = -(-len(names) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.2 * ncol, 3.5 * nrow), squeeze=False,
                             constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    t = coh.times
    for ax, name in zip(axes.flat, names, strict=False):
        pred, between = prediction_band(coh, name), between_patient_band(coh, name)
        for a, arm in enumerate(coh.arms):
            c = colors[a % len(colors)]
            ax.plot(t, between[0, a], color=c, ls="--", lw=1,
                    label=f"{arm}: between patients, 5-95% (point estimate)")
            ax.plot(t, between[2, a], color=c, ls="--", lw=1)
            ax.fill_between(t, pred[0, a], pred[2, a], color=c, alpha=0.45, lw=0,
                            label=f"{arm}: parameter uncertainty, 2.5-97.5% of the cohort "
                                  "median")
            ax.plot(t, pred[1, a], color=c, lw=2, label=f"{arm}: cohort median (median over "
                                                         "replicates)")
        if name in REFERENCE_RANGES:
            for v in REFERENCE_RANGES[name]:
                ax.axhline(v, color="k", ls=":", lw=1)
        ax.set_xlabel("time (days)")
        ax.set_ylabel(f"{title(name)} ({coh.units(name)})")
        ax.set_title(title(name))
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", fontsize=8, ncol=min(3, len(labels)))
    fig.suptitle(f"{Path(coh.path).name}: {coh.n_patients:,} patients x {coh.n_replicates} "
                 "parameter replicates (dotted: reference range)")
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return Path(png)
