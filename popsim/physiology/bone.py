"""Bone exchange of Mg and Ca (mechanisms 7 and 8 of SPEC §1). Fluxes in mmol/day."""

from __future__ import annotations


def mg_bone_uptake(rate, mg_ionized):
    """Mg taken up by the exchangeable bone surface pool (mmol/day), ``rate * ionized Mg``.

    ``rate`` in L/day. With :func:`mg_bone_release` this is the surface pool of bone Mg (about a
    third of bone Mg, IOM 1997) buffering serum Mg over weeks.
    """
    return rate * mg_ionized


def mg_bone_release(rate_constant, mg_bone):
    """Mg released from the exchangeable bone pool (mmol/day): first order, ``rate_constant``
    in 1/day (time constant of weeks)."""
    return rate_constant * mg_bone


def ca_bone_net_release(resorption_basal, resorption_max, formation_rate, pth_action, ca_ionized):
    """Net Ca release from bone (mmol/day): resorption minus mineralisation.

    ``basal + resorption_max * pth_action - formation_rate * Ca2+``: PTH action (0..1) includes
    the skeletal PTH resistance of severe Mg deficiency; mineral accretion slows as ionized Ca
    falls (``formation_rate`` in L/day). Bone Ca is treated as an open reservoir (it holds ~25 mol,
    far more than any simulated change).
    """
    return resorption_basal + resorption_max * pth_action - formation_rate * ca_ionized
