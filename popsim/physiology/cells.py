"""Cell-membrane transport: the Na+/K+-ATPase, passive K and Na leaks, and cellular Mg exchange
(docs/MODEL.md, "Mechanisms").

One lumped intracellular compartment (mostly skeletal muscle). Concentrations in mmol/L of the
compartment's water, fluxes in mmol/day for the whole compartment (hence the ``v_icf`` factors).
"""

from __future__ import annotations

from popsim.physiology._math import hill, smooth_cap, sqrt


def mg_free_from_total(mg_total, atp_sites, atp_kd, weak_binding):
    """Free intracellular Mg2+ (mmol/L) from total cell Mg (mmol/L).

    Cell Mg is mostly bound: to ATP (a nearly saturated site of ``atp_sites`` mmol/L with a Kd
    of ~0.05-0.1 mmol/L) and to many weak sites (phosphates, proteins, nucleic acids), lumped as
    ``weak_binding * free``. So ``total = free * (1 + weak) + B * free / (Kd + free)``, whose
    positive root is returned. Free Mg then moves about twice as much as total Mg in relative
    terms (a saturated site buffers nothing at the margin), as red-cell free Mg fell 21% when
    serum Mg fell 24% in three weeks of depletion (Fatemi 1991).

    Args:
        mg_total: total cell Mg, mmol/L.
        atp_sites: MgATP binding capacity, mmol/L.
        atp_kd: its dissociation constant, mmol/L.
        weak_binding: bound per free Mg on the weak sites (dimensionless).
    """
    a = 1.0 + weak_binding
    b = a * atp_kd + atp_sites - mg_total
    return (sqrt(b * b + 4.0 * a * atp_kd * mg_total) - b) / (2.0 * a)


def aldosterone_pump_effect(aldosterone_ng_per_l, cap_ng_per_l):
    """Aldosterone stimulation of the Na+/K+-ATPase (dimensionless, 1 at 85 ng/L).

    ``rho = (66.4 + 0.273 * C)/89.605`` (Stadt et al. 2022, PLoS Comput Biol; Layton-Lab
    Kregulation ``k_reg_mod.m``), fitted there over a physiological range only: the
    concentration is smoothly capped at ``cap_ng_per_l`` so that extreme aldosterone cannot pump
    cell Na away.
    """
    c = smooth_cap(aldosterone_ng_per_l, cap_ng_per_l, 0.1 * cap_ng_per_l)
    return (66.4 + 0.273 * c) / 89.605


def nka_k_uptake(v_icf, vmax, na_i, k_o, mg_free, km_na, km_k, km_mg, mg_free_ref,
                 mg_dependence, aldo_effect):
    """K+ pumped into cells by the Na+/K+-ATPase (mmol/day); it pumps 1.5x as much Na+ out.

    ``J = Vmax * V_icf * aldo * K_o/(K_o + Km_K) * hill(Na_i, Km_Na, 1.5) * m(Mg_f)``. The K_o
    term is Stadt 2022 (Km 1.4 mM); the Na_i term Luo-Rudy (Km 10 mM, Hill 1.5); ``m`` is the
    MgATP substrate supply, ``Mg_f/(Mg_f + Km_Mg)`` relative to its value at the reference free
    Mg, raised to ``mg_dependence`` (1: the pump's full Mg dependence; 0: none, which is how
    ``popsim validate`` measures what the pump contributes to the Mg-K link).
    """
    m = ((mg_free / (mg_free + km_mg)) / (mg_free_ref / (mg_free_ref + km_mg))) ** mg_dependence
    return (vmax * v_icf * aldo_effect * (k_o / (k_o + km_k)) * hill(na_i, km_na, 1.5)
            * (mg_free_ref / (mg_free_ref + km_mg)) * m)


def passive_leak(v_icf, permeability, c_from, c_to):
    """Passive ion flux down its gradient (mmol/day), ``P * V_icf * (c_from - c_to)``.

    Used for Na+ (into cells); ``permeability`` in L/day per L of cell water.
    """
    return permeability * v_icf * (c_from - c_to)


def k_channel_efflux(nka_k, k_icf, v_icf, na_i, k_o, cation_ref, buffer, k_ref, time):
    """K+ leaving cells through K channels (mmol/day): the pumped K, plus the relaxation of cell
    K towards what the membrane holds.

    Cells hold monovalent cation balanced by impermeant anions, ``C = C_ref + rho (K_o -
    K_ref)``: electroneutrality makes K what Na leaves (cell K falls as cell Na rises when the
    pump slows: Mg deficiency, low K), and the ``rho`` term is the muscle's K buffer (a lower
    plasma K hyperpolarises cells, which give up K in exchange for H+, not modelled), sized by
    the K deficit per mmol/L fall of serum K. The channels move cell K to ``(C - Na_i) V_icf``
    with time constant ``time``; at steady state the efflux equals the pumped K.
    """
    target = (cation_ref + buffer * (k_o - k_ref) - na_i) * v_icf
    return nka_k + (k_icf - target) / time


def mg_cell_influx(v_icf, rate, mg_ionized_o, mg_free, mg_free_ref, brake_k):
    """Mg2+ entry into cells through TRPM7/TRPM6 channels (mmol/day).

    Proportional to ionized ECF Mg and braked by free cell Mg (channel inhibition by
    intracellular Mg2+, Ki 0.51 mmol/L, Hill 2: Dutta et al. 2024 nephron model ``TRPM6.py``),
    normalised to 1 at the reference free Mg; so cells do not fill with Mg when serum Mg is high.
    ``rate`` in L/day per L of cell water.
    """
    brake = (1.0 + (mg_free_ref / brake_k) ** 2) / (1.0 + (mg_free / brake_k) ** 2)
    return rate * v_icf * mg_ionized_o * brake


def mg_cell_efflux(v_icf, vmax, mg_free, na_o, na_i, km_mg, km_na_o, ki_na_i):
    """Mg2+ extrusion by Na+/Mg2+ exchange (SLC41A1), 2 Na+ in per Mg2+ out (mmol/day).

    The form of the Dutta et al. 2024 nephron model (Pritha17/Nephron-Mg_Ca_transport
    ``NaMgX.py``): ``Vmax * hill(Mg_f, 0.7, 2) * hill(Na_o, 62, 2) * 40/(Na_i + 40)``. A higher
    cell Na slows Mg efflux, one of the couplings of Mg to Na handling.
    """
    return (vmax * v_icf * hill(mg_free, km_mg, 2.0) * hill(na_o, km_na_o, 2.0)
            * (ki_na_i / (na_i + ki_na_i)))
