"""Doses as trials write them: weight-based (`dose_per_kg`), periodic administrations
(`every_hours`), and titration at visits inside the solve; the dose each patient received is an
output, checked against the inputs the model received and the titration rule recomputed from
the file."""

import tomllib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import HYPOKALAEMIA_TRIAL, patients

from popsim import config as cfg
from popsim import store
from popsim.protocols import protocols_for
from popsim.units import mg_to_mmol_mg


def _conf(*arms, days=28.0):
    return cfg.parse_config({"population": {"size": 4}, "simulation": {"days": days},
                             "arm": [{"name": f"arm{i}", "intervention": list(ivs)}
                                     for i, ivs in enumerate(arms)]})


K_TITRATED = {"kind": "oral_potassium", "dose": 40,
              "titrate": {"output": "serum_k", "target": 4.0, "every_days": 7, "step": 20,
                          "max": 120}}


@pytest.mark.parametrize(("intervention", "message"), [
    ({"kind": "oral_magnesium"},
     r"intervention\.1: give either dose \(mg/day\) or dose_per_kg \(mg/kg/day\)$"),
    ({"kind": "oral_potassium", "dose": 40, "dose_per_kg": 0.5},
     r"give either dose \(mmol/day\) or dose_per_kg \(mmol/kg/day\), not both"),
    ({"kind": "iv_magnesium", "dose_per_kg": 0.2, "every_hours": 12},
     r"every_hours is not available for iv_magnesium"),
    ({"kind": "oral_potassium", "dose": 40, "duration_hours": 2},
     r"duration_hours needs every_hours"),
    ({"kind": "oral_potassium", "dose": 40, "every_hours": 8, "duration_hours": 9},
     r"duration_hours \(9\) is longer than every_hours \(8\)"),
    ({"kind": "loop_diuretic", "dose": 0.9, "every_hours": 24, "duration_hours": 30},
     r"duration_hours \(30\) is longer than every_hours \(24\)"),
    ({"kind": "thiazide_diuretic", "dose": 0.5, "every_hours": 4},
     r"duration_hours \(12\) is longer than every_hours \(4\)"),
    ({"kind": "loop_diuretic", "dose": 0.5, "first_dose_hour": 7},
     r"first_dose_hour needs every_hours"),
    ({**K_TITRATED, "dose": 140}, r"titrate\.max \(120\) is below the first dose \(140\)"),
    ({**K_TITRATED, "titrate": {**K_TITRATED["titrate"], "output": "serum_kk"}},
     r"titrate\.output: unknown output \(did you mean 'serum_k'\?\)"),
    ({**K_TITRATED, "titrate": {**K_TITRATED["titrate"], "target": [5, 4]}},
     r"titrate\.target: target range \[5, 4\]: low must be below high"),
    ({**K_TITRATED, "titrate": {**K_TITRATED["titrate"], "direction": "up"}},
     r"titrate\.direction: .*'raise' or 'lower'"),
    ({**K_TITRATED, "end_day": 7}, r"titrate\.every_days \(7\) leaves no visit before the "
                                   r"intervention ends \(day 7\)"),
])
def test_bad_doses_are_one_line_config_errors(intervention, message):
    with pytest.raises(cfg.ConfigError, match=message) as e:
        _conf([intervention])
    assert "\n" not in str(e.value)


def test_at_most_one_titrated_intervention_per_arm():
    mg = {"kind": "oral_magnesium", "dose": 300,
          "titrate": {"output": "serum_mg", "target": 0.75, "every_days": 7, "step": 100,
                      "max": 900}}
    with pytest.raises(cfg.ConfigError, match="interventions 1 and 2 are both titrated"):
        _conf([K_TITRATED, mg])


def _one(pt, i):
    return jax.tree.map(lambda x: x[i], pt)


@jax.jit
def _inputs_at(prot, patient, t, dose):
    """The inputs the model receives at times ``t`` under doses ``dose`` (one program for all
    protocols of one shape)."""
    return jax.vmap(lambda ti, di: prot.inputs(ti, patient, di))(t, dose)


def _daily_integrals(prot, patient, channel, days, dose=None):
    """Integral of an input channel over each day, from the protocol's segments (exact: the
    channel is constant within a segment); ``dose``: the titrated dose of each day."""
    bp = np.asarray(prot.breakpoints)
    starts, widths, day = [], [], []
    for d in range(days):
        cuts = np.unique(np.clip(np.concatenate([[d, d + 1.0], bp]), d, d + 1.0))
        starts += list(cuts[:-1])
        widths += list(np.diff(cuts))
        day += [d] * (cuts.size - 1)
    doses = np.zeros(len(day)) if dose is None else np.asarray(dose, np.float64)[day]
    u = getattr(_inputs_at(prot, patient, jnp.asarray(starts), jnp.asarray(doses)), channel)
    return np.bincount(day, weights=np.asarray(u) * np.asarray(widths), minlength=days)


