"""Renal handling of Na, K, Mg, Ca and phosphate, segment by segment
(docs/MODEL.md, "Mechanisms"), one module per ion.

Every function takes the glomerular filtration rate in L/day and returns fluxes in mmol/day.
Segments: proximal tubule (PT), thick ascending limb (TAL), distal convoluted tubule (DCT),
connecting tubule/collecting duct (CNT/CD). Diuretics enter as ``loop_block`` (fraction of TAL
NKCC2 transport blocked) and ``thiazide_block`` (fraction of DCT NCC transport blocked), 0..1.
Chronic kidney disease enters as ``nephron_fraction`` (eGFR/100): remnant nephrons reabsorb a
smaller fraction of what they filter (Bricker's magnification), so excretion keeps up with
intake as GFR falls until the adaptation runs out.
"""

from __future__ import annotations


def gfr_l_per_day(egfr_ml_min_173):
    """GFR in L/day from eGFR in mL/min/1.73 m² (1 mL/min = 1.44 L/day; not de-indexed for BSA)."""
    return 1.44 * egfr_ml_min_173
