"""SBML units and the SBML L3V2 document of one patient (libSBML)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from popsim import model
from popsim._version import MODEL_VERSION, __version__
from popsim.options import Message, Option
from popsim.parameters import Params, parameter_specs
from popsim.physiology._math import symbolic_functions
from popsim.protocols import Protocol
from popsim.sbml.symbolic import (
    COVARIATES,
    SBML_LEVEL,
    SBML_VERSION,
    STATE_IDS,
    ExportError,
    _number,
    symbolic_model,
    to_formula,
)
from popsim.sbml.units import add_unit_definition as _add_unit_definition
from popsim.sbml.units import unit_id

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
    _model_header(m, spec)
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

    _function_definitions(m)
    for s in parameter_specs():
        value = float(getattr(spec.params, s.name))
        parameter(s.name, value, s.unit, True,
                  [s.description + f" ({s.unit})", f"Provenance: {s.provenance}.",
                   "Source: " + s.source])
    for c in COVARIATES:
        parameter(c.name, spec.covariates[c.name], c.unit, True,
                  [c.description + f" ({c.unit})"])
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


def _model_header(m, spec: PatientSpec) -> None:
    """Id, name, units and notes of the model."""
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


def _function_definitions(m) -> None:
    """The helpers that stay functions in the formulas (:func:`symbolic_functions`)."""
    for name, (args, body) in symbolic_functions().items():
        f = m.createFunctionDefinition()
        _check(f.setId(name), f"function {name}")
        lam = f"lambda({', '.join(a.name for a in args)}, {to_formula(body)})"
        _check(f.setMath(_parse(lam, name)), f"math of function {name}")


def _exact_values(text: str, exact: dict) -> str:
    """Rewrite each ``<parameter id=".." value="..">`` with the shortest repr that reads back as
    the same double (libSBML's writer rounds to 15 significant digits)."""
    import re

    def fix(match):
        tag = match.group(0)
        found = re.search(r'\bid="([^"]+)"', tag)
        assert found is not None  # an SBML parameter always has an id
        pid = found.group(1)
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
    given = Option("out", out)
    if out.exists() and not force:
        raise ExportError(Message(given, ": file exists; use ", Option("force", True),
                                  " to overwrite it"))
    if out.exists() and out.is_dir():
        raise ExportError(Message(given, ": is a directory"))
    if not out.parent.exists():
        raise ExportError(Message(given, f": directory {out.parent} does not exist"))
    text = to_sbml(spec)
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(text)
        tmp.replace(out)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ExportError(Message(given, f": cannot write ({e.strerror})")) from None
    return out


