"""The README's code as written: every `popsim` command parses with the CLI's own parser and
names shipped files that exist; the TOML examples are valid configs; the Python example uses
public names only; the commands that need no simulation run and exit 0; the cohort pipeline
(run, report, vpop select, SBML export) runs as written with a smaller cohort (slow)."""

import ast
import shlex
import tomllib
from pathlib import Path

import pytest

from popsim import config as cfg
from popsim.cli import main
from popsim.cli.args import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    out, lines, inside = [], [], None
    for line in README.splitlines():
        if line.startswith("```"):
            if inside is None:
                inside = line[3:].strip()
                lines = []
            else:
                if inside == language:
                    out.append("\n".join(lines))
                inside = None
        elif inside is not None:
            lines.append(line)
    return out


def _commands() -> list[list[str]]:
    """Every `popsim ...` command of the sh blocks, continuation lines joined, comments cut."""
    commands = []
    for block in _blocks("sh"):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            words = shlex.split(line, comments=True)
            if words[:1] == ["popsim"]:
                commands.append(words[1:])
    return commands


COMMANDS = _commands()


def test_the_readme_shows_the_commands():
    assert {c[0] for c in COMMANDS} >= {"run", "check", "report", "validate", "evidence",
                                         "calibrate", "sensitivity", "vpop", "cache",
                                         "export-sbml"}


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c)[:60] for c in COMMANDS])
def test_every_command_parses_and_its_shipped_files_exist(argv):
    build_parser().parse_args(argv)  # an unknown flag or a bad choice exits 2 here
    for word in argv:
        if word.startswith("configs/"):
            assert (ROOT / word).is_file(), f"{word} is not shipped"


def test_the_toml_examples_are_valid_configs():
    trial, enrolment = _blocks("toml")
    base = tomllib.loads(trial)
    conf = cfg.parse_config(base)
    assert [a.name for a in conf.arms] == ["placebo", "mg_400"]
    # the enrolment and dosing fragment, in the trial's population
    fragment = tomllib.loads(enrolment)
    merged = {**base, "population": {**base["population"], **fragment["population"]},
              "arm": fragment["arm"]}
    conf = cfg.parse_config(merged)
    assert conf.arms[0].intervention[0].titrate is not None


def test_the_python_example_uses_public_names():
    import popsim

    [code] = _blocks("python")
    tree = ast.parse(code)
    used = {n.attr for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.value.id == "popsim"}
    assert used and used <= set(popsim.__all__), used - set(popsim.__all__)


@pytest.mark.parametrize("argv", [c for c in COMMANDS if c[0] in ("check", "evidence")
                                  and c[1:2] != ["run"] or c[:2] == ["cache", "info"]],
                         ids=lambda c: " ".join(c))
def test_commands_without_a_simulation_run_as_written(argv, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(ROOT)
    assert main(list(argv)) == 0
    assert capsys.readouterr().out.strip()


PIPELINE = [c for c in COMMANDS
            if c[:2] == ["run", "configs/us_adults.toml"] and "--params" not in c
            or c[0] == "report" and c[1] == "cohort.h5" or c[:2] == ["vpop", "select"]
            or c[0] == "export-sbml"]


@pytest.mark.slow
def test_the_cohort_commands_run_as_written_at_a_small_size(monkeypatch, tmp_path, capsys):
    """The README's cohort pipeline, run in order with only the cohort size cut (to 24): run
    with a figure, report, virtual-population selection, SBML of the reference adult and of
    patient 17. Each exits 0 and writes what the README says it writes. (Calibration,
    sensitivity and `evidence run --all` are the CLI tests' and the benchmarks' job: minutes to
    tens of minutes each.)"""
    import shutil

    assert [c[0] for c in PIPELINE] == ["run", "report", "vpop", "export-sbml", "export-sbml"]
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    for argv in PIPELINE:
        argv = ["24" if a == "1000" and argv[0] == "run" else a for a in argv]
        assert main([*argv, "--quiet"] if argv[0] == "run" else argv) == 0, argv
        out = argv[argv.index("--out") + 1] if "--out" in argv else None
        if out is not None:
            assert (tmp_path / out).stat().st_size > 0, out
    assert (tmp_path / "cohort.png").stat().st_size > 10_000
    assert "serum" in capsys.readouterr().out
