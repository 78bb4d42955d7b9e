"""Results do not change by accident: a committed small cohort (tests/data/reference_cohort.h5,
written by scripts/make_reference_cohort.py from tests/data/reference_cohort.toml) is computed
again and must agree bit for bit, every output, covariate, parameter and status. When the model
or the solver changes results on purpose, the file is written again in the same commit."""

import numpy as np
import pytest

from popsim import store
from popsim.config import load_config
from popsim.run import run_cohort

pytestmark = pytest.mark.slow  # a whole run (and its compile) in every test

DATA = "tests/data"


def test_the_reference_cohort_is_reproduced_bit_for_bit(tmp_path):
    config, text = load_config(f"{DATA}/reference_cohort.toml")
    out = tmp_path / "again.h5"
    run_cohort(config, text, out, chunk_size=4, progress=False)
    ref, new = store.open_cohort(f"{DATA}/reference_cohort.h5"), store.open_cohort(out)
    assert ref.arms == new.arms and np.array_equal(ref.times, new.times)
    assert ref.output_names == new.output_names
    for name in ref.output_names:
        np.testing.assert_array_equal(new.output(name), ref.output(name), err_msg=name)
    for name in ref.covariate_names:
        np.testing.assert_array_equal(new.covariate(name), ref.covariate(name), err_msg=name)
    for name in ref.parameter_names:
        np.testing.assert_array_equal(new.parameter(name), ref.parameter(name), err_msg=name)
    np.testing.assert_array_equal(new.status, ref.status)
    for key in ("model_version", "params_fingerprint", "seed", "config"):
        assert new.attrs[key] == ref.attrs[key], key
