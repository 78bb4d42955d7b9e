"""The renin-angiotensin-aldosterone system: angiotensin II from the macula densa and renal
perfusion pressure, aldosterone from angiotensin II and plasma K (the K feedback on renal K
secretion and the volume signal of renal Na handling)."""

from __future__ import annotations

from popsim.physiology._math import exp, log, softplus

ALDOSTERONE_REFERENCE_NG_PER_L = 85.0
"""Plasma aldosterone at the reference state, ng/L (Stadt et al. 2022, ``C_al = 85``)."""


def angiotensin_target(macula_densa, perfusion_pressure, perfusion_reference,
                       volume_deviation, md_gain, pressure_gain, volume_gain, cap):
    """Angiotensin II (and plasma renin activity) the system moves towards, relative to the
    reference.

    ``ln A = -a_MD ln(md) - a_P (RPP - RPP_ref) - a_V dV``: less NaCl sensed at the macula
    densa (salt restriction, volume depletion, a loop diuretic blinding the sensor), a lower
    renal perfusion pressure (Hallow & Gebremichael 2017; Guyton 1992) and a smaller ECF volume
    (``dV`` in %, through cardiopulmonary receptors and renal sympathetic nerves) release renin;
    smoothly bounded to ``exp(+-cap)``.
    """
    x = (-md_gain * log(macula_densa) - pressure_gain * (perfusion_pressure - perfusion_reference)
         - volume_gain * volume_deviation)
    return exp(x - softplus(x - cap, 0.3) + softplus(-x - cap, 0.3))


def aldosterone_target(angiotensin, k_p, k_setpoint, angiotensin_exponent, k_sensitivity,
                       maximum, mg_ratio=1.0, mg_exponent=0.0, mg_bound=0.5):
    """Aldosterone the adrenal secretes towards, relative to 85 ng/L.

    ``z = A**s_A * exp(s_K (K_p - K_set)) * r**(-s_Mg)``: angiotensin II (elasticity ~0.83,
    Hallow 2017) and plasma K (x2.6 per mmol/L: Maddah/Stadt, m_K 0.95) multiply; ionized Mg
    restrains the zona glomerulosa (``r``, ionized Mg relative to the reference; Ichihara 1993:
    IV Mg raising serum Mg 0.79 -> 1.16 mmol/L lowered plasma aldosterone 60 -> 40 ng/L, which
    diltiazem prevented, ``s_Mg`` ~1.05), with ``ln r`` smoothly
    held within ``+-mg_bound`` (the data span a ratio of ~1.5). Saturating at ``maximum``
    (``N_max z / (N_max - 1 + z)``, 1 at the reference), as the zona glomerulosa's capacity is
    finite (Na-depleted upright adults ~810 ng/L: Williams 1972).
    """
    x = log(mg_ratio)
    x = x - softplus(x - mg_bound, 0.1) + softplus(-x - mg_bound, 0.1)
    z = (angiotensin**angiotensin_exponent * exp(k_sensitivity * (k_p - k_setpoint))
         * exp(-mg_exponent * x))
    return maximum * z / (maximum - 1.0 + z)
