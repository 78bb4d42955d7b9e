"""A virtual trial in one figure, read from the cohort file only (no JAX): every arm side by
side over time, as a trial report shows them.

For each variable (by default serum K and serum Mg) three panels share the time axis:

* the level: median and 5-95% band per arm, reference range shaded;
* the change from baseline (day 0) per patient: median and 5-95% band per arm;
* the responder fraction per arm: the patients on the right side of a clinical threshold
  (:func:`responder_rule`), e.g. serum K >= 3.5 mmol/L.

A file with dose outputs (``dose_<kind>``: weight-based or titrated doses) gets one more column:
the dose in force, median and 5-95% band per arm. Time axes are linear. Each arm is one line
(``label`` = the arm's name) in every panel; bands are filled areas. Patients are those solved in
the arm (``status`` OK); quantiles summarise a random sample of at most
:data:`MAX_PLOT_PATIENTS` patients per arm, responder fractions every patient.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from popsim import store
from popsim.facts import REFERENCE_RANGES, Status, title

TRIAL_VARIABLES = ("serum_k", "serum_mg")
MAX_PLOT_PATIENTS = 20_000


def enrolment_criteria(coh) -> dict[str, dict]:
    """The inclusion criteria of a screened run as ``name -> {min, max, values}`` (``{}`` for a
    run without screening)."""
    text = coh.attrs.get("inclusion")
    return json.loads(text) if text else {}


def responder_rule(coh, name: str) -> tuple[str, float] | None:
    """How a responder is defined for output ``name``: ``(">=", x)`` or ``("<=", x)``.

    A trial that enrolled low values (an inclusion criterion with only a ``max``) counts the
    patients at or above the lower reference limit (or above that ``max`` for an output without
    a reference range); one that enrolled high values, at or below the upper limit (or below
    the ``min``). Otherwise responders are those at or above the lower reference limit.
    ``None``: no threshold is known for ``name``."""
    c = enrolment_criteria(coh).get(name, {})
    low, high = REFERENCE_RANGES.get(name, (None, None))
    if c.get("max") is not None and c.get("min") is None:
        return (">=", low) if low is not None else (">", c["max"])
    if c.get("min") is not None and c.get("max") is None:
        return ("<=", high) if high is not None else ("<", c["min"])
    return (">=", low) if low is not None else None


def _holds(x: np.ndarray, rule: tuple[str, float]) -> np.ndarray:
    op, v = rule
    return {">=": x >= v, "<=": x <= v, ">": x > v, "<": x < v}[op]


def responder_fractions(coh, name: str, rule: tuple[str, float] | None = None) -> np.ndarray:
    """Per arm and saved time, the fraction of the arm's solved patients meeting the responder
    rule of ``name``: float64 ``(arm, time)``.

    ``coh`` is an open cohort file (:func:`popsim.open_cohort`); ``rule`` is ``(op, value)``
    with ``op`` one of ``>=``, ``<=``, ``>``, ``<`` (default: :func:`responder_rule`, e.g.
    serum K >= 3.5 mmol/L in a trial that enrolled serum K <= 3.5)."""
    rule = rule or responder_rule(coh, name)
    if rule is None:
        raise store.StoreError(f"{coh.path}: no responder threshold is known for {name!r}")
    status = coh.status
    out = np.full((len(coh.arms), len(coh.times)), np.nan)
    for a in range(len(coh.arms)):
        x = coh.output(name, arm=a)[status[a] == Status.OK]
        if x.size:
            out[a] = np.mean(_holds(x, rule), axis=0)
    return out


def responder_rows(coh, tidx: list[int], summary: dict) -> list[tuple]:
    """Responder fractions of :data:`TRIAL_VARIABLES` on the saved times ``tidx``, as rows
    ``(arm, day, "<variable> <op> <threshold>", "responder_fraction", value, "1")`` of a
    report's table; also sets ``summary["responders"]`` and ``summary["screening"]``."""
    summary["screening"] = screening_summary(coh.path)
    summary["responders"] = {}
    rows = []
    for v in TRIAL_VARIABLES:
        rule = responder_rule(coh, v)
        if rule is None or v not in coh.output_names:
            continue
        fractions = responder_fractions(coh, v, rule)
        label = f"{v} {rule[0]} {rule[1]:g}"
        for a, arm in enumerate(coh.arms):
            for i in tidx:
                day, value = float(coh.times[i]), float(fractions[a, i])
                rows.append((arm, day, label, "responder_fraction", value, "1"))
                summary["responders"].setdefault(arm, {}).setdefault(str(day), {})[label] = value
    return rows


def _sample(ok: np.ndarray) -> np.ndarray:
    idx = np.flatnonzero(ok)
    if idx.size > MAX_PLOT_PATIENTS:
        idx = np.sort(np.random.default_rng(0).choice(idx, MAX_PLOT_PATIENTS, replace=False))
    return idx


