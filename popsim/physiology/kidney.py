"""Renal handling of Na, Mg, K and Ca, segment by segment (mechanisms 2, 5, 6, 9, 10 of SPEC §1).

Every function takes the glomerular filtration rate in L/day and returns fluxes in mmol/day.
Segments: proximal tubule (PT), thick ascending limb (TAL), distal convoluted tubule (DCT),
connecting tubule/collecting duct (CD). Diuretics enter as ``loop_block`` (fraction of TAL NKCC2
transport blocked) and ``thiazide_block`` (fraction of DCT NCC transport blocked), both 0..1.
"""

from __future__ import annotations

from typing import NamedTuple

from popsim.physiology._math import exp, hill, hill_inhibition, logistic, smooth_min


def gfr_l_per_day(egfr_ml_min_173):
    """GFR in L/day from eGFR in mL/min/1.73 m² (1 mL/min = 1.44 L/day; not de-indexed for BSA)."""
    return 1.44 * egfr_ml_min_173


class SodiumHandling(NamedTuple):
    filtered: object  # mmol/day
    to_cd: object  # mmol/day reaching the collecting duct
    urine: object  # mmol/day
    distal_flow_ratio: object  # fraction of filtered Na reaching the CD / its healthy value


def sodium_handling(
    gfr, na_p, volume_deviation, nephron_fraction, pt_fraction, tal_fraction, dct_fraction,
    cd_max_fraction, natriuresis_midpoint, natriuresis_gain, pt_volume_gain, ckd_exponent,
    loop_block, thiazide_block,
):
    """Renal Na excretion (mechanism 6).

    Fixed fractional reabsorption in the PT (~67% of filtered), TAL (~25% of filtered) and DCT
    (~5%), cut by loop and thiazide diuretics; the CD reabsorbs a regulated fraction that falls
    steeply as the ECF volume expands (pressure natriuresis and the renin-angiotensin system), a
    logistic in the style of the Hallow & Gebremichael 2017 modifiers. Urinary Na then tracks
    intake within days at FENa ~0.5-1%. The PT reabsorbs a little less as the ECF expands
    (``exp(-pt_volume_gain * dV)``, Hallow's pressure effect on the PT), so salt loading raises
    distal flow, and volume contraction on a diuretic raises PT reabsorption (the "braking"
    that blunts chronic natriuresis). In CKD the remnant nephrons reabsorb a
    smaller fraction in every segment (``nephron_fraction**ckd_exponent``; Bricker's
    magnification phenomenon), so FENa rises and Na balance holds as GFR falls.

    Args:
        gfr: L/day. na_p: plasma Na, mmol/L.
        volume_deviation: ECF volume above the patient's reference, %.
        pt_fraction, tal_fraction, dct_fraction: fraction of the load *delivered to* each segment
            that it reabsorbs (dimensionless).
        cd_max_fraction: maximal CD fractional reabsorption.
        natriuresis_midpoint: volume deviation at which the CD reabsorbs half its maximum, %.
        natriuresis_gain: steepness, per % of ECF volume.
        loop_block, thiazide_block: 0..1.
    """
    filtered = gfr * na_p
    adapt = nephron_fraction**ckd_exponent
    pt = pt_fraction * adapt * exp(-pt_volume_gain * volume_deviation)
    after_tal_fraction = (1.0 - pt) * (
        1.0 - tal_fraction * adapt * (1.0 - loop_block))
    to_cd_fraction = after_tal_fraction * (1.0 - dct_fraction * adapt * (1.0 - thiazide_block))
    reference_fraction = (1.0 - pt_fraction) * (1.0 - tal_fraction) * (1.0 - dct_fraction)
    to_cd = filtered * to_cd_fraction
    cd_reabsorbed = cd_max_fraction * logistic(
        natriuresis_gain * (natriuresis_midpoint - volume_deviation))
    urine = to_cd * (1.0 - cd_reabsorbed)
    return SodiumHandling(filtered, to_cd, urine, to_cd_fraction / reference_fraction)


class MagnesiumHandling(NamedTuple):
    filtered: object  # mmol/day, ultrafilterable Mg times GFR
    to_dct: object  # mmol/day reaching the DCT
    urine: object  # mmol/day


def magnesium_handling(
    gfr, mg_uf, mg_ionized, nephron_fraction, pt_fraction, tal_max_fraction, tal_casr_ki,
    tal_casr_hill, tal_ckd_exponent, loop_coupling, dct_tm, dct_min_excretion, dct_width,
    thiazide_trpm6, loop_block, thiazide_block,
):
    """Renal Mg excretion (mechanism 2), a tubular-maximum model.

    * PT reabsorbs a fixed 15-25% of the filtered load (paracellular).
    * TAL reabsorbs 50-70% paracellularly, driven by the NKCC2 voltage (cut by loop diuretics,
      ``loop_coupling`` of the Na block carries over to Mg) and inhibited by basolateral CaSR as
      ionized Mg rises (Hill inhibition), which lets the kidney excrete an excess; remnant
      nephrons reabsorb a smaller fraction (``nephron_fraction**tal_ckd_exponent``), the adaptive
      rise of FEMg in CKD (Coburn 1969; Cunningham 2012).
    * DCT reabsorbs transcellularly (TRPM6) up to a tubular maximum ``dct_tm`` per litre of
      filtrate (Rude 1980: whole-kidney TmMg ~0.58 mmol/L filtrate), less after chronic thiazide
      (TRPM6 down-regulation, Nijenhuis 2005); what is delivered beyond it is excreted. A smooth
      minimum of width ``dct_width`` (mmol/L filtrate) gives the splayed threshold, and at least
      ``dct_min_excretion`` of the DCT load always escapes.

    The result: FEMg ~3-4% normally, <1% in deficiency, tens of % with a Mg load or in CKD 4-5.

    Args:
        gfr: L/day. mg_uf: ultrafilterable plasma Mg, mmol/L. mg_ionized: mmol/L.
        nephron_fraction: functioning nephron mass relative to eGFR 100 (dimensionless).
        Remaining arguments: see the parameter table (``popsim.parameters``).
    """
    filtered = gfr * mg_uf
    to_tal = filtered * (1.0 - pt_fraction)
    tal = (
        tal_max_fraction
        * hill_inhibition(mg_ionized, tal_casr_ki, tal_casr_hill)
        * nephron_fraction**tal_ckd_exponent
        * (1.0 - loop_coupling * loop_block)
    )
    to_dct = to_tal * (1.0 - tal)
    capacity = dct_tm * gfr * (1.0 - thiazide_trpm6 * thiazide_block)
    reabsorbed = smooth_min((1.0 - dct_min_excretion) * to_dct, capacity, dct_width * gfr)
    return MagnesiumHandling(filtered, to_dct, to_dct - reabsorbed)


