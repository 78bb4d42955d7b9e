"""`popsim check` validates a config, summarises its sampled population with units, reports
its enrolment criteria (applying those on covariates to the sampled candidates) and estimates
the run time with the screening, writing nothing; `popsim info` lists outputs, covariates,
parameters and intervention kinds from their one definition (a kind registered here is listed
too)."""

import math
import os
import re
import tomllib
from typing import ClassVar, Literal

import numpy as np
import pytest
from conftest import SMALL_TRIAL
from test_reliability import assert_one_line_error, listing, run_main

from popsim import api
from popsim import config as cfg
from popsim.covariates import COVARIATES
from popsim.outputs import OUTPUT_SPECS
from popsim.parameters import parameter_specs
from popsim.parameters.io import default_parameters


def _row(stdout: str, name: str) -> list[str]:
    """The cells of the table row whose first cell is ``name``."""
    for line in stdout.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if cells and cells[0] == name:
            return cells
    raise AssertionError(f"no row {name!r} in\n{stdout}")


def test_check_summarises_the_population_and_writes_nothing(tmp_path, capsys, monkeypatch):
    config = tmp_path / "trial.toml"
    config.write_text(SMALL_TRIAL.replace("size = 14", "size = 20"))
    monkeypatch.chdir(tmp_path)
    before = listing(tmp_path)
    code, out, err = run_main(capsys, "check", config)
    assert code == 0, err
    assert listing(tmp_path) == before  # no file created or changed
    assert "valid. 20 patients, 10 days (11 saved times), arms: control, magnesium" in out
    import jax

    from popsim.population import sample_draws

    with jax.enable_x64(True):  # the draws of a run: each patient's own streams
        _, drawn, _ = sample_draws(cfg.load_config(config)[0].population, 5, 0, 20, ())
    egfr = np.asarray(drawn["egfr"])
    cells = _row(out, "egfr")
    assert cells[1] == COVARIATES["egfr"][0] and cells[2] == "config"
    assert float(cells[3]) == pytest.approx(np.mean(egfr), rel=1e-3)
    assert float(cells[7]) == pytest.approx(np.median(egfr), rel=1e-3)
    assert _row(out, "age")[1] == "years" and _row(out, "age")[2] == "default"
    sex = np.asarray(drawn["sex"])
    assert f"female {100 * np.mean(sex == 0):.1f}%" in _row(out, "sex")[-1]
    assert "expected run time: about" in out and "patient-days/s per device" in out


def test_check_estimate_follows_the_stored_throughput(monkeypatch):
    text = SMALL_TRIAL.replace("size = 14", "size = 20")
    small = api.check_config(text)
    monkeypatch.setattr(api, "CHECK_SAMPLE_MAX", 20)  # the same 20 draws (one compilation)
    big = api.check_config(text, size=2_000_000, devices=2)
    assert small.n_sampled == 20 and big.n_sampled == 20
    assert [c.quantiles for c in small.covariates] == [c.quantiles for c in big.covariates]
    assert big.patient_days == 2_000_000 * 10 * 2  # patients x days x arms
    assert big.expected_seconds - api.FIRST_CHUNK_SECONDS == pytest.approx(
        big.patient_days / (2 * api.RUN_PATIENT_DAYS_PER_SECOND))
    assert big.output_bytes == 4 * 2_000_000 * 2 * 11 * len(OUTPUT_SPECS)
    fractions = next(c for c in big.covariates if c.name == "diuretic").fractions
    assert sum(fractions.values()) == pytest.approx(1.0)


