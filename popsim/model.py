"""Model v2: the one place where the fluxes of :mod:`popsim.physiology` are wired into
d(state)/dt.

Time in days, amounts in mmol, volumes in L, concentrations in mmol/L. The state of one patient is
a flat vector (see :data:`STATE_NAMES`); :func:`fluxes` computes every named flux from it and
:func:`rates` assembles the derivatives. Single-patient functions: :mod:`popsim.batch` adds the
patient axis. :func:`derived` computes the balancing constants from the parameters, so that the
reference adult is at steady state at the reference concentrations.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from popsim.balance import Derived, derived
from popsim.facts import REFERENCE_ADULT
from popsim.inputs import CHANNELS, Inputs
from popsim.parameters import Params
from popsim.physiology import (
    bone,
    cells,
    circulation,
    drugs,
    gut,
    parathyroid,
    raas,
    vitamin_d,
    water,
)
from popsim.physiology._math import select
from popsim.physiology.kidney import gfr_l_per_day, minerals, potassium, sodium
from popsim.units import MG_MG_PER_MMOL

__all__ = ["STATE_NAMES", "STATE_UNITS", "STATE_DESCRIPTIONS", "N_STATES", "Patient",
           "make_patient", "reference_patient", "baseline_inputs", "Concentrations", "Fluxes",
           "Derived", "derived", "POSITIVE", "concentrations", "fluxes", "derivatives", "rates",
           "body_contents", "reference_state", "state_scale"]

STATE_NAMES = (
    "mg_ecf", "mg_icf", "mg_bone", "k_ecf", "k_icf", "na_ecf", "na_icf", "ca_ecf", "pth",
    "aldosterone", "ecf_volume", "p_ecf", "calcitriol", "parathyroid_gland", "angiotensin",
    "k_adaptation",
)
STATE_UNITS = ("mmol", "mmol", "mmol", "mmol", "mmol", "mmol", "mmol", "mmol", "pmol/L", "1", "L",
               "mmol", "pmol/L", "1", "1", "1")
STATE_DESCRIPTIONS = (
    "extracellular (plasma + interstitial) Mg", "intracellular Mg, free + bound",
    "exchangeable bone-surface Mg", "extracellular K", "intracellular K", "extracellular Na",
    "intracellular Na", "extracellular Ca", "plasma parathyroid hormone",
    "plasma aldosterone relative to 85 ng/L", "extracellular fluid volume",
    "extracellular inorganic phosphate", "serum 1,25-(OH)2D (calcitriol)",
    "parathyroid secretory mass relative to normal",
    "angiotensin II (plasma renin activity) relative to the reference",
    "log-gain of the distal K secretory machinery (adaptation)",
)
N_STATES = len(STATE_NAMES)
(MG_ECF, MG_ICF, MG_BONE, K_ECF, K_ICF, NA_ECF, NA_ICF, CA_ECF, PTH, ALDO, V_ECF, P_ECF, CALCITRIOL,
 GLAND, ANGIOTENSIN, K_ADAPTATION) = range(N_STATES)
POSITIVE = tuple(i != K_ADAPTATION for i in range(N_STATES))
"""States that must be positive (every amount, concentration and hormone; not the adaptation
log-gain)."""

# Params is a plain dataclass (configs are validated without JAX); here, where JAX first meets
# it, it becomes a pytree whose every field is a leaf.
if not hasattr(Params, "_popsim_pytree"):
    jax.tree_util.register_dataclass(Params)
    type.__setattr__(Params, "_popsim_pytree", True)


class Patient(eqx.Module):
    """Per-patient quantities derived from the covariates (all scalars for one patient)."""

    body_weight: Float[Array, ""]  # kg
    v_ecf: Float[Array, ""]  # reference ECF volume, L (the state ecf_volume moves around it)
    v_icf: Float[Array, ""]  # L
    gfr: Float[Array, ""]  # L/day
    nephron_fraction: Float[Array, ""]  # eGFR / 100, dimensionless
    mg_intake: Float[Array, ""]  # baseline dietary Mg, mmol/day
    k_intake: Float[Array, ""]  # baseline dietary K, mmol/day
    na_intake: Float[Array, ""]  # baseline dietary Na, mmol/day
    loop_dose: Float[Array, ""]  # chronic loop diuretic, fraction of maximal effect
    thiazide_dose: Float[Array, ""]  # chronic thiazide, fraction of maximal effect
    map_ref: Float[Array, ""]  # mean arterial pressure set point, mmHg
    pulse_ref: Float[Array, ""]  # pulse pressure at the set point, mmHg
    volume_gain: Float[Array, ""]  # % MAP per % ECF volume
    responsiveness: Float[Array, ""]  # vascular response to Mg, dimensionless


def make_patient(params: Params, body_weight, is_female, egfr, mg_intake_mmol, k_intake_mmol,
                 na_intake_mmol, loop_dose, thiazide_dose, hypertensive=False) -> Patient:
    """Derive a :class:`Patient` from covariates (model units; scalars or arrays).

    Volumes scale with body weight and sex (Guyton & Hall fractions); GFR in L/day from eGFR;
    the blood-pressure set point, pulse pressure, salt sensitivity and vascular Mg
    responsiveness from the hypertension covariate.
    """
    ecf = select(is_female, params.ecf_l_per_kg_female, params.ecf_l_per_kg_male)
    icf = select(is_female, params.icf_l_per_kg_female, params.icf_l_per_kg_male)
    p = params
    return Patient(
        body_weight=body_weight, v_ecf=ecf * body_weight, v_icf=icf * body_weight,
        gfr=gfr_l_per_day(egfr), nephron_fraction=egfr / 100.0,
        mg_intake=mg_intake_mmol, k_intake=k_intake_mmol, na_intake=na_intake_mmol,
        loop_dose=loop_dose, thiazide_dose=thiazide_dose,
        # the checker infers select's result as float | array | SymPy Piecewise (its three paths)
        map_ref=select(hypertensive, p.map_hypertensive, p.map_normotensive),  # pyright: ignore[reportArgumentType]
        pulse_ref=select(hypertensive, p.pulse_hypertensive, p.pulse_normotensive),  # pyright: ignore[reportArgumentType]
        volume_gain=select(hypertensive, p.volume_gain_hypertensive,  # pyright: ignore[reportArgumentType]
                           p.volume_gain_normotensive),
        responsiveness=select(hypertensive, p.responsiveness_hypertensive,  # pyright: ignore[reportArgumentType]
                              p.responsiveness_normotensive),
    )


def reference_patient(params: Params) -> Patient:
    """:data:`popsim.facts.REFERENCE_ADULT` as a :class:`Patient` (scalars, float64)."""
    a = REFERENCE_ADULT
    f64 = jnp.float64
    return make_patient(params, f64(a.body_weight), a.is_female, f64(a.egfr),
                        f64(a.mg_intake_mg / MG_MG_PER_MMOL), f64(a.k_intake), f64(a.na_intake),
                        f64(0.0), f64(0.0), False)


def baseline_inputs(patient: Patient) -> Inputs:
    """The patient's own intakes and chronic diuretic, no intervention (every channel at its
    baseline: :attr:`popsim.inputs.Channel.baseline`, or 0)."""
    zero = jnp.zeros_like(patient.mg_intake)
    return Inputs(*(zero if c.baseline is None else getattr(patient, c.baseline)
                    for c in CHANNELS))




def body_contents(y, p: Params, pt: Patient, d: Derived | None = None):
    """Exchangeable body Mg, K and Na, and ECF phosphate (mmol); the last is what
    :func:`popsim.observables.balance_rates` balances (bone phosphate is an open reservoir)."""
    d = derived(p) if d is None else d
    return (y[MG_ECF] + y[MG_ICF] + y[MG_BONE], y[K_ECF] + y[K_ICF],
            y[NA_ECF] + y[NA_ICF], y[P_ECF])


def concentrations(y, p: Params, pt: Patient, d: Derived | None = None) -> Concentrations:
    """Concentrations (mmol/L) from the amounts in state ``y``."""
    d = derived(p) if d is None else d
    v = y[V_ECF]
    mg_p = y[MG_ECF] / v
    mg_i_total = y[MG_ICF] / pt.v_icf
    ca_p = y[CA_ECF] / v
    return Concentrations(
        mg_p=mg_p, mg_ionized=p.mg_ionized_fraction * mg_p,
        mg_uf=p.mg_ultrafilterable_fraction * mg_p, mg_i_total=mg_i_total,
        mg_i_free=cells.mg_free_from_total(mg_i_total, p.mg_atp_sites, p.mg_atp_kd,
                                           d.mg_weak_binding),
        k_o=y[K_ECF] / v, k_i=y[K_ICF] / pt.v_icf,
        na_o=y[NA_ECF] / v, na_i=y[NA_ICF] / pt.v_icf,
        ca_p=ca_p, ca_ionized=p.ca_ionized_fraction * ca_p,
        ca_uf=p.ca_ultrafilterable_fraction * ca_p, p_p=y[P_ECF] / v,
    )


class Concentrations(NamedTuple):
    mg_p: Any
    mg_ionized: Any
    mg_uf: Any
    mg_i_total: Any
    mg_i_free: Any
    k_o: Any
    k_i: Any
    na_o: Any
    na_i: Any
    ca_p: Any
    ca_ionized: Any
    ca_uf: Any
    p_p: Any


class Fluxes(NamedTuple):
    """Every named flux and signal of the model; mmol/day unless stated."""

    mg_swallowed: Any  # elemental Mg swallowed (food + supplements)
    mg_absorbed: Any  # gross gut absorption (of food, soluble supplements and secretion)
    mg_secreted: Any  # endogenous secretion into the gut
    mg_urine: Any
    mg_filtered: Any
    mg_cell_in: Any
    mg_cell_out: Any
    mg_bone_in: Any
    mg_bone_out: Any
    mg_iv: Any
    k_absorbed: Any
    k_urine: Any
    k_filtered: Any
    k_secreted: Any
    romk_open: Any  # dimensionless, relative to the reference
    nka_k: Any  # K pumped into cells (Na out = 1.5x)
    k_leak: Any  # K leaving cells through channels
    na_absorbed: Any
    na_urine: Any
    na_filtered: Any
    na_leak: Any
    macula_densa: Any  # dimensionless, relative
    distal_delivery: Any  # dimensionless, relative
    ca_absorbed: Any
    ca_bone_net: Any
    ca_urine: Any
    ca_filtered: Any
    p_absorbed: Any
    p_bone_net: Any
    p_urine: Any
    p_filtered: Any
    pth_target: Any  # pmol/L
    pth_action: Any  # dimensionless
    gland_target: Any  # dimensionless
    calcitriol_target: Any  # pmol/L
    angiotensin_target: Any  # dimensionless
    aldosterone_target: Any  # dimensionless
    k_adaptation_target: Any  # dimensionless
    map: Any  # mmHg
    sbp: Any  # mmHg
    dbp: Any  # mmHg
    perfusion_pressure: Any  # mmHg
    water_gain: Any  # L/day
    volume_deviation: Any  # % of the reference ECF volume


def fluxes(y, p: Params, pt: Patient, u: Inputs, c: Concentrations | None = None,
           d: Derived | None = None) -> Fluxes:
    """All fluxes of one patient at state ``y`` under inputs ``u``.

    ``c`` defaults to :func:`concentrations` of ``y`` (the SBML exporter passes named symbols
    instead, so each flux is written in terms of the concentrations it reads); ``d`` to
    :func:`derived` of ``p``.
    """
    d = derived(p) if d is None else d
    c = concentrations(y, p, pt, d) if c is None else c
    loop = drugs.transporter_block(u.loop_dose, p.loop_max_block)
    thiazide = drugs.transporter_block(u.thiazide_dose, p.thiazide_max_block)
    mineral = _minerals(y, p, pt, c, d, loop, thiazide)
    volume = _volume_and_pressure(y, p, pt, c, d)
    na = _sodium(y, p, pt, c, d, volume, loop, thiazide)
    k_renal, nka_k, k_leak, na_leak = _potassium(
        y, p, pt, c, d, na, loop, 1.0 + p.k_diuretic_alkalosis * (u.loop_dose + u.thiazide_dose))
    mg = _magnesium(y, p, pt, u, c, d, loop, thiazide)
    return Fluxes(
        *mg, k_absorbed=gut.fractional_absorption(u.k_oral, p.k_gut_fraction),
        k_urine=k_renal.urine, k_filtered=k_renal.filtered, k_secreted=k_renal.secreted,
        romk_open=k_renal.romk_open, nka_k=nka_k, k_leak=k_leak,
        na_absorbed=gut.fractional_absorption(u.na_oral, p.na_gut_fraction),
        na_urine=na.urine, na_filtered=na.filtered, na_leak=na_leak,
        macula_densa=na.macula_densa, distal_delivery=na.distal_delivery, **mineral,
        angiotensin_target=raas.angiotensin_target(
            na.macula_densa, volume["perfusion_pressure"], pt.map_ref,
            volume["volume_deviation"], p.renin_md_gain, p.renin_pressure_gain,
            p.renin_volume_gain, p.renin_cap),
        aldosterone_target=raas.aldosterone_target(
            y[ANGIOTENSIN], c.k_o, p.k_setpoint, p.aldo_angiotensin_exponent,
            p.aldo_k_sensitivity, p.aldo_maximum,
            c.mg_ionized / (p.mg_ionized_fraction * p.serum_mg_ref), p.aldo_mg_exponent),
        k_adaptation_target=potassium.k_adaptation_target(
            c.k_o, p.k_setpoint, p.k_adaptation_gain_low, p.k_adaptation_gain_high, 0.03,
            p.k_adaptation_cap, u.k_oral, REFERENCE_ADULT.k_intake, p.k_intake_feedforward_low,
            p.k_intake_feedforward_high),
        map=volume["map"], sbp=volume["sbp"], dbp=volume["dbp"],
        perfusion_pressure=volume["perfusion_pressure"],
        water_gain=water.osmoregulation(
            c.na_o, p.na_osmotic_setpoint - water.thiazide_setpoint_shift(
                thiazide, p.thiazide_osmotic_shift), p.water_osmoregulation_rate, y[V_ECF]),
        volume_deviation=volume["volume_deviation"],
    )


def _magnesium(y, p: Params, pt: Patient, u: Inputs, c: Concentrations, d: Derived, loop,
               thiazide):
    """Gut, kidney, cell and bone Mg fluxes (the first ten fields of :class:`Fluxes`)."""
    supplements = u.mg_oxide + u.mg_organic + u.mg_chloride + u.mg_glycinate
    soluble = (u.mg_oral + p.mg_solubility_oxide * u.mg_oxide
               + p.mg_solubility_organic * u.mg_organic
               + p.mg_solubility_chloride * u.mg_chloride
               + p.mg_solubility_glycinate * u.mg_glycinate)
    secreted = gut.mg_secretion(c.mg_ionized, p.mg_secretion_clearance)
    renal = minerals.magnesium_handling(
        pt.gfr, c.mg_uf, c.mg_ionized, pt.nephron_fraction, p.mg_pt_fraction,
        p.mg_tal_max_fraction, d.mg_tal_casr_ki, p.mg_tal_casr_hill, p.mg_ckd_exponent,
        p.mg_loop_coupling, p.mg_dct_max_fraction, p.mg_dct_half_load, p.mg_thiazide_trpm6,
        loop, thiazide, d.mg_tubular_max, p.mg_tubular_max_width)
    return (u.mg_oral + supplements,
            gut.mg_absorption(soluble + secreted, d.mg_gut_vmax, p.mg_gut_km,
                              p.mg_gut_paracellular_fraction),
            secreted, renal.urine, renal.filtered,
            cells.mg_cell_influx(pt.v_icf, d.mg_cell_influx_rate, c.mg_ionized, c.mg_i_free,
                                 p.mg_free_ref, p.mg_cell_brake_k),
            _mg_efflux(p, pt, c, d),
            bone.mg_bone_uptake(d.mg_bone_uptake_per_kg * pt.body_weight, c.mg_ionized),
            bone.mg_bone_release(1.0 / p.mg_bone_tau, y[MG_BONE]), u.mg_iv)


def _mg_efflux(p: Params, pt: Patient, c: Concentrations, d: Derived):
    return cells.mg_cell_efflux(pt.v_icf, d.mg_cell_efflux_vmax, c.mg_i_free, c.na_o, c.na_i,
                                p.namgx_km_mg, p.namgx_km_na, p.namgx_ki_na)


def _volume_and_pressure(y, p: Params, pt: Patient, c: Concentrations, d: Derived) -> dict:
    """ECF volume signal, vascular tone, MAP and renal perfusion pressure."""
    tone = circulation.vascular_tone(c.na_i, p.na_icf_ref, c.mg_ionized,
                                     p.mg_ionized_fraction * p.serum_mg_ref, p.tone_na_exponent,
                                     p.tone_mg_effect, p.tone_mg_gain, pt.responsiveness,
                                     c.k_o, p.k_setpoint, p.tone_k_exponent)
    mean = circulation.mean_arterial_pressure(pt.map_ref, tone, y[V_ECF], pt.v_ecf,
                                              pt.volume_gain)
    sbp, dbp = circulation.systolic_diastolic(mean, pt.map_ref, pt.pulse_ref, p.pulse_exponent)
    return dict(volume_deviation=water.volume_deviation_percent(y[V_ECF], pt.v_ecf),
                map=mean, sbp=sbp, dbp=dbp, perfusion_pressure=mean / tone)


def _sodium(y, p: Params, pt: Patient, c: Concentrations, d: Derived, volume: dict, loop,
            thiazide):
    rpp = volume["perfusion_pressure"]
    return sodium.sodium_handling(
        pt.gfr, c.na_o, pt.nephron_fraction, p.na_ckd_exponent, p.na_pt_fraction,
        p.na_tal_fraction, p.na_dct_fraction, d.na_cd_drive, p.na_cd_max_fraction,
        y[ANGIOTENSIN], y[ALDO], p.na_pt_angiotensin_exponent, p.na_tal_load_exponent,
        circulation.pressure_natriuresis(rpp, pt.map_ref, p.na_pressure_pt,
                                         p.na_pressure_slope),
        circulation.pressure_drive(rpp, pt.map_ref, p.na_pressure_slope),
        sodium.ncc_potassium_switch(c.k_o, p.k_setpoint, p.na_dct_fraction,
                                    p.ncc_max_fraction, p.ncc_k_gain)
        * sodium.ncc_mg_effect(c.mg_i_free, p.mg_free_ref, p.ncc_mg_exponent,
                               p.ncc_mg_dependence),
        p.ncc_angiotensin_exponent, p.na_cd_aldosterone_gain, p.md_loop_blinding,
        d.distal_delivery_ref, loop, thiazide)


def _potassium(y, p: Params, pt: Patient, c: Concentrations, d: Derived, na, loop,
               alkalosis):
    """Renal K handling and the cell membrane's pump and leaks."""
    romk = potassium.romk_mg_effect(c.mg_i_free, p.mg_free_ref, p.romk_mg_kd, p.romk_mg_hill,
                                    p.romk_mg_dependence, p.romk_floor)
    renal = potassium.potassium_handling(
        pt.gfr, c.k_o, p.k_setpoint, pt.nephron_fraction, y[ALDO], na.distal_delivery, romk,
        y[K_ADAPTATION], d.k_secretion_clearance, p.k_ckd_exponent, p.k_aldo_exponent,
        p.k_flow_exponent, p.k_proximal_fraction, p.k_loop_fraction, p.k_loop_coupling,
        p.k_cd_reabsorption, p.k_cd_depletion_gain, p.k_cd_depletion_center, loop,
        alkalosis, p.k_bk_fraction, p.k_bk_flow_exponent)
    aldo_ng = raas.ALDOSTERONE_REFERENCE_NG_PER_L * y[ALDO]
    pump = (cells.aldosterone_pump_effect(aldo_ng, p.nka_aldosterone_cap)
            / cells.aldosterone_pump_effect(raas.ALDOSTERONE_REFERENCE_NG_PER_L,
                                            p.nka_aldosterone_cap))
    nka_k = cells.nka_k_uptake(pt.v_icf, p.nka_vmax, c.na_i, c.k_o, c.mg_i_free, p.nka_km_na,
                               p.nka_km_k, p.nka_km_mg, p.mg_free_ref, p.nka_mg_dependence, pump)
    na_leak = cells.passive_leak(pt.v_icf, d.na_leak_permeability, c.na_o, c.na_i)
    k_leak = cells.k_channel_efflux(nka_k, y[K_ICF], pt.v_icf, c.na_i, c.k_o, d.cell_cation,
                                    p.k_cell_buffer, p.k_setpoint, p.k_cell_time)
    return renal, nka_k, k_leak, na_leak


