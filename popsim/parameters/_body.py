"""Parameters of the reference state, body water, serum binding, the gut, cell membranes and
bone Mg (part of :class:`popsim.parameters.Params`)."""

from __future__ import annotations

from dataclasses import dataclass

from popsim.parameters._spec import assumed, lit


@dataclass(frozen=True)
class BodyParams:
    """Reference state, body water, serum binding, gut, cell-membrane and bone-Mg parameters."""

    # --- reference state of the reference adult (what the balancing constants are set for) ----
    serum_mg_ref: float = lit(0.85, "mmol/L", "serum total Mg of the reference adult",
                              "the middle of the IOM 1997 interval (0.75-0.95)", lower=0.3,
                              upper=2.0)
    mg_free_ref: float = lit(0.6, "mmol/L", "free cell Mg of the reference adult",
                             "0.5-1.0 mmol/L (Rude 1998; Grubbs 2002); muscle 0.56 (Ryschon "
                             "1996)", lower=0.1, upper=2.0)
    mg_total_icf_ref: float = lit(12.0, "mmol/L", "total cell Mg per L cell water, reference",
                                  "5-20 mmol/L, highest in muscle (Rude 1998)", lower=2, upper=30)
    k_setpoint: float = lit(4.1, "mmol/L", "plasma K the K feedback defends (per patient)",
                            "NHANES III usual serum K: men 4.08, women 4.00, SD ~0.2 (IOM 2005 "
                            "App. J)", iiv=0.035, lower=3.0, upper=5.5)
    k_icf_ref: float = lit(140.0, "mmol/L", "cell K of the reference adult",
                           "120-150 mmol/L (Emmett & Wiederkehr)", lower=80, upper=180)
    na_icf_ref: float = lit(12.0, "mmol/L", "cell Na of the reference adult",
                            "10-15 mmol/L (Guyton; Boron)", lower=3, upper=40)
    serum_ca_ref: float = lit(2.40, "mmol/L", "serum total Ca of the reference adult",
                              "2.15-2.55 mmol/L reference range; median ~2.4", lower=1.5,
                              upper=3.5)
    phosphate_ref: float = lit(1.10, "mmol/L", "serum phosphate of the reference adult",
                               "0.80-1.45 mmol/L; adult mean ~1.1 (IOM 1997 ch. 5)", lower=0.4,
                               upper=3.0)
    pth_ref: float = lit(4.0, "pmol/L", "plasma intact PTH of the reference adult",
                         "NHANES 2003-04 geometric mean 39.3 pg/mL = 4.2 pmol/L (Muntner 2009)",
                         lower=0.5, upper=30)
    calcitriol_ref: float = lit(100.0, "pmol/L", "serum 1,25-(OH)2D of the reference adult",
                                "~40-150 pmol/L; healthy mean ~100 (Peterson & Riggs 2010)",
                                lower=20, upper=300)

    # --- body water ---------------------------------------------------------------------------
    ecf_l_per_kg_male: float = lit(0.20, "L/kg", "ECF volume per kg body weight, men",
                                   "[M: Guyton & Hall, 20% of body weight]", upper=1)
    ecf_l_per_kg_female: float = lit(0.17, "L/kg", "ECF volume per kg body weight, women",
                                     "[M: Guyton & Hall; TBW ~50% in women (Watson 1980)]",
                                     upper=1)
    icf_l_per_kg_male: float = lit(0.40, "L/kg", "ICF volume per kg body weight, men",
                                   "[M: Guyton & Hall, 40% of body weight]", upper=1)
    icf_l_per_kg_female: float = lit(0.33, "L/kg", "ICF volume per kg body weight, women",
                                     "[M: Guyton & Hall; Watson 1980]", upper=1)

    # --- serum binding ------------------------------------------------------------------------
    mg_ionized_fraction: float = lit(0.62, "1", "ionized fraction of serum Mg",
                                     "Boron & Boulpaep table 36-8: 0.56 of 0.90 mM", upper=1)
    mg_ultrafilterable_fraction: float = lit(0.70, "1", "ultrafilterable fraction of serum Mg",
                                             "Boron & Boulpaep; 70-80%", upper=1)
    ca_ionized_fraction: float = lit(0.48, "1", "ionized fraction of serum Ca",
                                     "[M: 1.15 of 2.4 mmol/L; standard lab ranges]", upper=1)
    ca_ultrafilterable_fraction: float = lit(0.60, "1", "ultrafilterable fraction of serum Ca",
                                             "[M: standard renal physiology, ~60%]", upper=1)
    p_ultrafilterable_fraction: float = lit(0.90, "1", "ultrafilterable fraction of phosphate",
                                            "Peterson & Riggs 2010 code (0.88); ~90%", upper=1)

    # --- gut ----------------------------------------------------------------------------------
    mg_gut_km: float = assumed(8.0, "mmol/day", "daily soluble Mg load at half-maximal "
                               "transcellular absorption", "the saturable (transcellular) route is "
                               "half-saturated below usual intakes (~300 mg/day = 12 mmol); "
                               "absorption-vs-intake data (Fine 1991) are reserved for "
                               "validation and were not used to set it",
                               lower=0.5, upper=100)
    mg_gut_paracellular_fraction: float = assumed(
        0.12, "1", "fraction of the soluble Mg load absorbed paracellularly",
        "absorption falls to ~25% on high-Mg diets (renal atlas; Schwartz 1984 summary)",
        upper=1)
    mg_gut_absorbed_ref: float = lit(0.35, "1", "net fraction of a 300 mg/day diet absorbed "
                                     "(absorbed - endogenous loss), the reference",
                                     "30-50% absorbed at usual intake, 45% true absorption at "
                                     "300 mg (renal atlas fig. 4-5); urinary Mg ~4-5 mmol/day "
                                     "(ODS)", iiv=0.15, lower=0.05, upper=0.9)
    mg_secretion_clearance: float = assumed(
        5.0, "L/day", "endogenous Mg secreted into the gut per mmol/L ionized Mg",
        "~2-3 mmol/day of endogenous secretion (gap between true and net absorption, Schwartz "
        "1984; Avioli & Berman 1966)", iiv=0.15, upper=20)
    mg_solubility_oxide: float = assumed(0.20, "1", "soluble fraction of oral Mg oxide",
                                         "MgO absorbed ~4% at 21 mEq/day vs soluble salts "
                                         "higher (Firoz & Graber 2001)", upper=1)
    mg_solubility_organic: float = assumed(0.95, "1", "soluble fraction of Mg citrate, "
                                           "lactate, aspartate", "as soluble as food Mg: "
                                           "equal bioavailability (Firoz & Graber 2001)",
                                           upper=1)
    mg_solubility_chloride: float = assumed(0.95, "1", "soluble fraction of Mg chloride",
                                            "equal to lactate and aspartate (Firoz & Graber "
                                            "2001)", upper=1)
    mg_solubility_glycinate: float = assumed(0.90, "1", "soluble fraction of Mg glycinate",
                                             "amino-acid chelates absorbed like soluble salts "
                                             "[M: Walker 2003]", upper=1)
    k_gut_fraction: float = lit(0.90, "1", "fraction of K intake absorbed",
                                "Stadt 2022 fecal_excretion = 0.1", upper=1)
    na_gut_fraction: float = lit(0.98, "1", "fraction of Na intake absorbed",
                                 "[M: textbook; faecal Na < 5 mmol/day]", upper=1)
    ca_intake: float = lit(22.5, "mmol/day", "dietary Ca (900 mg/day)",
                           "[M: NHANES median adult Ca intake ~900 mg/day]", iiv=0.3,
                           upper=200)
    ca_gut_basal_fraction: float = lit(0.10, "1", "Ca absorbed without calcitriol",
                                       "Sheikh 1988: % absorbed = 10 + 0.17 x calcitriol",
                                       upper=1)
    ca_gut_calcitriol_slope: float = lit(0.0017, "L/pmol", "rise of fractional Ca absorption "
                                         "per pmol/L calcitriol", "Sheikh 1988 (0.17% per "
                                         "pmol/L)", upper=0.01)
    p_intake: float = lit(38.0, "mmol/day", "dietary phosphate (1180 mg/day)",
                          "[M: WWEIA adults ~1200 mg/day]", iiv=0.3, upper=300)
    p_gut_basal_fraction: float = lit(0.55, "1", "phosphate absorbed without calcitriol",
                                      "60-65% absorbed in all (IOM 1997 ch. 5)", upper=1)
    p_gut_calcitriol_fraction: float = assumed(0.12, "1", "further phosphate absorbed at "
                                               "saturating calcitriol", "weak calcitriol "
                                               "effect (Sheikh 1988: no significant "
                                               "correlation)", upper=1)
    p_gut_calcitriol_k: float = assumed(50.0, "pmol/L", "calcitriol at half the active "
                                        "phosphate absorption", "below the reference 100 "
                                        "pmol/L: the active part is mostly on", lower=1)

    # --- Na+/K+-ATPase and leaks --------------------------------------------------------------
    nka_vmax: float = lit(130.0 * 1440.0 / 24.0, "mmol/day/L", "maximal NKA K uptake per L cell "
                          "water", "Stadt 2022: Vmax 130 mmol/min over 24 L muscle water",
                          iiv=0.05, lower=100, upper=1e6)
    nka_km_k: float = lit(1.4, "mmol/L", "NKA half-saturation by extracellular K",
                          "Stadt 2022 Km 1.4 mM; Cheng 2013 0.8-1.5", lower=0.1, upper=10)
    nka_km_na: float = lit(10.0, "mmol/L", "NKA half-saturation by cell Na (Hill 1.5)",
                           "Luo-Rudy / Zhou 2009 KM_Na 10 mM", lower=1, upper=50)
    nka_km_mg: float = assumed(0.2, "mmol/L", "NKA half-saturation by free cell Mg (MgATP "
                               "supply)", "MgATP Kd 0.05-0.1 mM, so the pump slows when free "
                               "Mg falls well below ~0.3 mM (a half-saturation of 0.1-0.3 assumed)",
                               lower=0.01, upper=2)
    nka_mg_dependence: float = assumed(1.0, "1", "share of the pump's Mg dependence in force",
                                       "1: the full MgATP dependence; set to 0 only to "
                                       "measure what it contributes", upper=1)
    nka_aldosterone_cap: float = assumed(300.0, "ng/L", "aldosterone above which the pump is "
                                         "no further stimulated", "Stadt 2022 fitted the "
                                         "linear effect over meal-time levels (< 300 ng/L)",
                                         lower=85, upper=5000)
    mg_atp_sites: float = lit(7.0, "mmol/L", "MgATP binding capacity per L cell water",
                              "cell ATP ~5-8 mmol/L, 80-90% as MgATP (Rude 1998)", lower=1,
                              upper=20)
    mg_atp_kd: float = lit(0.07, "mmol/L", "MgATP dissociation constant",
                           "Kd of MgATP ~50-100 uM (textbook biochemistry)", lower=0.01, upper=1)
    mg_cell_exchange: float = assumed(20.0, "mmol/day", "gross cell Mg influx of the reference "
                                      "adult", "soft-tissue Mg exchanges over days: 28Mg "
                                      "half-times of 14-35 h and a slow cell pool (Avioli & "
                                      "Berman 1966)", lower=1, upper=500)
    mg_cell_brake_k: float = assumed(1.0, "mmol/L", "free cell Mg half-inhibiting Mg entry",
                                     "the DCT's TRPM6 Ki of 0.51 mM (Hill 2; Dutta et al. 2024 "
                                     "TRPM6.py) holds free cell Mg at -8% after 3 weeks of a "
                                     "Mg-free diet, against -21% in red cells (205 -> 162 uM, "
                                     "Fatemi 1991); set by hand to a weaker brake for the "
                                     "cells' (TRPM7) Mg entry, still enough that cells do not "
                                     "fill with Mg in hypermagnesaemia", lower=0.05, upper=10)
    namgx_km_mg: float = lit(0.7, "mmol/L", "Na/Mg exchanger half-saturation, cell Mg",
                             "Dutta 2024 NaMgX.py, 0.7 mM", lower=0.05, upper=5)
    namgx_km_na: float = lit(62.0, "mmol/L", "Na/Mg exchanger half-saturation, ECF Na",
                             "Dutta 2024 NaMgX.py, 62 mM", lower=5, upper=200)
    namgx_ki_na: float = lit(40.0, "mmol/L", "Na/Mg exchanger inhibition by cell Na",
                             "Dutta 2024 NaMgX.py, 40 mM", lower=5, upper=200)

    # --- bone Mg --------------------------------------------------------------------------------
    mg_bone_per_kg: float = lit(2.4, "mmol/kg", "exchangeable bone-surface Mg per kg",
                                "about a third of ~500 mmol bone Mg per 70 kg (IOM 1997)",
                                lower=0.1, upper=10)
    mg_bone_tau: float = assumed(30.0, "day", "time constant of bone-surface Mg exchange",
                                 "bone buffers serum Mg over weeks (28Mg kinetics: Avioli & "
                                 "Berman 1966)",
                                 lower=1, upper=1000)
