"""SBML export: libSBML consistency, units, parameter round trip, the SBML rates against the JAX
vector field (the drift test), and libRoadRunner time courses against popsim's own solve."""

import dataclasses
import html
import inspect

import h5py
import jax
import jax.numpy as jnp
import libsbml
import numpy as np
import pytest
import roadrunner
from conftest import SMALL_TRIAL, timed_effects

from popsim import balance, batch, model, observables, sbml, solve
from popsim.cli import main
from popsim.interventions import DEFAULT_SALT, SALT_CHANNELS
from popsim.outputs import OUTPUT_SPECS, OUTPUT_UNITS
from popsim.parameters import Params, parameter_specs
from popsim.parameters.io import default_parameters
from popsim.protocols import compile_segments
from popsim.units import mg_to_mmol_mg

N_SEGMENTS = 8  # every cross-check protocol is padded to this: one compilation for all
DAYS = 90
TIGHT = solve.SolverSettings(rtol=1e-10, atol=1e-12, solver="kvaerno5", newton_rtol=1e-11,
                             newton_atol=1e-12, max_steps=200_000)


def _protocol(items):
    with jax.enable_x64(True):
        return compile_segments(timed_effects(items), n_segments=N_SEGMENTS, dtype=jnp.float64)


# The patients of the cross-check, each with interventions so that everything moves.
SCENARIOS = {
    "reference": (dict(), [(10.0, 60.0, {}, {"mg_oral": mg_to_mmol_mg(400.0)}),
                           (30.0, 90.0, {"na_intake": 250.0}, {})]),
    "hypertensive": (dict(hypertensive=1.0, na_intake=200.0),
                     [(10.0, 90.0, {}, {"mg_oxide": mg_to_mmol_mg(400.0)}),
                      (40.0, 90.0, {"na_intake": 80.0}, {"mg_chloride": mg_to_mmol_mg(200.0)})]),
    "mg_poor": (dict(mg_intake=mg_to_mmol_mg(60.0), is_female=1.0, body_weight=62.0),
                [(0.0, 90.0, {"mg_intake": mg_to_mmol_mg(20.0)}, {}),
                 (20.0, 90.0, {}, {"k_oral": 40.0})]),
    "ckd": (dict(egfr=18.0, body_weight=80.0),
            [(5.0, 90.0, {}, {"mg_oral": mg_to_mmol_mg(600.0)})]),
    "diuretic": (dict(thiazide_dose=0.8),
                 [(20.0, 70.0, {}, {"loop_dose": 0.6}), (40.0, 90.0, {}, {"k_oral": 30.0})]),
}


def _spec(name):
    changes, items = SCENARIOS[name]
    cov = sbml.reference_covariates() | changes
    return sbml.patient_spec(default_parameters().params, cov, _protocol(items), title=name)


@pytest.fixture(scope="module")
def exported():
    """name -> (spec, SBML text, libRoadRunner instance) for the scenarios."""
    out = {}
    for name in SCENARIOS:
        spec = _spec(name)
        text = sbml.to_sbml(spec)
        out[name] = spec, text, roadrunner.RoadRunner(text)
    return out


def _runner(rr):
    """CVODE at rtol 1e-10 and an absolute tolerance of 1e-12 per unit of each state's initial
    value, at least 1e-12: libRoadRunner scales a scalar tolerance by the initial value, which
    leaves a state starting at 0 (the K-adaptation log-gain) with none and CVODE stalling."""
    rr.resetAll()
    rr.integrator.relative_tolerance = 1e-10
    rr.integrator.absolute_tolerance = 1e-12
    rr.integrator.maximum_num_steps = 100_000
    for sid in sbml.STATE_IDS:
        rr.integrator.setIndividualTolerance(sid, 1e-12 * max(1.0, abs(rr[sid])))
    return rr


def _batch(spec):
    """One-patient batches of the spec's parameters and patient (model units)."""
    one = lambda v: jnp.asarray([float(v)], jnp.float64)  # noqa: E731
    p = jax.tree.map(one, spec.params)
    return p, sbml.make_patient(p, {k: one(v) for k, v in spec.covariates.items()})


def test_every_export_passes_libsbml_consistency_checks(exported):
    for name, (_, text, _) in exported.items():
        assert sbml.consistency_errors(text) == [], name


