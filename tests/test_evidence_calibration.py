"""Evidence calibration: the likelihood's standard errors, the differentiable statistics against
the NumPy evaluator, bad input, reserved studies, fitted-parameter claims, and (slow) parameter
recovery with Laplace intervals, identifiability flags and profiles on synthetic studies."""

import dataclasses
import json
import math

import jax.numpy as jnp
import numpy as np
import pytest

from popsim import evidence
from popsim.calibration import statistics as st
from popsim.calibration.problem import build_problem
from popsim.calibration.spec import CalibrationError, parse_fit
from popsim.evidence.statistics import TrialResult, evaluate_all
from popsim.parameters.io import ParamsFileError, default_parameters, load_params_file

BASE = default_parameters()
VALUES = {f.name: float(getattr(BASE.params, f.name)) for f in dataclasses.fields(BASE.params)}


def _obs(study_id, oid):
    return evidence.catalogue()[study_id].observation_by_id(oid)


# --- standard errors of reported values, by hand from the study files' numbers ----------------

@pytest.mark.parametrize(("study", "oid", "expected"), [
    ("buus_2020", "urine_k_potassium", 28.7 / 5.0),  # mean: SD 28.7, n 25 -> 28.7 / sqrt(25)
    # median with IQR 121.1-187.8, n 25: SD = 66.7 / 1.349 = 49.444; x sqrt(pi/2) / 5
    ("buus_2020", "aldosterone_potassium", 66.7 / 1.349 * 1.2533141 / 5.0),
    ("fatemi_1991", "serum_mg_post", 0.02),  # SE given
    ("zhang_2016_jnutr", "urine_mg", (1.83 - 1.20) / 3.92),  # 95% CI 1.20-1.83
    ("jin_2020", "healthy_below_p2_5", math.sqrt(0.025 * 0.975 / 308)),  # binomial, n 308
    ("fang_2000", "mean_serum_k", 0.013 / 1.96),  # stated tolerance (a 95% half-width)
])
def test_standard_error_from_reported_uncertainty(study, oid, expected):
    assert _obs(study, oid).standard_error() == pytest.approx(expected, rel=1e-6)


def test_quantile_standard_error_uses_normal_order_statistics():
    """SE of a quantile from SD and n: sqrt(q(1-q)) / phi(z_q) x SD / sqrt(n); for q = 0.1,
    z = -1.28155, phi(z) = 0.175498: factor 0.3 / 0.175498 = 1.70942."""
    o = evidence.Observation(output="serum_k", day=0, statistic="quantile", q=0.1, value=3.8,
                             sd=0.4, n=100, unit="mmol/L")
    assert o.standard_error() == pytest.approx(1.70942 * 0.4 / 10, rel=1e-5)
    assert o.half_width() == pytest.approx(1.96 * 1.70942 * 0.04, rel=1e-5)


# --- differentiable statistics against the NumPy evaluator, on the same outputs ----------------

AGREEMENT_STUDIES = ["buus_2020", "fatemi_1991", "krishna_1991", "lammintausta_1980",
                     "jin_2020", "fang_2000", "whang_1984", "vassalotti_2008", "he_2013"]


def _centre(study, output) -> float:
    """A typical magnitude for synthetic outputs: a threshold or reported value on it."""
    for o in study.observation:
        for name, crit in o.subgroup.items():
            if name == output and not isinstance(crit, str):
                return crit.max if crit.max is not None else crit.min
        if o.output == output:
            if o.threshold is not None:
                return o.threshold
            if o.value is not None and o.change_from_day is None and o.versus_arm is None \
                    and o.divide_by is None and o.integrate is None:
                return o.value
    return 5.0


