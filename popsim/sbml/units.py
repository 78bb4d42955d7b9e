"""Units of the SBML export: popsim's unit strings as SBML UnitDefinitions, and the units of the
model's named quantities read from where the model states them.

A popsim unit string is a product of quotients of unit words, with parentheses
(``"mmol/day/L"``, ``"1/(mmol/L)"``, ``"(mmol/L)/(mmol/L)"``); ``"1"`` is dimensionless and
``"mL/min/1.73 m2"`` the eGFR unit. The quantities of :mod:`popsim.model` that are not
parameters (the fields of ``Patient``, ``Fluxes`` and ``Derived``) state their unit in a
trailing comment of their field, so :func:`field_units` reads them there: the model's source is
the one place that says what unit a flux has.
"""

from __future__ import annotations

import ast
import inspect
import io
import re
import textwrap
import tokenize

#: popsim unit word -> (SBML base unit kind, scale, multiplier): the unit is
#: ``multiplier * 10**scale * kind``
UNIT_WORDS = {
    "mol": ("mole", 0, 1.0), "mmol": ("mole", -3, 1.0), "pmol": ("mole", -12, 1.0),
    "L": ("litre", 0, 1.0), "mL": ("litre", -3, 1.0), "day": ("second", 0, 86400.0),
    "min": ("second", 0, 60.0), "kg": ("gram", 3, 1.0), "ng": ("gram", -9, 1.0),
    "mmHg": ("pascal", 0, 133.322387415), "%": ("dimensionless", 0, 0.01),
    "1": ("dimensionless", 0, 1.0),
}
EGFR_UNIT = "mL/min/1.73 m2"  # normalised to 1.73 m2 of body surface
_DIMENSIONLESS_WORDS = ("dimensionless", "fraction")  # a comment starting so means unit "1"


def unit_factors(unit: str) -> list[tuple[str, int]]:
    """``"mmol/day/L"`` -> ``[("mmol", 1), ("day", -1), ("L", -1)]``: unit words with integer
    exponents, equal words merged, dimensionless ``1`` dropped (``[]`` is dimensionless).

    Raises ``ValueError`` naming the word that has no SBML form."""
    unit = unit.strip()
    if unit == EGFR_UNIT:
        return [("mL", 1), ("min", -1)]
    merged: dict[str, int] = {}
    for word, exponent in _parse_quotient(unit, unit):
        if word != "1":
            merged[word] = merged.get(word, 0) + exponent
    return [(w, e) for w, e in merged.items() if e != 0]


def _parse_quotient(text: str, whole: str) -> list[tuple[str, int]]:
    """``a/b/(c/d)`` -> factors: the first term in the numerator, every later one divides."""
    terms, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == "/" and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    out = []
    for k, term in enumerate(terms):
        sign = 1 if k == 0 else -1
        term = term.strip()
        if term.startswith("(") and term.endswith(")"):
            out += [(w, sign * e) for w, e in _parse_quotient(term[1:-1], whole)]
        elif term in UNIT_WORDS:
            out.append((term, sign))
        else:
            raise ValueError(f"unit {whole!r}: no SBML form for {term!r} (known words: "
                             f"{', '.join(UNIT_WORDS)})")
    return out


def is_unit(text: str) -> bool:
    """Whether ``text`` is a unit string :func:`unit_factors` understands."""
    try:
        unit_factors(text)
    except ValueError:
        return False
    return bool(text.strip())


def unit_id(unit: str) -> str:
    """SBML UnitDefinition id of a popsim unit string: ``"mmol/day/L"`` ->
    ``mmol_per_day_per_L``, ``"1/(mmol/L)"`` -> ``L_per_mmol``, ``"1"`` -> ``dimensionless``."""
    if unit.strip() == EGFR_UNIT:
        return "mL_per_min_per_1p73_m2"
    factors = unit_factors(unit)
    if not factors:
        return "dimensionless" if unit.strip() != "%" else "percent"

    def word(w, e):
        return ("percent" if w == "%" else w) + ("" if abs(e) == 1 else str(abs(e)))

    top = "_".join(word(w, e) for w, e in factors if e > 0)
    bottom = "_per_".join(word(w, e) for w, e in factors if e < 0)
    if not bottom:
        return top
    return (top + "_per_" if top else "per_") + bottom


