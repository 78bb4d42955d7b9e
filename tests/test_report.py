"""Report figures: edge cases."""

import numpy as np


def test_time_course_figure_when_no_patient_solved(tmp_path):
    """Every patient failed (e.g. absurd parameters): the figure says so instead of crashing."""
    import matplotlib.image

    from popsim.report import time_course_figure

    png = tmp_path / "none.png"
    time_course_figure(np.linspace(0, 10, 5), {"serum_mg": np.empty((2, 0, 5))}, ["a", "b"], png,
                       {"serum_mg": "mmol/L"})
    img = matplotlib.image.imread(png)
    assert img.shape[0] > 100 and np.mean(np.any(img[..., :3] < 0.5, axis=-1)) > 0.001  # text
