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
from popsim.physiology.adrenal import ALDOSTERONE_REFERENCE_NG_PER_L


@dataclass(frozen=True)
class Output:
    name: str
    unit: str
    description: str
    fn: Callable  # (state, concentrations, fluxes, body contents) -> value


def _out(name: str, fn: Callable) -> Output:
    unit, description = OUTPUT_SPECS[name]
    return Output(name, unit, description, fn)


def _fe(urine, filtered):
    return 100.0 * urine / filtered


OUTPUTS: tuple[Output, ...] = (
    _out("serum_mg", lambda y, c, f, b: c.mg_p),
    _out("serum_mg_ionized", lambda y, c, f, b: c.mg_ionized),
    _out("serum_k", lambda y, c, f, b: c.k_o),
    _out("serum_na", lambda y, c, f, b: c.na_o),
    _out("serum_ca", lambda y, c, f, b: c.ca_p),
    _out("serum_ca_ionized", lambda y, c, f, b: c.ca_ionized),
    _out("pth", lambda y, c, f, b: y[model.PTH]),
    _out("aldosterone", lambda y, c, f, b: ALDOSTERONE_REFERENCE_NG_PER_L * y[model.ALDO]),
    _out("ecf_volume", lambda y, c, f, b: y[model.V_ECF]),
    _out("intracellular_mg", lambda y, c, f, b: c.mg_i_total),
    _out("intracellular_mg_free", lambda y, c, f, b: c.mg_i_free),
    _out("intracellular_k", lambda y, c, f, b: c.k_i),
    _out("intracellular_na", lambda y, c, f, b: c.na_i),
    _out("urine_mg", lambda y, c, f, b: f.mg_urine),
    _out("urine_k", lambda y, c, f, b: f.k_urine),
    _out("urine_na", lambda y, c, f, b: f.na_urine),
    _out("urine_ca", lambda y, c, f, b: f.ca_urine),
    _out("fe_mg", lambda y, c, f, b: _fe(f.mg_urine, f.mg_filtered)),
    _out("fe_k", lambda y, c, f, b: _fe(f.k_urine, f.k_filtered)),
    _out("fe_na", lambda y, c, f, b: _fe(f.na_urine, f.na_filtered)),
    _out("mg_absorbed_net", lambda y, c, f, b: f.mg_absorbed - f.mg_endogenous),
    _out("k_absorbed", lambda y, c, f, b: f.k_absorbed),
    _out("na_absorbed", lambda y, c, f, b: f.na_absorbed),
    _out("mg_bone_exchangeable", lambda y, c, f, b: y[model.MG_BONE]),
    _out("body_mg", lambda y, c, f, b: b[0]),
    _out("body_k", lambda y, c, f, b: b[1]),
    _out("body_na", lambda y, c, f, b: b[2]),
)
OUTPUT_NAMES = tuple(o.name for o in OUTPUTS)
assert OUTPUT_NAMES == tuple(OUTPUT_SPECS), "popsim.outputs lists every output, in order"


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
