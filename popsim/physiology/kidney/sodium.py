"""Renal Na excretion (mechanism 6): fixed and regulated fractional reabsorption by segment."""

from __future__ import annotations

from typing import NamedTuple

from popsim.physiology._math import exp, log, logistic, smooth_min


class SodiumHandling(NamedTuple):
    filtered: object  # mmol/day
    urine: object  # mmol/day
    macula_densa: object  # NaCl sensed at the macula densa, relative to reference
    distal_delivery: object  # Na reaching the CNT per nephron, relative to reference


def ncc_potassium_switch(k_p, k_setpoint, dct_fraction, max_fraction, gain):
    """Relative NCC activity set by plasma K (the DCT "K switch", 1 at the K set point).

    Low plasma K activates NCC (more Na reabsorbed before the K-secreting CNT), high plasma K
    switches it off (more Na delivered, more K secreted): a bounded logistic whose fractional
    DCT reabsorption stays below ``max_fraction`` (Wu 2023; Terker 2015 [M])."""
    top = max_fraction / dct_fraction
    return top / (1.0 + (top - 1.0) * exp(gain * (k_p - k_setpoint)))


def ncc_mg_effect(mg_free, mg_free_ref, exponent, dependence):
    """Relative NCC activity set by free cell Mg (1 at the reference, level above it).

    Low cytosolic Mg2+ lowers NCC abundance through the ubiquitin ligase NEDD4-2 and keeps a
    low-K diet from activating it (Mg-restricted mice: Ferdaus et al. 2019, Am J Physiol Renal
    Physiol; reviewed by Maeoka & McCormick 2020, same journal). The DCT's K-conserving switch
    is then lost, more Na reaches the K-secreting CNT and K is wasted: the "increase in distal
    sodium delivery" that Huang & Kuo (2007, JASN 18:2649) require for Mg deficiency to cause
    hypokalaemia. ``(c / c_0) ** exponent`` with ``c`` the free Mg ratio smoothly capped at 1
    and ``c_0`` its value at the reference (0.975), so above the reference the activity levels
    off at ``(1 / 0.975) ** exponent`` (+5% at exponent 2) instead of rising with cell Mg (no
    data show NCC rising with cell Mg, and hypermagnesaemia does not cause hyperkalaemia).
    ``dependence`` scales the Mg deviation as in
    :func:`popsim.physiology.kidney.potassium.romk_mg_effect` (0 removes the effect, which is
    how ``popsim validate`` measures what it contributes)."""
    ratio = (mg_free / mg_free_ref) ** dependence
    capped = smooth_min(ratio, 1.0, 0.05) / smooth_min(1.0, 1.0, 0.05)
    return capped**exponent


def scale_odds(fraction, factor):
    """A fraction whose odds ``f / (1 - f)`` are multiplied by ``factor``: ``f * factor`` while
    both are small, and never reaching 1 however large the factor, so a regulated segment can
    reabsorb more but never more than it receives."""
    return fraction * factor / (1.0 - fraction + fraction * factor)


def sodium_handling(gfr, na_p, nephron_fraction, ckd_exponent, pt_fraction, tal_fraction,
                    dct_fraction, cd_drive_ref, cd_max_fraction, angiotensin, aldosterone,
                    angiotensin_pt, tal_load_exponent, pressure_pt, pressure_drive,
                    ncc_switch, angiotensin_ncc, aldosterone_gain, md_loop_blinding,
                    reference_distal, loop_block, thiazide_block):
    """Renal Na handling.

    Fractions of the load *delivered to* each segment: PT ``pt_fraction`` (times the pressure
    effect ``pressure_pt`` of Hallow & Gebremichael 2017), with what leaves it scaled by
    angiotensin II as ``A**-angiotensin_pt`` (end-proximal delivery, as lithium clearance
    measures it, halves from high to low salt intake: Folkerd 1995), TAL ``tal_fraction`` (load
    dependent: the odds of escaping it scale as ``(load/load_ref)**(theta - 1)``, so its
    outflow moves roughly as the ``theta`` power of its inflow while little escapes; cut by
    loop diuretics), DCT ``dct_fraction`` (the NCC K switch, angiotensin II scaling its
    odds by ``A**angiotensin_ncc``, cut by thiazides). The CNT/CD reabsorbs the regulated remainder:
    ``cd_max * logistic(drive_ref + aldosterone_gain * ln N_al + pressure_drive)``, where
    aldosterone (ENaC) and renal perfusion pressure (``pressure_drive``, negative above the
    reference) set the final Na excretion, as the aldosterone and pressure-natriuresis
    modifiers of Hallow 2017 do. In CKD every segment reabsorbs
    ``nephron_fraction**ckd_exponent`` as much.

    Returns the filtered load, urinary Na, the macula densa signal and the distal delivery per
    nephron (relative to ``reference_distal``). The macula densa signal is the TAL's inflow
    relative to the reference to the ``theta`` power (the load dependence that, with
    tubuloglomerular feedback, holds early distal NaCl nearly constant: Schnermann 1998),
    times the rise of the TAL's outflow under a loop block, as the NKCC2-bearing macula densa
    senses it: a loop diuretic blinds it, ``(1 - block)**blinding``, the NKCC2 left unblocked
    to a power, so a full block silences the sensor. The signal's fixed power of the inflow
    gives the loop angiotensin II -> proximal reabsorption -> macula densa -> renin the same
    gain in every patient, ``md_gain * angiotensin_pt * theta`` (0.48 with the table's
    values). Sensing the outflow itself would give it the power ``theta + (1 - theta) *
    escaping``, which the larger share escaping the TAL in CKD and at high angiotensin II
    pushes past 1: the steady state of such a patient (e.g. eGFR 45 on a loop diuretic with
    50 mmol/day of Na) would be an unstable focus, circled with a period of about a week.
    """
    filtered = gfr * na_p
    adapt = nephron_fraction**ckd_exponent
    pt = 1.0 - (1.0 - pt_fraction * adapt * pressure_pt) * angiotensin**(-angiotensin_pt)
    load = (1.0 - pt) / (1.0 - pt_fraction * adapt)
    escaping = scale_odds(1.0 - tal_fraction * adapt, load**(tal_load_exponent - 1.0))
    tal = (1.0 - escaping) * (1.0 - loop_block)
    dct = (scale_odds(dct_fraction * adapt * ncc_switch, angiotensin**angiotensin_ncc)
           * (1.0 - thiazide_block))
    cd = cd_max_fraction * logistic(cd_drive_ref + aldosterone_gain * log(aldosterone)
                                    + pressure_drive)
    after_tal = filtered * (1.0 - pt) * (1.0 - tal)
    to_cnt = after_tal * (1.0 - dct)
    macula_densa = (load**tal_load_exponent * (1.0 - tal) / escaping
                    * (1.0 - loop_block)**md_loop_blinding)
    distal = to_cnt / nephron_fraction / reference_distal
    return SodiumHandling(filtered, to_cnt * (1.0 - cd * adapt), macula_densa, distal)
