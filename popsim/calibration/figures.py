"""Figures and tables of an evidence fit: the NLL of every start, model against data (each
observation's standardised residual, fitted and held-out side by side), one profile-likelihood
figure per profiled parameter, and the rich tables ``popsim calibrate`` prints."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from popsim.calibration.uncertainty import PROFILE_THRESHOLD


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_figures(res, out: Path) -> list[str]:
    """``starts.png``, ``residuals.png`` and ``profile_<name>.png`` in ``out``; their names."""
    plt = _plt()
    names = ["starts.png", "residuals.png"]
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    for r in res.runs:
        if r.losses:
            ax.plot(np.arange(1, len(r.losses) + 1), r.losses, lw=1.5, label=f"start {r.start}")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("negative log-likelihood (nats)")
    ax.set_title(f"best NLL {res.best.nll:.4g}")
    ax.legend(fontsize=7)
    fig.savefig(out / names[0], dpi=110)
    plt.close(fig)
    _residual_figure(res, out / names[1], plt)
    for p in res.profiles:
        name = f"profile_{p.name}.png"
        profile_figure(res, p, out / name, plt)
        names.append(name)
    return names


def _residual_figure(res, png: Path, plt) -> None:
    """(model - data) / SE per observation, fitted studies then held-out ones."""
    from popsim.calibration.record import observation_rows

    rows = observation_rows(res.train, "fit") + (
        observation_rows(res.holdout, "held-out") if res.holdout else [])
    rows = [r for r in rows if r["likelihood"] and r["model"] is not None]
    fig, ax = plt.subplots(figsize=(7, 0.22 * len(rows) + 1.5), constrained_layout=True)
    z = [(r["model"] - r["value"]) / r["se"] for r in rows]
    colors = ["tab:blue" if r["split"] == "fit" else "tab:orange" for r in rows]
    y = np.arange(len(rows))[::-1]
    ax.barh(y, z, color=colors)
    ax.axvspan(-1.96, 1.96, color="tab:green", alpha=0.12, lw=0)
    ax.set_yticks(y, [f"{r['study']}: {r['observation']}" for r in rows], fontsize=6)
    ax.set_xlabel("(model - reported value) / reported SE (blue: fitted, orange: held out)")
    ax.set_title("model against data at the fitted parameters")
    fig.savefig(png, dpi=110)
    plt.close(fig)


def profile_figure(res, prof, png: Path, plt=None) -> None:
    """Delta NLL against the parameter's value, with the 95% threshold and the Laplace
    approximation's parabola."""
    plt = plt or _plt()
    k = res.spec.names.index(prof.name)
    p = res.spec.parameters[k]
    sd = res.laplace.sd[k]
    fig, ax = plt.subplots(figsize=(5.5, 4), constrained_layout=True)
    ax.plot(prof.values, prof.delta_nll, "o-", lw=2, label="profile likelihood")
    quad = 0.5 * ((prof.u - res.best.u[k]) / sd) ** 2 if sd > 0 else None
    if quad is not None:
        ax.plot(prof.values, quad, "--", color="gray", label="Laplace approximation")
    ax.axhline(PROFILE_THRESHOLD, color="tab:red", lw=1,
               label=f"95% threshold ({PROFILE_THRESHOLD:.2f})")
    ax.axvline(prof.optimum, color="k", lw=1, label="fitted value")
    if p.transform == "log":
        ax.set_xscale("log")
    top = max(3 * PROFILE_THRESHOLD, float(np.nanmax(prof.delta_nll[np.isfinite(
        prof.delta_nll)])) if np.isfinite(prof.delta_nll).any() else 0.0)
    ax.set_ylim(-0.2, min(top, 30.0))
    ax.set_xlabel(f"{p.name} ({p.unit})")
    ax.set_ylabel("Delta NLL (nats)")
    ax.set_title("flat: not bounded by the data" if prof.flat else "profile likelihood")
    ax.legend(fontsize=7)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.4g}"


def print_fit(res, console=None) -> None:
    """Parameters with intervals and flags; per-study NLL, fitted and held-out side by side."""
    from rich.table import Table

    from popsim.calibration.record import study_rows
    from popsim.progress import console as make_console

    console = console or make_console()
    lap = res.laplace
    t = Table(title=f"fitted parameters (best NLL {res.best.nll:.4g} nats over "
                    f"{len(res.runs)} starts; covariance: {lap.source.split(' (')[0]})")
    for col in ("parameter", "base", "fitted", "95% interval", "unit", "bounds", "flags"):
        t.add_column(col, overflow="fold")
    for i, p in enumerate(res.spec.parameters):
        flags = "; ".join(lap.flags[p.name])
        t.add_row(p.name, _fmt(p.base), _fmt(res.values[p.name]),
                  f"{_fmt(lap.lower[i])} .. {_fmt(lap.upper[i])}", p.unit,
                  f"{p.lower:g} .. {p.upper:g}", f"[red]{flags}[/red]" if flags else "")
    console.print(t)
    s = Table(title="negative log-likelihood per study (nats): fitted and held-out")
    for col in ("split", "study", "terms", "NLL", "inside 95% interval"):
        s.add_column(col)
    for r in study_rows(res):
        s.add_row(r["split"], r["study"], str(r["terms"]), _fmt(r["nll"]),
                  f"{r['matched']}/{r['checked']}")
    console.print(s)
    for prof in res.profiles:
        lo, hi = prof.interval()
        console.print(f"profile {prof.name}: 95% interval {_fmt(lo)} .. {_fmt(hi)}"
                      + (" (flat: not bounded by the data)" if prof.flat else ""))
