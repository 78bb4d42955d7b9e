"""Intestinal absorption of Mg, K, Na, Ca and phosphate (docs/MODEL.md, "Mechanisms").

All fluxes in mmol/day. The Mg that reaches the absorbing epithelium is the soluble part of what
is swallowed (diet plus supplements, each salt weighted by its solubility) plus the Mg secreted
into the gut; the unabsorbed remainder leaves in the faeces.
"""

from __future__ import annotations

from popsim.physiology._math import hill


def mg_absorption(load, vmax, km, paracellular_fraction):
    """Gross intestinal Mg absorption (mmol/day) from the soluble luminal ``load`` (mmol/day).

    A saturable transcellular route (TRPM6/7, Michaelis-Menten in the daily load) plus a linear
    paracellular route, the curvilinear form of Fine et al. 1991 (J Clin Invest 88:396): the
    absorbed *fraction* falls as the load rises.

    Args:
        load: soluble Mg reaching the epithelium, mmol/day (>= 0): food, soluble supplements and
            endogenous secretion.
        vmax: transcellular capacity, mmol/day.
        km: daily load at half-maximal transcellular absorption, mmol/day.
        paracellular_fraction: fraction of the load absorbed paracellularly (dimensionless).
    """
    return vmax * load / (km + load) + paracellular_fraction * load


def mg_secretion(mg_ionized, clearance):
    """Endogenous Mg secreted into the gut lumen (mmol/day), ``clearance * Mg2+``.

    It joins the luminal load and is reabsorbed like dietary Mg, so the endogenous faecal loss
    (secretion not reabsorbed) adapts by itself: on a Mg-poor diet the load is small, the
    absorbed fraction high, and little secreted Mg is lost (Schwartz 1984; Avioli & Berman 1966).

    Args:
        mg_ionized: serum ionized Mg, mmol/L.
        clearance: L/day.
    """
    return clearance * mg_ionized


def fractional_absorption(intake, fraction):
    """Absorption of a nearly completely absorbed ion (K, Na), mmol/day: ``fraction * intake``."""
    return fraction * intake


def ca_absorption(intake, basal_fraction, calcitriol_slope, calcitriol):
    """Net intestinal Ca absorption (mmol/day): ``intake * (basal + slope * calcitriol)``.

    The linear relation of fractional Ca absorption to serum 1,25-(OH)2D of Sheikh et al. 1988
    (J Clin Invest 81:126): % absorbed = 10 + 0.17 x calcitriol (pmol/L).

    Args:
        intake: dietary Ca, mmol/day.
        basal_fraction: fraction absorbed without calcitriol (dimensionless).
        calcitriol_slope: per pmol/L of calcitriol.
        calcitriol: serum 1,25-(OH)2D, pmol/L.
    """
    return intake * (basal_fraction + calcitriol_slope * calcitriol)


def phosphate_absorption(intake, basal_fraction, calcitriol_fraction, calcitriol_k, calcitriol):
    """Net intestinal phosphate absorption (mmol/day): a calcitriol-independent fraction (mostly
    paracellular) plus a weaker calcitriol-driven active part (NaPi-IIb).

    Args:
        intake: dietary phosphate, mmol/day.
        basal_fraction, calcitriol_fraction: dimensionless.
        calcitriol_k: calcitriol at half of the active part, pmol/L.
        calcitriol: pmol/L.
    """
    return intake * (basal_fraction + calcitriol_fraction * hill(calcitriol, calcitriol_k, 1.0))
