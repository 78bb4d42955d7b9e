"""The model's outputs: name, unit and meaning, for every stage that names outputs without
computing them (configs, study files, reports, the CLI). Imports nothing.

:mod:`popsim.observables` computes each of these from the state; every cohort file stores
them with these units.
"""

from __future__ import annotations

OUTPUT_SPECS: dict[str, tuple[str, str]] = {
    "serum_mg": ("mmol/L", "serum total Mg"),
    "serum_mg_ionized": ("mmol/L", "serum ionized Mg"),
    "serum_k": ("mmol/L", "serum K"),
    "serum_na": ("mmol/L", "serum Na"),
    "serum_ca": ("mmol/L", "serum total Ca"),
    "serum_ca_ionized": ("mmol/L", "serum ionized Ca"),
    "pth": ("pmol/L", "plasma intact PTH"),
    "aldosterone": ("ng/L", "plasma aldosterone"),
    "ecf_volume": ("L", "extracellular fluid volume"),
    "intracellular_mg": ("mmol/L", "total cell Mg (per L cell water)"),
    "intracellular_mg_free": ("mmol/L", "free cell Mg2+"),
    "intracellular_k": ("mmol/L", "cell K"),
    "intracellular_na": ("mmol/L", "cell Na"),
    "urine_mg": ("mmol/day", "urinary Mg excretion"),
    "urine_k": ("mmol/day", "urinary K excretion"),
    "urine_na": ("mmol/day", "urinary Na excretion"),
    "urine_ca": ("mmol/day", "urinary Ca excretion"),
    "fe_mg": ("%", "fractional excretion of Mg (of ultrafilterable Mg)"),
    "fe_k": ("%", "fractional excretion of K"),
    "fe_na": ("%", "fractional excretion of Na"),
    "mg_absorbed_net": ("mmol/day", "net intestinal Mg absorption (gross - endogenous loss)"),
    "k_absorbed": ("mmol/day", "intestinal K absorption"),
    "na_absorbed": ("mmol/day", "intestinal Na absorption"),
    "mg_bone_exchangeable": ("mmol", "exchangeable bone-surface Mg"),
    "body_mg": ("mmol", "exchangeable body Mg (ECF + cells + bone surface)"),
    "body_k": ("mmol", "body K (ECF + cells)"),
    "body_na": ("mmol", "exchangeable body Na (ECF + cells)"),
    "serum_phosphate": ("mmol/L", "serum inorganic phosphate"),
    "calcitriol": ("pmol/L", "serum 1,25-dihydroxyvitamin D"),
    "urine_phosphate": ("mmol/day", "urinary phosphate excretion"),
    "renin": ("1", "plasma renin activity (angiotensin II) relative to the reference adult"),
    "map": ("mmHg", "mean arterial pressure"),
    "sbp": ("mmHg", "systolic blood pressure"),
    "dbp": ("mmHg", "diastolic blood pressure"),
    "mg_absorbed_fraction": ("%", "net intestinal Mg absorption as a share of Mg swallowed"),
    "body_p": ("mmol", "extracellular phosphate"),
}
"""Output name -> (unit, description), in the order the model computes and stores them."""

OUTPUT_UNITS: dict[str, str] = {name: unit for name, (unit, _) in OUTPUT_SPECS.items()}
