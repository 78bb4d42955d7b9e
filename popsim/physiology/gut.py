"""Intestinal absorption of Mg, K, Na and Ca (mechanism 1 of SPEC §1).

All fluxes in mmol/day. Intakes are what is swallowed per day (diet plus oral supplements).
"""

from __future__ import annotations

from popsim.physiology._math import hill


def mg_absorption(intake, vmax, km, paracellular_fraction):
    """Gross intestinal Mg absorption (mmol/day).

    A saturable transcellular route (TRPM6/7, Michaelis-Menten in the daily load) plus a linear
    paracellular route, the curvilinear form of Fine et al. 1991 (J Clin Invest 88:396). The
    absorbed *fraction* therefore falls as intake rises: ~70% at 50 mg/day, ~40% at 300 mg/day,
    ~25% at 1000 mg/day with the default parameters (Schwartz 1984: 75% on low- and 25% on
    high-Mg diets; renal atlas fig. 4-5: 45% at 300 mg/day).

    Args:
        intake: Mg swallowed, mmol/day (>= 0).
        vmax: transcellular capacity, mmol/day.
        km: daily load at half-maximal transcellular absorption, mmol/day.
        paracellular_fraction: fraction of the load absorbed paracellularly (dimensionless).
    """
    return vmax * intake / (km + intake) + paracellular_fraction * intake


def mg_endogenous_loss(mg_ionized, clearance):
    """Endogenous faecal Mg loss (mmol/day): Mg secreted into the gut lumen and not reabsorbed.

    Proportional to serum ionized Mg; it is what keeps a Mg-free diet draining the body after the
    kidney has shut urinary Mg down (Shils 1969 depletion studies).

    Args:
        mg_ionized: serum ionized Mg, mmol/L.
        clearance: L/day.
    """
    return clearance * mg_ionized


def fractional_absorption(intake, fraction):
    """Absorption of a nearly completely absorbed ion (K, Na), mmol/day: ``fraction * intake``."""
    return fraction * intake


def ca_absorption(intake, passive_fraction, active_fraction, pth_action, k_action,
                  nephron_fraction, ckd_exponent):
    """Intestinal Ca absorption (mmol/day): a passive paracellular part plus an active part
    raised by PTH action (a stand-in for calcitriol).

    Calcitriol is made in the kidney, so the active part falls with nephron mass
    (``nephron_fraction**ckd_exponent``): the start of secondary hyperparathyroidism in CKD.

    Args:
        intake: Ca swallowed, mmol/day.
        passive_fraction: fraction absorbed whatever the hormones (dimensionless).
        active_fraction: further fraction absorbed at full PTH/calcitriol drive (dimensionless).
        pth_action: PTH action, 0..1 (see :func:`popsim.physiology.parathyroid.pth_action`).
        k_action: PTH action at half-maximal stimulation (dimensionless).
        nephron_fraction: eGFR/100. ckd_exponent: dimensionless.
    """
    active = active_fraction * hill(pth_action, k_action, 1.0) * nephron_fraction**ckd_exponent
    return intake * (passive_fraction + active)
