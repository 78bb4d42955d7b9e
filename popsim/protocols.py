"""Interventions compiled once into fixed-size, piecewise-constant arrays the vector field reads.

A :class:`Protocol` splits time into ``n_segments`` intervals at ``breakpoints`` (days). In each
segment every input channel of :mod:`popsim.inputs` is constant: it starts from the patient's
baseline (or 0), a diet may replace that baseline, every active intervention adds its amount,
and dose fractions are kept within 0..1. Segments are closed on the left: the inputs at a
breakpoint, and so the fluxes reported at a saved time that falls on one, are those of the
segment that starts there (the right limit): on an intervention's ``start_day`` it is on, on its
``end_day`` it is off. An intervention lasting to the end of the simulation stays on past it
(``horizon``), so it is on at the last saved time.

Arrays have static shapes, so changing doses or days never recompiles the solve; the breakpoints
are passed to the step-size controller (``jump_ts``) so the solver never steps across a dose
change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from popsim.inputs import CHANNELS, Inputs
from popsim.interventions import Effect, Intervention, check_effects
from popsim.model import Patient
from popsim.physiology._math import clip, select

N_CHANNELS = len(CHANNELS)


class Protocol(eqx.Module):
    """Piecewise-constant inputs of one arm (arrays; a leading arm axis may be added)."""

    breakpoints: Float[Array, " segment_plus_1"]  # days, increasing; last one is +inf
    replace: Bool[Array, "segment channel"]  # the channel's baseline is replaced ...
    value: Float[Array, "segment channel"]  # ... by this (model units)
    added: Float[Array, "segment channel"]  # added to the channel (model units)

    @property
    def n_segments(self) -> int:
        return self.added.shape[-2]

    def inputs(self, t, patient: Patient) -> Inputs:
        """The inputs acting on ``patient`` at time ``t`` (days)."""
        seg = jnp.clip(jnp.searchsorted(self.breakpoints, t, side="right") - 1, 0,
                       self.n_segments - 1)
        return segment_inputs(self.replace[seg], self.value[seg], self.added[seg], patient)

    def symbolic_inputs(self, t, patient: Patient) -> Inputs:
        """:meth:`inputs` as SymPy expressions of the time symbol ``t`` (one protocol, no arm
        axis): each channel is a ``Piecewise`` over the segments (used by the SBML export)."""
        import sympy

        bounds = np.asarray(self.breakpoints, float)
        repl, val, add = (np.asarray(a) for a in (self.replace, self.value, self.added))
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
    """The inputs during one segment, channel by channel (:class:`popsim.inputs.Channel`): the
    baseline, replaced where ``replace`` is set, plus what is added, within 0..1 for
    fractions."""
    out = []
    for j, c in enumerate(CHANNELS):
        base = 0.0 if c.baseline is None else getattr(patient, c.baseline)
        v = select(replace[j], value[j], base) + added[j]
        out.append(clip(v, 0.0, 1.0) if c.fraction else v)
    return Inputs(*out)


def baseline_protocol(n_segments: int = 1, dtype=jnp.float64) -> Protocol:
    """No intervention: every patient on their own baseline for all time."""
    return compile_segments([], n_segments=n_segments, dtype=dtype)


def compile_segments(items: Iterable[tuple[float, float, Sequence[Effect]]],
                     n_segments: int | None = None, dtype=jnp.float64,
                     horizon: float | None = None) -> Protocol:
    """Compile timed effects into a :class:`Protocol`.

    Args:
        items: ``(start_day, end_day, effects)`` triples. Overlapping additions add; overlapping
            replacements apply in the order given.
        n_segments: pad to this many segments (static shape shared by all arms); by default the
            number the items need.
        horizon: the end of the simulation (days). An item ending there stays on after it, so it
            is active at the last saved time; the horizon is still a breakpoint (the step-size
            controller stops there as it would at any intervention's end).
    """
    items = [(float(start), np.inf if horizon is not None and end >= horizon else float(end),
              list(effects)) for start, end, effects in items]
    for _, _, effects in items:
        check_effects(effects, "protocol")
    cuts = sorted({0.0} | {i[0] for i in items} | {i[1] for i in items})
    cuts = [c for c in cuts if 0.0 <= c < np.inf]
    if horizon is not None and any(i[1] == np.inf for i in items):
        cuts = sorted(set(cuts) | {float(horizon)})
    need = len(cuts)
    n = need if n_segments is None else n_segments
    if n < need:
        raise ValueError(f"protocol needs {need} segments but only {n} are allowed")
    # Pad with empty segments placed after the last real breakpoint (never reached before +inf).
    starts = cuts + [cuts[-1] + 1e9 * (k + 1) for k in range(n - need)]
    index = {c.name: j for j, c in enumerate(CHANNELS)}
    repl = np.zeros((n, N_CHANNELS), bool)
    val = np.zeros((n, N_CHANNELS))
    add = np.zeros((n, N_CHANNELS))
    for s, t0 in enumerate(starts[:need]):
        for start, end, effects in items:
            if start <= t0 < end:
                for e in effects:
                    j = index[e.channel]
                    if e.replace:
                        repl[s, j], val[s, j] = True, e.value
                    else:
                        add[s, j] += e.value
    # The padding segments repeat the last real segment (which runs to +inf in practice).
    for s in range(need, n):
        repl[s], val[s], add[s] = repl[need - 1], val[need - 1], add[need - 1]
    breakpoints = np.array(starts + [np.inf])
    return Protocol(jnp.asarray(breakpoints, dtype), jnp.asarray(repl), jnp.asarray(val, dtype),
                    jnp.asarray(add, dtype))


def arm_protocol(interventions: Sequence[Intervention], days: float, n_segments: int | None,
                 dtype=jnp.float64) -> Protocol:
    """Compile an arm's interventions (each converts itself to model units) into a protocol
    for a simulation of ``days`` days."""
    items = [(iv.start_day, iv.end(days), iv.effects(days)) for iv in interventions]
    return compile_segments(items, n_segments=n_segments, dtype=dtype, horizon=days)


def n_segments_for(arms_interventions: Iterable[Sequence[Intervention]]) -> int:
    """The number of segments every arm's protocol is padded to: what the busiest arm can need
    (two breakpoints per intervention), rounded up to a power of 2 (fewer distinct compiled
    programs)."""
    need = max([2 * len(ivs) + 1 for ivs in arms_interventions] + [1])
    return 1 << (need - 1).bit_length()


def protocols_for(arms, days: float, dtype=jnp.float64,
                  n_segments: int | None = None) -> list[Protocol]:
    """One protocol per arm (:class:`popsim.config.Arm`), all with the same static number of
    segments: ``n_segments``, or :func:`n_segments_for` the arms."""
    n_seg = n_segments_for(a.intervention for a in arms) if n_segments is None else n_segments
    return [arm_protocol(a.intervention, days, n_seg, dtype) for a in arms]
