"""Renal K excretion: filtration, fixed proximal and loop reabsorption,
regulated distal secretion through ROMK that intracellular Mg2+ restrains, and flow-induced
secretion through BK channels that the K-intake adaptation does not regulate."""

from __future__ import annotations

from typing import NamedTuple

from popsim.physiology._math import exp, log, logistic, softplus


class PotassiumHandling(NamedTuple):
    filtered: object  # mmol/day
    secreted: object  # mmol/day, distal (ROMK) secretion
    urine: object  # mmol/day
    romk_open: object  # ROMK conductance relative to the reference free cell Mg


def romk_mg_effect(mg_free, mg_free_ref, kd, hill_n, dependence, floor):
    """ROMK outward conductance relative to its value at the reference free cell Mg.

    Cytosolic Mg2+ binds ROMK (Kir1.1) and limits outward K current (Yang, Frindt & Palmer 2010,
    JASN 21:2109): ``(1 + (Mg_ref/Kd)^n) / (1 + (Mg/Kd)^n)``, so low cell Mg releases the block
    and the kidney wastes K (Huang & Kuo 2007, JASN 18:2649). The block's affinity rises as
    external K falls (Lu & MacKinnon 1994; Yang 2010), and luminal K in the connecting tubule
    and collecting duct is far below the ~100 mmol/L of excised-patch work, so ``Kd`` is set
    below the free Mg of normal cells: most of ROMK's outward conductance is Mg-blocked at the
    reference and a fall of free Mg opens it steeply. Kept above ``floor`` (smoothly): ROMK is a
    weak rectifier, so extra Mg cannot shut it (hypermagnesaemia does not cause hyperkalaemia).
    ``dependence`` scales the Mg deviation, ``Mg = Mg_ref (Mg_f/Mg_ref)^dependence`` (0 removes
    the effect, which is how ``popsim validate`` measures what ROMK contributes to the Mg-K
    link).
    """
    mg = mg_free_ref * (mg_free / mg_free_ref) ** dependence
    relative = (1.0 + (mg_free_ref / kd) ** hill_n) / (1.0 + (mg / kd) ** hill_n)
    at_ref = floor + softplus(1.0 - floor, 0.05)
    return (floor + softplus(relative - floor, 0.05)) / at_ref


def _two_slopes(x, slope_below, slope_above, width):
    """``slope_below * x`` below 0 and ``slope_above * x`` above, joined smoothly over a corner
    of width ``width`` and exactly 0 at ``x = 0``."""
    return slope_below * x + (slope_above - slope_below) * (softplus(x, width)
                                                            - width * 0.6931471805599453)


def k_adaptation_target(k_p, k_setpoint, gain_low, gain_high, width, cap, k_oral, k_oral_ref,
                        feedforward_low, feedforward_high):
    """The log-gain the K secretory machinery adapts towards (dimensionless).

    Distal K secretion is up-regulated over days when plasma K is above its set point (ROMK,
    BK, ENaC and the Na+/K+-ATPase of principal cells) and down-regulated when it is below, with
    a steeper response above the set point than below it (K loading is matched quickly,
    retrieval of K in depletion is limited) and a bound of +-``cap`` (CKD consumes the headroom):
    ``g_lo * d + (g_hi - g_lo) * (w softplus(d/w) - w ln 2)``, ``d = K_p - K_set``, smoothly
    capped. A feed-forward term in ``z = ln((K_in + 1)/(K_in,ref + 1))`` (K swallowed, mmol/day;
    1 mmol/day keeps a K-free diet finite) adds the gut's signal of dietary K (Youn 2013, Semin
    Nephrol 33:248), with its own power below the reference intake (``feedforward_low``) and
    above it (``feedforward_high``), joined over a corner of 0.05 in ``z``: part of a change in
    intake is matched without any change of plasma K, the rest through the plasma K it moves,
    while a K-wasting stimulus at an unchanged intake (a diuretic) is met by the feedback alone.
    """
    x = _two_slopes(k_p - k_setpoint, gain_low, gain_high, width)
    x = x + _two_slopes(log((k_oral + 1.0) / (k_oral_ref + 1.0)), feedforward_low,
                        feedforward_high, 0.05)
    return x - softplus(x - cap, 0.15) + softplus(-x - cap, 0.15)


def potassium_handling(gfr, k_p, k_setpoint, nephron_fraction, aldosterone, distal_delivery,
                       romk, adaptation, secretion_clearance, ckd_exponent, aldo_exponent,
                       flow_exponent, proximal_fraction, loop_fraction, loop_coupling,
                       cd_reabsorption, cd_depletion_gain, cd_depletion_center, loop_block,
                       alkalosis=1.0, bk_fraction=0.0, bk_flow_exponent=1.0):
    """Renal K handling.

    ``E = GFR * K_p * (1 - PT - TAL * (1 - coupling * loop_block))`` escapes the PT and loop
    (Stadt 2022: 92% reabsorbed there); the CNT secretes

    ``S = G * N**c * K_p * ((1 - f) * N_al**a * delivery**b * romk * exp(adaptation)
                             + f * delivery**b_bk)``

    The first part is ROMK secretion by principal cells (aldosterone ``N_al`` relative to 85 ng/L
    with Stadt's exponent ~0.24, distal Na delivery per nephron, ROMK's Mg block, the adaptation
    state); the second, a share ``f`` at the reference, is flow-induced secretion through BK
    channels of intercalated cells (Muto 2001, Physiol Rev 81:85), driven by distal flow and
    outside both the K-intake adaptation and the Mg block, so a diuretic's distal delivery
    wastes K past a ROMK pathway that a low K intake has turned down. Both are 1 at the
    reference, whatever ``f``. ``alkalosis``, the contraction alkalosis of diuretics, multiplies
    all of it, and the CD reabsorbs a fraction of all that rises when plasma K is low
    (H+/K+-ATPase):
    ``r = r0 + 0.4 * logistic(-gain (K_p - center))``.
    """
    filtered = gfr * k_p
    escaping = filtered * (1.0 - proximal_fraction
                           - loop_fraction * (1.0 - loop_coupling * loop_block))
    # each path written out in full, the ROMK one in a fixed product order, so that a BK share
    # of 0 gives the ROMK-only results bit for bit
    romk_secreted = (secretion_clearance * nephron_fraction**ckd_exponent * k_p
                     * aldosterone**aldo_exponent * distal_delivery**flow_exponent * romk
                     * exp(adaptation) * alkalosis)
    bk_secreted = (secretion_clearance * nephron_fraction**ckd_exponent * k_p
                   * distal_delivery**bk_flow_exponent * alkalosis)
    secreted = (1.0 - bk_fraction) * romk_secreted + bk_fraction * bk_secreted
    reabsorbed = cd_reabsorption + 0.4 * logistic(-cd_depletion_gain
                                                  * (k_p - cd_depletion_center))
    urine = (escaping + secreted) * (1.0 - reabsorbed)
    return PotassiumHandling(filtered, secreted, urine, romk)
