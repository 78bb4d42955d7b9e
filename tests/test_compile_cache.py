"""The on-disk compile cache: where it is, what invalidates it, what `popsim cache` deletes, and
that a second identical command in a fresh process compiles nothing (a second validate: in
tests/test_validation.py, after the validation fixture has compiled its programs)."""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import counted_popsim, readme_command

from popsim import compile_cache as cc
from popsim.cli import main

KEY_LIKE = "popsim-0.0.1_jax-0.1_jaxlib-0.1_0123456789abcdef"


@pytest.fixture
def env(monkeypatch):
    for k in (cc.ENV_DIR, cc.JAX_ENV_DIR, "XDG_CACHE_HOME"):
        monkeypatch.delenv(k, raising=False)
    return monkeypatch


def test_the_folder_comes_from_popsim_then_xdg_then_home(env, tmp_path):
    env.setenv("HOME", str(tmp_path / "home"))
    assert cc.root() == tmp_path / "home" / ".cache" / "popsim"
    env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cc.root() == tmp_path / "xdg" / "popsim"
    env.setenv(cc.ENV_DIR, str(tmp_path / "mine"))
    assert cc.root() == tmp_path / "mine"
    assert cc.directory() == tmp_path / "mine" / cc.cache_key()
    env.setenv(cc.ENV_DIR, "OFF")
    assert cc.root() is None and cc.directory() is None


def test_a_jax_cache_folder_chosen_by_the_user_is_left_to_jax(env, tmp_path):
    env.setenv(cc.JAX_ENV_DIR, str(tmp_path / "jax"))
    assert cc.directory() is None
    env.setenv(cc.ENV_DIR, str(tmp_path / "mine"))  # popsim's own variable wins
    assert cc.directory() == tmp_path / "mine" / cc.cache_key()