def test_periodic_doses_lengthen_the_estimate(monkeypatch):
    """Each start and end of a periodic administration makes the solver stop and restart. The
    small trial's magnesium (days 2-8 of 10) taken every 6 h from 08:00 on day 2 is 23 doses,
    46 edges in 10 days; the control arm has none: 2.3 per arm-day. A constant rate has none."""
    monkeypatch.setattr(api, "CHECK_SAMPLE_MAX", 20)
    text = SMALL_TRIAL.replace("size = 14", "size = 20")
    constant = api.check_config(text, size=100_000)
    periodic = api.check_config(text.replace("dose = 400\n", "dose = 400\nevery_hours = 6\n"),
                                size=100_000)
    assert constant.dose_edges_per_day == 0
    assert periodic.dose_edges_per_day == pytest.approx(2.3)
    slower = 1 + api.DOSE_EDGE_COST * 2.3
    assert periodic.patient_days_per_second == pytest.approx(
        api.RUN_PATIENT_DAYS_PER_SECOND / slower)
    assert periodic.expected_seconds - api.FIRST_CHUNK_SECONDS == pytest.approx(
        slower * (constant.expected_seconds - api.FIRST_CHUNK_SECONDS))


SCREENED = SMALL_TRIAL.replace("size = 14", "size = 20") + """
[population.inclusion]
serum_k = { max = 3.5 }
age = { min = 40 }
[population.exclusion]
egfr = { max = 30 }
"""
"""The small trial (eGFR uniform 20-120) screened on an output and on two covariates."""


def _passing(text: str, m: int) -> np.ndarray:
    """Which of the first ``m`` candidates of :data:`SCREENED` meet its covariate criteria."""
    import jax

    from popsim.population import sample_draws

    with jax.enable_x64(True):
        pop = cfg.parse_config(tomllib.loads(text)).population
        _, drawn, _ = sample_draws(pop, 5, 0, m, ())
    return (np.asarray(drawn["age"]) >= 40) & ~(np.asarray(drawn["egfr"]) <= 30)


