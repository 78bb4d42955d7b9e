"""The parameter table of model v1: every constant with its unit, source and variability.

:class:`Params` is the one definition: each field's default is its typical value and its metadata
holds the unit, a description, the source, the between-patient coefficient of variation (``iiv``;
0 means shared by every patient) and whether the value is calibrated (uncertain in
``PHYSIOLOGY.md``) rather than read from a source. :func:`parameter_table` lists them.

Values marked ``[D]`` are derived by arithmetic so that the reference adult
(:data:`popsim.facts.REFERENCE_ADULT`) is at steady state at the textbook concentrations of
:data:`REFERENCE` (the way Stadt et al. 2022 set their muscle K permeability).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from popsim.facts import REFERENCE_ADULT


@dataclass(frozen=True)
class ParameterSpec:
    """Metadata of one model parameter."""

    name: str
    value: float
    unit: str
    description: str
    source: str
    iiv: float  # between-patient coefficient of variation of a log-normal (0 = shared)
    calibrated: bool
    lower: float  # physical bounds (used by calibration and for validating parameter files)
    upper: float


def _param(value, unit, description, source, *, iiv=0.0, calibrated=False,
           lower=0.0, upper=float("inf")):
    meta = dict(unit=unit, description=description, source=source, iiv=iiv,
                calibrated=calibrated, lower=lower, upper=upper)
    return dataclasses.field(default=float(value), metadata=meta)


# --- Reference state of the reference adult (used only to derive the [D] defaults below) -------
_ADULT = REFERENCE_ADULT
REFERENCE = dict(
    v_ecf=14.0,  # L (20% of 70 kg; Guyton & Hall)
    v_icf=28.0,  # L (40% of 70 kg)
    serum_mg=0.85,  # mmol/L (SPEC §1)
    mg_icf_total=12.0,  # mmol/L cell water (5-20; Rude 1998)
    mg_icf_free=0.6,  # mmol/L (0.5-1.0; Rude 1998, Grubbs 2002)
    k_ecf=4.2,  # mmol/L
    k_icf=140.0,  # mmol/L (120-150; Emmett & Wiederkehr)
    na_ecf=140.0,  # mmol/L
    na_icf=12.0,  # mmol/L (10-15; Guyton, Boron)
    k_intake=_ADULT.k_intake,  # mmol/day
    mg_bone_per_kg=2.4,  # mmol/kg exchangeable bone Mg (~1/3 of ~500 mmol bone Mg; IOM 1997)
    mg_cell_exchange=20.0,  # mmol/day gross cell Mg influx (gives a time constant of days)
    mg_bone_tau=30.0,  # days
)
"""Textbook-normal concentrations and pools of :data:`popsim.facts.REFERENCE_ADULT`: the state
the derived ([D]) defaults put at steady state."""
_R = REFERENCE

# Na+/K+-ATPase at the reference: Stadt 2022 Vmax 130 mmol/min over 24 L muscle water.
_NKA_VMAX = 130.0 * 1440.0 / 24.0  # mmol/day per L cell water
_NKA_KM_K, _NKA_KM_NA, _NKA_KM_MG = 1.4, 10.0, 0.2
_nka_ref = (_NKA_VMAX * (_R["k_ecf"] / (_R["k_ecf"] + _NKA_KM_K))
            * _R["na_icf"] ** 1.5 / (_R["na_icf"] ** 1.5 + _NKA_KM_NA**1.5)
            * _R["mg_icf_free"] / (_R["mg_icf_free"] + _NKA_KM_MG))  # mmol/day/L
_MG_ION_FRACTION = 0.62
_mg_ion_ref = _MG_ION_FRACTION * _R["serum_mg"]
_NAMGX_KM_MG, _NAMGX_KM_NA, _NAMGX_KI_NA = 0.7, 62.0, 40.0
_mg_efflux_shape = (_R["mg_icf_free"] ** 2 / (_R["mg_icf_free"] ** 2 + _NAMGX_KM_MG**2)
                    * _R["na_ecf"] ** 2 / (_R["na_ecf"] ** 2 + _NAMGX_KM_NA**2)
                    * _NAMGX_KI_NA / (_R["na_icf"] + _NAMGX_KI_NA))
_mg_buffer_kd = 0.2
# CD Na regulation: reabsorbs 75.8% of what reaches it at the reference (FENa 0.73%, 150 mmol/day)
_NA_GAIN = 0.25  # per % ECF volume
_NA_CD_MAX = 0.98
_NA_PT, _NA_TAL, _NA_DCT = 0.67, 0.76, 0.62  # fractional reabsorption of delivered Na
_na_to_cd = 1.44 * 100 * 140.0 * (1 - _NA_PT) * (1 - _NA_TAL) * (1 - _NA_DCT)  # mmol/day
_na_cd_frac = 1.0 - 0.98 * 150.0 / _na_to_cd
_NA_MIDPOINT = float(math.log(_na_cd_frac / _NA_CD_MAX / (1 - _na_cd_frac / _NA_CD_MAX))
                     / _NA_GAIN)
_mg_buffer_capacity = ((_R["mg_icf_total"] - _R["mg_icf_free"])
                       * (_mg_buffer_kd + _R["mg_icf_free"]) / _R["mg_icf_free"])


@dataclass(frozen=True)
class Params:
    """Model v1 parameters (typical values). Field names carry the meaning; units in metadata.

    A plain frozen dataclass, so that configs and parameter files are validated without JAX;
    :mod:`popsim.model` registers it as a JAX pytree of floats (under ``jax.vmap`` every field
    may carry a patient axis).
    """

    # --- body water --------------------------------------------------------------------------
    ecf_l_per_kg_male: float = _param(0.20, "L/kg", "ECF volume per kg body weight, men",
                                      "[M: Guyton & Hall, 20% of body weight]")
    ecf_l_per_kg_female: float = _param(0.17, "L/kg", "ECF volume per kg body weight, women",
                                        "[M: Guyton & Hall; TBW ~50% in women (Watson 1980)]")
    icf_l_per_kg_male: float = _param(0.40, "L/kg", "ICF volume per kg body weight, men",
                                      "[M: Guyton & Hall, 40% of body weight]")
    icf_l_per_kg_female: float = _param(0.33, "L/kg", "ICF volume per kg body weight, women",
                                        "[M: Guyton & Hall; Watson 1980]")

    # --- serum binding -----------------------------------------------------------------------
    mg_ionized_fraction: float = _param(_MG_ION_FRACTION, "1", "ionized fraction of serum Mg",
                                        "[S: Boron & Boulpaep table 36-8: 0.56 of 0.90 mM]",
                                        upper=1.0)
    mg_ultrafilterable_fraction: float = _param(0.70, "1", "ultrafilterable fraction of serum Mg",
                                                "[S: Boron & Boulpaep; 70-80%]", upper=1.0)
    ca_ionized_fraction: float = _param(0.48, "1", "ionized fraction of serum Ca",
                                        "[M: 1.15 of 2.4 mmol/L; standard lab ranges]", upper=1.0)
    ca_ultrafilterable_fraction: float = _param(0.60, "1", "ultrafilterable fraction of serum Ca",
                                                "[M: standard renal physiology, ~60%]", upper=1.0)

    # --- gut ---------------------------------------------------------------------------------
    mg_gut_vmax: float = _param(5.7, "mmol/day", "transcellular gut Mg absorption capacity",
                                "calibrated; form of Fine 1991 JCI 88:396", iiv=0.20,
                                calibrated=True)
    mg_gut_km: float = _param(8.0, "mmol/day", "daily Mg load at half-maximal transcellular "
                              "absorption", "calibrated; Fine 1991 form", calibrated=True)
    mg_gut_paracellular_fraction: float = _param(
        0.12, "1", "fraction of the Mg load absorbed paracellularly",
        "calibrated to 25% absorption on high-Mg diets (Schwartz 1984)", calibrated=True,
        upper=1.0)
    mg_endogenous_clearance: float = _param(
        3.0, "L/day", "endogenous faecal Mg loss per mmol/L serum ionized Mg",
        "calibrated; ~1.6 mmol/day endogenous faecal Mg [M: Schwartz 1984]; serum Mg "
        "0.80 -> 0.61 mmol/L in 3 weeks on <12 mg/day (Fatemi 1991)", iiv=0.15,
        calibrated=True)
    k_gut_fraction: float = _param(0.90, "1", "fraction of K intake absorbed",
                                   "[S: Stadt 2022 fecal_excretion = 0.1]", upper=1.0)
    na_gut_fraction: float = _param(0.98, "1", "fraction of Na intake absorbed",
                                    "[M: textbook; faecal Na < 5 mmol/day]", upper=1.0)
    ca_intake: float = _param(22.5, "mmol/day", "dietary Ca intake (900 mg/day)",
                              "[M: NHANES median adult Ca intake ~900 mg/day]")
    ca_gut_passive_fraction: float = _param(0.10, "1", "Ca absorbed paracellularly, "
                                            "hormone-independent", "[M: Bronner 2003]",
                                            upper=1.0)
    ca_gut_active_fraction: float = _param(0.25, "1", "further Ca absorbed at full "
                                           "PTH/calcitriol drive", "calibrated; net Ca "
                                           "absorption ~20% of intake [M]", calibrated=True,
                                           upper=1.0)
    ca_gut_pth_k: float = _param(0.5, "1", "PTH action at half-maximal Ca absorption",
                                 "calibrated", calibrated=True, upper=1.0)
    ca_gut_ckd_exponent: float = _param(0.5, "1", "fall of calcitriol-driven Ca absorption with "
                                        "nephron loss", "calibrated; renal 1-alpha-hydroxylase",
                                        calibrated=True)

    # --- Na+/K+-ATPase and leaks ------------------------------------------------------------
    nka_vmax: float = _param(_NKA_VMAX, "mmol/day/L", "maximal NKA K uptake per L cell water",
                             "[S: Stadt 2022 Vmax 130 mmol/min over 24 L muscle]", iiv=0.05)
    nka_km_k: float = _param(_NKA_KM_K, "mmol/L", "NKA half-saturation by extracellular K",
                             "[S: Stadt 2022 Km 1.4 mM; Cheng 2013 0.8-1.5]")
    nka_km_na: float = _param(_NKA_KM_NA, "mmol/L", "NKA half-saturation by cell Na (Hill 1.5)",
                              "[S: Luo-Rudy / Zhou 2009 KM_Na 10 mM]")
    nka_km_mg: float = _param(_NKA_KM_MG, "mmol/L", "NKA half-saturation by free cell Mg (MgATP)",
                              "calibrated; PHYSIOLOGY §3.1 suggests 0.1-0.3 mM", calibrated=True)
    cell_cation_concentration: float = _param(
        _R["k_icf"] + _R["na_icf"], "mmol/L", "cell K + Na (fixed by impermeant cell anions)",
        "[D] K 140 + Na 12 mmol/L (Emmett & Wiederkehr; Guyton)", iiv=0.03)
    na_leak_permeability: float = _param(
        1.5 * _nka_ref / (_R["na_ecf"] - _R["na_icf"]), "L/day/L",
        "passive Na permeability of cells",
        "[D] 3:2 pump stoichiometry at the reference steady state", iiv=0.04)

    # --- cell Mg ------------------------------------------------------------------------------
    mg_buffer_capacity: float = _param(_mg_buffer_capacity, "mmol/L", "cell Mg buffer capacity",
                                       "[D] 12 mM total at 0.6 mM free (Rude 1998; Grubbs 2002)")
    mg_buffer_kd: float = _param(_mg_buffer_kd, "mmol/L", "cell Mg buffer dissociation constant",
                                 "calibrated; MgATP Kd 0.05-0.1 mM plus weaker sites; sets "
                                 "how much free Mg falls per mmol of cell Mg lost",
                                 calibrated=True)
    mg_cell_influx_rate: float = _param(
        _R["mg_cell_exchange"] / (_R["v_icf"] * _mg_ion_ref), "L/day/L",
        "cell Mg influx per L cell water per mmol/L ionized Mg",
        "calibrated; 28Mg half-times of hours to days (Avioli & Berman 1966)", iiv=0.10,
        calibrated=True)
    mg_cell_efflux_vmax: float = _param(
        _R["mg_cell_exchange"] / (_R["v_icf"] * _mg_efflux_shape), "mmol/day/L",
        "maximal Na+/Mg2+ exchange per L cell water", "[D] reference at steady state")
    namgx_km_mg: float = _param(_NAMGX_KM_MG, "mmol/L", "Na/Mg exchanger half-saturation, cell Mg",
                                "[S: Dutta 2024 NaMgX.py, 0.7 mM]")
    namgx_km_na: float = _param(_NAMGX_KM_NA, "mmol/L", "Na/Mg exchanger half-saturation, ECF Na",
                                "[S: Dutta 2024 NaMgX.py, 62 mM]")
    namgx_ki_na: float = _param(_NAMGX_KI_NA, "mmol/L", "Na/Mg exchanger inhibition by cell Na",
                                "[S: Dutta 2024 NaMgX.py, 40 mM]")

    # --- bone Mg ------------------------------------------------------------------------------
    mg_bone_uptake_per_kg: float = _param(
        _R["mg_bone_per_kg"] / _R["mg_bone_tau"] / _mg_ion_ref, "L/day/kg",
        "uptake of ionized Mg by exchangeable bone, per kg body weight",
        "[D] 2.4 mmol/kg pool (IOM 1997: 1/3 of bone Mg exchangeable)")
    mg_bone_release_rate: float = _param(1.0 / _R["mg_bone_tau"], "1/day",
                                         "release rate constant of exchangeable bone Mg",
                                         "calibrated; weeks (PHYSIOLOGY §3.4-3.5)",
                                         calibrated=True)

    # --- kidney: sodium -------------------------------------------------------------------------
    na_pt_fraction: float = _param(_NA_PT, "1", "PT fractional Na reabsorption",
                                   "[M: textbook 65-67%]", upper=1.0)
    na_tal_fraction: float = _param(_NA_TAL, "1",
                                    "TAL reabsorption of delivered Na (25% of filtered)",
                                    "[M: textbook]", upper=1.0)
    na_dct_fraction: float = _param(_NA_DCT, "1",
                                    "DCT reabsorption of delivered Na (5% of filtered)",
                                    "[M: textbook]", upper=1.0)
    na_cd_max_fraction: float = _param(0.98, "1", "maximal CD fractional Na reabsorption",
                                       "calibrated", calibrated=True, upper=1.0)
    na_natriuresis_midpoint: float = _param(
        _NA_MIDPOINT, "%", "ECF volume deviation at half-maximal CD Na reabsorption",
        "[D] FENa ~0.75% at 150 mmol/day intake at the reference volume", lower=-100.0)
    na_natriuresis_gain: float = _param(_NA_GAIN, "1/%", "steepness of CD Na regulation by ECF "
                                        "volume", "calibrated; Hallow 2017 sigmoidal modifiers; "
                                        "~1% ECF expansion per doubling of salt intake",
                                        calibrated=True)
    na_pt_volume_gain: float = _param(0.02, "1/%", "fall of PT Na reabsorption per % ECF "
                                      "expansion", "calibrated; Hallow 2017 pressure effect on "
                                      "the PT", calibrated=True)
    na_osmotic_setpoint: float = _param(140.0, "mmol/L", "plasma Na defended by thirst and "
                                        "vasopressin", "[M: plasma Na 135-145; osmolality "
                                        "set point ~285 mOsm/kg]", iiv=0.014, lower=100.0)
    water_osmoregulation_rate: float = _param(24.0, "1/day", "rate of water retention per unit "
                                              "relative excess of plasma Na",
                                              "[M: vasopressin/thirst act within hours]")
    thiazide_osmotic_shift: float = _param(4.0, "mmol/L", "fall of the defended plasma Na at "
                                           "full thiazide block", "calibrated; thiazide-"
                                           "associated hyponatraemia [M: Leung 2011]",
                                           calibrated=True)
    na_ckd_exponent: float = _param(0.15, "1", "fall of segmental Na reabsorption with nephron "
                                    "loss", "calibrated; FENa rises in CKD (Bricker 1972)",
                                    calibrated=True)

    # --- kidney: magnesium ----------------------------------------------------------------------
    mg_pt_fraction: float = _param(0.20, "1", "PT fractional Mg reabsorption",
                                   "[S: 15-30%, renal atlas; barnardhealth]", upper=1.0)
    mg_tal_max_fraction: float = _param(0.95, "1", "maximal TAL reabsorption of delivered Mg",
                                        "calibrated; TAL 50-70% of filtered (Seo & Park 2008)",
                                        calibrated=True, upper=1.0)
    mg_tal_casr_ki: float = _param(0.68, "mmol/L", "ionized Mg half-inhibiting TAL reabsorption "
                                   "(CaSR)", "calibrated", iiv=0.08, calibrated=True)
    mg_tal_casr_hill: float = _param(4.0, "1", "Hill coefficient of CaSR inhibition of TAL Mg",
                                     "[S: Dutta 2024 CaSR term uses 4th powers]")
    mg_tal_ckd_exponent: float = _param(0.15, "1", "fall of TAL Mg reabsorption with nephron loss",
                                        "calibrated; FEMg rises as GFR falls (Cunningham 2012)",
                                        calibrated=True)
    mg_loop_coupling: float = _param(0.6, "1", "fraction of the TAL Na block carried over to Mg",
                                     "calibrated; Dirks & Wong", calibrated=True, upper=1.0)
    mg_dct_tm: float = _param(0.12, "mmol/L", "DCT Mg reabsorption maximum per L of filtrate",
                              "calibrated; whole-kidney TmMg 0.58 mmol/L (Rude 1980)", iiv=0.08,
                              calibrated=True)
    mg_dct_min_excretion: float = _param(0.02, "1", "fraction of DCT Mg load always excreted",
                                         "calibrated; FEMg floor ~0.5% (Elisaf 1997)",
                                         calibrated=True, upper=1.0)
    mg_dct_width: float = _param(0.012, "mmol/L", "splay of the DCT Mg threshold",
                                 "calibrated", calibrated=True)
    mg_thiazide_trpm6: float = _param(0.3, "1", "fall of DCT Mg capacity at full thiazide block",
                                      "calibrated; Nijenhuis 2005 TRPM6 down-regulation",
                                      calibrated=True, upper=1.0)

    # --- kidney: potassium ----------------------------------------------------------------------
    k_pt_fraction: float = _param(0.67, "1", "PT fractional K reabsorption",
                                  "[M: textbook ~65%]", upper=1.0)
    k_tal_fraction: float = _param(0.25, "1", "TAL fractional K reabsorption (of filtered)",
                                   "[S: Stadt 2022 etapsKreab 0.92 for PT+loop]", upper=1.0)
    k_loop_coupling: float = _param(0.3, "1", "fraction of the NKCC2 block carried over to TAL K "
                                    "reabsorption", "calibrated; chronic loop diuretics lower "
                                    "serum K ~0.3-0.5 mmol/L [M]", calibrated=True, upper=1.0)
    k_cd_reabsorbed_fraction: float = _param(0.5, "1", "CD reabsorption of delivered K",
                                             "[S: Stadt 2022 A_cdKreab 0.5]", upper=1.0)
    k_romk_clearance: float = _param(40.6, "L/day", "distal K secretion clearance, ROMK unblocked",
                                     "[D] 90% of a 75 mmol/day intake excreted at K 4.2",
                                     iiv=0.15)
    romk_mg_kd: float = _param(0.35, "mmol/L", "free cell Mg half-blocking ROMK",
                               "calibrated; free parameter (PHYSIOLOGY §3.3, ~0.5-1 mM)",
                               calibrated=True)
    romk_mg_hill: float = _param(2.0, "1", "Hill coefficient of ROMK Mg block",
                                 "[M: PHYSIOLOGY §3.3 suggests 1-2]")
    k_aldo_exponent: float = _param(0.5, "1", "power of aldosterone on distal K secretion",
                                    "calibrated; Stadt 2022 exponents 0.238 (DCT) and 0.411 (CD)",
                                    calibrated=True)
    k_flow_exponent: float = _param(0.5, "1", "power of distal Na delivery on K secretion",
                                    "calibrated", calibrated=True)
    k_ckd_exponent: float = _param(0.3, "1", "power of nephron mass on total K secretion",
                                   "calibrated; adaptive per-nephron secretion in CKD",
                                   calibrated=True)
    k_intake_reference: float = _param(_R["k_intake"], "mmol/day",
                                       "K intake of the reference adult",
                                       "[S: WWEIA 2009-10, men 81, women 62 mmol/day]")
    k_intake_exponent: float = _param(0.85, "1", "K adaptation/feed-forward exponent on secretion",
                                      "calibrated; Stadt 2022 getFF.m feed-forward",
                                      calibrated=True)

    # --- aldosterone ----------------------------------------------------------------------------
    aldo_k_setpoint: float = _param(_R["k_ecf"], "mmol/L", "plasma K at reference aldosterone",
                                    "[S: Maddah/Stadt K_p0]")
    aldo_k_sensitivity: float = _param(0.95, "1/(mmol/L)", "aldosterone log-gain on plasma K",
                                       "[S: Maddah m_K = 951.2 per mol/L]")
    aldo_volume_sensitivity: float = _param(0.1, "1/%", "aldosterone log-gain on ECF volume "
                                            "contraction (renin-angiotensin)",
                                            "calibrated; Guyton 1992 module_aldost",
                                            calibrated=True)
    aldo_time_constant: float = _param(1.0 / 24.0, "day", "aldosterone time constant",
                                       "[S: Stadt 2022 T_al = 60 min]")

    # --- kidney: calcium ------------------------------------------------------------------------
    ca_pt_fraction: float = _param(0.65, "1", "PT fractional Ca reabsorption", "[M: textbook]",
                                   upper=1.0)
    ca_tal_max_fraction: float = _param(0.95, "1", "maximal TAL reabsorption of delivered Ca",
                                        "calibrated; TAL ~20-25% of filtered [M: textbook]",
                                        calibrated=True, upper=1.0)
    ca_tal_casr_ki: float = _param(1.67, "mmol/L", "ionized Ca half-inhibiting TAL Ca "
                                   "reabsorption (CaSR)", "calibrated; 75% of delivered Ca "
                                   "reabsorbed at 1.2 mM", calibrated=True)
    ca_ckd_exponent: float = _param(0.3, "1", "fall of PT/TAL Ca reabsorption with nephron loss",
                                    "calibrated; FECa rises in CKD", calibrated=True)
    ca_dct_basal_fraction: float = _param(0.5, "1", "PTH-independent DCT reabsorption of "
                                          "delivered Ca", "calibrated", calibrated=True,
                                          upper=1.0)
    ca_dct_max_fraction: float = _param(0.95, "1", "maximal DCT reabsorption of delivered Ca",
                                        "calibrated", calibrated=True, upper=1.0)
    ca_dct_pth_k: float = _param(0.13, "1", "PTH action at half-maximal DCT Ca reabsorption",
                                 "calibrated", calibrated=True, upper=1.0)
    ca_thiazide_effect: float = _param(0.5, "1", "fall of Ca excretion at full thiazide block",
                                       "calibrated", calibrated=True, upper=1.0)
    ca_bone_resorption_basal: float = _param(4.5, "mmol/day", "PTH-independent bone Ca "
                                             "resorption", "calibrated", calibrated=True)
    ca_bone_resorption_max: float = _param(6.0, "mmol/day", "further bone Ca resorption at full "
                                           "PTH action", "calibrated; adult remodelling ~7.5 "
                                           "mmol/day", calibrated=True)
    ca_bone_formation_rate: float = _param(
        7.5 / 1.15, "L/day", "bone Ca accretion per mmol/L ionized Ca",
        "[D] 7.5 mmol/day at 1.15 mM [M: Peterson & Riggs 2010, ~300 mg/day remodelling]")

    # --- parathyroid ----------------------------------------------------------------------------
    pth_max: float = _param(12.0, "pmol/L", "maximal plasma PTH (full secretion)",
                            "calibrated; PTH 1.5-7 pmol/L normal", calibrated=True)
    pth_basal_fraction: float = _param(0.05, "1", "PTH secretion left at full CaSR activation",
                                       "[M: Brown 1983 four-parameter model]", upper=1.0)
    pth_ca_setpoint: float = _param(1.30, "mmol/L", "CaSR agonist level at half-maximal secretion",
                                    "calibrated; Ca set point ~1.0-1.2 mM ionized (Brown 1983)",
                                    iiv=0.03, calibrated=True)
    pth_ca_hill: float = _param(30.0, "1", "steepness of PTH secretion vs Ca",
                                "calibrated; Brown 1983 slopes", calibrated=True)
    pth_mg_casr_potency: float = _param(0.33, "1", "CaSR potency of Mg2+ relative to Ca2+",
                                        "[M: Brown 1991, Mg 2-3x less potent]")
    pth_mg_secretion_k: float = _param(0.35, "mmol/L", "ionized Mg at half-maximal PTH exocytosis",
                                       "[S: secretion fails below ~0.5 mM total Mg (PHYSIOLOGY "
                                       "§3.7); Dutta 2024 switch at 0.4 mM]")
    pth_mg_secretion_hill: float = _param(4.0, "1", "steepness of Mg-dependent PTH exocytosis",
                                          "calibrated; PTH fell or did not rise in 20/26 "
                                          "subjects at serum Mg 0.61 (Fatemi 1991)",
                                          calibrated=True)
    pth_k: float = _param(8.0, "pmol/L", "PTH at half-maximal action", "calibrated",
                          calibrated=True)
    pth_mg_resistance_k: float = _param(0.30, "mmol/L", "ionized Mg at half PTH responsiveness",
                                        "[S: PTH resistance below ~0.4 mM total Mg]")
    pth_mg_resistance_hill: float = _param(4.0, "1", "steepness of Mg-dependent PTH resistance",
                                           "calibrated", calibrated=True)
    pth_clearance: float = _param(0.693 / (4.0 / 1440.0), "1/day", "PTH clearance rate constant",
                                  "[M: plasma half-life of intact PTH ~4 min]")

    # --- diuretics ------------------------------------------------------------------------------
    loop_max_block: float = _param(0.5, "1", "TAL NKCC2 block at the maximal loop effect",
                                   "calibrated; time-averaged over a once-daily dose [M: "
                                   "Brater 1998]", calibrated=True, upper=1.0)
    thiazide_max_block: float = _param(0.9, "1", "DCT NCC block at the maximal thiazide effect",
                                       "[M: Hallow 2017 HCTZ effect]", upper=1.0)


def parameter_specs() -> tuple[ParameterSpec, ...]:
    """Every parameter of :class:`Params` with its metadata, in declaration order."""
    specs = []
    for f in dataclasses.fields(Params):
        m = f.metadata
        specs.append(ParameterSpec(f.name, f.default, m["unit"], m["description"], m["source"],
                                   m["iiv"], m["calibrated"], m["lower"], m["upper"]))
    return tuple(specs)