class PotassiumHandling(NamedTuple):
    filtered: object  # mmol/day
    secreted: object  # mmol/day, distal (ROMK) secretion
    urine: object  # mmol/day
    romk_open: object  # fraction of ROMK channels not blocked by intracellular Mg


def potassium_handling(
    gfr, k_p, mg_free, aldosterone, distal_flow_ratio, nephron_fraction, k_intake, pt_fraction,
    tal_fraction, loop_coupling, cd_reabsorbed_fraction, romk_clearance, romk_mg_kd, romk_mg_hill,
    aldo_exponent, flow_exponent, ckd_exponent, intake_reference, intake_exponent, loop_block,
):
    """Renal K excretion (mechanisms 5 and 9).

    Filtered K is ~92% reabsorbed in the PT and TAL (Stadt 2022: 0.92; part of the TAL share,
    ``loop_coupling``, rides on NKCC2 and falls with a loop diuretic); the CD reabsorbs a fixed
    fraction of what reaches it. Urinary K is
    set by distal secretion through ROMK (Kir1.1):

    ``secreted = G * K_p * open(Mg_f) * aldo**a * flow**b * nephron**c * (intake/ref)**d``

    * ``open(Mg_f) = 1/(1 + (Mg_f/Kd)**n)``: intracellular free Mg2+ blocks ROMK from the
      cytosolic side; low cell Mg releases the block and the kidney wastes K (Huang & Kuo 2007).
    * aldosterone (dimensionless, 1 = 85 ng/L) and distal flow/Na delivery raise secretion (Stadt
      2022 power-law aldosterone effects); a multiplicative form means Mg deficiency wastes K
      mostly when distal delivery or aldosterone is raised, as Huang & Kuo require.
    * ``nephron**c`` with ``c < 1``: per-nephron adaptive rise of secretion in CKD.
    * ``(intake/ref)**d``: K adaptation and the gut feed-forward signal (Stadt 2022 ``getFF``):
      a higher K intake raises secretion without a matching rise in plasma K.

    Args:
        gfr: L/day. k_p: plasma K, mmol/L. mg_free: free cell Mg, mmol/L.
        aldosterone: dimensionless. distal_flow_ratio: from :func:`sodium_handling`.
        nephron_fraction: dimensionless. k_intake: total K intake, mmol/day.
    """
    filtered = gfr * k_p
    to_distal = filtered * (1.0 - pt_fraction - tal_fraction * (1.0 - loop_coupling * loop_block))
    romk_open = hill_inhibition(mg_free, romk_mg_kd, romk_mg_hill)
    secreted = (
        romk_clearance
        * k_p
        * romk_open
        * aldosterone**aldo_exponent
        * distal_flow_ratio**flow_exponent
        * nephron_fraction**ckd_exponent
        * (k_intake / intake_reference) ** intake_exponent
    )
    urine = to_distal * (1.0 - cd_reabsorbed_fraction) + secreted
    return PotassiumHandling(filtered, secreted, urine, romk_open)


class CalciumHandling(NamedTuple):
    filtered: object  # mmol/day
    urine: object  # mmol/day


def calcium_handling(
    gfr, ca_uf, ca_ionized, pth_action, nephron_fraction, pt_fraction, tal_max_fraction,
    tal_casr_ki, ckd_exponent, dct_basal_fraction, dct_max_fraction, dct_pth_k, thiazide_effect,
    loop_block, thiazide_block,
):
    """Renal Ca excretion.

    PT ~65% of filtered; TAL paracellular, inhibited by basolateral CaSR as ionized Ca rises
    (Hill 4, the CaSR term of Dutta & Layton 2024) and cut by loop diuretics (which raise urinary
    Ca): hypocalcaemia makes the TAL hold on to Ca even without PTH; DCT
    transcellular reabsorption, a PTH-independent part plus a part stimulated by PTH (Hill in PTH
    action), raised by thiazides (which lower urinary Ca). As for Na, remnant nephrons in CKD
    reabsorb a smaller fraction in the PT and TAL (``nephron_fraction**ckd_exponent``).
    """
    filtered = gfr * ca_uf
    adapt = nephron_fraction**ckd_exponent
    to_tal = filtered * (1.0 - pt_fraction * adapt)
    tal = (tal_max_fraction * adapt * hill_inhibition(ca_ionized, tal_casr_ki, 4.0)
           * (1.0 - loop_block))
    to_dct = to_tal * (1.0 - tal)
    dct = dct_basal_fraction + (dct_max_fraction - dct_basal_fraction) * hill(
        pth_action, dct_pth_k, 1.0)
    escaping = (1.0 - dct) * (1.0 - thiazide_effect * thiazide_block)
    return CalciumHandling(filtered, to_dct * escaping)
