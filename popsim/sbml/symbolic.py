"""The model of one patient as SymPy expressions (generated from the JAX flux definitions) and
their SBML L3 infix formulas.

Every quantity comes from a definition of the model: states from :data:`popsim.model.STATE_NAMES`,
parameters from the fields of :class:`popsim.parameters.Params`, balancing constants from
:func:`popsim.balance.derived`, the patient's quantities from :func:`popsim.model.make_patient`,
inputs from :data:`popsim.inputs.CHANNELS`, concentrations, fluxes and rates from
:mod:`popsim.model`, outputs from :data:`popsim.observables.OUTPUTS`. Units of the fields of
``Patient``, ``Fluxes`` and ``Derived`` are read from their comments
(:func:`popsim.sbml.units.field_units`). Only the covariates are listed here, because they carry
units and meanings that ``make_patient``'s signature does not.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

from popsim import balance, model, observables
from popsim.inputs import CHANNELS, Inputs
from popsim.model import Concentrations, Fluxes, Patient
from popsim.parameters import Params
from popsim.protocols import Protocol, baseline_protocol
from popsim.sbml.units import comment_text, default_unit, field_comments, field_units

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


class Covariate(NamedTuple):
    """A covariate of the exported patient (a constant of the SBML model)."""

    name: str  # SBML id
    unit: str
    description: str
    flag: bool = False  # 0/1 in SBML; ``make_patient`` takes a boolean (value > 0.5)


#: the arguments of :func:`popsim.model.make_patient` after ``params``, in its order (the
#: intakes in mmol/day: ``mg_intake`` is its ``mg_intake_mmol``)
COVARIATES = (
    Covariate("body_weight", "kg", "body weight"),
    Covariate("is_female", "1", "1 for a woman, 0 for a man (sets the body-water fractions)",
              True),
    Covariate("egfr", "mL/min/1.73 m2", "estimated glomerular filtration rate"),
    Covariate("mg_intake", "mmol/day", "baseline dietary Mg"),
    Covariate("k_intake", "mmol/day", "baseline dietary K"),
    Covariate("na_intake", "mmol/day", "baseline dietary Na"),
    Covariate("loop_dose", "1", "chronic loop diuretic, fraction of the maximal effect"),
    Covariate("thiazide_dose", "1", "chronic thiazide, fraction of the maximal effect"),
    Covariate("hypertensive", "1", "1 for a hypertensive patient, 0 for a normotensive one "
              "(sets the blood-pressure set point, pulse pressure, volume gain of pressure and "
              "vascular Mg responsiveness)", True),
)
#: the unit of every concentration (:func:`popsim.model.concentrations`: mmol/L)
CONCENTRATION_UNIT = "mmol/L"
CONCENTRATION_DESCRIPTIONS = {
    "mg_p": "serum total Mg", "mg_ionized": "serum ionized Mg", "mg_uf": "ultrafilterable Mg",
    "mg_i_total": "total cell Mg", "mg_i_free": "free cell Mg2+", "k_o": "serum K",
    "k_i": "cell K", "na_o": "serum Na", "na_i": "cell Na", "ca_p": "serum total Ca",
    "ca_ionized": "serum ionized Ca", "ca_uf": "ultrafilterable Ca",
    "p_p": "serum inorganic phosphate"}
TIME = "time"


class ExportError(ValueError):
    """Bad input to the export (patient index, cohort file, output path), in one line."""


def make_patient(params, covariates: dict) -> Patient:
    """:func:`popsim.model.make_patient` from the :data:`COVARIATES` (SBML ids, model units;
    JAX arrays, floats or SymPy symbols; a flag is true above 0.5)."""
    def arg(c: Covariate):
        x = covariates[c.name]
        if not c.flag:
            return x
        if type(x).__module__.startswith("sympy"):
            import sympy

            return sympy.Gt(x, 0.5)
        return x > 0.5

    return model.make_patient(params, *(arg(c) for c in COVARIATES))


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
    """SymPy symbols named ``names``. They stand in for the floats and arrays the model's own
    functions are annotated with (Params, Patient, ...), so those functions build the
    expressions; the type checker is told so where they are passed."""
    import sympy

    return [sympy.Symbol(n) for n in names]


def _described(cls, kind: str, default: str | None = None) -> tuple[dict, dict]:
    """(units, descriptions) of the fields of ``cls`` from their comments; ``kind`` names what
    the fields are (e.g. ``"flux"``)."""
    units = field_units(cls, default)
    comments = field_comments(cls)
    texts = {k: comment_text(comments[k]) for k in units}
    return units, {k: f"{kind} {k.replace('_', ' ')}" + (f": {texts[k]}" if texts[k] else "")
                   for k in units}


def symbolic_model(protocol: Protocol | None = None) -> SymbolicModel:
    """The model of one patient under ``protocol`` (default: their baseline) as SymPy
    expressions of the ids listed in the module docstring."""
    import sympy

    if protocol is None:
        import jax

        with jax.enable_x64(True):
            protocol = baseline_protocol()
    param_names = [f.name for f in dataclasses.fields(Params)]
    p = Params(**dict(zip(param_names, _symbols(param_names), strict=True)))  # pyright: ignore[reportArgumentType]  # symbols for floats (_symbols)
    y = _symbols(STATE_IDS)
    patient_expr = make_patient(p, dict(zip([c.name for c in COVARIATES],
                                            _symbols([c.name for c in COVARIATES]),
                                            strict=True)))
    pt = Patient(**{f.name: s for f, s in zip(dataclasses.fields(Patient),  # pyright: ignore[reportArgumentType]  # symbols for arrays
                                              _symbols([f.name for f in
                                                        dataclasses.fields(Patient)]),
                                              strict=True)})
    u_expr = protocol.symbolic_inputs(sympy.Symbol(TIME, real=True), pt)
    u = Inputs(*_symbols(INPUT_IDS))
    d = balance.Derived(*_symbols(balance.Derived._fields))
    c = Concentrations(*_symbols(Concentrations._fields))
    f = Fluxes(*_symbols(Fluxes._fields))
    body = model.body_contents(y, p, pt, d)

    rules, units, descriptions = {}, {}, {}

    def rule(name, expr, unit, description):
        if isinstance(expr, sympy.Symbol) and expr.name == name:
            return  # already defined under this id (e.g. the flux mg_iv is the input mg_iv)
        if name in rules:
            raise AssertionError(f"SBML id {name!r} defined twice")
        rules[name] = sympy.sympify(expr)
        units[name], descriptions[name] = unit, description

    def rules_of(cls, values, kind, default=None):
        """One rule per field of ``cls`` (``values``: an instance with expressions)."""
        unit, text = _described(cls, kind, default)
        for name in unit:
            rule(name, getattr(values, name), unit[name], text[name])

    rules_of(balance.Derived, balance.derived(p),
             "balancing constant (the reference adult at steady state, popsim.balance)")
    rules_of(Patient, patient_expr, "patient quantity")
    for name, expr, unit, text in zip(INPUT_IDS, u_expr, INPUT_UNITS, INPUT_DESCRIPTIONS,
                                      strict=True):
        rule(name, expr, unit, text)
    for name, expr in zip(Concentrations._fields, model.concentrations(y, p, pt, d),
                          strict=True):
        rule(name, expr, CONCENTRATION_UNIT,
             CONCENTRATION_DESCRIPTIONS.get(name, name.replace("_", " ")))
    rules_of(Fluxes, model.fluxes(y, p, pt, u, c, d), "flux", default_unit(Fluxes))
    for o in observables.OUTPUTS:
        rule(o.name, o.fn(y, c, f, body, pt), o.unit, o.description)  # states: pth, ...
    rates = dict(zip(STATE_IDS, (sympy.sympify(e) for e in model.rates(y, p, f)), strict=True))
    _check_unique_ids(rules, param_names)
    rules, rates = _name_subexpressions(rules, rates)
    return SymbolicModel(rules, rates, units, descriptions)


def _name_subexpressions(rules: dict, rates: dict) -> tuple[dict, dict]:
    """Every subexpression equal to another rule's expression replaced by that rule's id.

    The flux functions pass each other expressions (the macula densa signal into renin, the
    perfusion pressure into the kidney), so without this one formula would repeat another whole;
    the replacement is exact (the same tree), so the values do not change. Rules with equal
    expressions become references to the first of them."""
    import sympy

    first: dict = {}
    for name, expr in rules.items():
        if not expr.is_Atom:
            first.setdefault(expr, sympy.Symbol(name))
    out = {}
    for name, expr in rules.items():
        holder = first.get(expr)
        if holder is not None and holder.name != name:
            out[name] = holder
        else:
            out[name] = expr.xreplace({k: v for k, v in first.items() if v.name != name})
    return out, {k: e.xreplace(first) for k, e in rates.items()}


def _check_unique_ids(rules: dict, param_names: list[str]) -> None:
    """No id is both a parameter, a covariate, a state or a rule (SBML ids are one namespace)."""
    seen: dict[str, str] = {}
    for kind, names in (("parameter", param_names), ("covariate", [c.name for c in COVARIATES]),
                        ("state", STATE_IDS), ("assignment rule", rules)):
        for n in names:
            if n in seen:
                raise AssertionError(f"SBML id {n!r} is both a {seen[n]} and a {kind}")
            seen[n] = kind


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
    return _formula(expr)


def _formula(e) -> str:
    import sympy

    if isinstance(e, sympy.Symbol):
        return e.name
    if isinstance(e, sympy.logic.boolalg.BooleanTrue):
        return "true"
    if isinstance(e, sympy.logic.boolalg.BooleanFalse):
        return "false"
    if e.is_Number:
        return _number(float(e))
    if isinstance(e, sympy.Add):
        return " + ".join(f"({_formula(a)})" for a in e.args)
    if isinstance(e, sympy.Mul | sympy.Pow):
        return _product(e)
    if isinstance(e, sympy.Piecewise):
        parts = []
        for value, cond in cast("tuple[tuple[Any, Any], ...]", e.args):  # (expr, cond) pairs
            parts += [_formula(value)] if cond == sympy.true else [_formula(value),
                                                                   _formula(cond)]
        return "piecewise(" + ", ".join(parts) + ")"
    if isinstance(e, sympy.core.function.AppliedUndef):  # a function definition's call
        return f"{e.func.__name__}(" + ", ".join(_formula(a) for a in e.args) + ")"
    unary = {sympy.exp: "exp", sympy.log: "ln", sympy.tanh: "tanh", sympy.Abs: "abs"}
    for cls, name in unary.items():
        if isinstance(e, cls):
            return f"{name}({_formula(e.args[0])})"
    return _logic(e)


def _product(e) -> str:
    """A ``Mul`` or ``Pow``: a negative numeric power is written as a division."""
    import sympy

    num, den = [], []
    for a in (e.args if isinstance(e, sympy.Mul) else (e,)):
        if isinstance(a, sympy.Pow) and a.exp.is_Number and a.exp < 0:
            den.append(a.base if a.exp == -1 else sympy.Pow(a.base, -a.exp, evaluate=False))
        else:
            num.append(a)
    if den:
        top = " * ".join(f"({_formula(a)})" for a in num) if num else "1"
        return f"({top}) / (" + " * ".join(f"({_formula(a)})" for a in den) + ")"
    if isinstance(e, sympy.Mul):
        return " * ".join(f"({_formula(a)})" for a in e.args)
    base, ex = e.args
    if ex == sympy.Rational(1, 2):
        return f"sqrt({_formula(base)})"
    return f"({_formula(base)})^({_formula(ex)})"


def _logic(e) -> str:
    """A comparison or a boolean combination."""
    import sympy

    ops = {sympy.StrictLessThan: "<", sympy.LessThan: "<=", sympy.StrictGreaterThan: ">",
           sympy.GreaterThan: ">=", sympy.Equality: "=="}
    for cls, op in ops.items():
        if isinstance(e, cls):
            return f"({_formula(e.lhs)}) {op} ({_formula(e.rhs)})"
    if isinstance(e, sympy.And):
        return " && ".join(f"({_formula(a)})" for a in e.args)
    if isinstance(e, sympy.Or):
        return " || ".join(f"({_formula(a)})" for a in e.args)
    if isinstance(e, sympy.Not):
        return f"!({_formula(e.args[0])})"
    if isinstance(e, sympy.ITE):  # if a then b else c, as a boolean
        a, b, c = (_formula(x) for x in e.args)
        return f"(({a}) && ({b})) || ((!({a})) && ({c}))"
    raise TypeError(f"no SBML form for {type(e).__name__}: {e}")