def _copy_package(tmp_path) -> Path:
    copy = tmp_path / "popsim"
    shutil.copytree(Path(cc.__file__).parent, copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_the_key_changes_with_the_model_source_and_not_with_the_command_line(tmp_path,
                                                                          monkeypatch):
    copy = _copy_package(tmp_path)
    monkeypatch.setattr(cc, "_package_root", lambda: copy)
    before = cc.cache_key()
    assert _KEY_MATCHES(before)
    with open(copy / "cli" / "args.py", "a") as f:
        f.write("\n# a comment in the command line\n")
    assert cc.cache_key() == before
    with open(copy / "model.py", "a") as f:
        f.write("\n# a change to the model\n")
    after = cc.cache_key()
    assert after != before and _KEY_MATCHES(after)
    (copy / "physiology" / "new_organ.py").write_text("X = 1\n")  # a new module counts
    assert cc.cache_key() != after


def _KEY_MATCHES(key: str) -> bool:
    return cc._KEY.match(key) is not None


def _fake_cache(root: Path) -> dict:
    """A cache root with this installation's folder (2 entries, 1 traced program), a stale
    folder, and things popsim must never delete: a folder and a file not named like a key, and a
    symlink named like a key pointing outside."""
    outside = root.parent / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    mine = root / cc.cache_key()
    mine.mkdir(parents=True)
    for i in range(2):
        (mine / f"jit_f-{i:064x}{cc.ENTRY_SUFFIX}").write_bytes(b"x" * 1000)
    (mine / cc.TRACED_SUBFOLDER).mkdir()
    (mine / cc.TRACED_SUBFOLDER / f"simulate_observe-{0:064x}").write_bytes(b"t" * 500)
    stale = root / KEY_LIKE
    stale.mkdir()
    (stale / f"jit_g-{0:064x}{cc.ENTRY_SUFFIX}").write_bytes(b"y" * 500)
    (root / "notes").mkdir()
    (root / "notes" / "a.txt").write_text("keep")
    (root / "README").write_text("keep")
    (root / "popsim-9.9_jax-1_jaxlib-1_fedcba9876543210").symlink_to(outside)
    return {"mine": mine, "stale": stale, "outside": outside}


def test_clear_deletes_only_key_folders_inside_the_root(tmp_path):
    root = tmp_path / "cache"
    paths = _fake_cache(root)
    found = cc.folders(root)
    assert [f.path for f in found] == [paths["mine"], paths["stale"]]
    assert (found[0].entries, found[0].traced, found[0].size_bytes, found[0].current) == (
        2, 1, 2500, True)
    gone = cc.clear(stale_only=True, base=root)
    assert [f.path for f in gone] == [paths["stale"]] and paths["mine"].exists()
    cc.clear(base=root)
    assert not paths["mine"].exists()
    assert (root / "notes" / "a.txt").exists() and (root / "README").exists()
    assert (paths["outside"] / "precious.txt").read_text() == "keep"


def test_cache_commands(env, tmp_path, capsys):
    """The README's `popsim cache info` and `popsim cache clear --stale --yes` as written, then
    `clear` without --yes (refused) and with it (everything of popsim's), on a fake cache."""
    root = tmp_path / "cache"
    paths = _fake_cache(root)
    env.setenv(cc.ENV_DIR, str(root))
    assert main(readme_command("cache", "info")) == 0
    text = capsys.readouterr().out
    assert str(root) in text and cc.cache_key() in text
    assert "2 compiled programs, 1 traced programs, 2.5 kB" in text and "1 folder(s)" in text
    assert main(["cache", "clear"]) == 2  # no --yes: nothing deleted
    assert "--yes" in capsys.readouterr().err and paths["mine"].exists()
    assert readme_command("cache", "clear") == ["cache", "clear", "--stale", "--yes"]
    assert main(readme_command("cache", "clear")) == 0
    assert paths["mine"].exists() and not paths["stale"].exists()
    assert main(["cache", "clear", "--yes"]) == 0
    assert not paths["mine"].exists() and (paths["outside"] / "precious.txt").exists()
    env.setenv(cc.ENV_DIR, "off")
    assert main(["cache", "clear", "--yes"]) == 2


TINY = """
[population]
size = 3
seed = 11
[simulation]
days = 4
output_interval_days = 1.0
[[arm]]
name = "control"
"""

@pytest.mark.slow
def test_a_second_identical_run_compiles_nothing(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    cache = tmp_path / "cache"
    first = counted_popsim(["run", str(config), "--out", str(tmp_path / "a.h5"), "--quiet"],
                           cache)
    assert first["compilations"] > 0 and first["cache_writes"] == first["compilations"]
    # the Newton, the time course (and no fallback: 3 patients) traced once and stored
    assert first["traced_programs_written"] == 2 and first["traced_programs_loaded"] == 0
    second = counted_popsim(["run", str(config), "--out", str(tmp_path / "b.h5"), "--quiet",
                             "--profile", str(tmp_path / "b.json")], cache)
    assert second["compilations"] == 0
    # neither compiled nor traced: both large programs read back as traced
    assert second["traced_programs_loaded"] == 2 and second["traced_programs_written"] == 0
    # every program loaded from the cache (fewer than the first compiled: the small eager
    # operations that tracing ran are not run again)
    assert second["cache_hits"] == second["programs_requested"] > 0
    profile = json.loads((tmp_path / "b.json").read_text())
    assert profile["compile"]["compilations"] == 0
    assert {"compile", "steady_state", "time_course", "write"} <= set(profile["phases"])
    with h5py.File(tmp_path / "a.h5") as a, h5py.File(tmp_path / "b.h5") as b:
        for name in ("serum_mg", "status"):  # a program loaded from the cache: the same bits
            np.testing.assert_array_equal(a[name][...], b[name][...])
    # --no-compile-cache: nothing read from the warm cache, nothing written to it (a command
    # with fewer programs than a run shows it as well)
    before = sorted(p.name for p in cache.rglob("*"))
    off = counted_popsim(["export-sbml", "--out", str(tmp_path / "c.xml"),
                          "--no-compile-cache"], cache)
    assert off["cache_hits"] == off["cache_writes"] == 0
    assert off["traced_programs_loaded"] == off["traced_programs_written"] == 0
    assert off["compilations"] == off["programs_requested"] > 0
    assert sorted(p.name for p in cache.rglob("*")) == before



def test_programs_are_released_before_memory_maps_run_out(monkeypatch):
    """Linux caps a process's memory maps (vm.max_map_count, 65,530 by default) and XLA's CPU
    programs take ~11,000 a run's set; past the cap XLA aborts the process. Before simulating,
    popsim releases its compiled programs (they reload from the disk cache) when fewer than
    MAP_HEADROOM maps are left, and only then."""
    from popsim import compilation

    maps = compilation.memory_maps()
    assert maps is not None and 0 < maps[0] < maps[1]  # Linux: read from /proc
    released = []
    monkeypatch.setattr(compilation.jax, "clear_caches", lambda: released.append(True))
    limit = 65_530
    monkeypatch.setattr(compilation, "memory_maps",
                        lambda: (limit - compilation.MAP_HEADROOM + 1, limit))
    assert compilation.make_room_for_programs() and released == [True]
    monkeypatch.setattr(compilation, "memory_maps",
                        lambda: (limit - compilation.MAP_HEADROOM, limit))
    assert not compilation.make_room_for_programs() and released == [True]
    monkeypatch.setattr(compilation, "memory_maps", lambda: None)  # not Linux: nothing to do
    assert not compilation.make_room_for_programs() and released == [True]
