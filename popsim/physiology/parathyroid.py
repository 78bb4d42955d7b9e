"""Parathyroid hormone: secretion by the Ca/Mg-sensing gland and its action (mechanism 8)."""

from __future__ import annotations

from popsim.physiology._math import hill, hill_inhibition


def pth_target(ca_ionized, mg_ionized, pth_max, basal_fraction, ca_setpoint, ca_hill,
               mg_casr_potency, mg_secretion_k, mg_secretion_hill):
    """Plasma PTH that the gland secretes towards (pmol/L).

    A four-parameter inverse sigmoid of CaSR activation (Brown 1983), where Mg2+ is a weaker CaSR
    agonist (``mg_casr_potency`` ~1/3 of Ca2+), so high Mg suppresses PTH; and severe Mg
    deficiency impairs exocytosis (below ~0.5 mmol/L total Mg; Dutta & Layton 2024 use a switch at
    0.4 mM), a Hill factor in ionized Mg.

    Args:
        ca_ionized, mg_ionized: mmol/L.
        pth_max: pmol/L. basal_fraction: secretion left at full CaSR activation.
        ca_setpoint: CaSR-effective Ca (Ca2+ + potency*Mg2+) at half-maximal secretion, mmol/L.
        ca_hill: steepness (dimensionless). mg_secretion_k: ionized Mg at half secretion, mmol/L.
    """
    casr = ca_ionized + mg_casr_potency * mg_ionized
    drive = basal_fraction + (1.0 - basal_fraction) * hill_inhibition(casr, ca_setpoint, ca_hill)
    return pth_max * drive * hill(mg_ionized, mg_secretion_k, mg_secretion_hill)


def pth_action(pth, mg_ionized, pth_k, mg_resistance_k, mg_resistance_hill):
    """PTH action on bone, kidney and (via calcitriol) gut, 0..1.

    Receptor occupancy ``PTH/(PTH + K)`` times end-organ responsiveness, which fails in severe Mg
    deficiency (PTH resistance below ~0.4 mmol/L total Mg; review PMID 1591142).
    """
    return hill(pth, pth_k, 1.0) * hill(mg_ionized, mg_resistance_k, mg_resistance_hill)
