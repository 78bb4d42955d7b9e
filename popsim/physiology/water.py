"""ECF volume and osmoregulation: water follows Na (mechanism 6, Na handling, and the volume
signal of the renin-angiotensin-aldosterone system)."""

from __future__ import annotations


def osmoregulation(na_p, setpoint, rate, v_ecf):
    """Net water gain of the ECF (L/day) from thirst and vasopressin.

    ``rate * V * (Na_p/setpoint - 1)``: when plasma Na is above its set point water is retained
    (and drunk) until it is diluted back, within hours (``rate`` ~24/day); so ECF volume tracks
    body Na and plasma Na tracks the osmotic set point, as vasopressin does in the Hallow 2017
    model (a controller on plasma Na).

    Args:
        na_p: plasma Na, mmol/L. setpoint: osmotic set point expressed as plasma Na, mmol/L.
        rate: 1/day. v_ecf: ECF volume, L.
    """
    return rate * v_ecf * (na_p / setpoint - 1.0)


def volume_deviation_percent(v_ecf, v_reference):
    """ECF volume relative to the patient's reference volume, % (the natriuretic and RAAS
    signal)."""
    return 100.0 * (v_ecf / v_reference - 1.0)


def thiazide_setpoint_shift(thiazide_block, max_shift):
    """Fall of the effective osmotic set point on a thiazide (mmol/L): thiazides impair urinary
    dilution, so water is retained at a lower plasma Na (thiazide-associated hyponatraemia)."""
    return max_shift * thiazide_block
