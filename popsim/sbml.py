"""SBML Level 3 export of one virtual patient, generated from the same flux definitions as the
JAX vector field.

Nothing here restates the physiology. :func:`symbolic_model` calls the functions of
:mod:`popsim.model`, :mod:`popsim.protocols` and :mod:`popsim.observables` with SymPy symbols
instead of JAX arrays (the helpers of :mod:`popsim.physiology._math` dispatch on the argument
type), which yields every concentration, flux, rate and output as an expression; those are
printed as SBML L3 infix formulas and parsed into MathML by libSBML. A test evaluates the SBML
rates in libRoadRunner against :func:`popsim.model.derivatives`, so the two cannot drift.

Layout of the exported model (all ids are popsim's names):

* the 10 states are SBML parameters with rate rules (amounts in mmol, PTH in pmol/L, ECF volume
  in L; the aldosterone state is ``aldosterone_relative``, plasma aldosterone / 85 ng/L), their
  initial values at the patient's steady state on their baseline intake;
* every model parameter, with its value, unit, description and source (in the notes);
* the patient's covariates (``body_weight``, ``is_female``, ``egfr``, baseline intakes and
  chronic diuretic doses) as constants, and what popsim derives from them (``v_ecf``, ``v_icf``,
  ``gfr``, ``nephron_fraction``) as assignment rules;
* the inputs acting at time ``t`` (``mg_oral``, ``k_oral``, ``na_oral``, ``mg_iv``,
  ``loop_dose_active``, ``thiazide_dose_active``) as assignment rules, piecewise constant in
  time when an arm's interventions are exported;
* concentrations and every named flux of :class:`popsim.model.Fluxes` as assignment rules;
* every output of :data:`popsim.observables.OUTPUTS` (``serum_mg``, ``serum_k``, ``urine_mg``,
  ...) under its own id.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from popsim import model, observables
from popsim._version import MODEL_VERSION, __version__
from popsim.model import Concentrations, Fluxes, Inputs, Patient
from popsim.parameters import Params, parameter_specs
from popsim.protocols import Protocol, baseline_protocol

SBML_LEVEL, SBML_VERSION = 3, 2

#: SBML ids of the states, in :data:`popsim.model.STATE_NAMES` order. Only the aldosterone
#: state is renamed, because ``aldosterone`` is the output in ng/L.
STATE_IDS = tuple("aldosterone_relative" if n == "aldosterone" else n
                  for n in model.STATE_NAMES)
#: SBML ids of :class:`popsim.model.Inputs` (the chronic doses keep the names ``loop_dose`` and
#: ``thiazide_dose`` for the patient's own covariates).
INPUT_IDS = ("mg_oral", "k_oral", "na_oral", "mg_iv", "loop_dose_active", "thiazide_dose_active")
INPUT_UNITS = ("mmol/day", "mmol/day", "mmol/day", "mmol/day", "1", "1")
INPUT_DESCRIPTIONS = (
    "Mg swallowed (diet + supplements)", "K swallowed (diet + supplements)", "Na swallowed",
    "Mg infused into the ECF", "loop diuretic acting now (fraction of the maximal effect)",
    "thiazide acting now (fraction of the maximal effect)")
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


# --- units ---------------------------------------------------------------------------------

# popsim unit word -> (SBML base unit kind name, exponent, scale, multiplier)
_UNIT_WORDS = {
    "mmol": ("mole", -3, 1.0), "pmol": ("mole", -12, 1.0), "L": ("litre", 0, 1.0),
    "day": ("second", 0, 86400.0), "kg": ("gram", 3, 1.0), "ng": ("gram", -9, 1.0),
    "mL": ("litre", -3, 1.0), "min": ("second", 0, 60.0),
    "%": ("dimensionless", 0, 0.01), "1": ("dimensionless", 0, 1.0),
}


def _unit_factors(unit: str) -> list[tuple[str, float]]:
    """``"mmol/day/L"`` -> ``[("mmol", 1), ("day", -1), ("L", -1)]``; handles ``1/(a/b)`` and
    the eGFR unit ``mL/min/1.73 m2``."""
    unit = unit.strip()
    if unit == "mL/min/1.73 m2":
        return [("mL", 1), ("min", -1)]  # normalised to 1.73 m2 of body surface
    if unit.startswith("1/(") and unit.endswith(")"):
        return [(w, -e) for w, e in _unit_factors(unit[3:-1])]
    words = unit.split("/")
    out = [(words[0], 1)] + [(w, -1) for w in words[1:]]
    for w, _ in out:
        if w not in _UNIT_WORDS:
            raise ValueError(f"unit {unit!r}: no SBML form for {w!r}")
    return out


def unit_id(unit: str) -> str:
    """SBML UnitDefinition id of a popsim unit string (``"mmol/day/L"`` ->
    ``mmol_per_day_per_L``)."""
    if unit == "1":
        return "dimensionless"
    special = {"%": "percent", "mL/min/1.73 m2": "mL_per_min_per_1p73_m2"}
    if unit in special:
        return special[unit]
    if unit.startswith("1/(") and unit.endswith(")"):
        return "per_" + unit_id(unit[3:-1])
    words = unit.split("/")
    head = "" if words[0] == "1" else words[0].replace("%", "percent")
    tail = "_per_".join(w.replace("%", "percent") for w in words[1:])
    return (head + ("_per_" if head and tail else ("per_" if tail else "")) + tail)


def _add_unit_definition(sbml_model, unit: str) -> str:
    import libsbml

    uid = unit_id(unit)
    if uid == "dimensionless" or sbml_model.getUnitDefinition(uid) is not None:
        return uid
    ud = sbml_model.createUnitDefinition()
    ud.setId(uid)
    ud.setName(unit)
    for word, exponent in _unit_factors(unit):
        if word == "1":
            continue
        kind, scale, multiplier = _UNIT_WORDS[word]
        u = ud.createUnit()
        u.setKind(libsbml.UnitKind_forName(kind))
        u.setExponent(float(exponent))
        u.setScale(scale)
        u.setMultiplier(multiplier)
    if ud.getNumUnits() == 0:
        u = ud.createUnit()
        u.setKind(libsbml.UNIT_KIND_DIMENSIONLESS)
        u.setExponent(1.0)
        u.setScale(0)
        u.setMultiplier(1.0)
    return uid


# --- writing -------------------------------------------------------------------------------

@dataclass
class PatientSpec:
    """What is exported: one patient's parameters, covariates and initial state."""

    params: Params  # scalar fields
    covariates: dict  # the ids of COVARIATES -> value in model units
    y0: np.ndarray  # (state,) steady state, model units
    protocol: Protocol | None = None  # None: the patient's baseline
    title: str = "reference patient"
    notes: tuple[str, ...] = ()  # lines for the model notes (provenance)


