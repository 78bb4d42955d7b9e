"""Pin the observations of the published studies that the model matches at the suite's sizes.

Reads the comparison table of ``popsim evidence run --all --size N --population-size M --table
TABLE.json`` and writes ``tests/data/evidence_matches.txt``: the sizes (``tests/
test_validation.py`` runs the studies at the same ones) and one ``study.observation`` line per
matched observation. The suite then fails when a pinned match turns into a miss. Observations
whose model value lies within 1e-6 (relative) of an edge of their interval, but not on it, are
left out: a difference in the last digits between machines must not flip them (a value exactly
on an edge, such as a difference of two equal fractions of patients, is exact arithmetic).

Usage: popsim evidence run --all --size 16 --population-size 200 --table evidence.json
       python scripts/pin_evidence_matches.py evidence.json 16 200
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PIN = Path(__file__).resolve().parents[1] / "tests" / "data" / "evidence_matches.txt"
EDGE = 1e-6


def _clear_of_edges(row: dict) -> bool:
    lo, hi = row["interval"]
    m = row["model"]
    return all(m == e or abs(m - e) > EDGE * max(abs(m), abs(e), 1e-12) for e in (lo, hi))


def pinned_lines(rows: list[dict]) -> tuple[list[str], int]:
    """The ``study.observation`` keys of matched observations clear of their interval's edges,
    and how many matches were left out for sitting on an edge."""
    matched = [r for r in rows if r["checked"] and r["match"]]
    keep = [r for r in matched if _clear_of_edges(r)]
    return sorted(f"{r['study']}.{r['observation']}" for r in keep), len(matched) - len(keep)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python scripts/pin_evidence_matches.py TABLE.json SIZE POPULATION_SIZE",
              file=sys.stderr)
        return 2
    table, size, population_size = Path(argv[0]), int(argv[1]), int(argv[2])
    rows = json.loads(table.read_text())
    if any(r["patients"] > max(size, population_size) for r in rows):
        print(f"{table}: made with more patients than --size {size} / --population-size "
              f"{population_size}", file=sys.stderr)
        return 1
    lines, edge = pinned_lines(rows)
    checked = sum(bool(r["checked"]) for r in rows)
    PIN.write_text(
        "# Observations of the non-reserved study files that the model matches (inside the\n"
        "# data's 95% interval or the file's stated tolerance) with the cohort sizes below:\n"
        "# tests/test_validation.py fails when one of them turns into a miss.\n"
        "# Written by scripts/pin_evidence_matches.py from `popsim evidence run --all --size\n"
        f"# {size} --population-size {population_size} --table`: {len(lines)} of {checked} "
        f"checked observations\n# ({edge} matches within 1e-6 of an interval edge, not on it, left "
        "out).\n"
        f"size = {size}\npopulation_size = {population_size}\n" + "\n".join(lines) + "\n")
    print(f"wrote {PIN}: {len(lines)} of {checked} observations pinned")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
