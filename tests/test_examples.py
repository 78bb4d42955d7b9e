"""Every script in examples/ runs to the end with small sizes (``POPSIM_EXAMPLE_SMALL=1``) in an
empty working directory and writes something there (a figure, a table). Each runs in its own
process, sharing the session's XLA compilation cache."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_there_are_examples():
    assert EXAMPLES, "examples/ holds no script"


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs_with_small_sizes(script, tmp_path):
    env = dict(os.environ, POPSIM_EXAMPLE_SMALL="1", MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                          if p))
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    written = [p.name for p in tmp_path.iterdir()]
    assert written, f"{script.name} wrote nothing"
