"""Model v1: the one place where the fluxes of :mod:`popsim.physiology` are wired into d(state)/dt.

Time in days, amounts in mmol, volumes in L, concentrations in mmol/L. The state of one patient is
a flat vector (see :data:`STATE_NAMES`); :func:`fluxes` computes every named flux from it, and
:func:`vector_field` assembles the derivatives. Both are single-patient functions: batching is done
with ``jax.vmap`` by :mod:`popsim.solve`.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from popsim.facts import REFERENCE_ADULT
from popsim.inputs import CHANNELS, Inputs
from popsim.parameters import Params
from popsim.physiology import adrenal, bone, cells, drugs, gut, kidney, parathyroid, water
from popsim.physiology._math import select
from popsim.units import MG_MG_PER_MMOL

STATE_NAMES = (
    "mg_ecf", "mg_icf", "mg_bone", "k_ecf", "na_ecf", "na_icf", "ca_ecf", "pth", "aldosterone",
    "ecf_volume",
)
STATE_UNITS = ("mmol", "mmol", "mmol", "mmol", "mmol", "mmol", "mmol", "pmol/L", "1", "L")
STATE_DESCRIPTIONS = (
    "extracellular (plasma + interstitial) Mg", "intracellular Mg, free + bound",
    "exchangeable bone-surface Mg", "extracellular K", "extracellular Na",
    "intracellular Na", "extracellular Ca", "plasma parathyroid hormone",
    "plasma aldosterone relative to 85 ng/L", "extracellular fluid volume",
)
N_STATES = len(STATE_NAMES)

# Params is a plain dataclass (configs are validated without JAX); here, where JAX first meets
# it, it becomes a pytree whose every field is a leaf.
if not hasattr(Params, "_popsim_pytree"):
    jax.tree_util.register_dataclass(Params)
    Params._popsim_pytree = True
MG_ECF, MG_ICF, MG_BONE, K_ECF, NA_ECF, NA_ICF, CA_ECF, PTH, ALDO, V_ECF = range(N_STATES)


def cell_k(y, p: Params, pt: Patient):
    """Cell K (mmol): cells hold a fixed amount of monovalent cation (balanced by impermeant
    anions), so K is what Na leaves: ``C_cat * V_icf - Na_icf``."""
    return p.cell_cation_concentration * pt.v_icf - y[NA_ICF]


def body_contents(y, p: Params, pt: Patient):
    """Exchangeable body Mg, K and Na (mmol)."""
    return (y[MG_ECF] + y[MG_ICF] + y[MG_BONE], y[K_ECF] + cell_k(y, p, pt),
            y[NA_ECF] + y[NA_ICF])


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


def make_patient(params: Params, body_weight, is_female, egfr, mg_intake_mmol, k_intake_mmol,
                 na_intake_mmol, loop_dose, thiazide_dose) -> Patient:
    """Derive a :class:`Patient` from covariates (all in model units, scalars or arrays).

    Volumes scale with body weight and sex (Guyton & Hall fractions in :class:`Params`): the ICF
    volume is fixed, the ECF volume is a state that starts near this reference. GFR in L/day
    from eGFR (mL/min/1.73 m²).
    """
    ecf = select(is_female, params.ecf_l_per_kg_female, params.ecf_l_per_kg_male)
    icf = select(is_female, params.icf_l_per_kg_female, params.icf_l_per_kg_male)
    return Patient(
        body_weight=body_weight, v_ecf=ecf * body_weight, v_icf=icf * body_weight,
        gfr=kidney.gfr_l_per_day(egfr), nephron_fraction=egfr / 100.0,
        mg_intake=mg_intake_mmol, k_intake=k_intake_mmol, na_intake=na_intake_mmol,
        loop_dose=loop_dose, thiazide_dose=thiazide_dose,
    )


def reference_patient(params: Params) -> Patient:
    """:data:`popsim.facts.REFERENCE_ADULT` as a :class:`Patient` (scalars, float64)."""
    a = REFERENCE_ADULT
    f64 = jnp.float64
    return make_patient(params, f64(a.body_weight), a.is_female, f64(a.egfr),
                        f64(a.mg_intake_mg / MG_MG_PER_MMOL), f64(a.k_intake), f64(a.na_intake),
                        f64(0.0), f64(0.0))


def baseline_inputs(patient: Patient) -> Inputs:
    """The patient's own intakes and chronic diuretic, no intervention (every channel at its
    baseline: :attr:`popsim.inputs.Channel.baseline`, or 0)."""
    zero = jnp.zeros_like(patient.mg_intake)
    return Inputs(*(zero if c.baseline is None else getattr(patient, c.baseline)
                    for c in CHANNELS))


class Concentrations(NamedTuple):
    mg_p: object
    mg_ionized: object
    mg_uf: object
    mg_i_total: object
    mg_i_free: object
    k_o: object
    k_i: object
    na_o: object
    na_i: object
    ca_p: object
    ca_ionized: object
    ca_uf: object


def concentrations(y, p: Params, pt: Patient) -> Concentrations:
    """Concentrations (mmol/L) from the amounts in state ``y``."""
    v = y[V_ECF]
    mg_p = y[MG_ECF] / v
    mg_i_total = y[MG_ICF] / pt.v_icf
    ca_p = y[CA_ECF] / v
    return Concentrations(
        mg_p=mg_p, mg_ionized=p.mg_ionized_fraction * mg_p,
        mg_uf=p.mg_ultrafilterable_fraction * mg_p, mg_i_total=mg_i_total,
        mg_i_free=cells.mg_free_from_total(mg_i_total, p.mg_buffer_capacity, p.mg_buffer_kd),
        k_o=y[K_ECF] / v, k_i=cell_k(y, p, pt) / pt.v_icf,
        na_o=y[NA_ECF] / v, na_i=y[NA_ICF] / pt.v_icf,
        ca_p=ca_p, ca_ionized=p.ca_ionized_fraction * ca_p,
        ca_uf=p.ca_ultrafilterable_fraction * ca_p,
    )


class Fluxes(NamedTuple):
    """Every named flux of the model, mmol/day unless stated."""

    mg_absorbed: object  # gross gut absorption
    mg_endogenous: object  # endogenous faecal loss
    mg_urine: object
    mg_filtered: object
    mg_cell_in: object
    mg_cell_out: object
    mg_bone_in: object
    mg_bone_out: object
    mg_iv: object
    k_absorbed: object
    k_urine: object
    k_filtered: object
    k_secreted: object
    romk_open: object  # dimensionless
    nka_k: object  # K pumped into cells (Na out = 1.5x)
    k_leak: object  # K leaving cells through channels
    na_absorbed: object
    na_urine: object
    na_filtered: object
    na_leak: object
    distal_flow_ratio: object  # dimensionless
    ca_absorbed: object
    ca_bone_net: object
    ca_urine: object
    ca_filtered: object
    pth_target: object  # pmol/L
    pth_action: object  # dimensionless
    aldosterone_target: object  # dimensionless
    water_gain: object  # L/day
    volume_deviation: object  # % of the reference ECF volume


def _renal(y, p: Params, pt: Patient, u: Inputs, c: Concentrations, loop, thiazide):
    """PTH secretion and action, the ECF volume signal and osmotic set point, and the renal
    handling of Ca, Na, Mg and K."""
    pth_target = parathyroid.pth_target(
        c.ca_ionized, c.mg_ionized, p.pth_max, p.pth_basal_fraction, p.pth_ca_setpoint,
        p.pth_ca_hill, p.pth_mg_casr_potency, p.pth_mg_secretion_k, p.pth_mg_secretion_hill)
    action = parathyroid.pth_action(y[PTH], c.mg_ionized, p.pth_k, p.pth_mg_resistance_k,
                                    p.pth_mg_resistance_hill)
    ca_renal = kidney.calcium_handling(
        pt.gfr, c.ca_uf, c.ca_ionized, action, pt.nephron_fraction, p.ca_pt_fraction,
        p.ca_tal_max_fraction, p.ca_tal_casr_ki, p.ca_ckd_exponent, p.ca_dct_basal_fraction,
        p.ca_dct_max_fraction, p.ca_dct_pth_k, p.ca_thiazide_effect, loop, thiazide)
    dv = water.volume_deviation_percent(y[V_ECF], pt.v_ecf)
    na_renal = kidney.sodium_handling(
        pt.gfr, c.na_o, dv, pt.nephron_fraction, p.na_pt_fraction, p.na_tal_fraction,
        p.na_dct_fraction, p.na_cd_max_fraction, p.na_natriuresis_midpoint,
        p.na_natriuresis_gain, p.na_pt_volume_gain, p.na_ckd_exponent, loop, thiazide)
    setpoint = p.na_osmotic_setpoint - water.thiazide_setpoint_shift(
        thiazide, p.thiazide_osmotic_shift)
    mg_renal = kidney.magnesium_handling(
        pt.gfr, c.mg_uf, c.mg_ionized, pt.nephron_fraction, p.mg_pt_fraction,
        p.mg_tal_max_fraction, p.mg_tal_casr_ki, p.mg_tal_casr_hill, p.mg_tal_ckd_exponent,
        p.mg_loop_coupling, p.mg_dct_tm, p.mg_dct_min_excretion, p.mg_dct_width,
        p.mg_thiazide_trpm6, loop, thiazide)
    k_renal = kidney.potassium_handling(
        pt.gfr, c.k_o, c.mg_i_free, y[ALDO], na_renal.distal_flow_ratio, pt.nephron_fraction,
        u.k_oral, p.k_pt_fraction, p.k_tal_fraction, p.k_loop_coupling,
        p.k_cd_reabsorbed_fraction,
        p.k_romk_clearance, p.romk_mg_kd, p.romk_mg_hill, p.k_aldo_exponent, p.k_flow_exponent,
        p.k_ckd_exponent, p.k_intake_reference, p.k_intake_exponent, loop)
    return pth_target, action, dv, setpoint, (ca_renal, na_renal, mg_renal, k_renal)


def fluxes(y, p: Params, pt: Patient, u: Inputs, c: Concentrations | None = None) -> Fluxes:
    """All fluxes of one patient at state ``y`` under inputs ``u``.

    ``c`` defaults to :func:`concentrations` of ``y``; the SBML exporter passes named symbols
    instead, so that each flux is written in terms of the concentrations it reads.
    """
    c = concentrations(y, p, pt) if c is None else c
    loop = drugs.transporter_block(u.loop_dose, p.loop_max_block)
    thiazide = drugs.transporter_block(u.thiazide_dose, p.thiazide_max_block)
    pth_target, action, dv, setpoint, renal = _renal(y, p, pt, u, c, loop, thiazide)
    ca_renal, na_renal, mg_renal, k_renal = renal

    aldo_ng = adrenal.ALDOSTERONE_REFERENCE_NG_PER_L * y[ALDO]
    nka_k = cells.nka_k_uptake(pt.v_icf, p.nka_vmax, c.na_i, c.k_o, c.mg_i_free, p.nka_km_na,
                               p.nka_km_k, p.nka_km_mg, cells.aldosterone_pump_effect(aldo_ng))

    return Fluxes(
        mg_absorbed=gut.mg_absorption(u.mg_oral, p.mg_gut_vmax, p.mg_gut_km,
                                      p.mg_gut_paracellular_fraction),
        mg_endogenous=gut.mg_endogenous_loss(c.mg_ionized, p.mg_endogenous_clearance),
        mg_urine=mg_renal.urine,
        mg_filtered=mg_renal.filtered,
        mg_cell_in=cells.mg_cell_influx(pt.v_icf, p.mg_cell_influx_rate, c.mg_ionized),
        mg_cell_out=cells.mg_cell_efflux(pt.v_icf, p.mg_cell_efflux_vmax, c.mg_i_free, c.na_o,
                                         c.na_i, p.namgx_km_mg, p.namgx_km_na, p.namgx_ki_na),
        mg_bone_in=bone.mg_bone_uptake(p.mg_bone_uptake_per_kg * pt.body_weight, c.mg_ionized),
        mg_bone_out=bone.mg_bone_release(p.mg_bone_release_rate, y[MG_BONE]),
        mg_iv=u.mg_iv,
        k_absorbed=gut.fractional_absorption(u.k_oral, p.k_gut_fraction),
        k_urine=k_renal.urine,
        k_filtered=k_renal.filtered,
        k_secreted=k_renal.secreted,
        romk_open=k_renal.romk_open,
        nka_k=nka_k,
        k_leak=cells.electroneutral_k_efflux(
            nka_k, cells.passive_leak(pt.v_icf, p.na_leak_permeability, c.na_o, c.na_i),
            2.0 * cells.mg_cell_efflux(pt.v_icf, p.mg_cell_efflux_vmax, c.mg_i_free, c.na_o,
                                       c.na_i, p.namgx_km_mg, p.namgx_km_na, p.namgx_ki_na)),
        na_absorbed=gut.fractional_absorption(u.na_oral, p.na_gut_fraction),
        na_urine=na_renal.urine,
        na_filtered=na_renal.filtered,
        na_leak=cells.passive_leak(pt.v_icf, p.na_leak_permeability, c.na_o, c.na_i),
        distal_flow_ratio=na_renal.distal_flow_ratio,
        ca_absorbed=gut.ca_absorption(p.ca_intake, p.ca_gut_passive_fraction,
                                      p.ca_gut_active_fraction, action, p.ca_gut_pth_k,
                                      pt.nephron_fraction, p.ca_gut_ckd_exponent),
        ca_bone_net=bone.ca_bone_net_release(p.ca_bone_resorption_basal, p.ca_bone_resorption_max,
                                             p.ca_bone_formation_rate,
                                             action, c.ca_ionized),
        ca_urine=ca_renal.urine,
        ca_filtered=ca_renal.filtered,
        pth_target=pth_target,
        pth_action=action,
        aldosterone_target=adrenal.aldosterone_target(c.k_o, p.aldo_k_setpoint,
                                                      p.aldo_k_sensitivity, dv,
                                                      p.aldo_volume_sensitivity),
        water_gain=water.osmoregulation(c.na_o, setpoint, p.water_osmoregulation_rate, y[V_ECF]),
        volume_deviation=dv,
    )


def derivatives(y, p: Params, pt: Patient, u: Inputs):
    """d(state)/dt as a tuple in :data:`STATE_NAMES` order (works for JAX and SymPy)."""
    return rates(y, p, fluxes(y, p, pt, u))


def rates(y, p: Params, f: Fluxes):
    """d(state)/dt from the fluxes ``f`` (the mass balances; SBML rate rules are these
    expressions with every flux a named symbol)."""
    namgx_na = 2.0 * f.mg_cell_out  # Na+/Mg2+ exchange brings 2 Na in per Mg out
    d_mg_ecf = (f.mg_absorbed - f.mg_endogenous - f.mg_urine + f.mg_iv - f.mg_cell_in
                + f.mg_cell_out - f.mg_bone_in + f.mg_bone_out)
    d_mg_icf = f.mg_cell_in - f.mg_cell_out
    d_mg_bone = f.mg_bone_in - f.mg_bone_out
    d_k_ecf = f.k_absorbed - f.k_urine - f.nka_k + f.k_leak
    d_na_ecf = f.na_absorbed - f.na_urine + 1.5 * f.nka_k - f.na_leak - namgx_na
    d_na_icf = f.na_leak + namgx_na - 1.5 * f.nka_k
    d_ca_ecf = f.ca_absorbed + f.ca_bone_net - f.ca_urine
    d_pth = p.pth_clearance * (f.pth_target - y[PTH])
    d_aldo = (f.aldosterone_target - y[ALDO]) / p.aldo_time_constant
    return (d_mg_ecf, d_mg_icf, d_mg_bone, d_k_ecf, d_na_ecf, d_na_icf, d_ca_ecf, d_pth, d_aldo,
            f.water_gain)


def reference_state(p: Params, pt: Patient) -> Float[Array, " state"]:
    """A textbook-normal state scaled to the patient's volumes: the start of the steady-state
    search (not itself a steady state). PTH starts at what the patient's gland secretes at these
    concentrations, so the steep Ca set point does not throw Newton's first step."""
    mg_i_total = 12.0
    one = jnp.ones_like(pt.v_ecf)
    pth0 = parathyroid.pth_target(
        p.ca_ionized_fraction * 2.4, p.mg_ionized_fraction * 0.85, p.pth_max,
        p.pth_basal_fraction, p.pth_ca_setpoint, p.pth_ca_hill, p.pth_mg_casr_potency,
        p.pth_mg_secretion_k, p.pth_mg_secretion_hill)
    return jnp.stack([
        0.85 * pt.v_ecf, mg_i_total * pt.v_icf, 2.4 * pt.body_weight,
        4.2 * pt.v_ecf, 140.0 * pt.v_ecf, 12.0 * pt.v_icf,
        2.4 * pt.v_ecf, jnp.clip(pth0, 0.5, 20.0) * one, one, pt.v_ecf,
    ])