def test_periodic_administrations_deliver_the_daily_dose_in_pulses():
    conf = _conf([{"kind": "oral_potassium", "dose": 40, "every_hours": 12,
                   "duration_hours": 2, "start_day": 2, "end_day": 6}])
    with jax.enable_x64(True):
        prot = protocols_for(conf.arms, conf.simulation.days)[0]
        _, pt = patients(n=1, k_intake=70.0)
        one = _one(pt, 0)
        per_day = _daily_integrals(prot, one, "k_oral", 8)
        np.testing.assert_allclose(per_day, [70, 70, 110, 110, 110, 110, 70, 70], rtol=1e-12)
        at = lambda h: float(prot.inputs(jnp.float64(h / 24), one).k_oral)  # noqa: E731
        # administrations at 08:00 and 20:00 for 2 h: 20 mmol each at 240 mmol/day
        assert at(2 * 24 + 9) == pytest.approx(70 + 240)
        assert at(2 * 24 + 21) == pytest.approx(70 + 240)
        assert at(2 * 24 + 11) == pytest.approx(70)
        assert at(2 * 24 + 7.9) == pytest.approx(70)
    # every start and end of an administration is a breakpoint the solver stops at
    jumps = np.asarray(prot.jump_times())
    for day in range(2, 6):
        for hour in (8, 10, 20, 22):
            assert np.min(np.abs(jumps - (day + hour / 24))) < 1e-12


def test_a_once_daily_diuretic_acts_at_its_dose_while_the_tablet_acts():
    """A once-daily loop diuretic blocks at its dose for 6 h from 08:00 (its default
    duration) and not in between, a thiazide for 12 h; the daily dose is not spread over the
    day as a supplement's is."""
    conf = _conf([{"kind": "loop_diuretic", "dose": 0.9, "every_hours": 24, "start_day": 1,
                   "end_day": 4}],
                 [{"kind": "thiazide_diuretic", "dose": 0.5, "every_hours": 24,
                   "first_dose_hour": 20, "start_day": 1}], days=6.0)
    with jax.enable_x64(True):
        loop, thiazide = protocols_for(conf.arms, conf.simulation.days)
        _, pt = patients(n=1)
        one = _one(pt, 0)
        at = lambda prot, h, ch: float(getattr(prot.inputs(jnp.float64(h / 24), one), ch))  # noqa: E731
        for day in (1, 2, 3):
            assert at(loop, day * 24 + 8.5, "loop_dose") == pytest.approx(0.9)
            assert at(loop, day * 24 + 13.9, "loop_dose") == pytest.approx(0.9)
            assert at(loop, day * 24 + 14.1, "loop_dose") == 0.0
            assert at(loop, day * 24 + 7.9, "loop_dose") == 0.0
        assert at(loop, 4 * 24 + 9, "loop_dose") == 0.0  # after end_day
        assert at(thiazide, 1 * 24 + 21, "thiazide_dose") == pytest.approx(0.5)
        assert at(thiazide, 2 * 24 + 7.9, "thiazide_dose") == pytest.approx(0.5)
        assert at(thiazide, 2 * 24 + 8.1, "thiazide_dose") == 0.0
        np.testing.assert_allclose(_daily_integrals(loop, one, "loop_dose", 5),
                                   [0, 0.9 / 4, 0.9 / 4, 0.9 / 4, 0], atol=1e-12)


def test_weight_based_doses_follow_each_patients_weight():
    conf = _conf([{"kind": "oral_magnesium", "dose_per_kg": 5}],
                 [{"kind": "oral_potassium", "dose": 30}])
    with jax.enable_x64(True):
        mg_arm, k_arm = protocols_for(conf.arms, conf.simulation.days)
        _, pt = patients(n=3, body_weight=[50.0, 70.0, 110.0], mg_intake_mg=300.0)
        for i, w in enumerate((50.0, 70.0, 110.0)):
            u = mg_arm.inputs(jnp.float64(3.0), _one(pt, i))
            assert float(u.mg_oral) == pytest.approx(mg_to_mmol_mg(300.0), rel=1e-12)  # food
            # the supplement (citrate by default) on its salt's channel
            assert float(u.mg_organic) == pytest.approx(mg_to_mmol_mg(5 * w), rel=1e-12)
            assert float(mg_arm.doses(jnp.float64(3.0), _one(pt, i))["dose_oral_magnesium"]) \
                == pytest.approx(5 * w)
            # the other arm shares the program: per-kg additions of zero, no Mg dose
            other = k_arm.inputs(jnp.float64(3.0), _one(pt, i))
            assert float(other.mg_oral) == pytest.approx(mg_to_mmol_mg(300.0), rel=1e-12)
            assert float(other.mg_organic) == 0.0
    assert mg_arm.added_per_kg is not None and k_arm.added_per_kg is not None
    assert mg_arm.dose_names == k_arm.dose_names == ("dose_oral_magnesium",)


