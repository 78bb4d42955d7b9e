"""Config validation: every bad input gives one clear line naming the key, the value and what is
allowed."""

import math

import pytest

from popsim.config import ConfigError, load_config, parse_config


def cfg(**population):
    return {"population": {"size": 10, **population}}


def test_spec_example_config_is_accepted(tmp_path):
    text = """
[population]
size = 10000
seed = 20261124
[population.covariates.mg_intake]      # mg/day
distribution = "lognormal"
median = 300
gsd = 1.4
[population.covariates.egfr]           # mL/min/1.73 m2
distribution = "fixed"
value = 90

[simulation]
days = 365
output_interval_days = 1.0

[[arm]]                                # every arm runs the same patients
name = "magnesium"
[[arm.intervention]]
kind = "oral_magnesium"                # mg/day elemental Mg
dose = 400
start_day = 30
end_day = 365
"""
    path = tmp_path / "spec.toml"
    path.write_text(text)
    conf, stored = load_config(path)
    assert stored == text
    assert conf.population.size == 10000 and conf.population.seed == 20261124
    assert conf.arms[0].name == "magnesium"
    assert conf.arms[0].intervention[0].dose == 400
    assert conf.simulation.n_times == 366


def test_shipped_configs_load():
    from pathlib import Path

    paths = [p for p in sorted(Path("configs").glob("*.toml"))
             if not p.name.startswith(("calibration", "vpop_targets"))]
    # calibration configs: test_calibration; virtual-population targets: test_vpop
    assert len(paths) >= 9
    for path in paths:
        conf, _ = load_config(path)
        assert conf.population.size > 0, path


def test_scale_config_is_the_bench_workload():
    """benchmarks/scaling.py's config runs the workload `popsim bench` times (its rates apply)."""
    from popsim.bench import workload

    conf, _ = load_config("configs/scale_year.toml")
    bench, _ = workload(conf.simulation.rtol, conf.simulation.atol)
    assert conf.population.size == 1_000_000
    assert conf.population.model_dump(exclude={"size"}) == bench.population.model_dump(
        exclude={"size"})
    assert conf.simulation == bench.simulation and conf.arms == bench.arms


def test_no_arms_means_one_baseline_arm():
    conf = parse_config(cfg())
    assert [a.name for a in conf.arms] == ["baseline"]


@pytest.mark.parametrize("data, pattern", [
    ({"populaton": {"size": 3}},
     r"populaton: unknown key 'populaton' \(did you mean 'population'\?\)"),
    (cfg(sead=3), r"population\.sead: unknown key 'sead' \(did you mean 'seed'\?\)"),
    (cfg(size=0), r"population\.size: .*greater than 0 \(got 0\)"),
    (cfg(size=-5), r"population\.size: .*greater than 0 \(got -5\)"),
    (cfg(size="ten"), r"population\.size: .*integer.*'ten'"),
    (cfg(covariates={"mg_intake": {"distribution": "lognormal", "median": math.nan, "gsd": 1.4}}),
     r"population\.covariates\.mg_intake\.median: NaN is not allowed"),
    (cfg(covariates={"mg_intake": {"distribution": "lognorm", "median": 3, "gsd": 1.4}}),
     r"unknown distribution 'lognorm'; allowed: fixed, normal, lognormal"),
    (cfg(covariates={"mg_intake": {"distribution": "lognormal", "median": -3, "gsd": 1.4}}),
     r"population\.covariates\.mg_intake\.median: .*greater than 0 \(got -3\)"),
    (cfg(covariates={"mg_intak": {"distribution": "fixed", "value": 3}}),
     r"unknown covariate 'mg_intak' \(did you mean 'mg_intake'\?\)"),
    (cfg(covariates={"egfr": {"distribution": "normal", "mean": 90, "sd": 10, "sdd": 3}}),
     r"egfr\.sdd: unknown key 'sdd' \(did you mean 'sd'\?\)"),
    (cfg(covariates={"diuretic": {"distribution": "categorical", "values": ["none", "lop"],
                                  "probabilities": [0.5, 0.5]}}),
     r"diuretic value 'lop' is not one of none, loop, thiazide"),
    (cfg(covariates={"sex": {"distribution": "categorical", "values": ["female", "male"],
                             "probabilities": [0.5, 0.6]}}),
     r"probabilities sum to 1\.1, not 1"),
    (cfg(covariates={"egfr": {"distribution": "fixed", "value": -10}}),
     r"egfr.value = -10 is outside the allowed range 3\.\.200"),
    (cfg(covariates={"egfr": {"distribution": "uniform", "low": 90, "high": 30}}),
     r"low \(90.*\) must be below high \(30.*\)"),
    (cfg(covariates={"age": {"female": {"distribution": "fixed", "value": 40},
                             "male": {"distribution": "fixed", "value": 50}}}),
     r"population\.covariates: age cannot be given by sex \(age and sex are drawn first"),
    (cfg(variability={"cv": {"mg_dct_half_loa": 0.1}}),
     r"unknown parameter 'mg_dct_half_loa' \(did you mean 'mg_dct_half_load'\?\)"),
    ({**cfg(), "simulation": {"days": 10, "output_interval_days": 20}},
     r"output_interval_days \(20\) exceeds days \(10\)"),
    ({**cfg(), "simulation": {"days": -1}}, r"simulation\.days: .*greater than 0"),
])
def test_bad_config_messages(data, pattern):
    with pytest.raises(ConfigError, match=pattern) as e:
        parse_config(data)
    assert "\n" not in str(e.value)


def arm(*interventions, name="a"):
    return {**cfg(), "arm": [{"name": name, "intervention": list(interventions)}]}


@pytest.mark.parametrize("data, pattern", [
    (arm({"kind": "oral_magnesum", "dose": 3}),
     r"arm\.1\.intervention\.1: unknown intervention kind 'oral_magnesum' \(did you mean "
     r"'oral_magnesium'\?\); allowed: "
     r"oral_magnesium, oral_potassium, iv_magnesium, diet, loop_diuretic, thiazide_diuretic"),
    (arm({"kind": "oral_magnesium", "dose": -3}), r"arm\.1\.intervention\.1\.dose: .*>= 0|"
     r"arm\.1\.intervention\.1\.dose: .*greater than or equal to 0 \(got -3\)"),
    (arm({"kind": "oral_magnesium", "dose": 3, "start_day": 30, "end_day": 10}),
     r"end_day \(10\) must be after start_day \(30\)"),
    (arm({"kind": "loop_diuretic", "dose": 3}), r"dose: .*less than or equal to 1 \(got 3\)"),
    (arm({"kind": "oral_magnesium", "dose": 3, "end_day": 400}),
     r"arm 'a' intervention 1 \(oral_magnesium\): end_day 400 is after the end of the "
     r"simulation \(days = 365\)"),
    (arm({"kind": "oral_magnesium", "dose": 3, "dosee": 4}),
     r"dosee: unknown key 'dosee' \(did you mean 'dose'\?\)"),
    (arm({"kind": "diet"}), r"a diet needs at least one of mg_intake, k_intake, na_intake"),
    ({**cfg(), "arm": [{"name": "x"}, {"name": "x"}]}, r"duplicate arm name 'x'"),
])
def test_bad_arm_messages(data, pattern):
    with pytest.raises(ConfigError, match=pattern):
        parse_config(data)


def test_unreadable_and_invalid_toml(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[population\nsize = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
