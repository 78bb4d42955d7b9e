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

Doses as trials give them (:class:`popsim.interventions.Dosed`) use the same segments: a
weight-based dose is an amount per kg (``added_per_kg``, times the patient's body weight); a
periodic dose is one segment per administration (its :meth:`~popsim.interventions.Intervention.
schedule`), so a pulse starts and stops exactly at a breakpoint the controller stops at; a
titrated dose is a per-patient amount (carried by the solve from visit to visit,
:func:`popsim.solve.simulate_titrated`) times a per-segment factor (:class:`Titrated`). The dose
in force of the kinds that are weight-based or titrated is an output, ``dose_<kind>``
(:meth:`Protocol.doses`). Arrays a protocol does not use are ``None``, so protocols without
these doses compile to the programs they always did.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from popsim.inputs import CHANNELS, Inputs
from popsim.interventions import Dosed, Effect, Intervention, check_effects, dose_outputs
from popsim.model import Patient
from popsim.physiology._math import clip, select

N_CHANNELS = len(CHANNELS)


class Titrated(eqx.Module):
    """The titrated intervention of an arm (:class:`popsim.interventions.Titration`): arrays of
    the arm, the dose itself is each patient's (config units, per kg if weight-based)."""

    factor: Float[Array, " segment"]  # the dose's multiplier in each segment (0: not acting)
    window: Float[Array, " segment"]  # 1 from start_day to end_day, else 0 (its dose output)
    channel: Float[Array, " channel"]  # model units per config unit, on its channel
    per_kg: Float[Array, ""]  # 1: the dose is per kg of body weight
    visits: Float[Array, " visit"]  # days the dose is adjusted
    first_dose: Float[Array, ""]
    step: Float[Array, ""]
    max_dose: Float[Array, ""]
    low: Float[Array, ""]  # target range of the output (+-inf: no such end)
    high: Float[Array, ""]
    sign: Float[Array, ""]  # +1: the dose raises the output, -1: it lowers it
    output: str = eqx.field(static=True)
    track: int = eqx.field(static=True, default=-1)  # index of its dose output (-1: none)

    def scale(self, patient: Patient):
        """Body weight (kg) for a weight-based dose, else 1."""
        return select(self.per_kg > 0, patient.body_weight, jnp.ones_like(patient.body_weight))

    def adjust(self, dose, value):
        """The dose after a visit where the output is ``value``: ``step`` toward the target,
        within ``0 .. max_dose`` (a NaN value leaves it unchanged)."""
        move = (value < self.low).astype(dose.dtype) - (value > self.high).astype(dose.dtype)
        return jnp.clip(dose + self.sign * self.step * move, 0.0, self.max_dose)


class Protocol(eqx.Module):
    """Piecewise-constant inputs of one arm (arrays; a leading arm axis may be added)."""

    breakpoints: Float[Array, " segment_plus_1"]  # days, increasing; last one is +inf
    replace: Bool[Array, "segment channel"]  # the channel's baseline is replaced ...
    value: Float[Array, "segment channel"]  # ... by this (model units)
    added: Float[Array, "segment channel"]  # added to the channel (model units)
    added_per_kg: Float[Array, "segment channel"] | None = None  # added per kg body weight
    titration: Titrated | None = None
    dose: Float[Array, "segment track"] | None = None  # dose in force, config units
    dose_per_kg: Float[Array, "segment track"] | None = None  # per kg body weight
    dose_names: tuple[str, ...] = eqx.field(static=True, default=())  # dose_<kind> outputs

    @property
    def n_segments(self) -> int:
        return self.added.shape[-2]

    def segment(self, t):
        """The segment in force at time ``t`` (days; segments are closed on the left)."""
        return jnp.clip(jnp.searchsorted(self.breakpoints, t, side="right") - 1, 0,
                        self.n_segments - 1)

    def inputs(self, t, patient: Patient, dose=None) -> Inputs:
        """The inputs acting on ``patient`` at time ``t`` (days); ``dose``: the patient's
        titrated dose in force (config units), with a titrated intervention."""
        seg = self.segment(t)
        added = self.added[seg]
        if self.added_per_kg is not None:
            added = added + self.added_per_kg[seg] * patient.body_weight
        if self.titration is not None:
            tt = self.titration
            assert dose is not None, "a titrated protocol needs the patient's dose"
            added = added + tt.factor[seg] * dose * tt.scale(patient) * tt.channel
        return segment_inputs(self.replace[seg], self.value[seg], added, patient)

    def doses(self, t, patient: Patient, dose=None) -> dict:
        """The ``dose_<kind>`` outputs at time ``t``: the daily dose of each kind in force
        (config units, weight-based doses times the body weight)."""
        if not self.dose_names:
            return {}
        assert self.dose is not None and self.dose_per_kg is not None
        seg = self.segment(t)
        out = {}
        for k, name in enumerate(self.dose_names):
            v = self.dose[seg, k] + self.dose_per_kg[seg, k] * patient.body_weight
            if self.titration is not None and self.titration.track == k:
                tt = self.titration
                assert dose is not None, "a titrated protocol needs the patient's dose"
                v = v + tt.window[seg] * dose * tt.scale(patient)
            out[name] = v
        return out

    def symbolic_inputs(self, t, patient: Patient) -> Inputs:
        """:meth:`inputs` as SymPy expressions of the time symbol ``t`` (one protocol, no arm
        axis): each channel is a ``Piecewise`` over the segments (used by the SBML export).
        A titrated dose has no such form (its doses are decided during the solve)."""
        import sympy

        if self.titration is not None:
            raise ValueError("a titrated dose cannot be written as a function of time")
        bounds = np.asarray(self.breakpoints, float)
        repl, val, add = (np.asarray(a) for a in (self.replace, self.value, self.added))
        per_kg = (np.zeros_like(add) if self.added_per_kg is None
                  else np.asarray(self.added_per_kg))
        per_segment = [segment_inputs([bool(r) for r in repl[k]], [float(v) for v in val[k]],
                                      [float(a) + (float(w) * patient.body_weight if w else 0.0)
                                       for a, w in zip(add[k], per_kg[k], strict=True)],
                                      patient)
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


def _cuts(items, horizon, extra=()) -> list[float]:
    """Segment starts (days): 0, every item's start and end, ``extra`` times, and the horizon
    when an item lasts past it."""
    cuts = sorted({0.0} | {i[0] for i in items} | {i[1] for i in items} | set(extra))
    cuts = [c for c in cuts if 0.0 <= c < np.inf]
    if horizon is not None and any(i[1] == np.inf for i in items):
        cuts = sorted(set(cuts) | {float(horizon)})
    return cuts


def _to_horizon(start, end, horizon) -> tuple[float, float]:
    """A span ending at (or past) the horizon lasts for ever (on at the last saved time)."""
    return float(start), np.inf if horizon is not None and end >= horizon else float(end)


def compile_segments(items: Iterable[tuple[float, float, Sequence[Effect]]],
                     n_segments: int | None = None, dtype=jnp.float64,
                     horizon: float | None = None, extra_cuts: Sequence[float] = (),
                     per_kg: bool | None = None) -> Protocol:
    """Compile timed effects into a :class:`Protocol`.

    Args:
        items: ``(start_day, end_day, effects)`` triples. Overlapping additions add; overlapping
            replacements apply in the order given.
        n_segments: pad to this many segments (static shape shared by all arms); by default the
            number the items need.
        horizon: the end of the simulation (days). An item ending there stays on after it, so it
            is active at the last saved time; the horizon is still a breakpoint (the step-size
            controller stops there as it would at any intervention's end).
        extra_cuts: more segment starts (days), e.g. the window of a titrated dose.
        per_kg: whether the protocol has per-kg additions (``added_per_kg``); by default,
            whether any effect is per kg.
    """
    items = [(*_to_horizon(start, end, horizon), list(effects)) for start, end, effects in items]
    for _, _, effects in items:
        check_effects(effects, "protocol")
    cuts = _cuts(items, horizon, extra_cuts)
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
    add_kg = np.zeros((n, N_CHANNELS))
    real = np.asarray(cuts)
    for start, end, effects in items:  # in order: later replacements win, additions add
        span = slice(*np.searchsorted(real, [start, end], side="left"))
        for e in effects:
            j = index[e.channel]
            if e.replace:
                repl[span, j], val[span, j] = True, e.value
            elif e.per_kg:
                add_kg[span, j] += e.value
            else:
                add[span, j] += e.value
    # The padding segments repeat the last real segment (which runs to +inf in practice).
    for a in (repl, val, add, add_kg):
        a[need:] = a[need - 1]
    has_kg = bool(add_kg.any()) if per_kg is None else per_kg
    return Protocol(jnp.asarray(np.array(starts + [np.inf]), dtype), jnp.asarray(repl),
                    jnp.asarray(val, dtype), jnp.asarray(add, dtype),
                    jnp.asarray(add_kg, dtype) if has_kg else None)


def _span(starts: np.ndarray, start: float, end: float) -> slice:
    """The segments (by their ``starts``) from ``start`` up to, not including, ``end``."""
    return slice(*np.searchsorted(starts, [start, end], side="left"))


def _arm_items(interventions: Sequence[Intervention], days: float, dose_kinds: Sequence[str]):
    """An arm's timed effects (one item per administration of a periodic dose), the extra
    segment starts of its titrated and dose-output windows, and its titrated intervention."""
    items, extra, titrated = [], [], None
    for iv in interventions:
        spans = iv.schedule(days)
        if iv.titration is not None:
            titrated = iv
            extra += [t for a, b, _ in spans for t in _to_horizon(a, b, days)]
        else:
            effects = iv.effects(days)
            items += [(a, b, effects if f == 1.0 else
                       [e._replace(value=e.value * f) for e in effects]) for a, b, f in spans]
        if iv.titration is not None or iv.kind in dose_kinds:
            extra += list(_to_horizon(iv.start_day, iv.end(days), days))
    return items, extra, titrated


def _titrated(iv: Intervention, days: float, starts: np.ndarray, dtype,
              dose_kinds: Sequence[str]) -> Titrated:
    t = iv.titration
    assert isinstance(iv, Dosed) and t is not None
    factor, window = np.zeros(starts.size), np.zeros(starts.size)
    for a, b, f in iv.schedule(days):
        factor[_span(starts, *_to_horizon(a, b, days))] += f
    window[_span(starts, *_to_horizon(iv.start_day, iv.end(days), days))] = 1.0
    channel = np.zeros(N_CHANNELS)
    channel[[c.name for c in CHANNELS].index(iv.channel)] = iv.to_model_units(1.0)
    low, high = t.bounds()
    a = lambda x: jnp.asarray(x, dtype)  # noqa: E731
    return Titrated(a(factor), a(window), a(channel), a(1.0 if iv.per_kg else 0.0),
                    a(t.visits(iv.start_day, iv.end(days))), a(iv.amount), a(t.step), a(t.max),
                    a(low), a(high), a(1.0 if t.direction == "raise" else -1.0), t.output,
                    list(dose_kinds).index(iv.kind) if iv.kind in dose_kinds else -1)


def arm_protocol(interventions: Sequence[Intervention], days: float, n_segments: int | None,
                 dtype=jnp.float64, dose_kinds: Sequence[str] = (),
                 per_kg: bool | None = None) -> Protocol:
    """Compile an arm's interventions (each converts itself to model units) into a protocol
    for a simulation of ``days`` days.

    ``dose_kinds``: the kinds whose dose in force is an output (:func:`popsim.interventions.
    dose_outputs`, the same for every arm); ``per_kg``: give the protocol per-kg additions
    (default: if it has any), so that the arms of a run share one program."""
    items, extra, titrated = _arm_items(interventions, days, dose_kinds)
    prot = compile_segments(items, n_segments=n_segments, dtype=dtype, horizon=days,
                            extra_cuts=extra, per_kg=per_kg)
    if titrated is None and not dose_kinds:
        return prot
    starts = np.asarray(prot.breakpoints[:-1], np.float64)
    dose, dose_kg = np.zeros((starts.size, len(dose_kinds))), np.zeros((starts.size,
                                                                         len(dose_kinds)))
    for iv in interventions:
        if iv.kind in dose_kinds and iv.titration is None:
            assert isinstance(iv, Dosed)
            where = _span(starts, *_to_horizon(iv.start_day, iv.end(days), days))
            (dose_kg if iv.per_kg else dose)[where, list(dose_kinds).index(iv.kind)] += \
                iv.rate(days)
    tracked = bool(dose_kinds)
    return Protocol(prot.breakpoints, prot.replace, prot.value, prot.added, prot.added_per_kg,
                    None if titrated is None else _titrated(titrated, days, starts, dtype,
                                                            dose_kinds),
                    jnp.asarray(dose, dtype) if tracked else None,
                    jnp.asarray(dose_kg, dtype) if tracked else None,
                    tuple(f"dose_{k}" for k in dose_kinds))


def n_segments_for(arms_interventions: Iterable[Sequence[Intervention]],
                   days: float | None = None, dose_kinds: Sequence[str] = ()) -> int:
    """The number of segments every arm's protocol is padded to: what the busiest arm needs
    (at least two breakpoints per intervention; with ``days``, those of every periodic
    administration counted), rounded up to a power of 2 (fewer distinct compiled programs)."""
    arms = [list(ivs) for ivs in arms_interventions]
    need = max([2 * len(ivs) + 1 for ivs in arms] + [1])
    if days is not None:
        for ivs in arms:
            items, extra, _ = _arm_items(ivs, days, dose_kinds)
            need = max(need, len(_cuts([(*_to_horizon(a, b, days), e) for a, b, e in items],
                                       days, extra)))
    return 1 << (need - 1).bit_length()


def protocols_for(arms, days: float, dtype=jnp.float64,
                  n_segments: int | None = None) -> list[Protocol]:
    """One protocol per arm (:class:`popsim.config.Arm`), all with the same static number of
    segments (``n_segments``, or :func:`n_segments_for` the arms), the same dose outputs
    (:func:`popsim.interventions.dose_outputs`) and, if any arm has a weight-based dose, per-kg
    additions in every arm: arms without a titrated dose share one compiled program."""
    kinds = tuple(k.removeprefix("dose_") for k in dose_outputs(arms))
    n_seg = (n_segments_for((a.intervention for a in arms), days, kinds)
             if n_segments is None else n_segments)
    per_kg = any(iv.per_kg and iv.titration is None for a in arms for iv in a.intervention
                 if isinstance(iv, Dosed)) or None
    return [arm_protocol(a.intervention, days, n_seg, dtype, kinds, per_kg) for a in arms]