@pytest.mark.parametrize(("titrate", "values", "before", "after"), [
    # raise toward a level: up below it, unchanged at or above it, capped at max
    ({"target": 4.0}, [3.9, 4.0, 6.0, 3.0, np.nan], [40, 40, 40, 120, 40],
     [60, 40, 40, 120, 40]),
    # raise toward a range: down above its high end, never below 0
    ({"target": [4.0, 5.0]}, [3.9, 4.5, 5.1, 5.1], [40, 40, 40, 0], [60, 40, 20, 0]),
    # a dose that lowers the output: up above the target, down below the range's low end
    ({"target": [4.0, 5.0], "direction": "lower"}, [3.9, 4.5, 5.1], [40, 40, 40],
     [20, 40, 60]),
])
def test_titration_rule(titrate, values, before, after):
    iv = {**K_TITRATED, "titrate": {**K_TITRATED["titrate"], **titrate}}
    with jax.enable_x64(True):
        tt = protocols_for(_conf([iv]).arms, 28.0)[0].titration
        got = jax.vmap(tt.adjust)(jnp.asarray(before, jnp.float64),
                                  jnp.asarray(values, jnp.float64))
    np.testing.assert_array_equal(np.asarray(got), after)


def test_titration_arithmetic_per_patient_from_the_file(hypokalaemia_trial):
    """The dose in force on each visit day is the previous day's dose moved by the rule, with
    the serum K saved on that visit day: recomputed in NumPy, patient by patient."""
    path, _ = hypokalaemia_trial
    coh = store.open_cohort(path)
    assert coh.units("dose_oral_potassium") == "mmol/day"
    for a in range(len(coh.arms)):
        dose = coh.output("dose_oral_potassium", arm=a).astype(np.float64)
        k = coh.output("serum_k", arm=a).astype(np.float64)
        np.testing.assert_array_equal(dose[:, :7], 40.0)  # the first dose until day 7
        changed = 0
        for v in (7, 14, 21):
            expected = np.clip(dose[:, v - 1] + 20.0 * (k[:, v] < 4.0) - 20.0 * (k[:, v] > 5.0),
                               0.0, 120.0)
            clear = (np.abs(k[:, v] - 4.0) > 1e-5) & (np.abs(k[:, v] - 5.0) > 1e-5)
            np.testing.assert_array_equal(dose[clear, v], expected[clear])
            np.testing.assert_array_equal(dose[:, v:v + 7], dose[:, v:v + 1].repeat(
                dose[:, v:v + 7].shape[1], axis=1))  # constant until the next visit
            changed += int((dose[:, v] != dose[:, v - 1]).sum())
        assert changed > 0  # the rule did act in this trial


def test_the_dose_each_patient_received(hypokalaemia_trial):
    """The saved doses are the ones the model received: each patient's K channel integrated
    over each day is their intake plus the saved titrated dose; Mg is 5 mg/kg of their
    weight, every day, in the Mg arm only."""
    path, _ = hypokalaemia_trial
    coh = store.open_cohort(path)
    conf = cfg.parse_config(tomllib.loads(HYPOKALAEMIA_TRIAL))
    weight = coh.covariate("body_weight")
    mg = coh.output("dose_oral_magnesium")
    np.testing.assert_allclose(mg[1], 5.0 * weight[:, None].repeat(mg.shape[2], 1), rtol=1e-6)
    np.testing.assert_array_equal(mg[0], 0.0)
    from popsim.population import sample_cohort

    with jax.enable_x64(True):
        prots = protocols_for(conf.arms, conf.simulation.days)
        # the second chunk's patients, drawn as the run drew them (the compiled shape)
        drawn = sample_cohort(conf.population, conf.population.seed, 0, 0,
                              index=coh.candidates[6:12])
        for a, prot in enumerate(prots):
            dose = coh.output("dose_oral_potassium", arm=a)
            for i in (6, 9, 11):
                one = _one(drawn.patients, i - 6)
                k = _daily_integrals(prot, one, "k_oral", 27, dose[i])
                np.testing.assert_allclose(k, coh.covariate("k_intake")[i] + dose[i, :27],
                                           rtol=1e-9)
                mg_in = (_daily_integrals(prot, one, "mg_oral", 27, dose[i])  # food
                         + _daily_integrals(prot, one, "mg_organic", 27, dose[i]))  # citrate
                np.testing.assert_allclose(
                    mg_in, mg_to_mmol_mg(coh.covariate("mg_intake")[i] + mg[a, i, :27]),
                    rtol=1e-6)