def test_sbml_names_every_unit(exported):
    _, text, _ = exported["reference"]
    doc = libsbml.readSBMLFromString(text)
    m = doc.getModel()
    assert m.getTimeUnits() == "day"
    defined = {m.getUnitDefinition(i).getId() for i in range(m.getNumUnitDefinitions())}
    ids = {m.getParameter(i).getId() for i in range(m.getNumParameters())}
    assert {s.name for s in parameter_specs()} | set(sbml.STATE_IDS) <= ids
    for i in range(m.getNumParameters()):
        par = m.getParameter(i)
        assert par.isSetUnits(), par.getId()
        assert par.getUnits() in defined | {"dimensionless"}, par.getId()
    # the units mean what popsim's strings say: mmol/day is 1e-3 mol per 86400 s
    ud = m.getUnitDefinition("mmol_per_day")
    kinds = {libsbml.UnitKind_toString(u.getKind()): (u.getExponent(), u.getScale(),
                                                       u.getMultiplier())
             for u in (ud.getUnit(k) for k in range(ud.getNumUnits()))}
    assert kinds == {"mole": (1.0, -3, 1.0), "second": (-1.0, 0, 86400.0)}


def test_parameter_values_round_trip(exported):
    spec, text, _ = exported["ckd"]
    m = libsbml.readSBMLFromString(text).getModel()
    for s in parameter_specs():
        par = m.getParameter(s.name)
        assert par.getValue() == float(getattr(spec.params, s.name)), s.name
        assert s.source in html.unescape(par.getNotesString()), s.name
    for name, value in spec.covariates.items():
        assert m.getParameter(name).getValue() == value, name
    for k, sid in enumerate(sbml.STATE_IDS):
        assert m.getParameter(sid).getValue() == spec.y0[k], sid


def test_every_model_quantity_is_in_the_document(exported):
    """Everything the model defines is in the export, read from the model's own definitions:
    every state (a rate rule), every parameter (a constant with its unit and provenance), every
    output with its unit, every flux, concentration, balancing constant, patient quantity and
    input (a rule), every covariate (a constant)."""
    _, text, _ = exported["reference"]
    m = libsbml.readSBMLFromString(text).getModel()
    rate_ruled = {m.getRule(i).getVariable() for i in range(m.getNumRules())
                  if m.getRule(i).isRate()}
    ruled = {m.getRule(i).getVariable() for i in range(m.getNumRules())}
    assert len(sbml.STATE_IDS) == len(model.STATE_NAMES)
    assert set(sbml.STATE_IDS) == rate_ruled
    for f in dataclasses.fields(Params):
        par = m.getParameter(f.name)
        assert par is not None and par.getConstant(), f.name
        assert par.getUnits() == sbml.unit_id(f.metadata["unit"]), f.name
        assert f"Provenance: {f.metadata['provenance']}" in par.getNotesString(), f.name
    for name in OUTPUT_SPECS:  # an output is a rule or a state under its own id
        assert name in ruled, name
        assert m.getParameter(name).getUnits() == sbml.unit_id(OUTPUT_UNITS[name]), name
    quantities = (*model.Fluxes._fields, *model.Concentrations._fields,
                  *balance.Derived._fields, *(f.name for f in dataclasses.fields(model.Patient)))
    for name in quantities:
        assert name in ruled or name in {c.name for c in sbml.COVARIATES}, name
    for name in sbml.INPUT_IDS:
        assert name in ruled, name
    for c in sbml.COVARIATES:
        assert m.getParameter(c.name).getConstant(), c.name


def test_covariates_are_the_arguments_of_make_patient():
    """The exporter's covariates are :func:`popsim.model.make_patient`'s arguments, in order (a
    new covariate there must be listed, with its unit, in popsim.sbml.symbolic)."""
    args = list(inspect.signature(model.make_patient).parameters)[1:]
    assert [c.name for c in sbml.COVARIATES] == [a.removesuffix("_mmol") for a in args]
    assert set(sbml.reference_covariates()) == {c.name for c in sbml.COVARIATES}