def _numpy_draws(pop, seed, start, n, names):
    """A NumPy stand-in for :func:`popsim.population.sample_draws` (same covariate codes and
    ranges, no compiled program per study: the statistics tests need covariates, not the
    population model)."""
    from popsim import config as cfg

    rng = np.random.default_rng(seed)

    def draw(dist, name):
        if isinstance(dist, cfg.BySex):
            dist = dist.female
        labels = cfg.COVARIATES[name][2]
        if isinstance(dist, cfg.Fixed):
            v = labels.index(dist.value) if isinstance(dist.value, str) else dist.value
            return np.full(n, v)
        if isinstance(dist, cfg.Categorical):
            return rng.choice([labels.index(v) for v in dist.values], n, p=dist.probabilities)
        lo, hi = cfg.continuous_bounds(name, dist)
        if isinstance(dist, cfg.Normal):
            x = rng.normal(dist.mean, dist.sd, n)
        elif isinstance(dist, cfg.LogNormal):
            x = dist.median * dist.gsd ** rng.standard_normal(n)
        else:
            x = rng.uniform(dist.low, dist.high, n)
        return np.clip(x, lo, hi)

    cov = {name: draw(pop.covariate(name), name) for name in cfg.COVARIATES}
    z = {name: rng.standard_normal(n) for name in names}
    return np.arange(start, start + n), cov, z


@pytest.fixture(scope="module")
def agreement():
    """Synthetic outputs (normal, 8% CV around a threshold or reported value of each
    output) for 400 patients per study, evaluated by both evaluators."""
    from popsim.calibration import problem

    studies = evidence.resolve(AGREEMENT_STUDIES)
    fit = parse_fit("mg_gut_absorbed_ref", VALUES, BASE.cvs)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(problem, "sample_draws", _numpy_draws)
        prob = build_problem(studies, fit, BASE.params, BASE.cvs, size=400)
    rng = np.random.default_rng(7)
    outs, oks, trials = [], [], []
    for b in prob.blocks:
        o = {name: _centre(b.study, name) * (1 + 0.08 * rng.standard_normal(
            (len(b.arms), b.n, len(b.times)))) for name in b.outputs}
        ok = rng.random(b.n) > 0.02  # a few patients not solved
        outs.append({k: jnp.asarray(v) for k, v in o.items()})
        oks.append(jnp.asarray(ok))
        status = np.where(ok, 0, 1)[None, :].repeat(len(b.arms), 0)
        trials.append(TrialResult(b.study, b.arms, b.times, o, status, b.covariates))
    values, mc, counts = st.evaluate(prob.obs, outs, oks, prob.blocks)
    numpy = {f"{e.study}:{e.observation.id or e.observation.label}": e
             for e in evaluate_all(trials)}
    return prob, np.asarray(values), np.asarray(mc), np.asarray(counts), numpy


def test_statistics_agree_with_numpy_evaluator(agreement):
    """Means, SDs, changes, paired differences, integrals and ratios agree to rounding;
    smoothed medians, quantiles and fractions to within their own Monte-Carlo SE (the
    smoothing's bias at 400 patients is smaller than the sampling error it adds to)."""
    prob, values, mc, counts, numpy = agreement
    compared = {"exact": 0, "smoothed": 0}
    for s, v, se in zip(prob.obs, values, mc, strict=True):
        if not s.supported:
            continue
        ref = numpy[s.key].model
        smooth = (s.obs.statistic in ("median", "quantile") or "fraction" in s.obs.statistic
                  or bool(s.out_sub) or s.obs.combine is not None)
        if smooth:
            assert abs(v - ref) <= se + 1e-12, (s.key, v, ref, se)
            compared["smoothed"] += 1
        else:
            assert v == pytest.approx(ref, rel=1e-9, abs=1e-12), (s.key, v, ref)
            compared["exact"] += 1
    assert compared["exact"] >= 15 and compared["smoothed"] >= 10, compared


def test_monte_carlo_se_of_a_mean_is_sd_over_root_n(agreement):
    prob, values, mc, counts, numpy = agreement
    [i] = [i for i, s in enumerate(prob.obs) if s.key == "fatemi_1991:serum_mg_post"]
    spec = prob.obs[i]
    ok = np.asarray([numpy[spec.key].n_patients])
    assert counts[i] == ok[0]
    x = numpy[spec.key]
    assert x.n_patients > 350
    # the synthetic serum Mg has an SD of 8% of its centre
    sd = 0.08 * _centre(prob.blocks[spec.block].study, "serum_mg")
    assert mc[i] == pytest.approx(sd / math.sqrt(x.n_patients), rel=0.15)


