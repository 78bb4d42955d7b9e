"""The balancing constants of the model, computed from the parameters so that the reference adult
(:data:`popsim.facts.REFERENCE_ADULT`: a 70 kg man with eGFR 100 on 300 mg/day Mg, 75 mmol/day K
and 150 mmol/day Na, normotensive) is at steady state at the reference concentrations of the
parameter table: every flux into a pool equals every flux out of it there.

Each constant is solved from the same flux functions the model uses (no copied formulas), so a
calibration that moves any parameter keeps the reference balanced. Works for JAX arrays (one
patient's parameters, or a batch) and for SymPy symbols (the SBML export writes these as
assignment rules).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from popsim.facts import REFERENCE_ADULT
from popsim.parameters import Params
from popsim.physiology import cells, gut, parathyroid, raas
from popsim.physiology._math import exp, hill, hill_inhibition, log, positive_floor
from popsim.physiology.kidney import gfr_l_per_day, minerals, potassium, sodium
from popsim.units import MG_MG_PER_MMOL

TAL_HEADROOM_FLOOR = 0.001
"""Smallest headroom ``max / tal - 1`` of the TAL's Mg reabsorption that the balance uses as
given (twice this; below, :func:`popsim.physiology._math.positive_floor`). The table's adult
has 0.15 (the TAL must reabsorb 84% of what it receives, at most 97%); only a calibration's
trial point or an individual draw comes near 0, where the TAL's CaSR constant would otherwise
be the root of a negative number: a 20-parameter fit lost its first virtual patient that way
(eGFR 18, the TAL's maximum below what the balance asked of its own draws), then hundreds."""

NA_CD_SHARE_FLOOR = 0.001
"""Smallest share of its largest reabsorption that the collecting duct may be asked to use at
the reference, and smallest share left over (each used as given from twice this; below,
floored). The table's adult uses 76% of its CNT load against a largest 99.5% (share 0.76). A
share at or above 1 (``na_cd_max_fraction`` too low, or the segments before the CD passing too
much) or at or below 0 (those segments already reabsorbing more than the adult may keep) has
no balancing drive: its logit was NaN. Floored, the CD runs at its limit and the reference
adult's Na balance settles at another ECF volume."""

K_SECRETION_FLOOR = 0.5
"""Smallest distal K secretion (mmol/day) the reference balance may ask for (used as given from
twice this; below, floored). The table's adult secretes about 89 mmol/day before the CD's
reabsorption. If the K that escapes the proximal tubule and the loop, less what the CD takes
back, already exceeds what the adult excretes (a low ``k_proximal_fraction`` +
``k_loop_fraction``, or a low ``k_cd_reabsorption``), the balancing secretion clearance was
negative: a kidney that takes K back through ROMK."""


class Derived(NamedTuple):
    """Constants that balance the reference adult (units in the field comments). Each field
    is a JAX array, or a SymPy expression in the SBML export (hence ``Any``)."""

    mg_weak_binding: Any  # 1: weak cell Mg sites per free Mg
    cell_cation: Any  # mmol/L: cell K + Na
    na_leak_permeability: Any  # L/day per L cell water
    mg_cell_influx_rate: Any  # L/day per L cell water per mmol/L ionized Mg
    mg_cell_efflux_vmax: Any  # mmol/day per L cell water
    mg_bone_uptake_per_kg: Any  # L/day/kg
    mg_tal_casr_ki: Any  # mmol/L
    mg_gut_vmax: Any  # mmol/day
    k_secretion_clearance: Any  # L/day
    na_cd_drive: Any  # 1: the CD's reabsorption drive (logit) at the reference
    distal_delivery_ref: Any  # mmol/day per nephron fraction
    ca_tal_max_fraction: Any  # 1
    p_threshold: Any  # mmol/L
    pth_action_ref: Any  # 1
    mg_tubular_max: Any  # mmol/L of filtrate: the renal Mg threshold


def derived(p: Params) -> Derived:
    """The balancing constants of ``p`` (see the module docstring)."""
    a = REFERENCE_ADULT
    v_icf = p.icf_l_per_kg_male * a.body_weight
    gfr = gfr_l_per_day(a.egfr)
    mg_ion = p.mg_ionized_fraction * p.serum_mg_ref
    na_o, k_o = p.na_osmotic_setpoint, p.k_setpoint
    free, total = p.mg_free_ref, p.mg_total_icf_ref
    weak = (total - p.mg_atp_sites * free / (p.mg_atp_kd + free)) / free - 1.0
    exchange_shape = (hill(free, p.namgx_km_mg, 2.0) * hill(na_o, p.namgx_km_na, 2.0)
                      * p.namgx_ki_na / (p.na_icf_ref + p.namgx_ki_na))
    pump = cells.nka_k_uptake(v_icf, p.nka_vmax, p.na_icf_ref, k_o, free, p.nka_km_na,
                              p.nka_km_k, p.nka_km_mg, free, p.nka_mg_dependence, 1.0)
    # cell Na balance: leak + 2 Na per Mg exchanged = 1.5 Na per pumped K
    leak = (1.5 * pump - 2.0 * p.mg_cell_exchange) / (v_icf * (na_o - p.na_icf_ref))
    mg_urine = _reference_mg_urine(p)
    na = _sodium(p, gfr, na_o)
    return Derived(
        mg_weak_binding=weak, cell_cation=p.k_icf_ref + p.na_icf_ref,
        na_leak_permeability=leak,
        mg_cell_influx_rate=p.mg_cell_exchange / (v_icf * mg_ion),
        mg_cell_efflux_vmax=p.mg_cell_exchange / (v_icf * exchange_shape),
        mg_bone_uptake_per_kg=p.mg_bone_per_kg / p.mg_bone_tau / mg_ion,
        mg_tal_casr_ki=_mg_tal_ki(p, gfr, mg_ion, mg_urine),
        mg_gut_vmax=_mg_gut_vmax(p, a.mg_intake_mg / MG_MG_PER_MMOL, mg_ion, mg_urine),
        k_secretion_clearance=_k_clearance(p, gfr, k_o, p.k_gut_fraction * a.k_intake),
        na_cd_drive=na[0], distal_delivery_ref=na[1],
        ca_tal_max_fraction=_ca_tal_max(p, gfr),
        p_threshold=_p_threshold(p, gfr),
        pth_action_ref=parathyroid.pth_action(p.pth_ref, p.pth_action_k),
        mg_tubular_max=p.mg_tubular_max_ratio * _mg_reabsorbed(p, gfr, mg_urine),
    )


def _mg_reabsorbed(p: Params, gfr, urine):
    """Mg the reference adult's kidney reabsorbs per litre of filtrate (mmol/L) when it
    excretes ``urine``."""
    return p.mg_ultrafilterable_fraction * p.serum_mg_ref - urine / gfr


def tal_headroom(p: Params):
    """``max / tal - 1``: how far the TAL's largest Mg reabsorption (``mg_tal_max_fraction``)
    lies above the share of its load that the reference adult's balance asks of it (0.15 for
    the table). Below ``2 * TAL_HEADROOM_FLOOR`` the balance floors it: the TAL runs at its
    maximum and the reference adult settles below ``serum_mg_ref``. Plain arithmetic, so the
    command line can check a parameter file on Python floats before JAX starts."""
    gfr = gfr_l_per_day(REFERENCE_ADULT.egfr)
    return p.mg_tal_max_fraction / _tal_share(p, gfr, _reference_mg_urine(p)) - 1.0


def _reference_mg_urine(p: Params):
    """Urinary Mg of the reference adult at balance (mmol/day): what the gut absorbs net."""
    return p.mg_gut_absorbed_ref * REFERENCE_ADULT.mg_intake_mg / MG_MG_PER_MMOL


def cd_share(p: Params):
    """The share of its largest Na reabsorption (``na_cd_max_fraction``) that the collecting
    duct must use for the reference adult to excrete the Na it absorbs (0.76 for the table).
    Outside ``2 * NA_CD_SHARE_FLOOR .. 1 - 2 * NA_CD_SHARE_FLOOR`` the balance floors it."""
    return _cd_fraction(p, gfr_l_per_day(REFERENCE_ADULT.egfr), p.na_osmotic_setpoint)[0]


def k_secretion_needed(p: Params):
    """The distal K secretion (mmol/day, before the CD's reabsorption) that makes the reference
    adult excrete the K it absorbs (about 89 for the table). Below ``2 * K_SECRETION_FLOOR``
    the balance floors it."""
    gfr = gfr_l_per_day(REFERENCE_ADULT.egfr)
    return _k_secretion(p, gfr, p.k_setpoint, p.k_gut_fraction * REFERENCE_ADULT.k_intake)[0]


def unbalanced_warning(p: Params) -> str | None:
    """A one-line warning when ``p`` leaves a reference balance floored (the TAL's Mg headroom
    :func:`tal_headroom`, the collecting duct's Na share :func:`cd_share` or the distal K
    secretion :func:`k_secretion_needed` past its floor), or gives the macula densa loop a gain
    of 1 or more (:func:`macula_densa_loop_gain`), else ``None``: such a set runs, but its
    reference adult is no longer at the table's concentrations or its steady states no longer
    hold, which a user should hear before reading the results."""
    problems = []
    headroom = tal_headroom(p)
    if headroom < 2 * TAL_HEADROOM_FLOOR:
        problems.append(
            f"parameters.mg_tal_max_fraction = {p.mg_tal_max_fraction:g} is below the share of "
            f"its Mg load the TAL must reabsorb to balance the reference adult (headroom "
            f"{headroom:.3g}, at least {2 * TAL_HEADROOM_FLOOR:g}): the TAL runs at its maximum "
            f"and serum Mg settles below serum_mg_ref = {p.serum_mg_ref:g} mmol/L")
    share = float(cd_share(p))
    if not 2 * NA_CD_SHARE_FLOOR <= share <= 1 - 2 * NA_CD_SHARE_FLOOR:
        problems.append(
            f"parameters.na_cd_max_fraction = {p.na_cd_max_fraction:g} with the segments before "
            f"it (na_pt_fraction, na_tal_fraction, na_dct_fraction) asks the collecting duct "
            f"for {share:.3g} of its largest Na reabsorption to balance the reference adult "
            f"(allowed {2 * NA_CD_SHARE_FLOOR:g} .. {1 - 2 * NA_CD_SHARE_FLOOR:g}): the duct "
            f"runs at its limit and the ECF volume settles elsewhere")
    secretion = float(k_secretion_needed(p))
    if secretion < 2 * K_SECRETION_FLOOR:
        problems.append(
            f"parameters k_proximal_fraction = {p.k_proximal_fraction:g}, k_loop_fraction = "
            f"{p.k_loop_fraction:g} and k_cd_reabsorption = {p.k_cd_reabsorption:g} excrete "
            f"more K than the reference adult absorbs before any distal secretion (it would "
            f"need {secretion:.3g} mmol/day, at least {2 * K_SECRETION_FLOOR:g}): secretion is "
            f"floored and serum K settles where the K escaping the loop equals the intake (with "
            f"normal kidneys below k_setpoint = {p.k_setpoint:g} mmol/L)")
    gain = macula_densa_loop_gain(p)
    if gain >= 1.0:
        problems.append(
            f"parameters renin_md_gain = {p.renin_md_gain:g}, na_pt_angiotensin_exponent = "
            f"{p.na_pt_angiotensin_exponent:g} and na_tal_load_exponent = "
            f"{p.na_tal_load_exponent:g} give the angiotensin II -> proximal tubule -> macula "
            f"densa -> renin loop a gain of {gain:.3g} (stable below 1): steady states are "
            f"unstable and patients oscillate around them")
    return "; ".join(problems) or None


def macula_densa_loop_gain(p: Params) -> float:
    """Gain of the positive feedback angiotensin II -> proximal Na reabsorption -> macula densa
    -> renin: ``renin_md_gain * na_pt_angiotensin_exponent * na_tal_load_exponent``, the same in
    every patient (:func:`popsim.physiology.kidney.sodium.sodium_handling`). At 1 or more no
    steady state is stable; below 1 the volume and K feedbacks still have to damp it (0.48 with
    the table's values; docs/MODEL.md, "Steady states that hold")."""
    return float(p.renin_md_gain * p.na_pt_angiotensin_exponent * p.na_tal_load_exponent)


def _tal_share(p: Params, gfr, urine):
    """The share of its load the TAL must reabsorb for the kidney to excrete ``urine`` at the
    reference serum Mg. Below the tubular maximum ``T`` the smooth minimum of
    :func:`minerals.magnesium_handling` reabsorbs ``m`` of an unconstrained
    ``a = m + w^2 / (4 (T - m))`` per litre (``w`` its corner width), so the segments must excrete
    ``urine_u = urine - (a - m) GFR``; then the DCT load ``x`` solves
    ``x (1 - dmax / (1 + x/c)) = urine_u`` (a quadratic) and the TAL reabsorbs the rest."""
    m = _mg_reabsorbed(p, gfr, urine)
    excess = p.mg_tubular_max_width**2 / (4.0 * (p.mg_tubular_max_ratio - 1.0) * m)
    urine = urine - excess * gfr
    filtered = gfr * p.mg_ultrafilterable_fraction * p.serum_mg_ref
    a = gfr * p.mg_dct_half_load
    b = 1.0 - p.mg_dct_max_fraction - urine / a
    to_dct = (-b + (b * b + 4.0 * urine / a) ** 0.5) * a / 2.0
    return 1.0 - to_dct / (filtered * (1.0 - p.mg_pt_fraction))


def _mg_tal_ki(p: Params, gfr, mg_ion, urine):
    """The TAL's CaSR constant that makes the kidney excrete ``urine`` at the reference serum
    Mg (the TAL reabsorbing :func:`_tal_share` of its load)."""
    tal = _tal_share(p, gfr, urine)
    # a TAL whose largest reabsorption (max) is below what the balance asks of it (tal) has no
    # such constant: it then works near its maximum (a large Ki) and the adult excretes a little
    # more than intended, instead of the NaN that would leave the patient without steady state
    ratio = positive_floor(p.mg_tal_max_fraction / tal - 1.0, TAL_HEADROOM_FLOOR)
    return mg_ion / ratio ** (1.0 / p.mg_tal_casr_hill)


def _mg_gut_vmax(p: Params, intake, mg_ion, net):
    """The transcellular capacity that absorbs ``net`` (net of the secretion) at the reference
    diet."""
    secreted = gut.mg_secretion(mg_ion, p.mg_secretion_clearance)
    load = intake + secreted
    gross = net + secreted
    return (gross - p.mg_gut_paracellular_fraction * load) * (p.mg_gut_km + load) / load


def _k_clearance(p: Params, gfr, k_o, urine):
    """The distal secretion clearance that excretes the absorbed K at the K set point (ROMK,
    aldosterone, delivery and adaptation at their reference)."""
    needed, per_unit = _k_secretion(p, gfr, k_o, urine)
    # a negative need (more K escaping the loop than the adult excretes) would make ROMK take K
    # back; floored, the adult secretes almost nothing and settles below the K set point
    return positive_floor(needed, K_SECRETION_FLOOR) / per_unit


def _k_secretion(p: Params, gfr, k_o, urine) -> tuple[Any, Any]:
    """The distal secretion (mmol/day) that excretes ``urine`` at plasma K ``k_o``, and the
    secretion per unit of clearance: ``urine = (escaping + G * per_unit) * kept``."""
    unit = potassium.potassium_handling(
        gfr, k_o, k_o, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0, p.k_ckd_exponent, p.k_aldo_exponent,
        p.k_flow_exponent, p.k_proximal_fraction, p.k_loop_fraction, p.k_loop_coupling,
        p.k_cd_reabsorption, p.k_cd_depletion_gain, p.k_cd_depletion_center, 0.0, 1.0,
        p.k_bk_fraction, p.k_bk_flow_exponent)
    escaping = _escaping(p, gfr, k_o)
    kept = unit.urine / (unit.secreted + escaping)
    return urine / kept - escaping, unit.secreted


def _escaping(p: Params, gfr, k_o):
    return gfr * k_o * (1.0 - p.k_proximal_fraction - p.k_loop_fraction)


def _sodium(p: Params, gfr, na_o):
    """The CD's reabsorption drive that excretes the absorbed Na at the reference, and the
    reference distal delivery."""
    fraction, to_cnt = _cd_fraction(p, gfr, na_o)
    # outside 0..1 no drive balances the adult (the logit was NaN); floored, the CD runs at its
    # limit and the adult's Na balance settles at another ECF volume
    odds = (positive_floor(fraction, NA_CD_SHARE_FLOOR)
            / positive_floor(1.0 - fraction, NA_CD_SHARE_FLOOR))
    return log(odds), to_cnt


def _cd_fraction(p: Params, gfr, na_o):
    """The share of its largest reabsorption the CD must use at the reference, and the
    reference distal delivery."""
    a = REFERENCE_ADULT
    ref = sodium.sodium_handling(
        gfr, na_o, 1.0, p.na_ckd_exponent, p.na_pt_fraction, p.na_tal_fraction,
        p.na_dct_fraction, cd_drive_ref=0.0, cd_max_fraction=0.0, angiotensin=1.0,
        aldosterone=1.0, angiotensin_pt=0.0, tal_load_exponent=1.0, pressure_pt=1.0,
        pressure_drive=0.0, ncc_switch=1.0, angiotensin_ncc=1.0,
        aldosterone_gain=p.na_cd_aldosterone_gain, md_loop_blinding=1.0, reference_distal=1.0,
        loop_block=0.0, thiazide_block=0.0)
    to_cnt: Any = ref.urine  # with no CD reabsorption, what reaches the CNT is excreted
    urine = p.na_gut_fraction * a.na_intake
    return (1.0 - urine / to_cnt) / p.na_cd_max_fraction, to_cnt


def _ca_tal_max(p: Params, gfr):
    """The TAL's largest Ca reabsorption that excretes the absorbed Ca at the reference."""
    ca_ion = p.ca_ionized_fraction * p.serum_ca_ref
    absorbed = gut.ca_absorption(p.ca_intake, p.ca_gut_basal_fraction,
                                 p.ca_gut_calcitriol_slope, p.calcitriol_ref)
    filtered = gfr * p.ca_ultrafilterable_fraction * p.serum_ca_ref
    dct = p.ca_dct_basal_fraction + (p.ca_dct_max_fraction - p.ca_dct_basal_fraction) * hill(
        1.0, p.ca_dct_pth_k, 1.0)
    tal = 1.0 - absorbed / (filtered * (1.0 - p.ca_pt_fraction) * (1.0 - dct))
    return tal / hill_inhibition(ca_ion, p.ca_tal_casr_ki, 4.0)


def _p_threshold(p: Params, gfr):
    """The renal phosphate threshold that excretes the absorbed phosphate at the reference
    (inverting ``urine = GFR uf w softplus((P - T)/w)``)."""
    absorbed = gut.phosphate_absorption(p.p_intake, p.p_gut_basal_fraction,
                                        p.p_gut_calcitriol_fraction, p.p_gut_calcitriol_k,
                                        p.calcitriol_ref)
    w = p.p_threshold_width
    y = absorbed / (gfr * p.p_ultrafilterable_fraction * w)
    return p.phosphate_ref - w * log(exp(y) - 1.0)


_ = (minerals, raas)  # the balance uses the same flux functions the model wires
