"""Parameters of PTH, the parathyroid gland, calcitriol, blood pressure and the diuretics (part
of :class:`popsim.parameters.Params`)."""

from __future__ import annotations

from dataclasses import dataclass

from popsim.parameters._spec import LN2, assumed, lit


@dataclass(frozen=True)
class HormoneParams:
    """PTH, parathyroid-gland, calcitriol, blood-pressure and diuretic parameters."""

    # --- parathyroid and calcitriol --------------------------------------------------------------
    pth_ca_min: float = lit(0.26, "1", "PTH secretion at full CaSR activation, relative to "
                            "basal", "Brent 1988 calcium clamps: 0.26x basal", upper=1)
    pth_ca_max: float = lit(4.2, "1", "PTH secretion at full CaSR inactivation, relative to "
                            "basal", "Brent 1988: 4.2x basal", lower=1, upper=20)
    pth_ca_setpoint: float = lit(1.13, "mmol/L", "ionized Ca at half-maximal PTH secretion",
                                 "Brown set point 1.13 +- 0.04 mmol/L (Schwarz 1994)", iiv=0.02,
                                 lower=0.8, upper=1.5)
    pth_ca_steepness: float = assumed(24.0, "1", "steepness of PTH secretion vs ionized Ca",
                                      "fitted by hand to the Brent/Schwarz clamp curves",
                                      lower=1, upper=100)
    pth_mg_casr_potency: float = assumed(0.17, "1", "CaSR potency of Mg2+ above normal, "
                                         "relative to Ca2+", "Mg 0.8 -> 2.5 mM lowers PTH "
                                         "~40% (Cholst 1984); Mg 2-3x less potent (Brown "
                                         "1991)", upper=1)
    pth_exocytosis_k: float = lit(0.35, "mmol/L", "ionized Mg at half PTH exocytosis",
                                  "secretion fails below ~0.5 mM total Mg; Dutta & Layton 2024 "
                                  "switch at 0.4 mM", lower=0.05, upper=1)
    pth_exocytosis_floor: float = assumed(0.05, "1", "PTH secretion left without Mg",
                                          "a floor: secretion never stops entirely", upper=1)
    pth_phosphate_exponent: float = assumed(0.5, "1", "stimulation of PTH secretion by "
                                            "phosphate", "phosphate drives secretion and "
                                            "growth (Schappacher-Tilp 2019)", upper=3)
    pth_clearance: float = lit(LN2 / (4.0 / 1440.0), "1/day", "PTH clearance rate constant",
                               "[M: plasma half-life of intact PTH ~4 min]", lower=1,
                               upper=1e5)
    pth_action_k: float = assumed(4.0, "pmol/L", "effective PTH at half-maximal action",
                                  "action near its middle at the reference", lower=0.1,
                                  upper=100)
    pth_resistance_mg_k: float = lit(0.30, "mmol/L", "ionized Mg at half PTH responsiveness",
                                     "PTH resistance below ~0.4 mM total Mg (PMID 1591142)",
                                     lower=0.05, upper=1)
    pth_uraemic_n50: float = assumed(0.3, "1", "nephron fraction at half skeletal PTH "
                                     "responsiveness", "skeletal PTH resistance in CKD 4-5 "
                                     "(KDOQI)", lower=0.01, upper=1)
    gland_maximum: float = lit(4.0, "1", "largest parathyroid secretory mass, relative",
                               "Peterson & Riggs 2010: capacity 0.9-4.1x", lower=1, upper=50)
    gland_calcitriol_exponent: float = assumed(1.5, "1", "growth of the gland as calcitriol "
                                               "falls", "hyperplasia in CKD as calcitriol "
                                               "falls (Peterson & Riggs 2010)", upper=10)
    gland_rate: float = lit(LN2 / 180.0, "1/day", "rate of parathyroid growth and involution",
                            "Peterson & Riggs 2010: half-time ~180 days", lower=1e-4, upper=1)
    calcitriol_rate: float = lit(2.5, "1/day", "calcitriol turnover rate",
                                 "half-life 6.9 h (Peterson & Riggs 2010)", lower=0.1,
                                 upper=100)
    calcitriol_nephron_exponent: float = assumed(0.85, "1", "fall of calcitriol with nephron "
                                                 "mass", "stage 4-5 mean 48 pmol/L (HOST)",
                                                 upper=3)
    calcitriol_pth_k: float = assumed(8.0, "pmol/L", "effective PTH at half of its calcitriol "
                                      "effect", "bumetanide: PTH +27%, calcitriol +36%",
                                      lower=0.1, upper=100)
    calcitriol_pth_hill: float = assumed(1.5, "1", "Hill coefficient of PTH on calcitriol",
                                         "elasticity ~1 at the reference", lower=0.5, upper=5)
    calcitriol_phosphate_exponent: float = assumed(0.5, "1", "suppression of calcitriol by "
                                                   "phosphate and FGF23", "Peterson & Riggs "
                                                   "2010: steep above 1.2 mM", upper=5)
    calcitriol_mg_k: float = assumed(0.40, "mmol/L", "ionized Mg at half the Mg-dependent "
                                     "1-alpha-hydroxylation", "Dutta & Layton 2024 Hill form "
                                     "(rat); depletion lowers calcitriol (Fatemi 1991)",
                                     lower=0.05, upper=2)

    # --- blood pressure ---------------------------------------------------------------------------
    map_normotensive: float = lit(85.0, "mmHg", "mean arterial pressure set point, "
                                  "normotensive", "normotensive adults 116/69 mmHg (Wright "
                                  "2011): MAP 85", iiv=0.06, lower=50, upper=150)
    map_hypertensive: float = lit(105.0, "mmHg", "mean arterial pressure set point, "
                                  "hypertensive", "untreated hypertensives 146/85 mmHg (Wright "
                                  "2011): MAP 105", iiv=0.06, lower=50, upper=180)
    pulse_normotensive: float = lit(47.0, "mmHg", "pulse pressure, normotensive",
                                    "116/69 mmHg (Wright 2011)", iiv=0.15, lower=10, upper=120)
    pulse_hypertensive: float = lit(61.0, "mmHg", "pulse pressure, hypertensive",
                                    "146/85 mmHg (Wright 2011)", iiv=0.15, lower=10, upper=150)
    pulse_exponent: float = assumed(1.5, "1", "power of MAP on pulse pressure",
                                    "salt reduction lowers SBP twice as much as DBP (He 2013)",
                                    upper=5)
    volume_gain_normotensive: float = assumed(0.3, "1", "% MAP per % ECF volume, "
                                              "normotensive", "salt reduction lowers BP less "
                                              "in normotensives (He 2013: -2.4/-1.0 mmHg)",
                                              upper=3)
    volume_gain_hypertensive: float = assumed(0.65, "1", "% MAP per % ECF volume, "
                                              "hypertensive", "salt-sensitive BP in "
                                              "hypertension (He 2013: -5.4/-2.8 mmHg)", upper=3)
    tone_na_exponent: float = assumed(0.25, "1", "power of cell Na on vascular tone",
                                      "Na+/Ca2+ exchange couples cell Na to tone (Blaustein)",
                                      upper=3)
    tone_mg_effect: float = assumed(0.08, "1", "largest fall of vascular tone with ionized Mg "
                                    "above normal", "Mg antagonises Ca in vascular muscle; "
                                    "supplements lower BP in hypertensives (Zhang 2016)",
                                    upper=0.5)
    tone_mg_gain: float = assumed(5.0, "L/mmol", "steepness of the Mg effect on tone",
                                  "a quarter of the largest effect at +0.05 mmol/L "
                                  "ionized Mg; a steeper slope makes a loop diuretic raise "
                                  "BP in hypertensives",
                                  upper=200)
    responsiveness_normotensive: float = assumed(0.1, "1", "vascular Mg responsiveness, "
                                                 "normotensive", "no BP fall in normotensives "
                                                 "(Rosanoff 2021)", upper=1)
    responsiveness_hypertensive: float = assumed(1.0, "1", "vascular Mg responsiveness, "
                                                 "hypertensive", "the reference", upper=2)

    # --- diuretics --------------------------------------------------------------------------------
    loop_max_block: float = assumed(0.28, "1", "TAL NKCC2 block at the maximal loop effect, "
                                    "time-averaged", "furosemide acts ~6 h per dose and is "
                                    "followed by NaCl retention (Wilcox 1983)", upper=1)
    thiazide_max_block: float = lit(0.9, "1", "DCT NCC block at the maximal thiazide effect",
                                    "[M: Hallow 2017 HCTZ effect]", upper=1)

    # --- kidney: flow-induced K secretion -----------------------------------------------------
    # (declared last: a parameter's random stream is its position in the table, so a parameter
    # added anywhere else would change the between-patient draws of every one after it)
    k_bk_fraction: float = assumed(0.0, "1", "share of the reference distal K secretion that "
                                   "is flow-induced (BK channels), outside the K-intake "
                                   "adaptation and ROMK's Mg block", "flow-induced K secretion "
                                   "runs through Ca2+/stretch-activated BK channels, basal "
                                   "secretion through ROMK (Muto 2001, Physiol Rev 81:85); no "
                                   "human number for its share: 0 keeps all secretion "
                                   "adaptive until a fit informs it",
                                   upper=0.9)
    k_bk_flow_exponent: float = assumed(1.0, "1", "power of distal Na delivery on flow-induced "
                                        "(BK) K secretion", "BK-mediated K secretion rises with "
                                        "tubular flow (Muto 2001, Physiol Rev 81:85); "
                                        "proportional taken as the simplest form", upper=3)

    # --- bone: Ca exchange without PTH (declared last, as above) ----------------------------
    ca_bone_buffer: float = assumed(10.0, "mmol/day", "net bone Ca release per unit fall of "
                                    "ln(serum Ca / reference), PTH-independent", "exchange "
                                    "with bone-surface mineral; set by hand equal to the PTH "
                                    "gain: with a tenth of it a year on 10 mg/day of Mg still "
                                    "took serum Ca to 0.1 mmol/L (without it, below zero), "
                                    "with it the lowest is 1.28 at serum Mg 0.38", upper=50)

    # --- blood pressure: K and vascular tone (declared last, as above) -----------------------
    tone_k_exponent: float = assumed(0.5, "1", "power of plasma K (relative to the patient's "
                                     "set point) on vascular tone, negative: K dilates",
                                     "a rise of plasma K within the physiological range "
                                     "dilates arterioles and a fall constricts them, through "
                                     "the smooth muscle's electrogenic Na+/K+ pump (Haddy "
                                     "1983, Fed Proc 42:239); no human dose-response: 0.5 "
                                     "(about -1% of MAP per +0.1 mmol/L) until a fit informs "
                                     "it", upper=5)

    # --- kidney: the renal Mg threshold (declared last, as above) ----------------------------
    mg_tubular_max_ratio: float = lit(1.02, "1", "renal tubular maximum for Mg relative to what "
                                      "the reference adult reabsorbs per litre of filtrate",
                                      "TmMg 1.4 mg/100 mL of glomerular filtrate (0.576 "
                                      "mmol/L) by Mg infusion in normal adults (Rude 1980, J "
                                      "Clin Endocrinol Metab 51:1425), against the 0.565 "
                                      "mmol/L the reference adult reabsorbs (0.595 filtered, "
                                      "4.3 of 85.7 mmol/day excreted): normal serum Mg sits "
                                      "at the renal threshold", lower=1.001, upper=3)
    mg_tubular_max_width: float = assumed(0.01, "mmol/L", "splay of the renal Mg threshold "
                                          "(corner width, per litre of filtrate)", "a sharp "
                                          "threshold: above TmMg urinary Mg rises with the "
                                          "filtered load (Rude 1980); about 2% of normal "
                                          "ultrafilterable Mg (0.595 mmol/L), small beside "
                                          "the 0.1-0.25 mmol/L a deficiency lowers it",
                                          lower=0.001, upper=0.2)

    # --- kidney: gut sensing of dietary K (declared last, as above) -------------------------
    k_intake_feedforward_low: float = assumed(0.0, "1", "power of K intake on distal K "
                                              "secretory capacity below the reference intake "
                                              "(gut sensing of dietary K)", "dietary K raises "
                                              "renal K excretion through a gut signal "
                                              "independent of plasma K (Oh 2011, Am J Physiol "
                                              "Regul 301:R421; Preston 2015, Kidney Int "
                                              "88:1383: 35 mmol KCl with a meal raised urinary "
                                              "K from 2.5 to 5.1 mmol/h with no rise of serum "
                                              "K); 0, the feedback alone, until a fit informs "
                                              "it", upper=3)
    k_intake_feedforward_high: float = assumed(0.0, "1", "power of K intake on distal K "
                                               "secretory capacity above the reference intake",
                                               "as k_intake_feedforward_low; K supplements "
                                               "raise plasma K (Buus 2020: +0.3 mmol/L on 90 "
                                               "mmol/day), so the feedback keeps part of the "
                                               "load", upper=3)
