"""float32 mode (``[simulation] precision = "float32"``): the shared small trial (14 patients,
two arms, 10 days of oral Mg) run in float32 solves every patient and agrees with the float64
run of the session fixture to a relative 1e-3 in every output (the accuracy target of float32;
benchmarks/float32_accuracy.py measures year-long cohorts, in benchmarks/RESULTS.md)."""

import tomllib

import numpy as np
import pytest
from conftest import SMALL_TRIAL

from popsim import config as cfg
from popsim.bench import relative_errors
from popsim.dataset import open_dataset
from popsim.run import run_cohort

pytestmark = pytest.mark.slow  # compiles the float32 programs

TARGET = 1e-3


@pytest.fixture(scope="module")
def float32_file(tmp_path_factory):
    """The small trial with ``[simulation] precision = "float32"`` in its config."""
    text = SMALL_TRIAL.replace("[simulation]\n", '[simulation]\nprecision = "float32"\n')
    conf = cfg.parse_config(tomllib.loads(text))
    assert conf.simulation.precision == "float32"
    out = tmp_path_factory.mktemp("float32") / "float32.h5"
    run_cohort(conf, text, out, chunk_size=7, progress=False)  # the file stores this text
    return out


def test_float32_run_matches_float64_within_target(small_trial, float32_file):
    reference, _ = small_trial
    single, double = open_dataset(float32_file), open_dataset(reference)
    assert single.attrs["precision"] == "float32" and double.attrs["precision"] == "float64"
    assert bool((single.status == "ok").all())
    errors = relative_errors(single, double)
    assert len(errors) >= 30 and all(np.isfinite(v) for v in errors.values())
    worst = max(errors, key=errors.get)
    assert errors[worst] < TARGET, f"{worst}: {errors[worst]:.2e}"
    # float32 is not float64 in disguise: the outputs really differ
    assert max(errors.values()) > 1e-9


def test_precision_flag_overrides_the_config(float32_file, tmp_path):
    """``popsim run --precision float32`` on a float64 config gives the numbers of a config that
    says float32, and the file records the precision used."""
    from popsim.cli import main

    conf = tmp_path / "trial.toml"
    conf.write_text(SMALL_TRIAL)
    out = tmp_path / "flag.h5"
    assert main(["run", str(conf), "--out", str(out), "--precision", "float32", "--quiet",
                 "--chunk-size", "7"]) == 0
    flag, config = open_dataset(out), open_dataset(float32_file)
    assert flag.attrs["precision"] == "float32"
    for name in ("serum_mg", "serum_k", "serum_ca"):
        np.testing.assert_array_equal(flag[name].values, config[name].values)
