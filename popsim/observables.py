"""Clinical observables computed from the state: serum and cell concentrations, urinary excretion,
fractional excretions, hormone levels and body contents. Every output has a unit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from popsim import model
from popsim.inputs import Inputs
from popsim.model import Patient
from popsim.outputs import OUTPUT_SPECS, OUTPUT_UNITS  # noqa: F401  (OUTPUT_UNITS re-exported)
from popsim.parameters import Params
from popsim.physiology.raas import ALDOSTERONE_REFERENCE_NG_PER_L


@dataclass(frozen=True)
class Output:
    name: str
    unit: str
    description: str
    fn: Callable  # (state, concentrations, fluxes, body contents, patient) -> value


def _out(name: str, fn: Callable) -> Output:
    unit, description = OUTPUT_SPECS[name]
    return Output(name, unit, description, fn)


def _fe(urine, filtered):
    return 100.0 * urine / filtered


OUTPUTS: tuple[Output, ...] = (
    _out("serum_mg", lambda y, c, f, b, pt: c.mg_p),
    _out("serum_mg_ionized", lambda y, c, f, b, pt: c.mg_ionized),
    _out("serum_k", lambda y, c, f, b, pt: c.k_o),
    _out("serum_na", lambda y, c, f, b, pt: c.na_o),
    _out("serum_ca", lambda y, c, f, b, pt: c.ca_p),
    _out("serum_ca_ionized", lambda y, c, f, b, pt: c.ca_ionized),
    _out("pth", lambda y, c, f, b, pt: y[model.PTH]),
    _out("aldosterone", lambda y, c, f, b, pt: ALDOSTERONE_REFERENCE_NG_PER_L * y[model.ALDO]),
    _out("ecf_volume", lambda y, c, f, b, pt: y[model.V_ECF]),
    _out("intracellular_mg", lambda y, c, f, b, pt: c.mg_i_total),
    _out("intracellular_mg_free", lambda y, c, f, b, pt: c.mg_i_free),
    _out("intracellular_k", lambda y, c, f, b, pt: c.k_i),
    _out("intracellular_na", lambda y, c, f, b, pt: c.na_i),
    _out("urine_mg", lambda y, c, f, b, pt: f.mg_urine),
    _out("urine_k", lambda y, c, f, b, pt: f.k_urine),
    _out("urine_na", lambda y, c, f, b, pt: f.na_urine),
    _out("urine_ca", lambda y, c, f, b, pt: f.ca_urine),
    _out("fe_mg", lambda y, c, f, b, pt: _fe(f.mg_urine, f.mg_filtered)),
    _out("fe_k", lambda y, c, f, b, pt: _fe(f.k_urine, f.k_filtered)),
    _out("fe_na", lambda y, c, f, b, pt: _fe(f.na_urine, f.na_filtered)),
    _out("mg_absorbed_net", lambda y, c, f, b, pt: f.mg_absorbed - f.mg_secreted),
    _out("k_absorbed", lambda y, c, f, b, pt: f.k_absorbed),
    _out("na_absorbed", lambda y, c, f, b, pt: f.na_absorbed),
    _out("mg_bone_exchangeable", lambda y, c, f, b, pt: y[model.MG_BONE]),
    _out("body_mg", lambda y, c, f, b, pt: b[0]),
    _out("body_k", lambda y, c, f, b, pt: b[1]),
    _out("body_na", lambda y, c, f, b, pt: b[2]),
    _out("serum_phosphate", lambda y, c, f, b, pt: c.p_p),
    _out("calcitriol", lambda y, c, f, b, pt: y[model.CALCITRIOL]),
    _out("urine_phosphate", lambda y, c, f, b, pt: f.p_urine),
    _out("renin", lambda y, c, f, b, pt: y[model.ANGIOTENSIN]),
    _out("map", lambda y, c, f, b, pt: f.map),
    _out("sbp", lambda y, c, f, b, pt: f.sbp),
    _out("dbp", lambda y, c, f, b, pt: f.dbp),
    _out("mg_absorbed_fraction",
         lambda y, c, f, b, pt: 100.0 * (f.mg_absorbed - f.mg_secreted) / f.mg_swallowed),
    _out("body_p", lambda y, c, f, b, pt: b[3]),
)
OUTPUT_NAMES = tuple(o.name for o in OUTPUTS)
assert OUTPUT_NAMES == tuple(OUTPUT_SPECS), "popsim.outputs lists every output, in order"


def observe(y, p: Params, pt: Patient, u: Inputs) -> dict:
    """All :data:`OUTPUTS` for one patient at one instant (state ``y`` in model units)."""
    d = model.derived(p)
    c = model.concentrations(y, p, pt, d)
    f = model.fluxes(y, p, pt, u, c, d)
    b = model.body_contents(y, p, pt, d)
    return {o.name: o.fn(y, c, f, b, pt) for o in OUTPUTS}


def balance_rates(y, p: Params, pt: Patient, u: Inputs):
    """Net external gain of Mg, K, Na and ECF phosphate (mmol/day): what enters minus what
    leaves.

    Mg: gross absorption + IV - secretion into the gut - urine; K and Na: absorbed - urine;
    phosphate: absorbed + released from bone - urine. Integrated over time it must equal the
    change of ``body_mg``, ``body_k``, ``body_na`` and ECF phosphate.
    """
    f = model.fluxes(y, p, pt, u)
    return (f.mg_absorbed + f.mg_iv - f.mg_secreted - f.mg_urine,
            f.k_absorbed - f.k_urine,
            f.na_absorbed - f.na_urine,
            f.p_absorbed + f.p_bone_net - f.p_urine)
