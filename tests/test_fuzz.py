"""Fuzz: bad configs made by mutating the shipped ones never give a traceback nor touch a file.

Each example takes a shipped config, applies one to three random mutations (a value replaced by
a wrong one, a key deleted, an unknown or misspelt key added, a table replaced by a value), and
runs ``popsim run`` on it in this process. A mutant that is still a valid config is not run (it
would simulate); every invalid one must exit 2 with one line on stderr naming a key, and leave
the directory exactly as it was. The last test checks that enough invalid configs were tried.
"""

import copy
import glob
import math
import os
import tomllib

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from popsim.cli import main
from popsim.config import ConfigError, parse_config

SHIPPED = {os.path.basename(p): tomllib.load(open(p, "rb"))
           for p in sorted(glob.glob("configs/*.toml")) if "calibration" not in p}
BAD_VALUES = [-1, -1e9, 0, 1e300, math.nan, math.inf, "", "lots", True, [], [1, "a"], {},
              {"distribution": "weird"}, 1e-320, 2**70, "nan", "2026-01-01"]
TRIED = {"invalid": 0, "valid": 0}


def _paths(node, prefix=()):
    """Every (path, value) in a nested dict/list."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _set(root, path, value):
    node = root
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value


def _delete(root, path):
    node = root
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]


@hs.composite
def mutants(draw):
    name = draw(hs.sampled_from(sorted(SHIPPED)))
    data = tomllib.loads(tomli_w.dumps(SHIPPED[name]))  # a deep copy
    for _ in range(draw(hs.integers(1, 3))):
        paths = [p for p, _ in _paths(data) if p]
        path = draw(hs.sampled_from(paths))
        kind = draw(hs.sampled_from(["value", "delete", "unknown", "typo", "table"]))
        parent = path[:-1]
        node = data
        for p in parent:
            node = node[p]
        if kind == "value":
            _set(data, path, copy.deepcopy(draw(hs.sampled_from(BAD_VALUES))))
        elif kind == "delete" and isinstance(node, dict):
            _delete(data, path)
        elif kind == "unknown" and isinstance(node, dict):
            node[draw(hs.sampled_from(["colour", "dose_mg", "sizes", "seed2", "mean "]))] = 1
        elif kind == "typo" and isinstance(node, dict) and isinstance(path[-1], str):
            key = path[-1]
            node[key[:-1] + "x" if len(key) > 1 else "zz"] = node.pop(key)
        elif kind == "table":
            _set(data, path, copy.deepcopy(draw(hs.sampled_from([1.5, "table", [1, 2]]))))
    return name, data


@given(mutants())
@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_mutated_shipped_configs_never_traceback_nor_touch_files(tmp_path_factory, mutant):
    name, data = mutant
    try:
        parse_config(data)
    except ConfigError:
        pass
    else:  # still a valid config: running it would simulate, which is not this test
        TRIED["valid"] += 1
        return
    TRIED["invalid"] += 1
    d = tmp_path_factory.mktemp("fuzz")
    config = d / name
    try:
        text = tomli_w.dumps(data)
    except TypeError:  # not representable in TOML (e.g. a mixed array): write it raw
        text = repr(data)
    config.write_text(text)
    before = {p: os.stat(p).st_mtime_ns for p in glob.glob(f"{d}/**", recursive=True)}
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", str(config), "--out", str(d / "out.h5"), "--quiet"])
    message = err.getvalue()
    assert code == 2, message
    assert message.startswith("popsim: error: ") and message.count("\n") == 1, message
    assert "Traceback" not in message
    after = {p: os.stat(p).st_mtime_ns for p in glob.glob(f"{d}/**", recursive=True)}
    assert after == before, "a file was written or touched"
    assert config.read_text() == text


def test_enough_bad_configs_were_tried():
    """The fuzz test above ran on at least 200 invalid configs (recorded in the README)."""
    print(f"fuzz: {TRIED}")
    assert TRIED["invalid"] >= 200, TRIED