def _minerals(y, p: Params, pt: Patient, c: Concentrations, d: Derived, loop,
              thiazide) -> dict:
    """Ca, phosphate, PTH, the parathyroid gland and calcitriol."""
    mg_ref = p.mg_ionized_fraction * p.serum_mg_ref
    pth_eff = parathyroid.pth_effective(y[PTH], c.mg_ionized, pt.nephron_fraction, mg_ref,
                                        p.pth_resistance_mg_k, p.pth_uraemic_n50)
    action = parathyroid.pth_action(pth_eff, p.pth_action_k)
    ca_renal = minerals.calcium_handling(
        pt.gfr, c.ca_uf, c.ca_ionized, action, d.pth_action_ref, pt.nephron_fraction,
        p.ca_pt_fraction, d.ca_tal_max_fraction, p.ca_tal_casr_ki, p.ca_ckd_exponent,
        p.ca_loop_coupling, p.ca_dct_basal_fraction, p.ca_dct_max_fraction, p.ca_dct_pth_k,
        p.ca_thiazide_effect, loop, thiazide)
    p_renal = minerals.phosphate_handling(
        pt.gfr, c.p_p, pt.nephron_fraction, action, d.pth_action_ref,
        p.p_ultrafilterable_fraction, d.p_threshold, p.p_ckd_exponent, p.p_pth_effect,
        p.p_threshold_width)
    ca_bone = bone.ca_bone_net_release(action, d.pth_action_ref, p.ca_bone_gain, c.ca_p,
                                       p.serum_ca_ref, p.ca_bone_buffer)
    return dict(
        ca_absorbed=gut.ca_absorption(p.ca_intake, p.ca_gut_basal_fraction,
                                      p.ca_gut_calcitriol_slope, y[CALCITRIOL]),
        ca_bone_net=ca_bone, ca_urine=ca_renal.urine, ca_filtered=ca_renal.filtered,
        p_absorbed=gut.phosphate_absorption(p.p_intake, p.p_gut_basal_fraction,
                                            p.p_gut_calcitriol_fraction, p.p_gut_calcitriol_k,
                                            y[CALCITRIOL]),
        p_bone_net=bone.phosphate_bone_net_release(ca_bone, p.p_bone_ratio),
        p_urine=p_renal.urine, p_filtered=p_renal.filtered,
        pth_target=parathyroid.pth_target(
            c.ca_ionized, c.mg_ionized, c.p_p, y[GLAND], p.pth_ref,
            p.ca_ionized_fraction * p.serum_ca_ref, mg_ref, p.phosphate_ref, p.pth_ca_min,
            p.pth_ca_max, p.pth_ca_setpoint, p.pth_ca_steepness, p.pth_mg_casr_potency,
            p.pth_exocytosis_k, p.pth_exocytosis_floor, p.pth_phosphate_exponent),
        pth_action=action,
        gland_target=parathyroid.gland_target(y[CALCITRIOL], p.calcitriol_ref,
                                              p.gland_maximum, p.gland_calcitriol_exponent),
        calcitriol_target=vitamin_d.calcitriol_target(
            pth_eff, p.pth_ref, c.p_p, p.phosphate_ref, c.mg_ionized, mg_ref,
            pt.nephron_fraction, p.calcitriol_ref, p.calcitriol_nephron_exponent,
            p.calcitriol_pth_k, p.calcitriol_pth_hill, p.calcitriol_phosphate_exponent,
            p.calcitriol_mg_k),
    )


