"""Differentiable observation statistics (JAX), mirroring :mod:`popsim.evidence.statistics`.

The steps of :class:`popsim.evidence.Observation` are the same (output on a day or its time
integral, change from a day, paired difference to another arm, division by a dose, subgroup,
statistic over patients); what differs is only where the NumPy evaluator is discontinuous in the
outputs:

* quantiles and medians are kernel-smoothed order statistics: Gaussian weights in probability
  space around ``q`` with the SD of the Harrell-Davis weights, sqrt(q(1-q)/(n+1));
* fractions below/above a threshold count each patient by a logistic step of width
  :data:`FRACTION_SOFTNESS` x |threshold| (or of the output's SD for a threshold of 0), and a
  subgroup on an output weighs patients by the same step;
* patients not solved have weight 0 (never NaN arithmetic), and a statistic over no patient
  (or one) has a zero gradient, never a NaN one: square roots and divisions take the double
  ``where`` (a safe argument in the branch not taken), so one emptied study cannot make every
  coordinate of the fit's gradient NaN through the sum of the likelihood.

Each statistic comes with its Monte-Carlo standard error over the virtual patients (normal
theory with the effective number of patients, Kish's (sum w)^2 / sum w^2), which the likelihood
adds to the reported value's standard error in quadrature.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import jax
import jax.numpy as jnp

FRACTION_SOFTNESS = 0.01


def quantity(spec, outs: dict, times) -> jax.Array:
    """Steps 1-4 of an observation: the per-patient quantity ``(patient,)``."""
    o = spec.obs

    def one(arm):
        y = outs[o.output][arm]  # (patient, time)
        if spec.window is not None:
            i0, i1 = spec.window
            x = jnp.trapezoid(y[:, i0:i1 + 1], jnp.asarray(times[i0:i1 + 1]), axis=-1)
        else:
            x = y[:, spec.t]
        if spec.t_base is not None:
            b = y[:, spec.t_base]
            # a failed patient's outputs are 0: safe_divide keeps its 0/0 out of the gradient
            x = {"difference": lambda: x - b, "ratio": lambda: safe_divide(x, b),
                 "percent": lambda: 100.0 * (safe_divide(x, b) - 1.0)}[o.change]()
        return x

    x = one(spec.arm)
    if spec.versus is not None:
        x = x - one(spec.versus)
    if o.divide_by is not None:
        x = x / o.divide_by
    return x


def step(x, threshold, scale):
    """Smooth indicator of ``x > threshold`` (logistic of width ``scale``)."""
    return jax.nn.sigmoid((x - threshold) / scale)


def _width(threshold, x, w):
    if threshold != 0:
        return FRACTION_SOFTNESS * abs(threshold)
    return FRACTION_SOFTNESS * jax.lax.stop_gradient(jnp.maximum(_moments(x, w)[1], 1e-12))


def weights(spec, outs: dict, ok) -> jax.Array:
    """Each patient's weight in the statistic: solved, in the covariate subgroup, and (softly)
    in the output subgroup."""
    w = (ok & jnp.asarray(spec.cov_mask)).astype(jnp.float64)
    for name, t, lo, hi in spec.out_sub:
        x = outs[name][spec.arm][:, t]
        x = jnp.where(w > 0, x, 0.0)
        if lo is not None:
            w = w * step(x, lo, _width(lo, x, w))
        if hi is not None:
            w = w * (1.0 - step(x, hi, _width(hi, x, w)))
    return w


def safe_sqrt(x):
    """``sqrt(max(x, 0))`` with a zero gradient where ``x <= 0`` (not an infinite one)."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def safe_divide(a, b):
    """``a / b``, and 0 with a zero gradient where ``b == 0``."""
    nonzero = b != 0
    return jnp.where(nonzero, a / jnp.where(nonzero, b, 1.0), 0.0)


def _moments(x, w):
    """Weighted mean and SD (ddof 1 on the summed weights) and the effective count."""
    n = jnp.maximum(jnp.sum(w), 1e-12)
    xs = jnp.where(w > 0, x, 0.0)
    mean = jnp.sum(w * xs) / n
    var = jnp.sum(w * (xs - mean) ** 2) / jnp.maximum(n - 1.0, 1e-12)
    n_eff = n**2 / jnp.maximum(jnp.sum(w**2), 1e-24)
    return mean, safe_sqrt(var), n_eff


