"""Stored programs (popsim.programs): traced once per call signature, kept on disk, read back by
a later process without tracing, and the same bits as the plain jax.jit of the function."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from popsim import compile_cache as cc
from popsim.programs import StoredProgram

TRACES: list[str] = []


def _f(x, y, scale: float, extra=None):
    """A function with a Python side effect that runs only when it is traced."""
    TRACES.append("traced")
    out = {"a": jnp.sin(x) * scale + jnp.cumsum(y), "b": (x @ y, jnp.exp(-x))}
    if extra is not None:
        out["c"] = extra * 2.0
    return out


@pytest.fixture
def store(monkeypatch, tmp_path):
    monkeypatch.delenv(cc.JAX_ENV_DIR, raising=False)
    monkeypatch.setenv(cc.ENV_DIR, str(tmp_path))
    TRACES.clear()
    return tmp_path / cc.cache_key() / cc.TRACED_SUBFOLDER


X = np.linspace(0.1, 2.0, 8)
Y = np.linspace(-1.0, 1.0, 8)


def _assert_same_bits(a, b):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_a_later_process_reads_the_program_back_without_tracing(store):
    plain = jax.jit(_f, static_argnames=("scale",))(X, Y, 1.5)
    TRACES.clear()
    first = StoredProgram(_f, static_argnames=("scale",))
    got = first(X, Y, 1.5)
    assert TRACES == ["traced"] and len(list(store.iterdir())) == 1
    _assert_same_bits(got, plain)
    first(X + 1.0, Y, scale=1.5)  # other values, same signature: no new trace
    assert TRACES == ["traced"] and first.signatures() == 1
    later = StoredProgram(_f, static_argnames=("scale",))  # what a new process starts with
    _assert_same_bits(later(X, Y, 1.5), plain)
    assert TRACES == ["traced"]  # read back, not traced
    assert later.lower(X, Y, 1.5).as_text() == first.lower(X, Y, 1.5).as_text()


def test_each_static_value_shape_dtype_and_structure_is_its_own_program(store):
    program = StoredProgram(_f, static_argnames=("scale",))
    program(X, Y, 1.5)
    program(X, Y, 2.5)  # another static value
    program(X[:4], Y[:4], 1.5)  # another shape
    program(X.astype(np.float32), Y.astype(np.float32), 1.5)  # another dtype
    out = program(X, Y, 1.5, extra=np.ones(3))  # another argument structure
    assert len(TRACES) == program.signatures() == 5 == len(list(store.iterdir()))
    np.testing.assert_array_equal(np.asarray(out["c"]), np.full(3, 2.0))


def test_a_damaged_file_is_traced_again_and_replaced(store):
    StoredProgram(_f, static_argnames=("scale",))(X, Y, 1.5)
    (path,) = store.iterdir()
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 3])  # a truncated write of another process
    again = StoredProgram(_f, static_argnames=("scale",))
    got = again(X, Y, 1.5)
    assert TRACES == ["traced", "traced"]  # the damaged file was not used
    _assert_same_bits(got, jax.jit(_f, static_argnames=("scale",))(X, Y, 1.5))
    assert len(path.read_bytes()) > len(good) // 3  # replaced: a third reads it back
    _assert_same_bits(StoredProgram(_f, static_argnames=("scale",))(X, Y, 1.5), got)
    assert TRACES == ["traced", "traced"]


def test_with_the_cache_off_nothing_is_written_and_the_bits_are_the_same(store, monkeypatch,
                                                                         tmp_path):
    on = StoredProgram(_f, static_argnames=("scale",))(X, Y, 1.5)
    monkeypatch.setenv(cc.ENV_DIR, "off")
    before = sorted(tmp_path.rglob("*"))
    off = StoredProgram(_f, static_argnames=("scale",))(X, Y, 1.5)
    assert sorted(tmp_path.rglob("*")) == before
    _assert_same_bits(on, off)


def test_inside_a_trace_the_plain_jit_is_used_and_differentiates(store):
    program = StoredProgram(_f, static_argnames=("scale",))

    def loss(x):
        return jnp.sum(program(x, Y, 1.5)["a"])

    grad = jax.grad(loss)(X)
    np.testing.assert_allclose(np.asarray(grad), 1.5 * np.cos(X), rtol=1e-12)
    assert program.signatures() == 0 and not store.exists()  # nothing exported


def test_a_program_export_refuses_is_traced_as_plain_jit_and_not_stored(store, monkeypatch):
    from popsim import programs

    def refuse(*a, **k):
        raise ValueError("custom call not allowed")

    monkeypatch.setattr(programs.jax_export, "export", refuse)
    program = StoredProgram(_f, static_argnames=("scale",))
    _assert_same_bits(program(X, Y, 1.5), jax.jit(_f, static_argnames=("scale",))(X, Y, 1.5))
    assert program.signatures() == 1 and not store.exists()


def test_a_read_only_store_keeps_the_program_in_memory(store, monkeypatch):
    from popsim import programs

    def read_only(*a, **k):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(programs.tempfile, "mkstemp", read_only)
    program = StoredProgram(_f, static_argnames=("scale",))
    program(X, Y, 1.5)
    program(X, Y, 1.5)
    assert TRACES == ["traced"] and not any(store.glob("*"))


class _Opaque:
    """A pytree node whose static data shows only its address in the tree structure."""

    def __init__(self, tag, x):
        self.tag, self.x = tag, x


jax.tree_util.register_pytree_node(_Opaque, lambda o: ((o.x,), o.tag),
                                   lambda tag, xs: _Opaque(tag, xs[0]))


def _g(box: _Opaque, scale: float):
    TRACES.append("traced")
    return box.x * scale


def test_a_structure_showing_an_address_is_kept_in_memory_only(store):
    box = _Opaque(object(), X)
    assert " at 0x" in str(jax.tree.structure(box))
    program = StoredProgram(_g, static_argnames=("scale",))
    np.testing.assert_array_equal(np.asarray(program(box, 2.0)), 2.0 * X)
    program(box, 2.0)
    assert TRACES == ["traced"] and not store.exists()
