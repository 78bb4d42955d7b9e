"""An intervention kind is one class and one registry entry: a kind defined in this file (and
nowhere else) is accepted by the config, compiled into the protocol and run by `popsim run`
into the cohort file."""

from typing import Annotated, ClassVar, Literal

import numpy as np
import pytest
from conftest import SMALL_TRIAL
from pydantic import Field

from popsim import store
from popsim.cli import main
from popsim.interventions import REGISTRY, Effect, Intervention, register


class SaltLoad(Intervention):
    """A toy kind: extra salt, in grams of NaCl a day (converted to mmol/day of Na)."""

    kind: Literal["salt_load"] = "salt_load"
    grams: Annotated[float, Field(gt=0, le=50, description="g/day NaCl")]
    summary: ClassVar[str] = "extra table salt, g/day of NaCl"

    def effects(self, days):
        return [Effect("na_oral", self.grams * 1000.0 / 58.44)]  # NaCl 58.44 g/mol


@pytest.fixture
def salt_load():
    register(SaltLoad)
    yield SaltLoad
    REGISTRY.pop("salt_load")


def test_a_new_kind_runs_through_popsim_run(tmp_path, capsys, salt_load, small_trial):
    text = SMALL_TRIAL.replace('kind = "oral_magnesium"\ndose = 400',
                               'kind = "salt_load"\ngrams = 6')
    assert "salt_load" in text
    config = tmp_path / "salt.toml"
    config.write_text(text)
    out = tmp_path / "salt.h5"
    assert main(["run", str(config), "--out", str(out), "--chunk-size", "7", "--quiet"]) == 0
    capsys.readouterr()
    coh = store.open_cohort(out)
    na = coh.output("na_absorbed")  # (arm, patient, time); the salt acts on days 2..8
    extra = 6 * 1000.0 / 58.44 * 0.98  # mmol/day absorbed (98% of Na is absorbed)
    np.testing.assert_allclose(na[1, :, 5] - na[0, :, 5], extra, rtol=1e-5)
    np.testing.assert_allclose(na[1, :, 9] - na[0, :, 9], 0.0, atol=1e-6)
    assert np.all(coh.output("urine_na")[1, :, 8] > coh.output("urine_na")[0, :, 8])


def test_unknown_and_malformed_kinds_are_config_errors(salt_load):
    from popsim.config import ConfigError, parse_config

    base = {"population": {"size": 2}}
    with pytest.raises(ConfigError, match=r"arm\.1\.intervention\.1\.grams: .*greater than 0"):
        parse_config({**base, "arm": [{"name": "a", "intervention": [
            {"kind": "salt_load", "grams": -1}]}]})
    with pytest.raises(ConfigError, match=r"unknown intervention kind 'salt_lod' \(did you "
                                          r"mean 'salt_load'\?\)"):
        parse_config({**base, "arm": [{"name": "a", "intervention": [
            {"kind": "salt_lod", "grams": 1}]}]})


def test_effects_must_name_real_channels():
    from popsim.protocols import compile_segments

    with pytest.raises(ValueError, match="unknown input channel 'salt'"):
        compile_segments([(0.0, 1.0, [Effect("salt", 1.0)])])
    with pytest.raises(ValueError, match="channel 'mg_iv' cannot be replaced"):
        compile_segments([(0.0, 1.0, [Effect("mg_iv", 1.0, replace=True)])])
