"""Renal handling of Mg, Ca and phosphate."""

from __future__ import annotations

from typing import NamedTuple

from popsim.physiology._math import hill, hill_inhibition, smooth_min, softplus


class MagnesiumHandling(NamedTuple):
    filtered: object  # mmol/day, ultrafilterable Mg times GFR
    to_dct: object  # mmol/day reaching the DCT
    urine: object  # mmol/day


def magnesium_handling(gfr, mg_uf, mg_ionized, nephron_fraction, pt_fraction, tal_max_fraction,
                       tal_casr_ki, tal_casr_hill, ckd_exponent, loop_coupling, dct_max_fraction,
                       dct_half_load, thiazide_trpm6, loop_block, thiazide_block, tubular_max,
                       tubular_max_width):
    """Renal Mg excretion (mechanism 2).

    * PT: a fixed ~20% of the filtered load (paracellular; 10-25% in the textbooks).
    * TAL, the main and regulated site (50-70% of the filtered load, paracellular through
      claudin-16/19, driven by the NKCC2 voltage): ``max / (1 + (Mg2+/Ki)^n)`` of what it
      receives, inhibited by basolateral CaSR as ionized Mg rises (so an excess is excreted), cut
      by loop diuretics (``loop_coupling`` of the NKCC2 block carries over to Mg), and smaller in
      remnant nephrons (``nephron_fraction**ckd_exponent``: FEMg rises as GFR falls).
    * DCT: transcellular through TRPM6, a saturable fraction of its load,
      ``max / (1 + c / c50)`` with ``c`` the Mg delivered per litre of filtrate; ~5-10% of the
      filtered load; chronic thiazide down-regulates TRPM6 (Nijenhuis 2005).
    * The whole tubule reabsorbs at most ``tubular_max`` per litre of filtrate (TmMg, Rude
      1980), a smooth minimum of corner ``tubular_max_width``: normal serum Mg sits at this
      renal threshold, so above it urinary Mg rises with the filtered load and a Mg load is
      excreted (the segments' own saturation is gentler). The threshold is per litre of
      filtrate in remnant nephrons too (no CKD measurement).

    FEMg ~4-5% at serum Mg 0.85 mmol/L, ~1% in deficiency, tens of % with a Mg load or in
    CKD 4-5 (Seo & Park 2008; Elisaf 1997; Oliveira 2018).
    """
    filtered = gfr * mg_uf
    adapt = nephron_fraction**ckd_exponent
    to_tal = filtered * (1.0 - pt_fraction * adapt)
    tal = (tal_max_fraction * adapt * hill_inhibition(mg_ionized, tal_casr_ki, tal_casr_hill)
           * (1.0 - loop_coupling * loop_block))
    to_dct = to_tal * (1.0 - tal)
    dct = (dct_max_fraction * adapt * (1.0 - thiazide_trpm6 * thiazide_block)
           / (1.0 + to_dct / gfr / dct_half_load))
    reabsorbed = smooth_min(filtered - to_dct * (1.0 - dct), gfr * tubular_max,
                            gfr * tubular_max_width)
    return MagnesiumHandling(filtered, to_dct, filtered - reabsorbed)


class CalciumHandling(NamedTuple):
    filtered: object  # mmol/day
    urine: object  # mmol/day


def calcium_handling(gfr, ca_uf, ca_ionized, pth_action, pth_action_ref, nephron_fraction,
                     pt_fraction, tal_max_fraction, tal_casr_ki, ckd_exponent, loop_coupling,
                     dct_basal_fraction, dct_max_fraction, dct_pth_k, thiazide_effect,
                     loop_block, thiazide_block):
    """Renal Ca excretion.

    PT ~65% of filtered; TAL paracellular, inhibited by basolateral CaSR as ionized Ca rises
    (Hill 4, the CaSR term of Dutta & Layton 2024) and reduced by loop diuretics through
    ``loop_coupling`` of the NKCC2 block (chronic loop diuretics raise urinary Ca modestly,
    ~+17% at a year: Rejnmark 2006); DCT transcellular reabsorption, a PTH-independent part plus
    a part stimulated by PTH action (relative to its reference), raised by thiazides (which
    lower urinary Ca). Remnant nephrons reabsorb a smaller fraction in the PT and TAL.
    """
    filtered = gfr * ca_uf
    adapt = nephron_fraction**ckd_exponent
    to_tal = filtered * (1.0 - pt_fraction * adapt)
    tal = (tal_max_fraction * adapt * hill_inhibition(ca_ionized, tal_casr_ki, 4.0)
           * (1.0 - loop_coupling * loop_block))
    to_dct = to_tal * (1.0 - tal)
    drive = pth_action / pth_action_ref
    dct = dct_basal_fraction + (dct_max_fraction - dct_basal_fraction) * hill(
        drive, dct_pth_k, 1.0)
    escaping = (1.0 - dct) * (1.0 - thiazide_effect * thiazide_block)
    return CalciumHandling(filtered, to_dct * escaping)


class PhosphateHandling(NamedTuple):
    filtered: object  # mmol/day
    urine: object  # mmol/day


def phosphate_handling(gfr, p_plasma, nephron_fraction, pth_action, pth_action_ref,
                       uf_fraction, threshold, ckd_exponent, pth_effect, width):
    """Renal phosphate excretion: a splayed tubular maximum.

    Urine ``= GFR * uf * w * softplus((P - T)/w)``: phosphate filtered above the renal threshold
    ``T`` (TmP/GFR, 0.8-1.35 mmol/L) is excreted. PTH (and FGF23, which rises per nephron as GFR
    falls) lowers the threshold: ``T = T0 * N**ckd_exponent * (1 - pth_effect * (A/A0 - 1))``,
    so serum phosphate stays normal until eGFR ~25 and rises in CKD 4-5 (IOM 1997 DRI ch. 5;
    Peterson & Riggs 2010).
    """
    t = threshold * nephron_fraction**ckd_exponent * (
        1.0 - pth_effect * (pth_action / pth_action_ref - 1.0))
    filtered = gfr * uf_fraction * p_plasma
    return PhosphateHandling(filtered, gfr * uf_fraction * softplus(p_plasma - t, width))
