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


@pytest.mark.slow
def test_run_figure_draws_every_arm_of_a_two_arm_trial(small_trial, tmp_path, monkeypatch,
                                                       capsys):
    """`popsim run CONFIG --figure X.png` on the two-arm small trial (the ``small_trial``
    fixture's config, size and chunks: its compiled programs are reused, and the run gives the
    fixture's numbers): the trial figure is drawn for the run's file with a line per arm in
    every panel, and the PNG holds both arms' colours at the figure's full width."""
    import matplotlib.colors
    import matplotlib.image
    import matplotlib.pyplot as plt
    from conftest import SMALL_TRIAL

    from popsim import trial_report
    from popsim.cli import main

    drawn = []

    def recording(path, variables=None):
        fig = trial_figure(path, variables)
        drawn.append(fig)
        return fig

    monkeypatch.setattr(trial_report, "trial_figure", recording)
    config, out, png = tmp_path / "trial.toml", tmp_path / "trial.h5", tmp_path / "trial.png"
    config.write_text(SMALL_TRIAL)
    code = main(["run", str(config), "--out", str(out), "--chunk-size", "7", "--figure",
                 str(png), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert f"figure: {png}" in capsys.readouterr().out
    arms = ["control", "magnesium"]
    ran, fixture = store.open_cohort(out), store.open_cohort(small_trial[0])
    assert list(ran.arms) == arms == list(fixture.arms)
    np.testing.assert_array_equal(ran.output("serum_k"), fixture.output("serum_k"))
    [fig] = drawn
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3 * 2  # serum K and Mg: level, change, responders (no dose output)
    for ax in visible:
        assert sorted(line.get_label() for line in ax.get_lines()) == arms, ax.get_ylabel()
    img = matplotlib.image.imread(png)[..., :3]
    assert img.shape[1] == round(5.2 * 2 * 110)  # two columns of panels at 110 dpi
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"][:2]
    for arm, color in zip(arms, colors, strict=True):
        rgb = np.array(matplotlib.colors.to_rgb(color))
        assert np.sum(np.all(np.abs(img - rgb) < 0.02, axis=-1)) > 500, arm  # its lines