def test_units_are_read_from_the_model_source():
    """The units of fluxes, patient quantities and balancing constants come from the comments
    in popsim/model.py and popsim/balance.py, and every one has an SBML form."""
    from popsim.sbml import units

    flux = units.field_units(model.Fluxes, units.default_unit(model.Fluxes))
    assert units.default_unit(model.Fluxes) == "mmol/day"
    assert flux["mg_urine"] == "mmol/day" and flux["map"] == "mmHg"
    assert flux["pth_target"] == "pmol/L" and flux["romk_open"] == "1"
    assert flux["water_gain"] == "L/day" and flux["volume_deviation"] == "%"
    assert units.field_units(model.Patient)["map_ref"] == "mmHg"
    assert units.field_units(model.Patient)["gfr"] == "L/day"
    for cls in (model.Patient, balance.Derived):
        for name, unit in units.field_units(cls).items():
            assert units.is_unit(unit), (cls.__name__, name, unit)
    assert units.comment_unit("L/day per L cell water") == "L/day/L"
    assert units.comment_unit("% MAP per % ECF volume") == "1"
    assert units.comment_unit("K pumped into cells") is None
    assert units.unit_factors("(mmol/L)/(mmol/L)") == []
    assert units.unit_id("1/(mmol/L)") == "L_per_mmol"
    with pytest.raises(ValueError, match="'furlong'"):
        units.unit_factors("furlong/day")


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_sbml_rates_and_outputs_equal_the_jax_model(exported, name):
    """The drift test: at perturbed states and times in every protocol segment, libRoadRunner's
    rates and outputs from the SBML equal popsim's to rounding."""
    spec, _, rr = exported[name]
    rr.resetAll()
    p, pt = _batch(spec)
    p, pt = jax.tree.map(lambda x: x[0], (p, pt))
    protocol = spec.protocol
    rng = np.random.default_rng(3)
    for t in (0.0, 15.0, 45.0, 80.0):
        y = spec.y0 * rng.uniform(0.8, 1.2, spec.y0.size)
        for sid, v in zip(sbml.STATE_IDS, y, strict=True):
            rr.setValue(sid, float(v))
        rr.model.setTime(t)
        u = protocol.inputs(jnp.float64(t), pt)
        want = np.asarray(jnp.stack(model.derivatives(jnp.asarray(y), p, pt, u)))
        rates = rr.getRatesOfChangeNamedArray()
        got = dict(zip(rates.colnames, np.ravel(rates), strict=True))
        got = np.array([got[s + "'"] for s in sbml.STATE_IDS])
        scale = np.abs(want) + 1e-9 * np.abs(y)
        assert np.all(np.abs(got - want) <= 1e-9 * scale), (t, got, want)
        obs = observables.observe(jnp.asarray(y), p, pt, u)
        for o in observables.OUTPUTS:
            assert rr[o.name] == pytest.approx(float(obs[o.name]), rel=1e-10, abs=1e-12), \
                (t, o.name)


@pytest.fixture(scope="module")
def popsim_courses(exported):
    """popsim's own 90-day solves of the four scenarios (Kvaerno5, rtol 1e-10): name ->
    outputs dict of (day,) arrays."""
    ts = jnp.arange(DAYS + 1, dtype=jnp.float64)
    out = {}
    for name, (spec, _, _) in exported.items():
        p, pt = _batch(spec)
        obs, status, _ = batch.simulate_observe_jit(p, pt, spec.protocol,
                                                        jnp.asarray(spec.y0)[None], ts, TIGHT)
        assert int(status[0]) == solve.Status.OK
        out[name] = {k: np.asarray(v[0]) for k, v in obs.items()}
    return out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_libroadrunner_time_course_matches_popsim(exported, popsim_courses, name):
    """libRoadRunner (CVODE, rtol 1e-10) on the exported file against popsim over 90 days:
    every output within 1e-5 relative, every day."""
    _, _, rr = exported[name]
    rr = _runner(rr)
    names = [o.name for o in observables.OUTPUTS]
    res = rr.simulate(0, DAYS, DAYS + 1, ["time", *names])
    ours = popsim_courses[name]
    worst = 0.0
    for j, o in enumerate(names):
        theirs = np.asarray(res[:, j + 1])
        rel = np.abs(theirs - ours[o]) / np.maximum(np.abs(ours[o]), 1e-8)
        worst = max(worst, float(rel.max()))
    assert worst < 1e-5
    # and the scenario moved: something changed by more than 1% (not a flat steady state)
    assert max(np.ptp(ours[o]) / np.abs(ours[o]).max() for o in ("serum_mg", "serum_k",
                                                                 "urine_mg")) > 0.01


