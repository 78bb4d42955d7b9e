"""Bone exchange of Mg, Ca and phosphate. Fluxes in mmol/day."""

from __future__ import annotations

from popsim.physiology._math import log


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


def ca_bone_net_release(pth_action, pth_action_ref, gain, ca, ca_ref, buffer):
    """Net Ca released from bone (mmol/day): ``gain * ln(A / A_ref) - buffer * ln(Ca / Ca_ref)``.

    PTH action above its reference mobilises bone Ca (resorption exceeds mineralisation), below
    it bone takes Ca up. Bone Ca is an open reservoir (~25 mol, far more than any simulated
    change), so this is the ECF's Ca buffer over days to months (Peterson & Riggs 2010).

    The second term is the exchange with bone-surface mineral that does not need PTH: as serum
    Ca falls, less Ca is laid down and more dissolves. Near the reference it is several times
    smaller than PTH's effect (PTH secretion rises steeply as Ca falls), but it grows without
    bound as Ca falls, so bone never draws Ca from an empty ECF: without it, the collapse of PTH
    action in severe Mg deficiency (resistance) kept mineralisation going until serum Ca passed
    through zero."""
    return gain * log(pth_action / pth_action_ref) - buffer * log(ca / ca_ref)


def phosphate_bone_net_release(ca_net, ratio):
    """Phosphate released with bone Ca (mmol/day): hydroxyapatite's P/Ca ratio (0.464 mol/mol in
    Peterson & Riggs 2010) times the net Ca release."""
    return ratio * ca_net
