"""Parameter metadata: what every field of :class:`popsim.parameters.Params` declares (unit,
meaning, provenance and its source, between-patient variability, bounds)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

PROVENANCES = ("literature", "assumed", "fitted")

@dataclass(frozen=True)
class ParameterSpec:
    """Metadata of one model parameter."""

    name: str
    value: float
    unit: str
    description: str
    provenance: str  # one of PROVENANCES
    source: str  # citation (literature), reason (assumed) or the studies fitted to
    iiv: float  # between-patient coefficient of variation of a log-normal (0 = shared)
    lower: float  # physical bounds (calibration and parameter files respect them)
    upper: float


def _p(value, unit, description, provenance, source, *, iiv=0.0, lower=0.0,
       upper=math.inf):
    assert provenance in PROVENANCES, provenance
    meta = dict(unit=unit, description=description, provenance=provenance, source=source,
                iiv=iiv, lower=lower, upper=upper)
    return dataclasses.field(default=float(value), metadata=meta)


def lit(value, unit, description, source, **kw):
    """A value read in ``source``."""
    return _p(value, unit, description, "literature", source, **kw)


def assumed(value, unit, description, reason, **kw):
    """A value without a direct measurement; ``reason`` says why it is reasonable."""
    return _p(value, unit, description, "assumed", reason, **kw)


LN2 = math.log(2.0)