def smooth_quantile(x, w, q: float):
    """Kernel-smoothed weighted quantile (see the module docstring)."""
    order = jnp.argsort(jnp.where(w > 0, x, jnp.inf))
    xs = jnp.where(w > 0, x, 0.0)[order]
    ws = w[order]
    n = jnp.maximum(jnp.sum(ws), 1e-12)
    p = (jnp.cumsum(ws) - 0.5 * ws) / n
    h = jax.lax.stop_gradient(jnp.sqrt(q * (1.0 - q) / (n + 1.0)))
    k = ws * jnp.exp(-0.5 * ((p - q) / h) ** 2)
    return jnp.sum(k * xs) / jnp.maximum(jnp.sum(k), 1e-300)


def _quantile_factor(q: float) -> float:
    """SE of a sample quantile in units of SD / sqrt(n), for normal data."""
    nd = NormalDist()
    return math.sqrt(q * (1 - q)) / nd.pdf(nd.inv_cdf(q))


def reduce(spec, x, w):
    """``(statistic, Monte-Carlo SE)`` of ``x`` over patients with weights ``w``."""
    o = spec.obs
    s = o.statistic
    mean, sd, n = _moments(x, w)
    root_n = jnp.sqrt(n)
    if s == "mean":
        return mean, sd / root_n
    if s == "sd":
        return sd, sd / jnp.sqrt(2.0 * jnp.maximum(n - 1.0, 1.0))
    if s in ("median", "quantile"):
        q = 0.5 if s == "median" else o.q
        return smooth_quantile(x, w, q), _quantile_factor(q) * sd / root_n
    if s in ("min", "max"):
        counted = w > 0.5
        v = jnp.max(jnp.where(counted, x if s == "max" else -x, -jnp.inf))
        v = jnp.where(jnp.any(counted), v, 0.0)  # no patient: 0, not -inf
        return (v if s == "max" else -v), sd
    if s == "fraction_below":
        ind = 1.0 - step(x, o.threshold, _width(o.threshold, x, w))
    elif s == "fraction_above":
        ind = step(x, o.threshold, _width(o.threshold, x, w))
    else:
        lo, hi = o.thresholds
        ind = step(x, lo, _width(lo, x, w)) * (1.0 - step(x, hi, _width(hi, x, w)))
    p = jnp.sum(w * jnp.where(w > 0, ind, 0.0)) / jnp.maximum(jnp.sum(w), 1e-12)
    return p, safe_sqrt(jnp.maximum(p * (1 - p), 0.25 / n) / n)


def combine(op: str, a, b):
    """``(value, SE)`` of ``a - b`` or ``a / b`` from ``(value, SE)`` pairs (delta method,
    independent errors)."""
    (va, sa), (vb, sb) = a, b
    if op == "difference":
        return va - vb, safe_sqrt(sa**2 + sb**2)
    r = safe_divide(va, vb)  # |r| sqrt((sa/va)^2 + (sb/vb)^2), without dividing by va
    return r, safe_sqrt(safe_divide(sa, vb) ** 2 + (r * safe_divide(sb, vb)) ** 2)


def evaluate(specs, block_outs: list[dict], block_ok: list, blocks) -> tuple:
    """Every observation's ``(values, Monte-Carlo SEs, patients counted)``, each ``(obs,)``,
    in ``specs`` order (a ``combine`` after the observations it reads); unsupported statistics
    give NaN."""
    done: dict[str, tuple] = {}
    values, ses, counts = [], [], []
    for spec in specs:
        o = spec.obs
        sid = blocks[spec.block].sid
        if o.combine is not None:
            refs = [r if ":" in r else f"{sid}:{r}" for r in o.combine.of]
            v, se = combine(o.combine.op, done[refs[0]], done[refs[1]])
            n = jnp.float64(0.0)
        elif not spec.supported:
            v = se = n = jnp.float64(jnp.nan)
        else:
            outs, ok = block_outs[spec.block], block_ok[spec.block]
            w = weights(spec, outs, ok)
            v, se = reduce(spec, quantity(spec, outs, blocks[spec.block].times), w)
            n = jnp.sum(w)
        done[spec.key] = (v, se)
        values.append(v)
        ses.append(se)
        counts.append(n)
    return jnp.stack(values), jnp.stack(ses), jnp.stack(counts)