def _notes(lines) -> str:
    from xml.sax.saxutils import escape

    body = "".join(f"<p>{escape(line)}</p>" for line in lines)
    return f'<body xmlns="http://www.w3.org/1999/xhtml">{body}</body>'


def _check(status: int, what: str) -> None:
    import libsbml

    if status != libsbml.LIBSBML_OPERATION_SUCCESS:
        reason = libsbml.OperationReturnValue_toString(status)
        raise RuntimeError(f"libSBML: {what} failed ({reason})")


def to_sbml(spec: PatientSpec) -> str:
    """The SBML L3V2 document (a string) of one patient."""
    import libsbml

    sym = symbolic_model(spec.protocol)
    doc = libsbml.SBMLDocument(SBML_LEVEL, SBML_VERSION)
    m = doc.createModel()
    m.setId("popsim_patient")
    m.setName(f"popsim model {MODEL_VERSION}: {spec.title}")
    m.setTimeUnits(_add_unit_definition(m, "day"))
    m.setSubstanceUnits(_add_unit_definition(m, "mmol"))
    m.setVolumeUnits("litre")
    m.setExtentUnits(unit_id("mmol"))
    _check(m.setNotes(_notes([
        f"Virtual patient exported by popsim {__version__} (model version {MODEL_VERSION}) "
        f"on {_dt.datetime.now(_dt.UTC).date().isoformat()}: {spec.title}.",
        "Time in days, amounts in mmol, volumes in L, concentrations in mmol/L. States are "
        "parameters with rate rules; every flux, concentration and clinical output is an "
        "assignment rule generated from popsim's own flux definitions (popsim.sbml).",
        *spec.notes])), "model notes")

    exact = {}  # libSBML writes 15 significant digits; values are rewritten with all 17

    def parameter(pid, value, unit, constant, lines):
        if value is not None:
            exact[pid] = float(value)
        par = m.createParameter()
        _check(par.setId(pid), f"id {pid}")
        _check(par.setConstant(constant), f"constant {pid}")
        if value is not None:
            _check(par.setValue(float(value)), f"value of {pid}")
        _check(par.setUnits(_add_unit_definition(m, unit)), f"units of {pid}")
        lines = [line for line in lines if line]
        if lines:
            _check(par.setNotes(_notes(lines)), f"notes of {pid}")
        return par

    for s in parameter_specs():
        value = float(getattr(spec.params, s.name))
        parameter(s.name, value, s.unit, True,
                  [s.description + f" ({s.unit})", "Source: " + s.source])
    for (name, unit, text) in COVARIATES:
        parameter(name, spec.covariates[name], unit, True, [text + f" ({unit})"])
    for k, (sid, unit, text) in enumerate(zip(STATE_IDS, model.STATE_UNITS,
                                              model.STATE_DESCRIPTIONS, strict=True)):
        parameter(sid, spec.y0[k], unit, False,
                  [f"state: {text} ({unit}); initial value: steady state on baseline intake"])
    for rid, expr in sym.rules.items():
        parameter(rid, None, sym.units[rid], False, [sym.descriptions[rid]
                                                     + f" ({sym.units[rid]})"])
        r = m.createAssignmentRule()
        r.setVariable(rid)
        _check(r.setMath(_parse(to_formula(expr), rid)), f"math of {rid}")
    for sid, expr in sym.rates.items():
        r = m.createRateRule()
        r.setVariable(sid)
        _check(r.setMath(_parse(to_formula(expr), sid)), f"math of d{sid}/dt")
    return _exact_values(libsbml.writeSBMLToString(doc), exact)