def add_unit_definition(sbml_model, unit: str) -> str:
    """Define ``unit`` in the libSBML model (once) and return its id."""
    import libsbml

    uid = unit_id(unit)
    if uid == "dimensionless" or sbml_model.getUnitDefinition(uid) is not None:
        return uid
    ud = sbml_model.createUnitDefinition()
    ud.setId(uid)
    ud.setName(unit)
    for word, exponent in unit_factors(unit):
        kind, scale, multiplier = UNIT_WORDS[word]
        u = ud.createUnit()
        u.setKind(libsbml.UnitKind_forName(kind))
        u.setExponent(float(exponent))
        u.setScale(scale)
        u.setMultiplier(multiplier)
    return uid


# --- units stated in the model's source --------------------------------------------------------

def field_comments(cls) -> dict[str, str]:
    """The trailing comment of each annotated field of a class (``name: type  # comment``),
    read from its source; a field without one maps to ``""``."""
    source = textwrap.dedent(inspect.getsource(cls))
    comments = {tok.start[0]: tok.string.lstrip("#").strip()
                for tok in tokenize.generate_tokens(io.StringIO(source).readline)
                if tok.type == tokenize.COMMENT}
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.ClassDef)
    return {f.target.id: comments.get(f.end_lineno or f.lineno, "") for f in node.body
            if isinstance(f, ast.AnnAssign) and isinstance(f.target, ast.Name)}


def comment_unit(comment: str) -> str | None:
    """The unit a field comment states, or ``None``.

    The comment is read in parts separated by commas and colons; the first part that starts
    with a unit gives it (``"reference ECF volume, L (...)"`` -> ``L``). ``dimensionless`` and
    ``fraction`` mean ``1``. ``"<unit> ... per <unit> ..."`` divides (``"L/day per L cell
    water"`` -> ``L/day/L``; a quantity per the same unit is ``1``)."""
    for part in re.split(r"[,:]", comment):
        words = part.split()
        if not words:
            continue
        if words[0] in _DIMENSIONLESS_WORDS:
            return "1"
        if not is_unit(words[0]):
            continue
        unit = words[0]
        if "per" in words:
            after = words[words.index("per") + 1:]
            if after and is_unit(after[0]):
                return "1" if after[0] == unit else f"{unit}/{after[0]}"
        return unit
    return None


def comment_text(comment: str) -> str:
    """A field comment without the part that states its unit (``"1: weak cell Mg sites per
    free Mg"`` -> ``"weak cell Mg sites per free Mg"``; ``"baseline dietary Mg, mmol/day"`` ->
    ``"baseline dietary Mg"``; ``"pmol/L"`` -> ``""``)."""
    parts = re.split(r"[,:]", comment)
    kept = [p.strip() for p in parts
            if p.strip() and not (len(p.split()) == 1 and (is_unit(p.strip())
                                                            or p.strip() in _DIMENSIONLESS_WORDS))]
    return ", ".join(kept)


def field_units(cls, default: str | None = None) -> dict[str, str]:
    """Field name -> unit for a class whose fields state their units in trailing comments
    (:func:`comment_unit`); ``default`` for a field whose comment states none (e.g. the fluxes,
    "mmol/day unless stated"). Raises ``ValueError`` for a field with neither."""
    out = {}
    for name, comment in field_comments(cls).items():
        unit = comment_unit(comment)
        if unit is None:
            if default is None:
                raise ValueError(f"{cls.__qualname__}.{name}: its comment ({comment!r}) states "
                                 "no unit; start it with one (e.g. '# mmol/day, ...')")
            unit = default
        out[name] = unit
    return out


def default_unit(cls) -> str | None:
    """The unit a class docstring names as the default (``"...; mmol/day unless stated."``)."""
    match = re.search(r"(\S+) unless stated", inspect.getdoc(cls) or "")
    return match.group(1) if match and is_unit(match.group(1)) else None