def test_check_reports_the_enrolment_criteria_and_screening(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(api, "CHECK_SCREEN_SAMPLE_MIN", 20)  # the draws of the tests above
    config = tmp_path / "screened.toml"
    config.write_text(SCREENED)
    monkeypatch.chdir(tmp_path)
    before = listing(tmp_path)
    code, out, err = run_main(capsys, "check", config)
    assert code == 0, err
    assert listing(tmp_path) == before
    for line in ("inclusion: serum_k <= 3.5 mmol/L", "inclusion: age >= 40 years",
                 "exclusion: egfr <= 30 mL/min/1.73 m2"):
        assert f"  {line}  (" in out, line
    passing = _passing(SCREENED, 20)
    assert 0 < passing.sum() < 20  # the criteria on covariates screen some out here
    assert (f"criteria on covariates: {passing.sum()} of the first 20 candidates "
            f"({100 * passing.mean():.1f}%) meet them") in out
    assert "the fraction enrolled is not known until the run" in out
    assert "candidates before screening (the first 20 the run screens" in out
    assert f"at least {math.ceil(20 / passing.mean()):,} candidates" in out
    assert "at most the screening budget of 1,000 (population.max_screened)" in out

    result = api.check_config(SCREENED, devices=2)
    assert result.covariate_pass_fraction == pytest.approx(passing.mean())
    assert not result.enrolment_known
    assert result.candidates == pytest.approx(20 / passing.mean())
    rate = 2 * api.STEADY_STATES_PER_SECOND  # one steady state per candidate screened
    run = api.FIRST_CHUNK_SECONDS + result.patient_days / (2 * api.RUN_PATIENT_DAYS_PER_SECOND)
    assert result.expected_seconds == pytest.approx(run + result.candidates / rate)
    assert result.expected_seconds_max == pytest.approx(run + 1000 / rate)
    egfr = next(c for c in result.criteria if c.name == "egfr")
    assert not egfr.on_output and egfr.fail_fraction is not None
    assert next(c for c in result.criteria if c.name == "serum_k").fail_fraction is None


def test_check_knows_the_enrolment_of_criteria_on_covariates_only(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(api, "CHECK_SCREEN_SAMPLE_MIN", 20)
    text = SCREENED.replace("serum_k = { max = 3.5 }\n", "")
    result = api.check_config(text)
    passing = _passing(text, 20)
    assert result.enrolment_known and result.screened
    assert result.candidates == pytest.approx(20 / passing.mean())
    assert result.screening_seconds == 0  # sampling only, no steady states
    assert result.expected_seconds == pytest.approx(
        api.FIRST_CHUNK_SECONDS + result.patient_days / api.RUN_PATIENT_DAYS_PER_SECOND)
    config = tmp_path / "covariates.toml"
    config.write_text(text)
    code, out, err = run_main(capsys, "check", config)
    assert code == 0, err
    assert "not known until the run" not in out
    assert f"screening: about {math.ceil(20 / passing.mean()):,} candidates for 20" in out


def test_check_rejects_a_bad_config_in_one_line(tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("[population]\nsize = 5\n[output]\nvariables = ['serum_kk']\n")
    code, _, err = run_main(capsys, "check", config)
    assert_one_line_error(code, err, "output.variables: unknown output 'serum_kk' (did you "
                          "mean 'serum_k'?)")
    assert os.listdir(tmp_path) == ["bad.toml"]


def test_info_outputs_lists_every_output_with_its_unit(capsys):
    code, out, _ = run_main(capsys, "info", "outputs")
    assert code == 0
    for name, (unit, meaning) in OUTPUT_SPECS.items():
        assert _row(out, name)[1:] == [unit, meaning]


def test_info_covariates_and_parameters(capsys):
    code, out, _ = run_main(capsys, "info", "covariates")
    assert code == 0
    for name, (unit, _, labels) in COVARIATES.items():
        cells = _row(out, name)
        assert cells[1] == unit and all(label in cells[3] for label in labels)
    code, out, _ = run_main(capsys, "info", "parameters")
    shipped = default_parameters()
    fitted = []
    for spec in parameter_specs():
        cells = _row(out, spec.name)
        assert cells[1] == spec.unit and cells[4] == spec.description
        # a value the shipped set changed is labelled fitted, never with the table's label
        changed = getattr(shipped.params, spec.name) != spec.value
        assert cells[5] == ("fitted" if changed else spec.provenance), spec.name
        fitted += [spec.name] if changed else []
    assert bool(fitted) == (shipped.source != "table")


def test_info_interventions_come_from_the_registry(capsys, monkeypatch):
    from popsim import interventions
    from popsim.interventions import Effect, Intervention

    monkeypatch.setattr(interventions, "REGISTRY", dict(interventions.REGISTRY))

    @interventions.register
    class Sauna(Intervention):
        kind: Literal["sauna"] = "sauna"
        hours: float = 1.0
        summary: ClassVar[str] = "sweat losses (a test kind)"

        def effects(self, days):
            return [Effect("na_oral", -1.0)]

    code, out, _ = run_main(capsys, "info", "interventions")
    assert code == 0
    for kind, cls in interventions.REGISTRY.items():
        assert _row(out, kind)[1] == cls.summary
    assert _row(out, "sauna")[2] == "hours"
    assert "dose: mg/day elemental Mg" in _row(out, "oral_magnesium")[2]


def test_info_interventions_lists_only_the_keys_a_kind_accepts(capsys):
    from pydantic import ValidationError

    from popsim.interventions import REGISTRY

    code, out, _ = run_main(capsys, "info", "interventions")
    assert code == 0
    listed = {kind: {k.split(":")[0] for k in _row(out, kind)[2].split("; ")}
              for kind in REGISTRY}
    examples = {"every_hours": 24, "duration_hours": 2, "first_dose_hour": 8,
                "titrate": {"output": "serum_k", "target": 4.0, "every_days": 7, "step": 20,
                            "max": 120}}  # a value for each key only some kinds accept
    assert {"dose", "dose_per_kg"} <= listed["iv_magnesium"]
    assert set(examples) <= listed["oral_potassium"]
    for kind, cls in REGISTRY.items():
        dose = {} if kind == "diet" else {"dose": 0.5 if "diuretic" in kind else 20}
        for key, value in examples.items():
            if key in listed[kind]:  # listed: the config accepts it (with every_hours)
                cls(**dose, **{"every_hours": 24, key: value})
            elif key in cls.model_fields:  # in the schema but refused: not listed
                assert key in cls.refused_keys()
                with pytest.raises(ValidationError, match=f"{key} is not available for {kind}"):
                    cls(**dose, **{key: value})
    assert not listed["iv_magnesium"] & set(examples)
