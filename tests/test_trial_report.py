"""The trial figure (`popsim run --figure`, `popsim report`): every arm side by side, one line
per arm in every panel, responder fractions equal to those computed from the file."""

import json

import numpy as np
import pytest

from popsim import store
from popsim.report import _spans_a_decade
from popsim.trial_report import responder_rule, trial_figure


def _numpy_fractions(coh, name, threshold):
    """Per arm and day, the fraction of the arm's solved patients with ``name >= threshold``,
    straight from the file."""
    status = coh.status
    values = coh.output(name)  # (arm, patient, time)
    return np.array([np.mean(values[a][status[a] == 0] >= threshold, axis=0)
                     for a in range(len(coh.arms))])


@pytest.fixture(scope="module")
def figure(hypokalaemia_trial):
    import matplotlib.pyplot as plt

    fig = trial_figure(hypokalaemia_trial[0])
    yield fig
    plt.close(fig)


def test_one_line_per_arm_in_every_panel(hypokalaemia_trial, figure):
    coh = store.open_cohort(hypokalaemia_trial[0])
    visible = [ax for ax in figure.axes if ax.get_visible()]
    # serum K and serum Mg: level, change from baseline, responders; the doses: K and Mg
    assert len(visible) == 3 * 2 + 2
    for ax in visible:
        labels = [line.get_label() for line in ax.get_lines()]
        assert sorted(labels) == sorted(coh.arms), (ax.get_ylabel(), labels)
        for line in ax.get_lines():
            np.testing.assert_array_equal(line.get_xdata(), coh.times)  # linear days
        assert ax.get_xscale() == "linear" and ax.get_yscale() == "linear"


def test_responder_fractions_are_those_of_the_file(hypokalaemia_trial, figure):
    coh = store.open_cohort(hypokalaemia_trial[0])
    # enrolled on serum K <= 3.5 and serum Mg <= 0.70: responders reach the lower limits
    assert responder_rule(coh, "serum_k") == (">=", 3.5)
    assert responder_rule(coh, "serum_mg") == (">=", 0.70)
    for name, threshold in (("serum_k", 3.5), ("serum_mg", 0.70)):
        expected = 100 * _numpy_fractions(coh, name, np.float32(threshold))
        axes = [ax for ax in figure.axes if ax.get_visible()
                and ax.get_ylabel().startswith("patients with") and name.split("_")[1].upper()
                in ax.get_ylabel().upper()]
        assert len(axes) == 1
        lines = {line.get_label(): line.get_ydata() for line in axes[0].get_lines()}
        for a, arm in enumerate(coh.arms):
            np.testing.assert_allclose(lines[arm], expected[a], rtol=1e-12)
        assert np.all(expected[:, 0] == 0)  # nobody was a responder at enrolment


def test_report_writes_the_trial_figure_screening_and_responders(hypokalaemia_trial, tmp_path):
    from popsim.report import report

    path, result = hypokalaemia_trial
    coh = store.open_cohort(path)
    summary = report(path, tmp_path / "rep", days=[0.0, 28.0])
    assert (tmp_path / "rep" / "trial.png").stat().st_size > 10_000
    assert summary["screening"] == result.screening
    on_file = json.loads((tmp_path / "rep" / "summary.json").read_text())
    expected = _numpy_fractions(coh, "serum_k", np.float32(3.5))
    for a, arm in enumerate(coh.arms):
        assert on_file["responders"][arm]["28.0"]["serum_k >= 3.5"] == pytest.approx(
            expected[a, -1], abs=1e-12)


def test_a_log_axis_only_where_there_are_decades_to_show():
    assert _spans_a_decade(np.array([20.0, 300.0, 900.0]))
    assert not _spans_a_decade(np.array([15.0, 25.0, 40.0]))
    assert not _spans_a_decade(np.array([np.nan, 0.0]))