def _exact_values(text: str, exact: dict) -> str:
    """Rewrite each ``<parameter id=".." value="..">`` with the shortest repr that reads back as
    the same double (libSBML's writer rounds to 15 significant digits)."""
    import re

    def fix(match):
        tag = match.group(0)
        pid = re.search(r'\bid="([^"]+)"', tag).group(1)
        if pid not in exact:
            return tag
        return re.sub(r'\bvalue="[^"]*"', f'value="{_number(exact[pid])}"', tag)

    return re.sub(r"<parameter\b[^>]*>", fix, text)


def _parse(formula: str, what: str):
    import libsbml

    settings = libsbml.L3ParserSettings()
    settings.setParseLog(libsbml.L3P_PARSE_LOG_AS_LN)
    ast = libsbml.parseL3FormulaWithSettings(formula, settings)
    if ast is None:
        raise RuntimeError(f"libSBML could not parse the formula of {what}: "
                           f"{libsbml.getLastParseL3Error()}")
    return ast


def consistency_errors(sbml_text: str) -> list[str]:
    """libSBML's consistency checks (all categories, units included): the messages of
    severity error or fatal (warnings are not returned)."""
    import libsbml

    doc = libsbml.readSBMLFromString(sbml_text)
    doc.checkConsistency()
    return [doc.getError(i).getMessage().strip() for i in range(doc.getNumErrors())
            if doc.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR]


def write(spec: PatientSpec, out: str | Path, force: bool = False) -> Path:
    """Write the SBML of ``spec`` to ``out`` (refuses to overwrite unless ``force``)."""
    out = Path(out)
    if out.exists() and not force:
        raise ExportError(f"--out {out}: file exists; use --force to overwrite it")
    if out.exists() and out.is_dir():
        raise ExportError(f"--out {out}: is a directory")
    if not out.parent.exists():
        raise ExportError(f"--out {out}: directory {out.parent} does not exist")
    text = to_sbml(spec)
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(text)
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"--out {out}: cannot write ({e.strerror})") from None
    return out


# --- which patient -------------------------------------------------------------------------

def _steady_state(params: Params, covariates: dict) -> np.ndarray:
    import jax
    import jax.numpy as jnp

    from popsim import solve

    with jax.enable_x64(True):
        one = lambda v: jnp.asarray([v], jnp.float64)  # noqa: E731
        batch = jax.tree.map(one, params)
        c = covariates
        pt = model.make_patient(batch, one(c["body_weight"]), one(c["is_female"]) > 0.5,
                                one(c["egfr"]), one(c["mg_intake"]), one(c["k_intake"]),
                                one(c["na_intake"]), one(c["loop_dose"]),
                                one(c["thiazide_dose"]))
        y0, ok = solve.steady_states_with_fallback(batch, pt, solve.SolverSettings())
        if not bool(ok[0]):
            raise ExportError("the patient has no steady state on their baseline intake "
                              "(popsim status steady_state_failed); nothing to export")
        return np.asarray(y0[0], np.float64)


