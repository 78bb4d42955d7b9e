"""Calcitriol (1,25-(OH)2D): renal 1-alpha-hydroxylation, stimulated by PTH, suppressed by
phosphate (and FGF23), falling with nephron mass, and needing Mg."""

from __future__ import annotations

from popsim.physiology._math import relative_hill


def calcitriol_target(pth_eff, pth_reference, p_plasma, p_reference, mg_ionized, mg_reference,
                      nephron_fraction, reference, nephron_exponent, pth_k, pth_hill,
                      phosphate_exponent, mg_k):
    """Serum calcitriol the kidney makes towards (pmol/L).

    ``D_ref * N**aN * H(PTH_eff) * (P_ref/P)**aP * M(Mg)`` with ``H`` and ``M`` saturating
    effects normalised to 1 at the reference: the hydroxylase is induced by PTH (bumetanide: PTH
    +27%, calcitriol +36%), suppressed by phosphate/FGF23 (Peterson & Riggs 2010), lost with
    nephron mass (HOST stage 4-5: 48 pmol/L), and Mg-dependent (Fatemi 1991: 55 -> 43 pmol/L in
    three weeks of depletion; Dutta & Layton 2024 Hill form)."""
    return (reference * nephron_fraction**nephron_exponent
            * relative_hill(pth_eff, pth_reference, pth_k, pth_hill)
            * (p_reference / p_plasma) ** phosphate_exponent
            * relative_hill(mg_ionized, mg_reference, mg_k, 2.0))
