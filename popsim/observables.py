"""Clinical observables computed from the state: serum and cell concentrations, urinary excretion,
fractional excretions, hormone levels and body contents. Every output has a unit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from popsim import model
from popsim.model import Inputs, Patient
from popsim.parameters import Params
from popsim.physiology.adrenal import ALDOSTERONE_REFERENCE_NG_PER_L


@dataclass(frozen=True)
class Output:
    name: str
    unit: str
    description: str
    fn: Callable  # (state, concentrations, fluxes, body contents) -> value


def _fe(urine, filtered):
    return 100.0 * urine / filtered


OUTPUTS: tuple[Output, ...] = (
    Output("serum_mg", "mmol/L", "serum total Mg", lambda y, c, f, b: c.mg_p),
    Output("serum_mg_ionized", "mmol/L", "serum ionized Mg", lambda y, c, f, b: c.mg_ionized),
    Output("serum_k", "mmol/L", "serum K", lambda y, c, f, b: c.k_o),
    Output("serum_na", "mmol/L", "serum Na", lambda y, c, f, b: c.na_o),
    Output("serum_ca", "mmol/L", "serum total Ca", lambda y, c, f, b: c.ca_p),
    Output("serum_ca_ionized", "mmol/L", "serum ionized Ca", lambda y, c, f, b: c.ca_ionized),
    Output("pth", "pmol/L", "plasma intact PTH", lambda y, c, f, b: y[model.PTH]),
    Output("aldosterone", "ng/L", "plasma aldosterone",
           lambda y, c, f, b: ALDOSTERONE_REFERENCE_NG_PER_L * y[model.ALDO]),
    Output("ecf_volume", "L", "extracellular fluid volume", lambda y, c, f, b: y[model.V_ECF]),
    Output("intracellular_mg", "mmol/L", "total cell Mg (per L cell water)",
           lambda y, c, f, b: c.mg_i_total),
    Output("intracellular_mg_free", "mmol/L", "free cell Mg2+", lambda y, c, f, b: c.mg_i_free),
    Output("intracellular_k", "mmol/L", "cell K", lambda y, c, f, b: c.k_i),
    Output("intracellular_na", "mmol/L", "cell Na", lambda y, c, f, b: c.na_i),
    Output("urine_mg", "mmol/day", "urinary Mg excretion", lambda y, c, f, b: f.mg_urine),
    Output("urine_k", "mmol/day", "urinary K excretion", lambda y, c, f, b: f.k_urine),
    Output("urine_na", "mmol/day", "urinary Na excretion", lambda y, c, f, b: f.na_urine),
    Output("urine_ca", "mmol/day", "urinary Ca excretion", lambda y, c, f, b: f.ca_urine),
    Output("fe_mg", "%", "fractional excretion of Mg (of ultrafilterable Mg)",
           lambda y, c, f, b: _fe(f.mg_urine, f.mg_filtered)),
    Output("fe_k", "%", "fractional excretion of K",
           lambda y, c, f, b: _fe(f.k_urine, f.k_filtered)),
    Output("fe_na", "%", "fractional excretion of Na",
           lambda y, c, f, b: _fe(f.na_urine, f.na_filtered)),
    Output("mg_absorbed_net", "mmol/day", "net intestinal Mg absorption (gross - endogenous loss)",
           lambda y, c, f, b: f.mg_absorbed - f.mg_endogenous),
    Output("k_absorbed", "mmol/day", "intestinal K absorption", lambda y, c, f, b: f.k_absorbed),
    Output("na_absorbed", "mmol/day", "intestinal Na absorption", lambda y, c, f, b: f.na_absorbed),
    Output("mg_bone_exchangeable", "mmol", "exchangeable bone-surface Mg",
           lambda y, c, f, b: y[model.MG_BONE]),
    Output("body_mg", "mmol", "exchangeable body Mg (ECF + cells + bone surface)",
           lambda y, c, f, b: b[0]),
    Output("body_k", "mmol", "body K (ECF + cells)",
           lambda y, c, f, b: b[1]),
    Output("body_na", "mmol", "exchangeable body Na (ECF + cells)",
           lambda y, c, f, b: b[2]),
)
OUTPUT_NAMES = tuple(o.name for o in OUTPUTS)
OUTPUT_UNITS = {o.name: o.unit for o in OUTPUTS}


def observe(y, p: Params, pt: Patient, u: Inputs) -> dict:
    """All :data:`OUTPUTS` for one patient at one instant (state ``y`` in model units)."""
    c = model.concentrations(y, p, pt)
    f = model.fluxes(y, p, pt, u)
    b = model.body_contents(y, p, pt)
    return {o.name: o.fn(y, c, f, b) for o in OUTPUTS}


def balance_rates(y, p: Params, pt: Patient, u: Inputs):
    """Net external gain of Mg, K and Na (mmol/day): what enters minus what leaves the body.

    Mg: gross absorption + IV - endogenous faecal loss - urine; K and Na: absorbed - urine.
    Integrated over time it must equal the change of ``body_mg``, ``body_k``, ``body_na``.
    """
    f = model.fluxes(y, p, pt, u)
    return (f.mg_absorbed + f.mg_iv - f.mg_endogenous - f.mg_urine,
            f.k_absorbed - f.k_urine,
            f.na_absorbed - f.na_urine)
