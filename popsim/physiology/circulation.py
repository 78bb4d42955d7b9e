"""Blood pressure: mean arterial pressure from ECF volume and vascular tone, renal perfusion
pressure and pressure natriuresis, systolic and diastolic pressure (a steady-state reduction of
the Guyton / Hallow & Gebremichael 2017 circulation)."""

from __future__ import annotations

from popsim.physiology._math import logistic, tanh


def vascular_tone(na_i, na_i_ref, mg_ionized, mg_ionized_ref, na_exponent, mg_effect, mg_gain,
                  responsiveness, k_o, k_ref, k_exponent):
    """Vascular smooth-muscle tone relative to the reference (dimensionless).

    Higher cell Na raises tone through Na+/Ca2+ exchange (Blaustein; exponent ~0.25); a higher
    plasma K lowers it, ``(K/K_ref)**-k_exponent``, by hyperpolarising smooth muscle through
    its electrogenic Na+/K+ pump (Haddy 1983), and a lower K raises it; Mg2+ is a
    physiological Ca2+ antagonist in vascular muscle, so ionized Mg above normal lowers tone and
    below normal raises it, by at most ``mg_effect`` (tanh), in proportion to the patient's
    ``responsiveness`` (hypertensive vessels respond; normotensive ones hardly: Rosanoff 2021,
    Zhang 2016)."""
    mg = 1.0 - mg_effect * responsiveness * tanh(mg_gain * (mg_ionized - mg_ionized_ref))
    return (na_i / na_i_ref) ** na_exponent * (k_o / k_ref) ** (-k_exponent) * mg


def mean_arterial_pressure(map_reference, tone, ecf_volume, ecf_reference, volume_gain):
    """MAP (mmHg) ``= MAP_ref * tone * (1 + k_V (V/V_ref - 1))``: cardiac output follows blood
    volume (whole-body autoregulation turns it into resistance over days), and tone scales
    resistance."""
    return map_reference * tone * (1.0 + volume_gain * (ecf_volume / ecf_reference - 1.0))


def pressure_drive(perfusion_pressure, perfusion_reference, slope):
    """The pressure-natriuresis term of the CD's reabsorption drive (dimensionless):
    ``-(RPP - RPP_ref)/slope``; a higher renal perfusion pressure lowers reabsorption."""
    return -(perfusion_pressure - perfusion_reference) / slope


def pressure_natriuresis(perfusion_pressure, perfusion_reference, scale, slope):
    """Multiplier of tubular Na reabsorption by renal perfusion pressure (Hallow &
    Gebremichael 2017, smoothed): ``(1 - s/2) + s / (1 + exp((RPP - RPP_ref)/slope))``, 1 at the
    reference; a higher pressure lowers reabsorption."""
    return (1.0 - 0.5 * scale) + scale * logistic(-(perfusion_pressure - perfusion_reference)
                                                  / slope)


def systolic_diastolic(map_mmhg, map_reference, pulse_reference, pulse_exponent):
    """(SBP, DBP) in mmHg from MAP: pulse pressure ``PP_ref * (MAP/MAP_ref)**kappa``,
    ``SBP = MAP + 2 PP/3``, ``DBP = MAP - PP/3``."""
    pp = pulse_reference * (map_mmhg / map_reference) ** pulse_exponent
    return map_mmhg + 2.0 * pp / 3.0, map_mmhg - pp / 3.0