def _band(ax, t, x: np.ndarray, label: str, color) -> None:
    """Median line (labelled) and 5-95% band (a filled area) of ``x`` ``(patient, time)``."""
    if x.shape[0] == 0:
        return
    q = np.nanpercentile(x, [5, 50, 95], axis=0)
    ax.fill_between(t, q[0], q[2], color=color, alpha=0.18, linewidth=0)
    ax.plot(t, q[1], color=color, lw=2, label=label)


def _panel_variables(coh, variables) -> tuple[list[str], list[str]]:
    variables = [v for v in (variables or TRIAL_VARIABLES) if v in coh.output_names]
    doses = [v for v in coh.output_names if v.startswith("dose_")]
    return variables, doses


def trial_figure(path, variables=None):
    """The trial figure of a cohort file, or of an open :class:`popsim.store.Cohort` (e.g. one
    replicate of a replicate file); see the module docstring. Returns the matplotlib ``Figure``
    (not saved: :func:`write_trial_figure`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    coh = path if isinstance(path, store.Cohort) else store.open_cohort(path)
    variables, doses = _panel_variables(coh, variables)
    ncol = len(variables) + (1 if doses else 0)
    fig, axes = plt.subplots(3, ncol, figsize=(5.2 * ncol, 9.5), squeeze=False, sharex=True,
                             constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    t, status = coh.times, coh.status
    for j, v in enumerate(variables):
        unit = coh.units(v)
        rule = responder_rule(coh, v)
        fractions = responder_fractions(coh, v, rule) if rule else None
        if v in REFERENCE_RANGES:
            axes[0, j].axhspan(*REFERENCE_RANGES[v], color="tab:green", alpha=0.08)
        for a, arm in enumerate(coh.arms):
            x = coh.output(v, arm=a)[_sample(status[a] == Status.OK)]
            color = colors[a % len(colors)]
            _band(axes[0, j], t, x, arm, color)
            _band(axes[1, j], t, x - x[:, :1], arm, color)
            if fractions is not None:
                axes[2, j].plot(t, 100 * fractions[a], color=color, lw=2, label=arm)
        axes[0, j].set_ylabel(f"{title(v)} ({unit})")
        axes[0, j].set_title(f"{title(v)}: median and 5-95%", fontsize=10)
        axes[1, j].set_ylabel(f"change from day {t[0]:g} ({unit})")
        if rule:
            op = {">=": "≥", "<=": "≤"}.get(rule[0], rule[0])
            axes[2, j].set_ylabel(f"patients with {title(v)} {op} {rule[1]:g} {unit} (%)")
            axes[2, j].set_ylim(-2, 102)
        else:
            axes[2, j].set_visible(False)
    if doses:
        _dose_column(coh, axes[:, -1], doses, colors)
    for ax in axes[-1]:
        ax.set_xlabel("time (days)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(coh.arms), fontsize=9)
    return fig


def _dose_column(coh, axes, doses: list[str], colors) -> None:
    """The doses in force: one panel per dose output (at most three)."""
    status = coh.status
    for ax, name in zip(axes, doses, strict=False):
        for a, arm in enumerate(coh.arms):
            x = coh.output(name, arm=a)[_sample(status[a] == Status.OK)]
            _band(ax, coh.times, x, arm, colors[a % len(colors)])
        kind = name.removeprefix("dose_").replace("_", " ")
        ax.set_ylabel(f"{kind} dose in force ({coh.units(name)})")
        ax.set_title(f"{kind}: median and 5-95%", fontsize=10)
    for ax in axes[len(doses):]:
        ax.set_visible(False)


def write_trial_figure(path, png: str | Path, variables=None) -> Path:
    """Draw :func:`trial_figure` (of a file or an open cohort) and save it to ``png``."""
    import matplotlib.pyplot as plt

    coh = path if isinstance(path, store.Cohort) else store.open_cohort(path)
    fig = trial_figure(coh, variables)
    fig.suptitle(f"{Path(coh.path).name}: {coh.n_patients:,} patients", fontsize=11)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return Path(png)


def screening_summary(path: str | Path) -> dict | None:
    """The screening of a cohort file (``None`` if its run had no enrolment criteria): criteria,
    candidates screened and enrolled, screen-failure fraction, failures per criterion."""
    attrs = store.read_attrs(path)
    if "n_screened" not in attrs:
        return None
    return {"criteria": json.loads(attrs["screening_criteria"]),
            "n_screened": int(attrs["n_screened"]), "n_enrolled": int(attrs["n_enrolled"]),
            "screen_failure_fraction": float(attrs["screen_failure_fraction"]),
            "failures": json.loads(attrs["screen_failures"])}


def screening_table(screening: dict):
    """A rich table of a :func:`screening_summary`: each criterion with the screened candidates
    failing it."""
    from rich.table import Table

    n = screening["n_screened"]
    t = Table(title=f"screening: {n:,} candidates, {screening['n_enrolled']:,} enrolled, "
                    f"screen failures {100 * screening['screen_failure_fraction']:.1f}%")
    t.add_column("criterion")
    t.add_column("candidates failing it", justify="right")
    for label, k in screening["failures"].items():
        t.add_row(label, f"{k:,} ({100 * k / n:.1f}%)")
    return t
