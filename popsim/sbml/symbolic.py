"""The model of one patient as SymPy expressions (generated from the JAX flux definitions) and
their SBML L3 infix formulas."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from popsim import model, observables
from popsim.inputs import CHANNELS, Inputs
from popsim.model import Concentrations, Fluxes, Patient
from popsim.parameters import Params
from popsim.protocols import Protocol, baseline_protocol

SBML_LEVEL, SBML_VERSION = 3, 2

#: SBML ids of the states, in :data:`popsim.model.STATE_NAMES` order. Only the aldosterone
#: state is renamed, because ``aldosterone`` is the output in ng/L.
STATE_IDS = tuple("aldosterone_relative" if n == "aldosterone" else n
                  for n in model.STATE_NAMES)
#: SBML ids of the input channels (:mod:`popsim.inputs`); a channel named like a patient
#: quantity (the chronic diuretic doses) gets the suffix ``_active``.
INPUT_IDS = tuple(f"{c.name}_active" if c.name == c.baseline else c.name for c in CHANNELS)
INPUT_UNITS = tuple(c.unit for c in CHANNELS)
INPUT_DESCRIPTIONS = tuple(c.description for c in CHANNELS)
#: covariates of the patient (constants of the model) with units and meaning
COVARIATES = (
    ("body_weight", "kg", "body weight"),
    ("is_female", "1", "1 for a woman, 0 for a man (sets the body-water fractions)"),
    ("egfr", "mL/min/1.73 m2", "estimated glomerular filtration rate"),
    ("mg_intake", "mmol/day", "baseline dietary Mg"),
    ("k_intake", "mmol/day", "baseline dietary K"),
    ("na_intake", "mmol/day", "baseline dietary Na"),
    ("loop_dose", "1", "chronic loop diuretic, fraction of the maximal effect"),
    ("thiazide_dose", "1", "chronic thiazide, fraction of the maximal effect"),
)
PATIENT_UNITS = {"body_weight": "kg", "v_ecf": "L", "v_icf": "L", "gfr": "L/day",
                 "nephron_fraction": "1", "mg_intake": "mmol/day", "k_intake": "mmol/day",
                 "na_intake": "mmol/day", "loop_dose": "1", "thiazide_dose": "1"}
PATIENT_DESCRIPTIONS = {"v_ecf": "reference ECF volume (body weight x ECF fraction)",
                        "v_icf": "ICF volume (body weight x ICF fraction)",
                        "gfr": "glomerular filtration rate (1.44 x eGFR)",
                        "nephron_fraction": "functioning nephron mass, eGFR / 100"}
CONCENTRATION_DESCRIPTIONS = {
    "mg_p": "serum total Mg", "mg_ionized": "serum ionized Mg", "mg_uf": "ultrafilterable Mg",
    "mg_i_total": "total cell Mg", "mg_i_free": "free cell Mg2+", "k_o": "serum K",
    "k_i": "cell K", "na_o": "serum Na", "na_i": "cell Na", "ca_p": "serum total Ca",
    "ca_ionized": "serum ionized Ca", "ca_uf": "ultrafilterable Ca"}
FLUX_UNITS = {"romk_open": "1", "distal_flow_ratio": "1", "pth_target": "pmol/L",
              "pth_action": "1", "aldosterone_target": "1", "water_gain": "L/day",
              "volume_deviation": "%"}  # the others: mmol/day
TIME = "time"


class ExportError(ValueError):
    """Bad input to the export (patient index, cohort file, output path), in one line."""


# --- the model as SymPy expressions -------------------------------------------------------------

@dataclass
class SymbolicModel:
    """Every quantity of the exported model: ``rules`` maps an id to its assignment-rule
    expression, ``rates`` a state id to its rate-rule expression (both SymPy), in model order."""

    rules: dict
    rates: dict
    units: dict  # id -> unit string (popsim notation)
    descriptions: dict  # id -> one line


def _symbols(names):
    import sympy

    return [sympy.Symbol(n, real=True) for n in names]


def symbolic_model(protocol: Protocol | None = None) -> SymbolicModel:
    """The model of one patient under ``protocol`` (default: their baseline) as SymPy
    expressions of the ids listed in the module docstring."""
    import sympy

    if protocol is None:
        import jax

        with jax.enable_x64(True):
            protocol = baseline_protocol()
    param_names = [f.name for f in dataclasses.fields(Params)]
    p = Params(**dict(zip(param_names, _symbols(param_names), strict=True)))
    y = _symbols(STATE_IDS)
    cov = dict(zip([c[0] for c in COVARIATES], _symbols([c[0] for c in COVARIATES]),
                   strict=True))
    patient_expr = model.make_patient(
        p, cov["body_weight"], sympy.Gt(cov["is_female"], 0.5), cov["egfr"], cov["mg_intake"],
        cov["k_intake"], cov["na_intake"], cov["loop_dose"], cov["thiazide_dose"])
    pt_fields = [f.name for f in dataclasses.fields(Patient)]
    pt = Patient(**dict(zip(pt_fields, _symbols(pt_fields), strict=True)))
    u_expr = protocol.symbolic_inputs(sympy.Symbol(TIME, real=True), pt)
    u = Inputs(*_symbols(INPUT_IDS))
    c_expr = model.concentrations(y, p, pt)
    c = Concentrations(*_symbols(Concentrations._fields))
    f_expr = model.fluxes(y, p, pt, u, c=c)
    f = Fluxes(*_symbols(Fluxes._fields))
    body = model.body_contents(y, p, pt)

    rules, units, descriptions = {}, {}, {}

    def rule(name, expr, unit, description):
        if isinstance(expr, sympy.Symbol) and expr.name == name:
            return  # already defined under this id (e.g. the flux mg_iv is the input mg_iv)
        if name in rules:
            raise AssertionError(f"SBML id {name!r} defined twice")
        rules[name] = sympy.sympify(expr)
        units[name], descriptions[name] = unit, description

    for name in pt_fields:
        rule(name, getattr(patient_expr, name), PATIENT_UNITS[name],
             PATIENT_DESCRIPTIONS.get(name, ""))
    for name, expr, unit, text in zip(INPUT_IDS, u_expr, INPUT_UNITS, INPUT_DESCRIPTIONS,
                                      strict=True):
        rule(name, expr, unit, text)
    for name, expr in zip(Concentrations._fields, c_expr, strict=True):
        rule(name, expr, "mmol/L", CONCENTRATION_DESCRIPTIONS[name])
    for name, expr in zip(Fluxes._fields, f_expr, strict=True):
        rule(name, expr, FLUX_UNITS.get(name, "mmol/day"), "flux " + name.replace("_", " "))
    for o in observables.OUTPUTS:
        rule(o.name, o.fn(y, c, f, body), o.unit, o.description)  # pth, ecf_volume: states
    rates = dict(zip(STATE_IDS, (sympy.sympify(e) for e in model.rates(y, p, f)), strict=True))
    return SymbolicModel(rules, rates, units, descriptions)


# --- SymPy -> SBML L3 infix ------------------------------------------------------------------

def _number(x: float) -> str:
    if not math.isfinite(x):
        return "INF" if x > 0 else ("-INF" if x < 0 else "NaN")
    return repr(float(x))


def to_formula(expr) -> str:
    """An SBML L3 infix formula (libSBML ``parseL3Formula``) for a SymPy expression.

    Every subexpression is parenthesised, so the formula means exactly the expression tree;
    ``log`` is written ``ln`` (natural), a square root ``sqrt``.
    """
    import sympy

    def go(e) -> str:
        if isinstance(e, sympy.Symbol):
            return e.name
        if isinstance(e, sympy.logic.boolalg.BooleanTrue):
            return "true"
        if isinstance(e, sympy.logic.boolalg.BooleanFalse):
            return "false"
        if e.is_Number:
            return _number(float(e))
        if isinstance(e, sympy.Add):
            return " + ".join(f"({go(a)})" for a in e.args)
        if isinstance(e, sympy.Mul | sympy.Pow):
            num, den = [], []  # a negative numeric power is written as a division
            for a in (e.args if isinstance(e, sympy.Mul) else (e,)):
                if isinstance(a, sympy.Pow) and a.exp.is_Number and a.exp < 0:
                    den.append(a.base if a.exp == -1 else sympy.Pow(a.base, -a.exp,
                                                                    evaluate=False))
                else:
                    num.append(a)
            if den:
                top = " * ".join(f"({go(a)})" for a in num) if num else "1"
                return f"({top}) / (" + " * ".join(f"({go(a)})" for a in den) + ")"
            if isinstance(e, sympy.Mul):
                return " * ".join(f"({go(a)})" for a in e.args)
            base, ex = e.args
            if ex == sympy.Rational(1, 2):
                return f"sqrt({go(base)})"
            return f"({go(base)})^({go(ex)})"
        if isinstance(e, sympy.exp):
            return f"exp({go(e.args[0])})"
        if isinstance(e, sympy.log):
            return f"ln({go(e.args[0])})"
        if isinstance(e, sympy.Piecewise):
            parts = []
            for value, cond in e.args:
                if cond == sympy.true:
                    parts.append(go(value))
                else:
                    parts += [go(value), go(cond)]
            return "piecewise(" + ", ".join(parts) + ")"
        ops = {sympy.StrictLessThan: "<", sympy.LessThan: "<=", sympy.StrictGreaterThan: ">",
               sympy.GreaterThan: ">=", sympy.Equality: "=="}
        for cls, op in ops.items():
            if isinstance(e, cls):
                return f"({go(e.lhs)}) {op} ({go(e.rhs)})"
        if isinstance(e, sympy.And):
            return " && ".join(f"({go(a)})" for a in e.args)
        if isinstance(e, sympy.Or):
            return " || ".join(f"({go(a)})" for a in e.args)
        raise TypeError(f"no SBML form for {type(e).__name__}: {e}")

    return go(expr)


