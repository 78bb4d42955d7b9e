"""The built-in physiology scenarios of `popsim validate` (SPEC §1 behaviours, issue 3 numbers):
every check is a test. CI runs them at 16 patients per scenario (200 for the reference ranges)."""

import json

import pytest

from popsim import validation

CHECKS = [(s.name, c.id) for s in validation.scenarios() for c in s.checks]


@pytest.fixture(scope="session")
def validation_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("validation")
    return validation.validate(size=16, out=out, progress=False), out


@pytest.mark.parametrize("scenario, check", CHECKS, ids=[c for _, c in CHECKS])
def test_check_passes(validation_report, scenario, check):
    report, _ = validation_report
    [result] = [r for r in report.results if r.check.id == check]
    assert result.passed, (f"{check}: {result.check.what} = {result.value:.4g} "
                           f"{result.check.unit}, expected {result.check.expected()} "
                           f"({result.check.source})")


def test_every_scenario_checks_mass_balance():
    for s in validation.scenarios():
        if s.name != "reference":
            assert any(c.id.endswith("mass_balance") for c in s.checks), s.name


def test_validation_writes_figures_and_json(validation_report):
    report, out = validation_report
    data = json.loads((out / "validation.json").read_text())
    assert len(data) == len(CHECKS)
    assert all({"check", "value", "expected", "source", "passed", "unit"} <= set(d) for d in data)
    for s in validation.scenarios():
        png = out / f"{s.name}.png"
        assert png.stat().st_size > 10_000


def test_reference_covariates_match_shipped_config():
    from popsim.config import load_config, parse_config

    shipped, _ = load_config("configs/reference_healthy.toml")
    inline = parse_config({"population": {"size": 1,
                                          "covariates": validation.REFERENCE_COVARIATES}})
    for name in validation.REFERENCE_COVARIATES:
        assert shipped.population.covariate(name) == inline.population.covariate(name), name
