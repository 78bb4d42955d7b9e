"""Sobol' indices shown and saved: a ranked table (rich), a bar figure (matplotlib) and the
files ``sobol.json``, ``sobol.csv`` and ``sobol.png`` of ``popsim sensitivity``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from popsim._version import __version__
from popsim.facts import title
from popsim.sensitivity.indices import SobolResult


def heading(result: SobolResult, j: int) -> str:
    """What output ``j`` is: name, unit, day and arm (model results) or just its name."""
    name = result.outputs[j]
    ctx = result.context
    if "units" not in ctx:
        return name
    what = f"{title(name)} ({ctx['units'][name]})"
    if ctx.get("change"):
        what = f"change in {what} from day 0"
    return f"{what} at day {ctx['day']:g}, arm {ctx['arm']}"


def _ranges(result: SobolResult) -> dict[str, dict]:
    return {r["name"]: r for r in result.context.get("ranges", [])}


def _range_text(r: dict) -> str:
    scale = " (log)" if r["log"] else ""
    return f"{r['lower']:.3g}..{r['upper']:.3g} {r['unit']}{scale}".replace(" 1 ", " ")


def print_table(result: SobolResult, console=None) -> None:
    """One table per output, parameters ranked by total index ST."""
    from rich.table import Table

    from popsim.progress import console as default_console

    console = console or default_console()
    ranges = _ranges(result)
    pct = f"{100 * result.conf_level:g}%"
    for j in range(len(result.outputs)):
        t = Table(title=f"Sobol' indices: {heading(result, j)}",
                  caption=_caption(result, j), caption_justify="left")
        columns = ("rank", "parameter", *(("range",) if ranges else ()), "ST", f"ST {pct} ±",
                   "S1", f"S1 {pct} ±")
        for col in columns:
            t.add_column(col, justify="left" if col in ("parameter", "range") else "right")
        for rank, i in enumerate(result.ranked(j), 1):
            name = result.names[i]
            t.add_row(str(rank), name, *((_range_text(ranges[name]),) if ranges else ()),
                      f"{result.ST[i, j]:.3f}", f"{result.ST_conf[i, j]:.3f}",
                      f"{result.S1[i, j]:.3f}", f"{result.S1_conf[i, j]:.3f}")
        console.print(t)


def _caption(result: SobolResult, j: int) -> str:
    text = (f"N = {result.n_base:,} ({result.n_evaluations:,} evaluations), sum S1 = "
            f"{np.sum(result.S1[:, j]):.2f}; ")
    if result.compile_seconds:
        text += f"compile {result.compile_seconds:.1f} s, "
    text += f"run {result.run_seconds:.1f} s"
    if result.n_failed:
        text += (f"; {result.n_failed:,} failed, {result.n_dropped:,} base points dropped")
    if result.outputs[j] in result.constant:
        text += "; the output does not vary: every index is 0"
    return text


def figure(result: SobolResult, path: str | Path) -> None:
    """Total (ST) and first-order (S1) indices with their bootstrap intervals as error bars,
    parameters ranked by ST, one panel per output (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k, d = len(result.outputs), len(result.names)
    ncols = min(k, 2)
    nrows = -(-k // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.5 * ncols, (1.2 + 0.38 * d) * nrows),
                             squeeze=False)
    units = {r["name"]: r["unit"] for r in result.context.get("ranges", [])}
    for j, ax in enumerate(axes.flat):
        if j >= k:
            ax.axis("off")
            continue
        order = result.ranked(j)
        pos = np.arange(d)[::-1]
        ax.barh(pos + 0.2, result.ST[order, j], 0.4, xerr=result.ST_conf[order, j],
                color="#1f4e79", capsize=2, label="total (ST)")
        ax.barh(pos - 0.2, result.S1[order, j], 0.4, xerr=result.S1_conf[order, j],
                color="#8fb3d9", capsize=2, label="first order (S1)")
        ax.set_yticks(pos, [f"{result.names[i]} [{units[result.names[i]]}]"
                            if result.names[i] in units else result.names[i] for i in order])
        ax.axvline(0, color="0.3", lw=0.8)
        ax.set_xlim(-0.05, 1.05)
        ax.set_xlabel(f"Sobol' index ({100 * result.conf_level:g}% bootstrap interval)")
        ax.set_title(heading(result, j), fontsize=10)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def to_dict(result: SobolResult) -> dict:
    """Everything of a result as JSON-ready data."""
    def arr(a):  # NaN (SALib's empty lower triangle of S2) as null
        if a is None:
            return None
        a = np.asarray(a, np.float64)
        # numpy's stubs leave None out of ArrayLike; with an object array it is a valid value
        return np.where(np.isfinite(a), a.astype(object), None).tolist()  # pyright: ignore[reportCallIssue, reportArgumentType]

    indices = {}
    for j, name in enumerate(result.outputs):
        indices[name] = [{"rank": rank, "parameter": result.names[i],
                          "ST": float(result.ST[i, j]), "ST_conf": float(result.ST_conf[i, j]),
                          "S1": float(result.S1[i, j]), "S1_conf": float(result.S1_conf[i, j])}
                         for rank, i in enumerate(result.ranked(j), 1)]
    return {
        "popsim_version": __version__,
        "method": "Sobol' indices (SALib: Saltelli design on a scrambled Sobol' sequence; "
                  "S1 Saltelli 2010, ST Jansen; bootstrap intervals)",
        "titles": {name: heading(result, j) for j, name in enumerate(result.outputs)},
        "parameters": list(result.names), "outputs": list(result.outputs),
        "n_base": result.n_base, "n_evaluations": result.n_evaluations,
        "n_failed": result.n_failed, "n_dropped": result.n_dropped,
        "constant_outputs": list(result.constant), "seed": result.seed,
        "n_bootstrap": result.n_bootstrap, "conf_level": result.conf_level,
        "seconds": {"compile": result.compile_seconds, "run": result.run_seconds,
                    "analyze": result.analyze_seconds},
        "context": result.context, "indices": indices,
        "S2": arr(result.S2), "S2_conf": arr(result.S2_conf),
    }


CSV_COLUMNS = ("output", "arm", "day", "change", "rank", "parameter", "unit", "typical",
               "lower", "upper", "log_scale", "ST", "ST_conf", "S1", "S1_conf")


def write_csv(result: SobolResult, path: str | Path) -> None:
    """One row per output and parameter, ranked by ST within each output."""
    ctx, ranges = result.context, _ranges(result)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for j, name in enumerate(result.outputs):
            for rank, i in enumerate(result.ranked(j), 1):
                r = ranges.get(result.names[i], {})
                w.writerow([name, ctx.get("arm", ""), ctx.get("day", ""), ctx.get("change", ""),
                            rank, result.names[i], r.get("unit", ""), r.get("typical", ""),
                            r.get("lower", ""), r.get("upper", ""), r.get("log", ""),
                            f"{result.ST[i, j]:.6g}", f"{result.ST_conf[i, j]:.6g}",
                            f"{result.S1[i, j]:.6g}", f"{result.S1_conf[i, j]:.6g}"])


def write_results(result: SobolResult, out: str | Path) -> Path:
    """Write ``sobol.json``, ``sobol.csv`` and ``sobol.png`` into the directory ``out``, all or
    nothing (:func:`popsim.files.atomic_directory`: an existing ``out`` is replaced)."""
    from popsim.files import atomic_directory

    out = Path(out)
    with atomic_directory(out) as tmp:
        (tmp / "sobol.json").write_text(json.dumps(to_dict(result), indent=2) + "\n",
                                        encoding="utf-8")
        write_csv(result, tmp / "sobol.csv")
        figure(result, tmp / "sobol.png")
    return out
