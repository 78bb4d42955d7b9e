"""Parameters of renal Na, K, Mg, Ca and phosphate handling and of the renin-angiotensin-
aldosterone system (part of :class:`popsim.parameters.Params`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from popsim.parameters._spec import assumed, lit


@dataclass(frozen=True)
class KidneyParams:
    """Renal and renin-angiotensin-aldosterone parameters."""

    # --- kidney: Na -------------------------------------------------------------------------
    na_pt_fraction: float = lit(0.67, "1", "PT reabsorption of filtered Na",
                                "[M: textbook 65-67%]", upper=1)
    na_tal_fraction: float = lit(0.76, "1", "TAL reabsorption of delivered Na (25% of filtered)",
                                 "[M: textbook]", upper=1)
    na_dct_fraction: float = lit(0.62, "1", "DCT reabsorption of delivered Na (5% of filtered)",
                                 "[M: textbook]", upper=1)
    na_ckd_exponent: float = assumed(0.15, "1", "fall of segmental Na reabsorption with nephron "
                                     "loss", "FENa rises in CKD while Na balance holds "
                                     "(Bricker 1972)", upper=2)
    na_pt_angiotensin_exponent: float = assumed(
        0.4, "1", "fall of ln(end-proximal Na delivery) per ln(angiotensin II)",
        "fractional Li excretion 8.3% vs 18.0% at 31 vs 357 mmol/day Na (Folkerd 1995, Am J "
        "Physiol 268:F718) with a renin ratio of ~6-7 between such diets", upper=2)
    na_tal_load_exponent: float = assumed(
        0.3, "1", "power of the TAL's Na inflow on its outflow (load dependence)",
        "TAL reabsorption rises with the load delivered to it, which with tubuloglomerular "
        "feedback keeps early distal NaCl, the macula densa signal, nearly constant (Schnermann "
        "1998, Physiol Rev 78:1)", lower=0, upper=1)
    na_pressure_pt: float = assumed(0.10, "1", "range of the pressure effect on PT Na "
                                    "reabsorption", "Hallow 2017 pressure natriuresis acts on "
                                    "the PT; a small share of its 25% reabsorption span",
                                    upper=1)
    na_cd_max_fraction: float = assumed(0.995, "1", "largest CD reabsorption of delivered Na",
                                        "urinary Na falls to ~10 mmol/day on a 10 mmol/day "
                                        "diet (Williams 1972)", upper=1)
    na_cd_aldosterone_gain: float = assumed(2.5, "1", "rise of the CD's reabsorption drive "
                                            "(logit) per ln(aldosterone)", "aldosterone "
                                            "(ENaC) sets the final Na excretion (Hallow 2017 "
                                            "aldosterone modifier)", upper=10)
    md_loop_blinding: float = assumed(2.65, "1", "power of the unblocked NKCC2 fraction on the "
                                      "macula densa signal", "the macula densa senses NaCl through "
                                      "NKCC2: loop diuretics raise renin despite more luminal "
                                      "NaCl (Schnermann); set by hand so a full dose raises "
                                      "renin ~2.5x at once (PRA rises after furosemide: "
                                      "Muller 2015)", upper=7)
    na_pressure_slope: float = assumed(6.0, "mmHg", "renal perfusion pressure change per unit "
                                       "of the CD's reabsorption drive (pressure "
                                       "natriuresis)", "Hallow's 1 mmHg slope on "
                                       "interstitial pressure, smoothed for perfusion "
                                       "pressure", lower=0.5, upper=50)
    ncc_max_fraction: float = assumed(0.9, "1", "largest DCT Na reabsorption the K switch "
                                      "reaches", "a bound: the DCT reabsorbs most of its load "
                                      "in K depletion", upper=1)
    ncc_k_gain: float = assumed(1.5, "1/(mmol/L)", "NCC switch-off per mmol/L of plasma K",
                                "NCC phosphorylation falls ~26% on a +72 mmol/day K diet (Wu "
                                "2023) [M]", upper=20)
    ncc_mg_exponent: float = assumed(
        2.0, "1", "power of the free cell Mg ratio (below 1) on NCC activity",
        "Mg restriction lowers NCC abundance via NEDD4-2 and keeps low K from activating it "
        "(mice: Ferdaus 2019; Maeoka & McCormick 2020); no human number. Set by hand: a "
        "quarter less free cell Mg lowers NCC activity by 44%, as a thiazide at ~0.35 of its "
        "maximal effect would, which takes serum K below 3.5 mmol/L after months below 15 "
        "mg/day of Mg (experimental depletion: Shils 1969); 1.5 leaves it at 3.55", upper=10)
    ncc_mg_dependence: float = assumed(1.0, "1", "share of NCC's Mg dependence in force",
                                       "1: in force; set to 0 only to measure what it "
                                       "contributes", upper=1)
    ncc_angiotensin_exponent: float = assumed(0.15, "1", "NCC activation by angiotensin II",
                                              "the aldosterone paradox: AngII activates NCC "
                                              "(van der Lubbe 2011) [M]", upper=2)
    na_osmotic_setpoint: float = lit(140.0, "mmol/L", "plasma Na defended by thirst and "
                                     "vasopressin", "[M: plasma Na 135-145; osmolality set "
                                     "point ~285 mOsm/kg]", iiv=0.014, lower=120, upper=160)
    water_osmoregulation_rate: float = lit(24.0, "1/day", "rate of water retention per unit "
                                           "relative excess of plasma Na", "[M: vasopressin "
                                           "and thirst act within hours]", lower=1, upper=1000)
    thiazide_osmotic_shift: float = assumed(4.0, "mmol/L", "fall of the defended plasma Na at "
                                            "full thiazide block", "thiazide-associated "
                                            "hyponatraemia [M: Leung 2011]", upper=30)

    # --- renin-angiotensin-aldosterone ----------------------------------------------------------
    renin_md_gain: float = assumed(4.0, "1", "fall of ln(angiotensin II) per ln of the macula "
                                   "densa NaCl signal", "Hallow 2017 closed-loop gain ~1-2 per "
                                   "relative flow; Guyton near-integral; PRA x5-8 from 200 to "
                                   "10 mmol/day Na (Williams 1972)", upper=20)
    renin_pressure_gain: float = assumed(0.06, "1/mmHg", "rise of ln(angiotensin II) per mmHg "
                                         "fall of renal perfusion pressure", "renal "
                                         "baroreceptor; Leete 2018 aldosterone 0.0425/mmHg",
                                         upper=1)
    renin_volume_gain: float = assumed(0.15, "1/%", "rise of ln(angiotensin II) per % fall of "
                                       "ECF volume", "cardiopulmonary receptors raise renal "
                                       "sympathetic activity and beta1-mediated renin release "
                                       "when volume falls (DiBona & Kopp 1997, Physiol Rev "
                                       "77:75)", upper=2)
    renin_cap: float = assumed(math.log(20.0), "1", "bound of |ln angiotensin II|",
                               "PRA rarely exceeds 20x its reference", lower=0.5, upper=10)
    angiotensin_time_constant: float = assumed(0.25, "day", "time constant of renin/AngII",
                                               "renin rises over hours (Hallow 2017 renin "
                                               "half-life 12 min plus MD flow lag ~17 h)",
                                               lower=0.01, upper=10)
    aldo_angiotensin_exponent: float = lit(0.83, "1", "elasticity of aldosterone to AngII",
                                           "Hallow 2017 (0.83)", upper=3)
    aldo_k_sensitivity: float = lit(0.95, "1/(mmol/L)", "aldosterone log-gain on plasma K",
                                    "Maddah m_K = 951.2 per mol/L; Guyton 0.909", upper=5)
    aldo_mg_exponent: float = lit(1.05, "1", "fall of ln(aldosterone) per ln(ionized Mg) "
                                  "(relative to the reference)", "IV MgSO4 in 6 men raised serum "
                                  "Mg 1.58 -> 2.32 mEq/L and lowered plasma aldosterone 60 +- 12 "
                                  "-> 40 +- 8 pg/mL at 180 min: ln(60/40)/ln(2.32/1.58) = 1.05 "
                                  "(Ichihara 1993, J Lab Clin Med 122:432, PMID 8228558); "
                                  "diltiazem prevented the fall (a Ca-mediated adrenal action)",
                                  upper=3)
    aldo_maximum: float = lit(15.0, "1", "largest aldosterone relative to 85 ng/L",
                              "Na-depleted upright adults ~810 ng/L (Williams 1972); ~1300 "
                              "ng/L ceiling", lower=2, upper=100)
    aldo_time_constant: float = lit(1.0 / 24.0, "day", "aldosterone time constant",
                                    "Stadt 2022 T_al = 60 min", lower=1e-3, upper=10)

    # --- kidney: K ------------------------------------------------------------------------------
    k_proximal_fraction: float = lit(0.67, "1", "PT reabsorption of filtered K",
                                     "[M: textbook ~65%]; PT + loop 0.92 (Stadt 2022)", upper=1)
    k_loop_fraction: float = lit(0.25, "1", "TAL reabsorption of filtered K",
                                 "Stadt 2022 etapsKreab 0.92 for PT + loop", upper=1)
    k_loop_coupling: float = assumed(0.3, "1", "share of the NKCC2 block carried over to TAL K "
                                     "reabsorption", "K rides on NKCC2 with 2 Cl per K",
                                     upper=1)
    k_cd_reabsorption: float = lit(0.5, "1", "CD reabsorption of the K reaching it (K replete)",
                                   "Stadt 2022 A_cdKreab 0.5", upper=0.6)
    k_cd_depletion_gain: float = assumed(4.0, "1/(mmol/L)", "steepness of the rise of CD K "
                                         "reabsorption as plasma K falls", "H+/K+-ATPase "
                                         "induction in K depletion (Stadt 2022 MKX option 3)",
                                         upper=50)
    k_cd_depletion_center: float = assumed(3.0, "mmol/L", "plasma K at which CD K "
                                           "reabsorption is half-way to its depletion maximum",
                                           "H+/K+-ATPase is induced in frank K depletion, "
                                           "not at the low end of normal", lower=2, upper=4)
    k_ckd_exponent: float = assumed(0.9, "1", "power of nephron mass on distal K secretion "
                                    "capacity", "secretion per nephron adapts, so K holds "
                                    "until eGFR ~15-20 (Gennari) while the adaptation headroom "
                                    "is consumed", upper=2)
    k_aldo_exponent: float = lit(0.25, "1", "power of aldosterone on distal K secretion",
                                 "Stadt 2022 gamma_al exponent 0.238 (DCT, most of secretion)",
                                 upper=2)
    k_flow_exponent: float = assumed(0.6, "1", "power of distal Na delivery on K secretion",
                                     "salt restriction halves diuretic K loss (Ram 1981)",
                                     upper=3)
    k_diuretic_alkalosis: float = assumed(0.5, "1", "rise of distal K secretion per unit of "
                                          "diuretic dose (contraction alkalosis)", "metabolic "
                                          "alkalosis on diuretics raises K secretion ~1.2-1.4x "
                                          "[M]", upper=5)
    k_adaptation_gain_low: float = assumed(0.25, "1/(mmol/L)", "log-gain of K secretory "
                                           "adaptation below the K set point", "K retrieval "
                                           "in depletion is limited; set by hand so a thiazide "
                                           "lowers K near the 0.6 mmol/L of Morgan & "
                                           "Davidson 1980", upper=20)
    k_adaptation_gain_high: float = assumed(3.3, "1/(mmol/L)", "log-gain of K secretory "
                                            "adaptation above the K set point", "+46 mmol/day "
                                            "urinary K raises serum K only 0.14 (Cappuccio "
                                            "2016)", upper=20)
    k_cell_buffer: float = lit(10.0, "(mmol/L)/(mmol/L)", "fall of cell K per mmol/L fall of "
                               "plasma K", "a 1 mmol/L fall of serum K reflects a 200-400 mmol "
                               "body K deficit (Sterns 1981, Medicine 60:339): (300 - 14 mmol in "
                               "ECF)/28 L cell water", lower=0, upper=30)
    k_cell_time: float = assumed(0.1, "day", "time constant of K redistribution between cells "
                                 "and ECF", "an oral K load is taken up by cells within hours "
                                 "[M]", lower=0.005, upper=5)
    k_adaptation_cap: float = assumed(math.log(5.0), "1", "bound of the adaptation log-gain",
                                      "K balance holds until GFR < 15-20 mL/min (Gennari)",
                                      lower=0.1, upper=5)
    k_adaptation_time: float = assumed(2.0, "day", "time constant of K secretory adaptation",
                                       "K adaptation develops over days [M]", lower=0.05,
                                       upper=60)
    romk_mg_kd: float = assumed(0.2, "mmol/L", "free cell Mg half-blocking ROMK in vivo",
                                "internal Mg2+ blocks ROMK with an affinity that rises as "
                                "external K falls (Lu & MacKinnon 1994; Yang, Frindt & Palmer "
                                "2010), and luminal K in the distal nephron is far lower than in "
                                "excised patches; set by hand so that ROMK is mostly blocked at "
                                "normal free Mg (0.6 mmol/L) and a third less free Mg roughly "
                                "doubles its conductance, the renal K wasting of Mg deficiency "
                                "(Huang & Kuo 2007)", lower=0.05, upper=5)
    romk_mg_hill: float = assumed(2.0, "1", "Hill coefficient of ROMK Mg block",
                                  "1-2, a modelling choice (ROMK Mg block: Yang, Frindt & "
                                  "Palmer 2010)", lower=0.5, upper=4)
    romk_floor: float = assumed(0.6, "1", "lowest ROMK conductance relative to the reference",
                                "ROMK is a weak rectifier: the Mg block saturates (Lu & "
                                "MacKinnon 1994)", upper=1)
    romk_mg_dependence: float = assumed(1.0, "1", "share of ROMK's Mg block in force",
                                        "1: the full block; set to 0 only to measure what it "
                                        "contributes", upper=1)

    # --- kidney: Mg -----------------------------------------------------------------------------
    mg_pt_fraction: float = lit(0.20, "1", "PT reabsorption of filtered Mg",
                                "15-30% (renal atlas; Seo & Park 2008)", upper=1)
    mg_tal_max_fraction: float = assumed(0.97, "1", "largest TAL reabsorption of delivered Mg",
                                         "TAL reabsorbs 50-70% of the filtered load normally "
                                         "and nearly all in deficiency (FEMg 0.5%)", upper=1)
    mg_tal_casr_hill: float = lit(4.0, "1", "Hill coefficient of CaSR inhibition of TAL Mg",
                                  "Dutta & Layton 2024 CaSR term (4th powers)", lower=1,
                                  upper=8)
    mg_ckd_exponent: float = assumed(0.15, "1", "fall of PT/TAL/DCT Mg reabsorption with "
                                     "nephron loss", "FEMg rises as GFR falls, keeping serum "
                                     "Mg normal to eGFR ~30 (Cunningham 2012)", upper=2)
    mg_loop_coupling: float = assumed(0.6, "1", "share of the NKCC2 block carried over to TAL "
                                      "Mg reabsorption", "paracellular Mg rides on the NKCC2 "
                                      "voltage (Dirks & Wong)", upper=1)
    mg_dct_max_fraction: float = assumed(0.95, "1", "largest DCT reabsorption of its Mg load",
                                         "TRPM6 sets the final urinary Mg", upper=1)
    mg_dct_half_load: float = assumed(0.154, "mmol/L", "Mg delivered per L filtrate at half "
                                      "the DCT's largest fraction", "DCT reabsorbs 5-10% of "
                                      "the filtered load (Seo & Park 2008)", lower=0.001,
                                      upper=5)
    mg_thiazide_trpm6: float = assumed(0.3, "1", "fall of DCT Mg reabsorption at full thiazide "
                                       "block", "chronic thiazide down-regulates TRPM6 "
                                       "(Nijenhuis 2005)", upper=1)

    # --- kidney: Ca and phosphate ---------------------------------------------------------------
    ca_pt_fraction: float = lit(0.65, "1", "PT reabsorption of filtered Ca", "[M: textbook]",
                                upper=1)
    ca_tal_casr_ki: float = assumed(1.67, "mmol/L", "ionized Ca half-inhibiting TAL Ca "
                                    "reabsorption (CaSR)", "~75% of delivered Ca reabsorbed "
                                    "at 1.2 mM, less as Ca rises (Hill 4, Dutta & Layton 2024)",
                                    lower=0.5, upper=5)
    ca_ckd_exponent: float = assumed(0.3, "1", "fall of PT/TAL Ca reabsorption with nephron "
                                     "loss", "FECa rises in CKD", upper=2)
    ca_loop_coupling: float = lit(0.25, "1", "share of the NKCC2 block carried over to TAL Ca",
                                  "chronic bumetanide: urine Ca +17% at a year, serum Ca "
                                  "unchanged (Rejnmark 2006)", upper=1)
    ca_dct_basal_fraction: float = assumed(0.5, "1", "PTH-independent DCT reabsorption of "
                                           "delivered Ca", "the DCT reabsorbs 5-10% of "
                                           "filtered Ca, half of it PTH-driven", upper=1)
    ca_dct_max_fraction: float = assumed(0.95, "1", "largest DCT reabsorption of delivered Ca",
                                         "a bound", upper=1)
    ca_dct_pth_k: float = assumed(1.0, "1", "PTH action (relative to reference) at half of "
                                  "the PTH-driven DCT Ca reabsorption", "the reference sits at "
                                  "the middle of the range", lower=0.01, upper=100)
    ca_thiazide_effect: float = assumed(0.5, "1", "fall of Ca excretion at full thiazide block",
                                        "thiazides lower urinary Ca (hypocalciuria)", upper=1)
    ca_bone_gain: float = assumed(10.0, "mmol/day", "net bone Ca release per unit ln(PTH "
                                  "action / reference)", "adult bone remodelling ~7.5 "
                                  "mmol/day each way (Peterson & Riggs 2010)", upper=200)
    p_bone_ratio: float = lit(0.464, "mol/mol", "phosphate released per Ca from bone",
                              "Peterson & Riggs 2010 code", upper=1)
    p_ckd_exponent: float = assumed(0.45, "1", "fall of the renal phosphate threshold with "
                                    "nephron loss (FGF23)", "serum P normal to eGFR ~25, "
                                    "clearance normal until GFR < 20% (IOM 1997 ch. 5)",
                                    upper=3)
    p_pth_effect: float = assumed(0.3, "1", "fall of the renal phosphate threshold per unit "
                                  "relative PTH action", "PTH is phosphaturic (primary "
                                  "hyperparathyroidism)", upper=1)
    p_threshold_width: float = assumed(0.05, "mmol/L", "splay of the renal phosphate threshold",
                                       "a smooth TmP/GFR", lower=0.001, upper=1)
