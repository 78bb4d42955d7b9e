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


PUBLIC_ONLY = ["hypokalaemia_trial.py", "xarray_analysis.py"]
"""Examples written with the public API alone (``popsim.__all__``)."""


def _popsim_names(tree) -> tuple[set[str], set[str]]:
    """The names an example takes from popsim (``popsim.X``, ``from popsim import X``) and the
    submodules it imports (``popsim.run``, ``from popsim.store import ...``)."""
    import ast

    names, modules = set(), set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) \
                and n.value.id == "popsim":
            names.add(n.attr)
        elif isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "popsim":
            if n.module == "popsim":
                names |= {a.name for a in n.names}
            else:
                modules.add(n.module)
        elif isinstance(n, ast.Import):
            modules |= {a.name for a in n.names if a.name.startswith("popsim.")}
    return names, modules


@pytest.mark.parametrize("name", PUBLIC_ONLY)
def test_example_uses_only_the_public_api(name):
    import ast

    import popsim

    names, modules = _popsim_names(ast.parse((ROOT / "examples" / name).read_text()))
    assert not modules, f"{name} imports private modules: {sorted(modules)}"
    assert names and names <= set(popsim.__all__), sorted(names - set(popsim.__all__))


def test_the_trial_helpers_are_public_and_import_no_jax():
    """``import popsim`` and the trial helpers it exports load without JAX (they read files)."""
    code = ("import sys, popsim\n"
            "for n in ('screening_summary', 'responder_fractions', 'trial_figure',\n"
            "          'write_trial_figure', 'open_cohort'):\n"
            "    assert n in popsim.__all__ and callable(getattr(popsim, n)), n\n"
            "assert 'jax' not in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