def reference_covariates() -> dict:
    """The reference adult of the parameter table: 70 kg man, eGFR 100 mL/min/1.73 m2,
    300 mg/day Mg, 75 mmol/day K, 150 mmol/day Na, no diuretic."""
    from popsim.parameters import REFERENCE

    return dict(body_weight=REFERENCE["body_weight"], is_female=0.0, egfr=100.0,
                mg_intake=REFERENCE["mg_intake"], k_intake=REFERENCE["k_intake"],
                na_intake=REFERENCE["na_intake"], loop_dose=0.0, thiazide_dose=0.0)


def patient_spec(params: Params, covariates: dict, protocol: Protocol | None = None,
                 title: str = "patient", notes: tuple[str, ...] = ()) -> PatientSpec:
    """A :class:`PatientSpec` with its steady state solved by popsim (Newton, with the
    pseudo-transient fallback)."""
    return PatientSpec(params, dict(covariates), _steady_state(params, covariates), protocol,
                       title, notes)


def cohort_covariates(cohort, i: int) -> dict:
    """The :data:`COVARIATES` of patient ``i`` of a sampled :class:`popsim.population.Cohort`,
    in model units."""
    pt, cov = cohort.patients, cohort.covariates
    value = lambda x: float(np.asarray(x)[i])  # noqa: E731
    return dict(body_weight=value(pt.body_weight), is_female=float(value(cov["sex"]) == 0),
                egfr=value(cov["egfr"]), mg_intake=value(pt.mg_intake),
                k_intake=value(pt.k_intake), na_intake=value(pt.na_intake),
                loop_dose=value(pt.loop_dose), thiazide_dose=value(pt.thiazide_dose))


def cohort_patient(path: str | Path, index: int, param_set, arm: str | None = None):
    """The :class:`PatientSpec` of patient ``index`` of the cohort file ``path``: re-drawn from
    the file's config and seed (each patient has their own random streams), checked against the
    covariates stored in the file. ``param_set`` must be the parameter set of the run (its
    SHA-256 fingerprint is compared with the file's)."""
    import jax

    from popsim import config as cfg
    from popsim import store
    from popsim.population import sample_cohort
    from popsim.run import params_fingerprint, protocols_for

    try:
        attrs = store.read_attrs(path)
        cohort = store.open_cohort(path)
    except store.StoreError as e:
        raise ExportError(f"--cohort {path}: {e}") from None
    if str(attrs.get("model_version")) != MODEL_VERSION:
        raise ExportError(f"--cohort {path}: written by model version "
                          f"{attrs.get('model_version')!r}; this popsim exports model version "
                          f"{MODEL_VERSION}")
    n = int(attrs["n_patients"])
    if not 0 <= index < n:
        raise ExportError(f"--patient {index}: outside the cohort of {path} "
                          f"(allowed: 0 .. {n - 1})")
    if str(attrs.get("params_fingerprint")) != params_fingerprint(param_set.params,
                                                                  param_set.cvs):
        raise ExportError(f"--cohort {path}: was run with other parameters "
                          f"(params_source {attrs.get('params_source')!r}); pass the same "
                          "--params")
    config = cfg.parse_config(__import__("tomllib").loads(str(attrs["config"])))
    with jax.enable_x64(True):
        drawn = sample_cohort(config.population, int(attrs["seed"]), index, 1,
                              param_set.params, param_set.cvs)
        stored = float(cohort.covariate("egfr")[index])
        if not np.isclose(float(drawn.covariates["egfr"][0]), stored, rtol=1e-12):
            raise ExportError(f"--cohort {path}: patient {index}'s stored eGFR ({stored:g}) "
                              "does not match its config and seed; the file was not written "
                              "by this popsim version")
        params = jax.tree.map(lambda x: float(np.asarray(x)[0]), drawn.params)
        covariates = cohort_covariates(drawn, 0)
        protocol = None
        if arm is not None:
            names = [a.name for a in config.arms]
            if arm not in names:
                raise ExportError(f"--arm {arm!r}: not an arm of {path} (allowed: "
                                  f"{', '.join(names)})")
            protocol = protocols_for(config, jax.numpy.float64)[names.index(arm)]
    notes = (f"Patient {index} of cohort file {Path(path).name} (seed {attrs['seed']}, "
             f"{n} patients); parameters: {attrs.get('params_source')}.",
             "Covariates: " + ", ".join(f"{k} = {v:g}" for k, v in covariates.items()),
             f"Interventions: arm {arm!r}." if arm else "No intervention (baseline).")
    return patient_spec(params, covariates, protocol, f"patient {index} of {Path(path).name}",
                        notes)
