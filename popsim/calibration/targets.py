"""Differentiable cohort statistics and the loss terms of calibration targets.

Failed patients are excluded through a mask (weights 0), never by NaN arithmetic.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

QUANTILE_BANDWIDTH = 0.02  # SD of the Gaussian kernel over the empirical CDF (probability units)
RANGE_SOFTNESS = 0.02  # width of the soft inside/outside edge, as a fraction of the range


def smooth_quantile(x, mask, q, bandwidth: float = QUANTILE_BANDWIDTH):
    """Kernel-smoothed quantile of ``x`` over patients where ``mask``: a weighted mean of the order
    statistics with Gaussian weights in probability space around ``q`` (Harrell-Davis style).
    Smooth in ``x``, so its gradient involves several patients rather than one or two.
    """
    xs = jnp.where(mask, x, jnp.inf)
    order = jnp.argsort(xs)
    sx = jnp.where(mask[order], x[order], 0.0)
    sm = mask[order].astype(x.dtype)
    n_ok = jnp.maximum(jnp.sum(sm), 1.0)
    p = (jnp.cumsum(sm) - 0.5) / n_ok
    w = sm * jnp.exp(-0.5 * ((p - q) / bandwidth) ** 2)
    return jnp.sum(w * sx) / jnp.maximum(jnp.sum(w), 1e-300)


def masked_mean(x, mask):
    m = mask.astype(x.dtype)
    return jnp.sum(jnp.where(mask, x, 0.0) * m) / jnp.maximum(jnp.sum(m), 1.0)


def soft_fraction_in_range(x, mask, low, high, softness: float = RANGE_SOFTNESS):
    """Smooth fraction of patients with ``low <= x <= high`` (logistic edges of width
    ``softness * (high - low)``)."""
    tau = softness * (high - low)
    inside = jax.nn.sigmoid((x - low) / tau) * jax.nn.sigmoid((high - x) / tau)
    return masked_mean(jnp.where(mask, inside, 0.0), mask)


def statistic(target, x, mask):
    """The target's statistic of ``x`` (patient,) over ``mask``."""
    if target.statistic == "quantile":
        return smooth_quantile(x, mask, target.q)
    if target.statistic == "median":
        return smooth_quantile(x, mask, 0.5)
    if target.statistic == "mean":
        return masked_mean(x, mask)
    return soft_fraction_in_range(x, mask, target.low, target.high)


def loss_term(target, stat):
    """Squared, scaled shortfall of the statistic (0 when the target is met)."""
    s = target.loss_scale
    if target.statistic == "fraction_in_range":
        return (jax.nn.relu(target.fraction - stat) / s) ** 2
    if target.value is not None:
        return ((stat - target.value) / s) ** 2
    return ((jax.nn.relu(target.low - stat) + jax.nn.relu(stat - target.high)) / s) ** 2


def met(target, stat) -> bool:
    """Whether a (hard) statistic meets the target: in range / within one scale of the value."""
    if target.statistic == "fraction_in_range":
        return stat >= target.fraction
    if target.value is not None:
        return abs(stat - target.value) <= target.loss_scale
    return target.low <= stat <= target.high
