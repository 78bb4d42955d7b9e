"""The shape of the house: data flows one way through the stages of docs/DESIGN.md.

Every popsim module belongs to one stage; a module may import (at the top or inside a function)
only modules of its own stage or of lower ones. The stages below the model import no JAX, so
configs, study files, cohort files and reports are read without it. Modules stay small."""

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "popsim"

STAGES = [
    # 0: facts and plumbing, standard library only
    ("popsim._version", "popsim.units", "popsim.facts", "popsim.outputs", "popsim.inputs",
     "popsim.files", "popsim.progress", "popsim.options", "popsim.compile_cache"),
    # 1: schemas and files
    ("popsim._schema", "popsim.covariates", "popsim.criteria", "popsim.interventions",
     "popsim.parameters", "popsim.parameters.io", "popsim.config", "popsim.store"),
    # 2: readers of data and files (no JAX)
    ("popsim.evidence", "popsim.evidence.statistics", "popsim.report", "popsim.dataset",
     "popsim.trial_report", "popsim.bands"),
    # 3: the model of one patient
    ("popsim.physiology", "popsim.balance", "popsim.model", "popsim.observables",
     "popsim.protocols", "popsim.population", "popsim.lanes"),
    # 4: single-patient numerics
    ("popsim.linear", "popsim.rosenbrock", "popsim.solve"),
    # 5: batching and devices (the one vmap boundary)
    ("popsim.programs", "popsim.compilation", "popsim.batch", "popsim.devices"),
    # 6: applications
    ("popsim.run", "popsim.screening", "popsim.evidence.trial", "popsim.validation",
     "popsim.calibration", "popsim.sensitivity", "popsim.sbml", "popsim.bench",
     "popsim.bench_roadrunner", "popsim.bench_run", "popsim.bench_report", "popsim.api",
     "popsim.vpop"),
    # 7: front ends
    ("popsim.cli", "popsim"),
]
JAX_FREE_STAGES = 3


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def stage_of(module: str) -> int:
    """The stage of a module: the longest matching prefix in :data:`STAGES`."""
    best, stage = -1, None
    for i, names in enumerate(STAGES):
        for n in names:
            if (module == n or module.startswith(n + ".")) and len(n) > best:
                best, stage = len(n), i
    if stage is None:
        raise AssertionError(f"{module} has no stage: add it to tests/test_architecture.py "
                             "and docs/DESIGN.md")
    return stage


def _imports(path: pathlib.Path) -> set[str]:
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("popsim")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("popsim"):
                out.add(name)
                for a in node.names:  # "from popsim import batch" imports popsim.batch
                    if name == "popsim" or (ROOT.parent / f"{name}.{a.name}".replace(
                            ".", "/")).with_suffix(".py").exists():
                        out.add(f"{name}.{a.name}")
    return out


MODULES = sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[_module_name(p) for p in MODULES])
def test_no_import_from_a_higher_stage(path):
    module = _module_name(path)
    mine = stage_of(module)
    if module == "popsim":  # the public API names every stage, lazily
        return
    for imported in sorted(_imports(path)):
        if imported == "popsim":
            continue
        theirs = stage_of(imported)
        assert theirs <= mine, (f"{module} (stage {mine}) imports {imported} "
                                f"(stage {theirs})")


def _may_import_run(module: str) -> bool:
    """The front ends and the public API; every other application shares what it needs with
    ``popsim.run`` through a lower stage."""
    return module in ("popsim", "popsim.api", "popsim.run") or module.split(".")[:2] == [
        "popsim", "cli"]


@pytest.mark.parametrize("path", MODULES, ids=[_module_name(p) for p in MODULES])
def test_only_the_front_ends_import_run(path):
    module = _module_name(path)
    if not _may_import_run(module):
        assert "popsim.run" not in _imports(path), f"{module} imports popsim.run"


def test_the_lower_stages_import_no_jax():
    lower = [n for names in STAGES[:JAX_FREE_STAGES] for n in names if n != "popsim"]
    code = ("import importlib, sys\n"
            f"for m in {lower!r}:\n    importlib.import_module(m)\n"
            "import popsim.cli\n"
            "popsim.cli.build_parser()\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', "
            "'equinox', 'diffrax'))\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("path", MODULES, ids=[_module_name(p) for p in MODULES])
def test_modules_and_functions_are_small(path):
    """No module over 500 lines; no function over 60 lines, except tables of data."""
    source = path.read_text()
    assert len(source.splitlines()) <= 500, f"{path}: {len(source.splitlines())} lines"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            n = node.end_lineno - node.lineno + 1
            assert n <= 60, f"{path}:{node.lineno} {node.name} has {n} lines"
