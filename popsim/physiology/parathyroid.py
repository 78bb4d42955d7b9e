"""Parathyroid hormone: secretion by the Ca/Mg-sensing gland, the gland's slow growth, and PTH
action on bone and kidney."""

from __future__ import annotations

from popsim.physiology._math import relative_hill, softplus


def _ca_curve(ca, minimum, maximum, setpoint, steepness):
    return minimum + (maximum - minimum) / (1.0 + (ca / setpoint) ** steepness)


def pth_target(ca_ionized, mg_ionized, p_plasma, gland, reference, ca_reference, mg_reference,
               p_reference, minimum, maximum, ca_setpoint, steepness, mg_casr_potency,
               exocytosis_k, exocytosis_floor, phosphate_exponent):
    """Plasma PTH the gland secretes towards (pmol/L).

    ``PTH_ref * G * S(Ca_eff)/S(Ca_ref) * X(Mg) * (P/P_ref)**pi``:

    * ``S``: the inverse sigmoid of CaSR activation fitted to human clamps (Brent 1988: 0.26x to
      4.2x basal; set point 1.13 mmol/L ionized Ca, Schwarz 1994).
    * Mg2+ is a weaker CaSR agonist, felt only above its normal level
      (``Ca_eff = Ca2+ + potency * softplus(Mg2+ - Mg_ref)``): hypermagnesaemia suppresses PTH
      (Cholst 1984), while a low Mg does not read as a low Ca.
    * ``X``: exocytosis needs Mg; it fails below ~0.5 mmol/L total Mg (Hill 4 in ionized Mg,
      with a floor; Dutta & Layton 2024 switch at 0.4 mM), which is why PTH fell or did not rise
      in 20 of 26 subjects after three weeks of Mg depletion (Fatemi 1991).
    * ``G``: the gland's secretory mass (1 = normal), which grows slowly in CKD.
    * Phosphate stimulates secretion.
    """
    above = softplus(mg_ionized - mg_reference, 0.05) - softplus(0.0 * mg_reference, 0.05)
    ca_eff = ca_ionized + mg_casr_potency * above
    s = (_ca_curve(ca_eff, minimum, maximum, ca_setpoint, steepness)
         / _ca_curve(ca_reference, minimum, maximum, ca_setpoint, steepness))
    x = exocytosis_floor + (1.0 - exocytosis_floor) * relative_hill(
        mg_ionized, mg_reference, exocytosis_k, 4.0)
    return reference * gland * s * x * (p_plasma / p_reference) ** phosphate_exponent


def gland_target(calcitriol, calcitriol_reference, maximum, exponent):
    """The secretory mass the parathyroid grows (or involutes) towards, relative to normal.

    Low calcitriol (its antiproliferative action lost) drives hyperplasia, saturating at
    ``maximum`` (Peterson & Riggs 2010: capacity 0.9-4.1x): ``G_max x/(G_max - 1 + x)``,
    ``x = (D_ref/D)**g``.
    """
    x = (calcitriol_reference / calcitriol) ** exponent
    return maximum * x / (maximum - 1.0 + x)


def pth_effective(pth, mg_ionized, nephron_fraction, mg_reference, resistance_mg_k,
                  uraemic_n50):
    """PTH as bone and kidney see it (pmol/L): end organs resist PTH in severe Mg deficiency
    (below ~0.4 mmol/L total Mg; review PMID 1591142) and in advanced CKD (skeletal resistance:
    ``(1 + n50^2) / (1 + (n50/N)^2)``)."""
    uraemic = (1.0 + uraemic_n50**2) / (1.0 + (uraemic_n50 / nephron_fraction) ** 2)
    return pth * uraemic * relative_hill(mg_ionized, mg_reference, resistance_mg_k, 4.0)


def pth_action(pth_eff, action_k):
    """Receptor occupancy of effective PTH, 0..1: ``PTH_eff / (PTH_eff + K)``."""
    return pth_eff / (pth_eff + action_k)
