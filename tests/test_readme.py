"""The README's code as written: every `popsim` command parses with the CLI's own parser and
names shipped files that exist; the TOML examples are valid configs; the Python example uses
public names only; the commands that need no simulation run and exit 0. (The commands that
simulate are the same code paths as the CLI tests and `examples/`, which run them with small
sizes.)"""

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
