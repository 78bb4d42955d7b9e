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


def test_float32_run_matches_float64_within_target(small_trial, tmp_path):
    reference, _ = small_trial
    text = SMALL_TRIAL.replace("[simulation]\n", '[simulation]\nprecision = "float32"\n')
    conf = cfg.parse_config(tomllib.loads(text))
    assert conf.simulation.precision == "float32"
    out = tmp_path / "float32.h5"
    run_cohort(conf, text, out, chunk_size=7, progress=False)  # the file stores this text
    single, double = open_dataset(out), open_dataset(reference)
    assert single.attrs["precision"] == "float32" and double.attrs["precision"] == "float64"
    assert bool((single.status == "ok").all())
    errors = relative_errors(single, double)
    assert len(errors) >= 30 and all(np.isfinite(v) for v in errors.values())
    worst = max(errors, key=errors.get)
    assert errors[worst] < TARGET, f"{worst}: {errors[worst]:.2e}"
    # float32 is not float64 in disguise: the outputs really differ
    assert max(errors.values()) > 1e-9
