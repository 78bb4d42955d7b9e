"""Report figures: edge cases."""

import numpy as np


def test_time_course_figure_when_no_patient_solved(tmp_path):
    """Every patient failed (e.g. absurd parameters): the figure says so instead of crashing."""
    from popsim.report import time_course_figure

    png = tmp_path / "none.png"
    time_course_figure(np.linspace(0, 10, 5), {"serum_mg": np.empty((2, 0, 5))}, ["a", "b"], png)
    assert png.stat().st_size > 1000
