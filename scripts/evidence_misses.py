"""Write the table of model-against-study results into docs/MODEL.md.

Reads the comparison table that ``popsim evidence run --all --table TABLE.json`` writes and
replaces the text between the ``evidence-table`` markers of docs/MODEL.md with one row per
non-reserved study: observations inside their 95% interval (or stated tolerance) out of those
checked, and every miss with the model's value, the data's interval and the size of the miss
(the distance from the interval, in the observation's unit).

Usage: popsim evidence run --all --table evidence.json
       python scripts/evidence_misses.py evidence.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "MODEL.md"
BEGIN, END = "<!-- evidence-table: begin -->", "<!-- evidence-table: end -->"


def _g(x: float) -> str:
    return f"{x:.3g}"


def _interval(lo: float, hi: float) -> str:
    if lo <= -1e8:
        return f"<= {_g(hi)}"
    if hi >= 1e8:
        return f">= {_g(lo)}"
    return f"{_g(lo)} .. {_g(hi)}"


def _miss(r: dict) -> str:
    if r["model"] is None:  # a conditional statistic whose condition no virtual patient met
        return (f"`{r['observation']}` undefined (no virtual patient meets its condition) vs "
                f"{_interval(*r['interval'])} {r['unit']}")
    return (f"`{r['observation']}` {_g(r['model'])} vs {_interval(*r['interval'])} "
            f"({_g(r['miss'])}) {r['unit']}")


def table(rows: list[dict]) -> str:
    """The markdown table (and a one-line total) for the checked rows of ``rows``."""
    by_study: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        if r["checked"]:
            by_study[r["study"]].append(r)
    matched = sum(r["match"] for rs in by_study.values() for r in rs)
    total = sum(len(rs) for rs in by_study.values())
    lines = [f"{matched} of {total} observations in {len(by_study)} studies match.", "",
             "| study | match | misses: model vs data's interval (size of the miss), unit |",
             "|---|---:|---|"]
    for study, rs in sorted(by_study.items()):
        misses = "; ".join(_miss(r) for r in rs if not r["match"])
        lines.append(f"| `{study}` | {sum(r['match'] for r in rs)}/{len(rs)} | {misses} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print((__doc__ or "").split("\n\n")[-1], file=sys.stderr)
        return 2
    rows = json.loads(Path(argv[0]).read_text())
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        print(f"{DOC}: the markers {BEGIN} and {END} are missing", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{BEGIN}\n{table(rows)}\n{END}{tail}")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