@pytest.mark.parametrize("emptied", ["every patient", "one patient left", "one study"])
def test_gradient_stays_finite_when_patients_drop_out(agreement, emptied):
    """A study whose patients all fail (or all but one) gives its statistics a zero gradient,
    never NaN: one NaN would reach every coordinate of the fit's gradient through the sum of
    the likelihood, and the fit would stop with every parameter at once."""
    import jax

    prob, *_ = agreement
    rng = np.random.default_rng(3)
    outs = [{name: jnp.asarray(_centre(b.study, name) * (1 + 0.08 * rng.standard_normal(
        (len(b.arms), b.n, len(b.times))))) for name in b.outputs} for b in prob.blocks]
    oks = [np.ones(b.n, bool) for b in prob.blocks]
    for i, ok in enumerate(oks):
        if emptied == "every patient" or (emptied == "one study" and i == 0):
            ok[:] = False
        elif emptied == "one patient left":
            ok[1:] = False
    # zero where failed, as the forward model leaves a failed patient's outputs
    outs = [{k: jnp.where(jnp.asarray(ok)[None, :, None], v, 0.0) for k, v in o.items()}
            for o, ok in zip(outs, oks, strict=True)]

    def total(outs):
        values, mc, _ = st.evaluate(prob.obs, outs, [jnp.asarray(ok) for ok in oks],
                                    prob.blocks)
        use = np.array([s.supported for s in prob.obs])
        return jnp.sum(jnp.where(use, values, 0.0)) + jnp.sum(jnp.where(use, mc, 0.0))

    grad = jax.grad(total)(outs)
    leaves = jax.tree.leaves(grad)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    if emptied == "one study":  # the other studies' statistics still move with their outputs
        assert any(bool(jnp.any(g != 0)) for o in grad[1:] for g in o.values())


# --- bad input: one line, exit 2, nothing written -----------------------------------------------