def derivatives(y, p: Params, pt: Patient, u: Inputs, d: Derived | None = None):
    """d(state)/dt as a tuple in :data:`STATE_NAMES` order (works for JAX and SymPy). ``d``:
    the balancing constants of ``p`` if already computed (they do not depend on the state)."""
    d = derived(p) if d is None else d
    c = concentrations(y, p, pt, d)
    return rates(y, p, fluxes(y, p, pt, u, c, d))


def rates(y, p: Params, f: Fluxes):
    """d(state)/dt from the fluxes ``f`` (the mass balances and hormone kinetics; SBML rate
    rules are these expressions with every flux a named symbol)."""
    namgx_na = 2.0 * f.mg_cell_out  # Na+/Mg2+ exchange brings 2 Na in per Mg out
    return (
        f.mg_absorbed - f.mg_secreted - f.mg_urine + f.mg_iv - f.mg_cell_in + f.mg_cell_out
        - f.mg_bone_in + f.mg_bone_out,
        f.mg_cell_in - f.mg_cell_out,
        f.mg_bone_in - f.mg_bone_out,
        f.k_absorbed - f.k_urine - f.nka_k + f.k_leak,
        f.nka_k - f.k_leak,
        f.na_absorbed - f.na_urine + 1.5 * f.nka_k - f.na_leak - namgx_na,
        f.na_leak + namgx_na - 1.5 * f.nka_k,
        f.ca_absorbed + f.ca_bone_net - f.ca_urine,
        p.pth_clearance * (f.pth_target - y[PTH]),
        (f.aldosterone_target - y[ALDO]) / p.aldo_time_constant,
        f.water_gain,
        f.p_absorbed + f.p_bone_net - f.p_urine,
        p.calcitriol_rate * (f.calcitriol_target - y[CALCITRIOL]),
        p.gland_rate * (f.gland_target - y[GLAND]),
        (f.angiotensin_target - y[ANGIOTENSIN]) / p.angiotensin_time_constant,
        (f.k_adaptation_target - y[K_ADAPTATION]) / p.k_adaptation_time,
    )