def test_scenarios_move_in_the_expected_directions(popsim_courses):
    """Sanity of the exported scenarios themselves (the directions of the depletion, CKD Mg
    load and diuretic scenarios): Mg-poor diet lowers serum Mg; Mg load in CKD raises it above
    the reference's; the added loop diuretic raises urinary K."""
    mg_poor, ckd, diur = (popsim_courses[k] for k in ("mg_poor", "ckd", "diuretic"))
    assert mg_poor["serum_mg"][-1] < mg_poor["serum_mg"][0] - 0.05
    assert ckd["serum_mg"][-1] > ckd["serum_mg"][0] + 0.1
    assert diur["urine_k"][25] > diur["urine_k"][15]


# --- command line ----------------------------------------------------------------------------

def test_cli_exports_a_cohort_patient_with_an_arm(small_trial, tmp_path):
    path, _ = small_trial
    out = tmp_path / "p3.xml"
    assert main(["export-sbml", "--cohort", str(path), "--patient", "3", "--arm", "magnesium",
                 "--out", str(out)]) == 0
    m = libsbml.readSBMLFromString(out.read_text()).getModel()
    with h5py.File(path) as f:
        egfr = float(f["egfr"][3])
        serum_mg = float(f["serum_mg"][0, 3, 0])  # arm control, patient 3, day 0
    assert m.getParameter("egfr").getValue() == pytest.approx(egfr, rel=1e-12)
    rr = roadrunner.RoadRunner(out.read_text())
    assert rr["serum_mg"] == pytest.approx(serum_mg, rel=1e-6)
    formula = libsbml.formulaToL3String(m.getRule(SALT_CHANNELS[DEFAULT_SALT]).getMath())
    assert "piecewise" in formula and "time" in formula


@pytest.mark.parametrize("args, message", [
    (["--patient", "14"], "--patient 14: outside the cohort"),
    (["--patient", "0", "--arm", "nope"], "--arm 'nope': not an arm"),
    (["--patient", "0", "--params", "MISSING"], "missing.toml: no such parameter file"),
])
def test_cli_bad_patient_or_arm(small_trial, tmp_path, capsys, args, message):
    path, _ = small_trial
    out = tmp_path / "x.xml"
    args = [a.replace("MISSING", str(tmp_path / "missing.toml")) for a in args]
    assert main(["export-sbml", "--cohort", str(path), "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cli_cohort_from_another_model_version(small_trial, tmp_path, capsys):
    import shutil

    path, _ = small_trial
    other = tmp_path / "other.h5"
    shutil.copy(path, other)
    with h5py.File(other, "r+") as f:
        f.attrs["model_version"] = "0.9"
    out = tmp_path / "x.xml"
    assert main(["export-sbml", "--cohort", str(other), "--patient", "0", "--out", str(out)]) == 2
    assert "model version '0.9'" in capsys.readouterr().err
    assert not out.exists()


def test_cli_unwritable_or_existing_output(tmp_path, capsys, monkeypatch):
    import os

    existing = tmp_path / "old.xml"
    existing.write_text("keep me")
    assert main(["export-sbml", "--out", str(existing)]) == 2
    assert existing.read_text() == "keep me"
    assert main(["export-sbml", "--out", str(tmp_path / "no" / "x.xml")]) == 2
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path)
                        else real_access(p, mode))
    assert main(["export-sbml", "--out", str(tmp_path / "x.xml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "exists" in err[0] and "does not exist" in err[1] \
        and "not writable" in err[2]


def test_cohort_patient_needs_the_runs_parameters(small_trial):
    from popsim.parameters.io import ParameterSet

    path, _ = small_trial
    ps = default_parameters()
    other = ParameterSet(dataclasses.replace(ps.params, mg_gut_km=ps.params.mg_gut_km * 1.1),
                         ps.cvs, "other", {})
    with pytest.raises(sbml.ExportError, match="other parameters"):
        sbml.cohort_patient(path, 0, other)


assert SMALL_TRIAL  # the session trial's config (two arms: control, magnesium)
