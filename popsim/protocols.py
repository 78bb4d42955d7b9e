"""Interventions compiled once into fixed-size, piecewise-constant arrays the vector field reads.

A :class:`Protocol` splits time into ``n_segments`` intervals at ``breakpoints`` (days). In each
segment every input channel is constant. Segments are closed on the left: the inputs at a
breakpoint, and so the fluxes reported at a saved time that falls on one, are those of the
segment that starts there (the right limit): on an intervention's ``start_day`` it is on, on its
``end_day`` it is off. An intervention lasting to the end of the simulation stays on past it
(``compile_segments(horizon=...)``), so it is on at the last saved time. Within a segment the
three diet channels either keep the patient's baseline intake or replace it (``replace`` mask),
the other channels add to the baseline. Arrays have static shapes, so changing doses or days never
recompiles the solve; the breakpoints are passed to the step-size controller (``jump_ts``) so the
solver never steps across a dose change.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from popsim.model import Inputs, Patient
from popsim.physiology._math import clip, select

# Replace-type channels (a `diet` intervention sets them for everyone), in this order:
DIET_CHANNELS = ("mg_intake", "k_intake", "na_intake")  # mmol/day
# Additive channels, in this order:
ADD_CHANNELS = ("mg_oral", "k_oral", "mg_iv", "loop_dose", "thiazide_dose")
ADD_UNITS = ("mmol/day", "mmol/day", "mmol/day", "1", "1")


class Protocol(eqx.Module):
    """Piecewise-constant inputs of one arm (arrays; a leading arm axis may be added)."""

    breakpoints: Float[Array, " segment_plus_1"]  # days, increasing; last one is +inf
    diet_replace: Bool[Array, "segment 3"]
    diet_value: Float[Array, "segment 3"]  # mmol/day
    added: Float[Array, "segment 5"]  # mmol/day or dose fraction

    @property
    def n_segments(self) -> int:
        return self.added.shape[-2]

    def inputs(self, t, patient: Patient) -> Inputs:
        """The inputs acting on ``patient`` at time ``t`` (days)."""
        seg = jnp.clip(jnp.searchsorted(self.breakpoints, t, side="right") - 1, 0,
                       self.n_segments - 1)
        return segment_inputs(self.diet_replace[seg], self.diet_value[seg], self.added[seg],
                              patient)

    def symbolic_inputs(self, t, patient: Patient) -> Inputs:
        """:meth:`inputs` as SymPy expressions of the time symbol ``t`` (one protocol, no arm
        axis): each channel is a ``Piecewise`` over the segments (used by the SBML export)."""
        import sympy

        bounds = np.asarray(self.breakpoints, float)
        repl, val, add = (np.asarray(a) for a in (self.diet_replace, self.diet_value,
                                                   self.added))
        per_segment = [segment_inputs([bool(r) for r in repl[k]], [float(v) for v in val[k]],
                                      [float(a) for a in add[k]], patient)
                       for k in range(self.n_segments)]
        channels = []
        for j in range(len(Inputs._fields)):
            pieces = []  # (value, end of its time span); neighbours with equal values merged
            for k in range(self.n_segments):
                value = per_segment[k][j]
                if pieces and pieces[-1][0] == value:
                    pieces[-1] = (value, bounds[k + 1])
                else:
                    pieces.append((value, bounds[k + 1]))
            conds = [t < float(end) for _, end in pieces[:-1]] + [True]
            channels.append(sympy.Piecewise(*zip([v for v, _ in pieces], conds, strict=True))
                            if len(pieces) > 1 else pieces[0][0])
        return Inputs(*channels)

    def jump_times(self):
        """Finite breakpoints (days) for the step-size controller (``None`` if there are none)."""
        return self.breakpoints[1:-1] if self.n_segments > 1 else None


def segment_inputs(replace, value, added, patient: Patient) -> Inputs:
    """The inputs during one segment: diet channels replaced where ``replace`` is set, the
    additive channels added to the patient's baseline, doses kept within 0..1."""
    return Inputs(
        mg_oral=select(replace[0], value[0], patient.mg_intake) + added[0],
        k_oral=select(replace[1], value[1], patient.k_intake) + added[1],
        na_oral=select(replace[2], value[2], patient.na_intake),
        mg_iv=added[2],
        loop_dose=clip(patient.loop_dose + added[3], 0.0, 1.0),
        thiazide_dose=clip(patient.thiazide_dose + added[4], 0.0, 1.0),
    )


def baseline_protocol(n_segments: int = 1, dtype=jnp.float64) -> Protocol:
    """No intervention: every patient on their own baseline for all time."""
    return compile_segments([], n_segments=n_segments, dtype=dtype)


def compile_segments(interventions, n_segments: int | None = None, dtype=jnp.float64,
                     horizon: float | None = None) -> Protocol:
    """Compile interventions into a :class:`Protocol`.

    Args:
        interventions: iterable of ``(start_day, end_day, diet, added)`` where ``diet`` maps a name
            of :data:`DIET_CHANNELS` to mmol/day and ``added`` maps a name of
            :data:`ADD_CHANNELS` to its amount. Overlapping interventions add; overlapping diets
            replace in the order given.
        n_segments: pad to this many segments (static shape shared by all arms); by default the
            number the interventions need.
        horizon: the end of the simulation (days). An intervention ending there stays on after
            it, so it is active at the last saved time; the horizon is still a breakpoint (the
            step-size controller stops there as it would at any intervention's end).
    """
    interventions = [(start, np.inf if horizon is not None and end >= horizon else end,
                      diet, added) for start, end, diet, added in interventions]
    cuts = sorted({0.0} | {float(i[0]) for i in interventions}
                  | {float(i[1]) for i in interventions})
    cuts = [c for c in cuts if 0.0 <= c < np.inf]
    if horizon is not None and any(i[1] == np.inf for i in interventions):
        cuts = sorted(set(cuts) | {float(horizon)})
    need = len(cuts)
    n = need if n_segments is None else n_segments
    if n < need:
        raise ValueError(f"protocol needs {need} segments but only {n} are allowed")
    # Pad with empty segments placed after the last real breakpoint (never reached before +inf).
    starts = cuts + [cuts[-1] + 1e9 * (k + 1) for k in range(n - need)]
    repl = np.zeros((n, len(DIET_CHANNELS)), bool)
    val = np.zeros((n, len(DIET_CHANNELS)))
    add = np.zeros((n, len(ADD_CHANNELS)))
    for s, t0 in enumerate(starts[:need]):
        for start, end, diet, added in interventions:
            if start <= t0 < end:
                for name, v in diet.items():
                    j = DIET_CHANNELS.index(name)
                    repl[s, j], val[s, j] = True, v
                for name, v in added.items():
                    add[s, ADD_CHANNELS.index(name)] += v
    # The padding segments repeat the last real segment (which runs to +inf in practice).
    for s in range(need, n):
        repl[s], val[s], add[s] = repl[need - 1], val[need - 1], add[need - 1]
    breakpoints = np.array(starts + [np.inf])
    return Protocol(jnp.asarray(breakpoints, dtype), jnp.asarray(repl), jnp.asarray(val, dtype),
                    jnp.asarray(add, dtype))
