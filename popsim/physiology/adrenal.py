"""Aldosterone, the K feedback signal (part of mechanism 5)."""

from __future__ import annotations

from popsim.physiology._math import exp

ALDOSTERONE_REFERENCE_NG_PER_L = 85.0
"""Plasma aldosterone at the reference state, ng/L (Stadt et al. 2022, ``C_al = 85``)."""


def aldosterone_target(k_p, k_setpoint, k_sensitivity, volume_deviation, volume_sensitivity):
    """Steady-state aldosterone relative to 85 ng/L.

    ``exp(m_K * (K_p - K_p0) - m_V * dV)``: the exponential K-aldosterone relation of Maddah &
    Hallow (mstadt/KReg ``MaddahALD.m``; m_K 0.95 per mmol/L), times the renin-angiotensin
    response to ECF volume (``dV`` in % of the reference volume; contraction raises aldosterone,
    as angiotensin multiplies aldosterone secretion in Guyton 1992 ``module_aldost``).
    """
    return exp(k_sensitivity * (k_p - k_setpoint) - volume_sensitivity * volume_deviation)