@pytest.mark.parametrize(("argv", "message"), [
    (["--evidence", "fatemi_1991", "--fit", "mg_gut_absorbed"],
     "unknown parameter 'mg_gut_absorbed' (did you mean 'mg_gut_absorbed_ref'?)"),
    (["--evidence", "fatemi_199", "--fit", "mg_gut_absorbed_ref"], "no study 'fatemi_199'"),
    (["--evidence", "fine_1991", "--fit", "mg_gut_absorbed_ref"],
     "study 'fine_1991' is reserved for independent validation"),
    (["--evidence", "fatemi_1991", "--holdout", "shils_1964", "--fit", "mg_gut_absorbed_ref"],
     "--holdout: study 'shils_1964' is reserved"),
    (["--evidence", "fatemi_1991", "--fit", "mg_gut_absorbed_ref=0.8:0.2"],
     "--fit mg_gut_absorbed_ref=0.8:0.2: the lower bound must be below the upper bound"),
    (["--evidence", "fatemi_1991", "--fit", "mg_ionized_fraction=0.3:1.5"],
     "outside the physical bounds 0..1 1 of mg_ionized_fraction"),
    (["--evidence", "fatemi_1991", "--fit", "mg_gut_absorbed_ref=a:b"],
     "bounds must be LOWER:UPPER"),
    (["--evidence", "fatemi_1991", "--fit", "cv.mg_dct_half_load=0:3"],
     "outside the physical bounds"),
    (["--evidence", "fatemi_1991"], "--fit: name the parameters to fit"),
    (["--evidence", "fatemi_1991", "--fit", "mg_gut_absorbed_ref", "--profile",
      "mg_dct_half_load"], "--profile mg_dct_half_load: not a fitted parameter"),
    (["--evidence", "fatemi_1991", "--holdout", "fatemi_1991", "--fit", "mg_gut_absorbed_ref"],
     "also in --evidence"),
    (["--evidence", "fatemi_1991", "--fit", "mg_gut_absorbed_ref,mg_gut_absorbed_ref"],
     "listed twice"),
])
def test_bad_calibrate_input_one_line_exit_2(tmp_path, capsys, argv, message):
    from popsim.cli import main

    out = tmp_path / "fit"
    assert main(["calibrate", *argv, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err, err
    assert not out.exists()


def test_bad_calibration_config_file_one_line(tmp_path, capsys):
    from popsim.cli import main

    conf = tmp_path / "fit.toml"
    conf.write_text('[fit]\nstudies = ["fatemi_1991"]\nfit = ["mg_gut_absorbed_ref"]\nstart = 3\n')
    assert main(["calibrate", str(conf), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "fit.start: unknown key (did you mean 'starts'?)" in err, err


def test_existing_fit_directory_is_not_replaced(tmp_path, capsys):
    from popsim.cli import main

    out = tmp_path / "fit"
    out.mkdir()
    (out / "keep").write_text("x")
    assert main(["calibrate", "--evidence", "fatemi_1991", "--fit", "mg_gut_absorbed_ref",
                 "--out", str(out), "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "keep").read_text() == "x"


# --- reserved studies are never fitted or read by a fit ----------------------------------------

def test_reserved_studies_cannot_be_resolved_for_a_fit():
    reserved = [s.study.id for s in evidence.catalogue().values() if s.study.reserved]
    assert len(reserved) >= 10
    for sid in reserved:
        with pytest.raises(evidence.StudyError, match="reserved for independent validation"):
            evidence.resolve([sid])
    assert not {s.study.id for s in evidence.studies()} & set(reserved)


def test_a_fit_never_reads_reserved_files(monkeypatch):
    """Building a fit's problem from every fittable study loads no file in reserved/."""
    from popsim.calibration.spec import build_spec

    read = []
    real = evidence.load_study
    monkeypatch.setattr(evidence, "load_study", lambda p: read.append(str(p)) or real(p))
    evidence.catalogue.cache_clear()
    try:
        ids = [s.study.id for s in evidence.studies()]
        spec = build_spec({"studies": ids, "fit": "mg_gut_absorbed_ref"}, VALUES, BASE.cvs)
        assert "fine_1991" not in spec.studies
        with pytest.raises(CalibrationError, match="reserved"):
            build_spec({"studies": ["fine_1991"], "fit": "mg_gut_absorbed_ref"}, VALUES,
                       BASE.cvs)
    finally:
        evidence.catalogue.cache_clear()
    # the catalogue validates every file once (so `evidence list` can show them), but a fit's
    # studies are resolved only from the non-reserved ones:
    assert all("reserved" not in s.path for s in evidence.resolve(ids))


# --- parameter files: "fitted" needs a fit record ----------------------------------------------

def _params_file(tmp_path, status="fitted", record=None, names=("mg_gut_absorbed_ref",),
                 value=0.5):
    meta = f'[meta]\nfit_record = "{record}"\n' if record else "[meta]\n"
    path = tmp_path / "p.toml"
    path.write_text(meta + f'[parameters.mg_gut_absorbed_ref]\nvalue = {value}\n'
                    f'status = "{status}"\n')
    if record:
        (tmp_path / record).write_text(json.dumps(
            {"names": list(names), "parameters": {n: {"value": 0.5} for n in names}}))
    return path


def test_fitted_label_needs_a_fit_record_listing_the_parameter(tmp_path):
    with pytest.raises(ParamsFileError, match="labelled fitted but meta.fit_record names no"):
        load_params_file(_params_file(tmp_path))
    with pytest.raises(ParamsFileError, match="does not list it"):
        load_params_file(_params_file(tmp_path, record="fit.json", names=("mg_dct_half_load",)))
    with pytest.raises(ParamsFileError, match="differs from its fit record"):
        load_params_file(_params_file(tmp_path, record="fit.json", value=0.55))
    ok = load_params_file(_params_file(tmp_path, record="fit.json"))
    assert ok.params.mg_gut_absorbed_ref == 0.5
    plain = load_params_file(_params_file(tmp_path, status="hand-set"))
    assert plain.params.mg_gut_absorbed_ref == 0.5


def test_shipped_fitted_set_is_backed_by_its_record():
    """Every parameter file shipped in the package that labels something fitted loads (the
    check passes) and its fit record lists exactly those quantities."""
    import tomllib
    from pathlib import Path

    from popsim.parameters.io import fitted_claims

    root = Path(__file__).resolve().parent.parent / "popsim" / "parameters"
    for path in root.rglob("*.toml"):
        claims = fitted_claims(tomllib.loads(path.read_text()))
        load_params_file(path)
        if claims:
            meta = tomllib.loads(path.read_text())["meta"]
            record = json.loads((path.parent / meta["fit_record"]).read_text())
            assert set(claims) == set(record["names"]), path


# --- parameter recovery on a synthetic study ---------------------------------------------------

TRUTH = {"mg_gut_absorbed_ref": 1.4, "k_ckd_exponent": 0.5}  # x the shipped value
SYNTHETIC_SE = {"serum_mg": 0.01, "urine_mg": 0.17, "serum_k": 0.05}
"""Reported SEs (model units): SD 0.07 mmol/L, 1.2 mmol/day and 0.35 mmol/L over n = 50."""


def _synthetic_study(values: dict[str, float]) -> evidence.Study:
    """A steady-state study of 8 adults with eGFR 25 mL/min/1.73 m2 and without diuretics: mean
    serum Mg, urine Mg and serum K on day 0, each with its reported SE. (At this eGFR the power of
    nephron mass on distal K secretion moves serum K by several SEs; near eGFR 100 the balancing
    constants absorb it.)"""
    obs = [{"id": out, "output": out, "day": 0, "statistic": "mean", "value": values[out],
            "se": se, "unit": evidence.OUTPUT_UNITS[out]} for out, se in SYNTHETIC_SE.items()]
    return evidence.parse_study({
        "study": {"id": "synthetic", "title": "synthetic recovery study"},
        "design": {"population": {"size": 8, "seed": 5, "covariates": {
            "diuretic": {"distribution": "fixed", "value": "none"},
            "egfr": {"distribution": "fixed", "value": 25}}},
            "simulation": {"days": 1}},
        "observation": obs})


@pytest.fixture(scope="module")
def recovery():
    return recovery_fit()


def recovery_fit():
    """Data from known parameters (mg_gut_absorbed_ref x 1.4, k_ckd_exponent x 0.6) plus Gaussian
    noise of the reported SEs (seed 11), fitted from the shipped values together with
    loop_max_block, which nothing in a study without diuretics can inform."""
    from popsim.calibration.engine import Engine
    from popsim.calibration.evidence_fit import fit_evidence
    from popsim.calibration.spec import build_spec, to_transformed

    fit = ("mg_gut_absorbed_ref=0.1:0.9,k_ckd_exponent=0.1:2,loop_max_block=0.2:1")
    placeholder = _synthetic_study({k: 1.0 for k in SYNTHETIC_SE})
    spec = build_spec({"studies": ["fatemi_1991"], "fit": fit, "starts": 2, "steps": 80,
                       "learning_rate": 0.15,
                       "profile": ["loop_max_block", "mg_gut_absorbed_ref"],
                       "profile_points": 5, "profile_steps": 15, "patience": 15},
                      VALUES, BASE.cvs)
    spec = dataclasses.replace(spec, studies=("synthetic",))
    with jax_x64():
        engine = Engine(build_problem([placeholder], spec.parameters, BASE.params, BASE.cvs))
        truth = {p.name: VALUES[p.name] * TRUTH.get(p.name, 1.0) for p in spec.parameters}
        u_true = np.array([to_transformed(p, truth[p.name]) for p in spec.parameters])
        clean = engine.report(u_true, engine.warm_start(u_true))[0]
    noise = np.random.default_rng(11).standard_normal(len(SYNTHETIC_SE))
    data = {s.obs.output: float(v) + SYNTHETIC_SE[s.obs.output] * e
            for s, v, e in zip(engine.problem.obs, clean, noise, strict=True)}
    study = _synthetic_study(data)
    engine = engine.with_observations(
        build_problem([study], spec.parameters, BASE.params, BASE.cvs))
    res = fit_evidence(spec, BASE, progress=False, studies=[study], engine=engine)
    return res, truth


def jax_x64():
    import jax

    return jax.enable_x64(True)


@pytest.mark.slow
def test_fit_recovers_known_parameters_inside_its_95_intervals(recovery):
    res, truth = recovery
    lap = res.laplace
    for i, p in enumerate(res.spec.parameters):
        if p.name not in TRUTH:
            continue
        assert lap.lower[i] <= truth[p.name] <= lap.upper[i], (p.name, truth[p.name],
                                                               lap.lower[i], lap.upper[i])
        # closer to the truth than the start, and an interval narrower than the bounds
        assert abs(res.values[p.name] - truth[p.name]) < 0.5 * abs(p.base - truth[p.name])
        assert lap.upper[i] - lap.lower[i] < 0.5 * (p.upper - p.lower), p.name
        assert not lap.flags[p.name], (p.name, lap.flags[p.name])
    assert res.best.nll < res.runs[0].losses[0] - 5.0


@pytest.mark.slow
def test_non_identifiable_parameter_is_flagged_and_its_profile_is_flat(recovery):
    res, _ = recovery
    assert any("non-identifiable" in f for f in res.laplace.flags["loop_max_block"])
    [flat] = [p for p in res.profiles if p.name == "loop_max_block"]
    assert flat.flat and np.max(np.abs(flat.delta_nll)) < 0.05
    [absorbed] = [p for p in res.profiles if p.name == "mg_gut_absorbed_ref"]
    assert not absorbed.flat and absorbed.delta_nll.min() > -0.05


@pytest.mark.slow
def test_fit_record_and_parameter_file_round_trip(recovery, tmp_path):
    """fit.json lists the studies, parameters, starts and intervals; parameters.toml labels the
    fitted values fitted and loads with --params (its claims checked against fit.json)."""
    from popsim.calibration.record import write_fit

    res, _ = recovery
    written = write_fit(res, tmp_path / "fit")
    record = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert record["studies"] == ["synthetic"] and record["names"] == list(res.spec.names)
    assert len(record["starts_detail"]) == 2 and record["nll"] == res.best.nll
    for name, entry in record["parameters"].items():
        lo, hi = entry["interval95"]
        assert entry["lower"] <= lo <= entry["value"] <= hi <= entry["upper"], name
    loaded = load_params_file(tmp_path / "fit" / "parameters.toml")
    assert loaded.params.mg_gut_absorbed_ref == pytest.approx(res.values["mg_gut_absorbed_ref"],
                                                              rel=1e-12)
    assert all(p.exists() for p in written)


# --- the Laplace approximation off a minimum -----------------------------------------------------

def test_laplace_of_an_indefinite_hessian_gives_finite_positive_intervals():
    """An optimiser stopped early can leave a saddle: a Hessian with a negative eigenvalue. The
    covariance then comes from the Hessian's positive part plus the bounded scale's prior, so
    every SD is finite and positive and every interval contains the estimate; the parameter
    along the negative direction is flagged non-identifiable."""
    from popsim.calibration.spec import FitParam, from_transformed
    from popsim.calibration.uncertainty import laplace

    params = (FitParam("mg_gut_km", 0.5, 8.0, "log", "mmol/day", 2.0),
              FitParam("k_ckd_exponent", 0.2, 2.0, "log", "1", 0.9))
    u = np.array([0.3, -0.2])
    lap = laplace(params, u, np.array([[50.0, 0.0], [0.0, -4.0]]))
    assert np.all(np.isfinite(lap.sd)) and np.all(lap.sd > 0)
    assert lap.sd[0] < 0.15 < lap.sd[1]  # 1/sqrt(50 + prior) vs the prior alone
    estimate = [from_transformed(p, x) for p, x in zip(params, u, strict=True)]
    assert np.all(lap.lower < estimate) and np.all(estimate < lap.upper)
    assert "positive part" in lap.source
    assert any("non-identifiable" in f for f in lap.flags["k_ckd_exponent"])


def test_text_subgroup_criterion_on_an_output_is_refused_on_reading():
    """A category criterion ("female") makes sense for a covariate only; on an output the file
    is refused in one line naming the key, before any fit builds a problem from it."""
    study = {
        "study": {"id": "textsub", "title": "a text criterion on an output"},
        "design": {"population": {"size": 4, "seed": 1}, "simulation": {"days": 1}},
        "observation": [{"id": "k", "output": "serum_k", "day": 0, "statistic": "mean",
                         "value": 4.0, "se": 0.1, "unit": "mmol/L",
                         "subgroup": {"serum_mg": "low"}}]}
    with pytest.raises(evidence.StudyError, match=r"subgroup\.serum_mg: 'low' is text") as e:
        evidence.parse_study(study)
    assert "\n" not in str(e.value)
    study["observation"][0]["subgroup"] = {"sex": "female"}
    assert evidence.parse_study(study).observation[0].subgroup == {"sex": "female"}


def test_a_fit_whose_gradient_is_not_finite_stops_and_says_so():
    """Non-finite gradient components are zeroed for the update; when every fitted coordinate
    is non-finite the optimiser could only stand still, so it stops at once with that reason
    (instead of reporting 'no gain' after its patience), and partly non-finite steps are
    counted."""
    from popsim.calibration.optimize import minimise

    class Stub:
        def __init__(self, bad):
            self.bad = bad

        def init(self, u):
            return None

        def step(self, u, state, y, free):
            return u - 0.1, state, 10.0 + float(u[0]), (None, 0, y), u * 0, self.bad.pop(0)

    run = minimise(Stub([0, 1, 2, 0]), np.array([1.0, 2.0]), steps=10, patience=5, y="warm")
    assert run.stopped.startswith("the gradient is not finite in any fitted coordinate at step 3")
    assert run.nonfinite_steps == 1 and len(run.losses) == 3
    assert run.nll == pytest.approx(10.8)


def test_a_point_that_loses_patients_is_stepped_back_from_never_the_best():
    """A failed patient drops out of the statistics, so the NLL can fall because patients
    fail: such a point (even after robust steady states) is never a start's best, the optimiser
    goes back to the last point that lost none with half the learning rate, and gives up after
    MAX_SHORTENINGS halvings; across starts the fewest failures win before the lowest NLL."""
    from popsim.calibration.optimize import MAX_SHORTENINGS, Run, best_run, minimise

    class Stub:  # the NLL falls with u; below u = 0.84 five patients lose their steady state
        robust = 0

        def init(self, u):
            return 0.1  # the learning rate

        def shorter(self, state):
            return state / 2

        def warm_start(self, u):
            self.robust += 1
            return "robust"

        def step(self, u, state, y, free):
            failed = 5 if float(u[0]) < 0.84 else 0
            return u - state, state, 10.0 + float(u[0]), (None, failed, y), u * 0, 0

    stub = Stub()
    run = minimise(stub, np.array([1.0]), steps=50, patience=50, y="warm")
    assert run.stopped.startswith(f"steps lose patients at 1/{2 ** MAX_SHORTENINGS} of")
    assert run.shortenings == MAX_SHORTENINGS
    assert run.worse_failed_steps == MAX_SHORTENINGS + 1 == stub.robust
    assert run.failed == 0 and 0.84 <= run.u[0] < 0.85
    assert run.nll == pytest.approx(10.0 + run.u[0])
    assert run.most_lost == 5
    # five lost patients tolerated (0.1% of a fit's 5,000): no step back, the walk goes on
    run = minimise(Stub(), np.array([1.0]), steps=5, patience=50, y="warm", tolerate=5)
    assert run.worse_failed_steps == run.shortenings == 0 and run.stopped == "5 steps"
    assert run.failed == 5 and run.u[0] == pytest.approx(0.6) and run.most_lost == 5
    a = Run(0, np.zeros(1), np.zeros(1), nll=50.0, failed=0)
    b = Run(1, np.zeros(1), np.zeros(1), nll=20.0, failed=3)
    assert best_run([b, a]) is a
    assert best_run([a, b], tolerate=3) is b


def test_lost_patients_tolerated_scale_with_the_fit():
    """0.1% of the fit's patients, rounded down: none of 888, five of 5,464."""
    from popsim.calibration.optimize import tolerated

    assert [tolerated(n) for n in (888, 999, 1000, 5464)] == [0, 0, 1, 5]


def test_starts_stay_near_the_base_inside_the_bounds():
    from popsim.calibration.optimize import EDGE, START_SPREAD, starts
    from popsim.calibration.spec import parse_fit

    values = {f.name: float(getattr(BASE.params, f.name))
              for f in dataclasses.fields(BASE.params)}
    # k_bk_fraction's value, 0, is its lower bound: its starts are clipped at the edge
    params = parse_fit("mg_gut_km,romk_mg_kd,k_bk_fraction=0:0.9", values, BASE.cvs)
    u = starts(params, 9, seed=3)
    edge = np.log(EDGE) - np.log1p(-EDGE)
    assert u.shape == (9, 3) and np.all(u >= edge - 1e-9) and np.all(u <= -edge + 1e-9)
    assert np.all(np.abs(u[1:] - u[0]) <= START_SPREAD + 1e-9)
    assert np.ptp(u[1:, :2], axis=0).min() > START_SPREAD  # the hypercube spreads them
    np.testing.assert_array_equal(u, starts(params, 9, seed=3))
