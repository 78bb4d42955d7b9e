"""The parameter table of model v2: every constant with its unit, meaning, provenance, bounds and
between-patient variability. Imports no JAX.

:class:`Params` is the one definition: each field's default is its typical value, and its
metadata holds the unit, a description, the **provenance** and its source, the between-patient
coefficient of variation (``iiv``; 0 means shared by every patient) and physical bounds:

* ``literature``: a value measured or reported in a named source (``source`` cites it);
* ``assumed``: no direct measurement; ``source`` says in one line why the value is reasonable;
* ``fitted``: estimated by a calibration against named studies; parameters are fitted in a
  parameter set (``popsim calibrate``), whose fit record names the studies, and
  ``docs/PARAMETERS.md`` shows which parameters the shipped set fitted.

Balancing constants (the CD's Na reabsorption, the distal K secretion clearance, the gut's Mg
transport capacity, ...) are not parameters: :func:`popsim.model.derived` computes them from
these values so that the reference adult (:data:`popsim.facts.REFERENCE_ADULT`) is at steady
state at the reference concentrations below (the way Stadt et al. 2022 set their muscle K
permeability). Changing a parameter therefore never breaks the reference balance.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from popsim.parameters._body import BodyParams
from popsim.parameters._hormones import HormoneParams
from popsim.parameters._kidney import KidneyParams
from popsim.parameters._spec import PROVENANCES, ParameterSpec

__all__ = ["Params", "ParameterSpec", "PROVENANCES", "parameter_specs"]


@dataclass(frozen=True)
class Params(HormoneParams, KidneyParams, BodyParams):
    """Model v2 parameters (typical values). Field names carry the meaning; units and provenance
    in the metadata (:func:`parameter_specs`).

    A plain frozen dataclass, so configs and parameter files are validated without JAX;
    :mod:`popsim.model` registers it as a JAX pytree of floats (under ``jax.vmap`` every field
    may carry a patient axis). The fields are declared by topic in ``_body``, ``_kidney`` and
    ``_hormones`` (in that order).
    """


def parameter_specs() -> tuple[ParameterSpec, ...]:
    """Every parameter of :class:`Params` with its metadata, in declaration order."""
    specs = []
    for f in dataclasses.fields(Params):
        m = f.metadata
        specs.append(ParameterSpec(f.name, float(f.default), m["unit"], m["description"],  # type: ignore[arg-type]
                                   m["provenance"], m["source"], m["iiv"], m["lower"],
                                   m["upper"]))
    return tuple(specs)