def reference_state(p: Params, pt: Patient) -> Float[Array, " state"]:
    """A textbook-normal state scaled to the patient's volumes: the start of the steady-state
    search (not itself a steady state). Calcitriol starts where the patient's kidneys would make
    it at reference PTH and phosphate; the other hormones at their reference."""
    one = jnp.ones_like(pt.v_ecf)
    calcitriol0 = p.calcitriol_ref * pt.nephron_fraction**p.calcitriol_nephron_exponent
    return jnp.stack([
        p.serum_mg_ref * pt.v_ecf, p.mg_total_icf_ref * pt.v_icf,
        p.mg_bone_per_kg * pt.body_weight, p.k_setpoint * pt.v_ecf, p.k_icf_ref * pt.v_icf,
        p.na_osmotic_setpoint * pt.v_ecf, p.na_icf_ref * pt.v_icf, p.serum_ca_ref * pt.v_ecf,
        p.pth_ref * one, one, pt.v_ecf, p.phosphate_ref * pt.v_ecf, calcitriol0,
        parathyroid.gland_target(calcitriol0, p.calcitriol_ref, p.gland_maximum,
                                 p.gland_calcitriol_exponent) * one,
        one, 0.0 * one,
    ])


def state_scale(p: Params, pt: Patient) -> Float[Array, " state"]:
    """The size of each state, for the solvers' normalised coordinates (all entries ~1): the
    reference state, with 1 for the adaptation log-gain (whose reference is 0)."""
    y = reference_state(p, pt)
    return y.at[K_ADAPTATION].set(jnp.ones_like(pt.v_ecf))

