"""Elementary functions shared by every flux, for JAX arrays and for SymPy expressions.

The flux functions of :mod:`popsim.physiology` are written once, with these helpers and the
ordinary arithmetic operators. Called with JAX arrays they build the jitted vector field; called
with SymPy symbols they build the symbolic expressions that the SBML exporter writes as MathML,
so both come from one definition. The dispatch happens at trace time in Python, never inside a
compiled program.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp


def _is_symbolic(*xs: Any) -> bool:
    return any(type(x).__module__.startswith("sympy") for x in xs)


def _sympy():
    import sympy

    return sympy


def exp(x):
    return _sympy().exp(x, evaluate=False) if _is_symbolic(x) else jnp.exp(x)


def log(x):
    return _sympy().log(x, evaluate=False) if _is_symbolic(x) else jnp.log(x)


def sqrt(x):
    return _sympy().sqrt(x) if _is_symbolic(x) else jnp.sqrt(x)


def hill(x, k, n):
    """Saturating Hill function ``x**n / (x**n + k**n)`` (dimensionless, 0..1); ``x, k > 0``."""
    xn = x**n
    return xn / (xn + k**n)


def relative_hill(x, x_ref, k, n):
    """``hill(x, k, n) / hill(x_ref, k, n)``: a saturating effect normalised to 1 at ``x_ref``."""
    return hill(x, k, n) / hill(x_ref, k, n)


def hill_inhibition(x, k, n):
    """``1 / (1 + (x/k)**n)``: the fraction of a target left unblocked by an inhibitor ``x``."""
    return 1.0 / (1.0 + (x / k) ** n)


def softplus(x, width):
    """``width * log(1 + exp(x/width))``: a smooth ``max(0, x)`` with corner width ``width``."""
    if _is_symbolic(x, width):
        return _sympy().Function("softplus")(x, width)  # see symbolic_functions
    return width * jnp.logaddexp(0.0, x / width)


def tanh(x):
    return _sympy().tanh(x, evaluate=False) if _is_symbolic(x) else jnp.tanh(x)


def smooth_cap(x, cap, width):
    """``x`` smoothly limited to at most ``cap`` (``x - softplus(x - cap)``), width ``width``:
    equal to ``x`` well below the cap, to ``cap`` well above it."""
    return x - softplus(x - cap, width)


def smooth_min(a, b, width):
    """Smooth ``min(a, b)``, always below both: ``(a + b - sqrt((a - b)**2 + width**2)) / 2``."""
    return 0.5 * (a + b - sqrt((a - b) ** 2 + width**2))


def positive_floor(x, floor):
    """``x`` where ``x >= 2 floor``; below, ``c^2 / (2 c - x)`` with ``c = 2 floor``: positive
    for every ``x`` (falling like ``1/|x|``, so no underflow to 0 in float32), continuous with its
    first derivative at ``c``, and exactly ``x`` above it (the branch not taken never sees an
    argument that could divide by zero, so a gradient through it stays finite)."""
    corner = 2.0 * floor
    low = select(x < corner, x, corner)
    return select(x < corner, corner * corner / (2.0 * corner - low), x)


def logistic(x):
    """``1 / (1 + exp(-x))``."""
    return 1.0 / (1.0 + exp(-x))


def select(condition, if_true, if_false):
    """``if_true`` where ``condition`` holds, else ``if_false``.

    ``condition`` may be a Python bool (chosen now), a JAX boolean array (``jnp.where``) or a
    SymPy relation (a ``Piecewise``, written to SBML as ``piecewise``).
    """
    if isinstance(condition, bool):
        return if_true if condition else if_false
    if _is_symbolic(condition, if_true, if_false):
        return _sympy().Piecewise((if_true, condition), (if_false, True))
    return jnp.where(condition, if_true, if_false)


def clip(x, lower, upper):
    """``x`` limited to ``[lower, upper]`` (``jnp.clip``, or a SymPy ``Piecewise``)."""
    if _is_symbolic(x):
        sp = _sympy()
        return sp.Piecewise((lower, x < lower), (upper, x > upper), (x, True))
    return jnp.clip(x, lower, upper)


def symbolic_functions() -> dict:
    """The helpers that stay named functions in SymPy expressions (their arguments would
    otherwise be repeated in the expanded formula): name -> ``(arguments, body)``, SymPy symbols
    and expression. The SBML export writes each as a function definition.

    ``softplus`` is ``jnp.logaddexp``'s formula, without branches and never overflowing:
    ``max(z, 0) + log(1 + exp(-|z|))`` with ``z = x/width`` and ``max(z, 0) = (z + |z|)/2``
    (exact in floating point).
    """
    sp = _sympy()
    x, width = sp.symbols("x width")
    z = x / width
    magnitude = sp.Abs(z, evaluate=False)
    body = width * ((z + magnitude) / 2 + sp.log(1 + sp.exp(-magnitude, evaluate=False),
                                                  evaluate=False))
    return {"softplus": ((x, width), body)}
