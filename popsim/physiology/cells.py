"""Cell-membrane transport: the Na+/K+-ATPase, passive K and Na leaks, and cellular Mg exchange
(mechanisms 3, 4 and 7 of SPEC §1).

One lumped intracellular compartment (mostly skeletal muscle). Concentrations in mmol/L of the
compartment's water, fluxes in mmol/day for the whole compartment (hence the ``v_icf`` factors).
"""

from __future__ import annotations

from popsim.physiology._math import hill, sqrt


def mg_free_from_total(mg_total, buffer_capacity, buffer_kd):
    """Free intracellular Mg2+ (mmol/L) from total cell Mg (mmol/L).

    Cell Mg is mostly bound (80-90% to ATP; Rude 1998): ``total = free + B*free/(Kd + free)``,
    a single lumped buffer of capacity ``B`` and dissociation constant ``Kd``. This is the
    positive root of ``free**2 + (B + Kd - total)*free - Kd*total = 0``.

    Args:
        mg_total: total cell Mg, mmol/L.
        buffer_capacity: B, mmol/L.
        buffer_kd: Kd, mmol/L.
    """
    b = buffer_capacity + buffer_kd - mg_total
    return 0.5 * (sqrt(b * b + 4.0 * buffer_kd * mg_total) - b)


def aldosterone_pump_effect(aldosterone_ng_per_l):
    """Aldosterone stimulation of the Na+/K+-ATPase (dimensionless, 1 at 85 ng/L).

    ``rho_al = (66.4 + 0.273*C_al)/89.605``, Stadt et al. 2022 (PLoS Comput Biol),
    Layton-Lab/Kregulation ``k_reg_mod.m``.
    """
    return (66.4 + 0.273 * aldosterone_ng_per_l) / 89.605


def nka_k_uptake(v_icf, vmax, na_i, k_o, mg_free, km_na, km_k, km_mg, aldo_effect):
    """K+ pumped into cells by the Na+/K+-ATPase (mmol/day); it pumps 1.5x as much Na+ out.

    ``J = Vmax * V_icf * aldo * K_o/(K_o + Km_K) * hill(Na_i, Km_Na, 1.5) * Mg_f/(Mg_f + Km_Mg)``.
    The K_o term is Stadt 2022 (Km 1.4 mM); the Na_i term is Luo-Rudy (Km 10 mM, Hill 1.5);
    the Mg term is the MgATP substrate supply: low free Mg slows the pump, K leaks out of cells and
    cell Na rises.

    Args:
        v_icf: intracellular volume, L.
        vmax: maximal K uptake per litre of cell water, mmol/day/L.
        na_i, k_o, mg_free: cell Na, extracellular K, free cell Mg, mmol/L.
        km_na, km_k, km_mg: half-saturation constants, mmol/L.
        aldo_effect: dimensionless multiplier (:func:`aldosterone_pump_effect`).
    """
    return (
        vmax
        * v_icf
        * aldo_effect
        * (k_o / (k_o + km_k))
        * hill(na_i, km_na, 1.5)
        * (mg_free / (mg_free + km_mg))
    )


def passive_leak(v_icf, permeability, c_from, c_to):
    """Passive ion flux down its gradient (mmol/day), ``P * V_icf * (c_from - c_to)``.

    Used for K+ (out of cells) and Na+ (into cells); ``permeability`` in L/day per L of cell water.
    """
    return permeability * v_icf * (c_from - c_to)


def electroneutral_k_efflux(nka_k, na_leak, na_exchanger_in):
    """K+ leaving cells through K channels (mmol/day), set by electroneutrality.

    Cells hold a fixed amount of monovalent cation (their anions are impermeant), so the membrane
    potential settles where every Na+ that enters (leak + Na+/Mg2+ exchange) or leaves (1.5 per
    pumped K+) is matched by K+ moving the other way: ``K_out = Na_in_total - 0.5 * J_pump``.
    Cell K then falls exactly as cell Na rises when the pump slows (Mg deficiency, low K), and
    cell K + Na stays at its physiological ~150 mmol/L.
    """
    return na_leak + na_exchanger_in - 0.5 * nka_k


def mg_cell_influx(v_icf, rate, mg_ionized_o):
    """Mg2+ entry into cells through TRPM7-like channels (mmol/day), proportional to ionized ECF Mg.

    ``rate`` in L/day per L of cell water.
    """
    return rate * v_icf * mg_ionized_o


def mg_cell_efflux(v_icf, vmax, mg_free, na_o, na_i, km_mg, km_na_o, ki_na_i):
    """Mg2+ extrusion by Na+/Mg2+ exchange (SLC41A1), 2 Na+ in per Mg2+ out (mmol/day).

    The form of the Dutta et al. 2024 nephron model (Pritha17/Nephron-Mg_Ca_transport
    ``NaMgX.py``): ``Vmax * hill(Mg_f, 0.7, 2) * hill(Na_o, 62, 2) * 40/(Na_i + 40)``. A higher
    cell Na slows Mg efflux, one of the couplings of Mg to Na handling.
    """
    return (
        vmax
        * v_icf
        * hill(mg_free, km_mg, 2.0)
        * hill(na_o, km_na_o, 2.0)
        * (ki_na_i / (na_i + ki_na_i))
    )
