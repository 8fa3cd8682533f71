"""The widgets run headless: they build, redraw when driven, and report what they show."""

import numpy as np
import pytest

from simpleseg_lite.data import SyntheticConfig, make_samples
from simpleseg_lite.viz import polygon_explorer, prediction_explorer


def test_polygon_explorer_updates_with_epsilon():
    mask = np.zeros((60, 80), np.uint8)
    mask[10:50, 20:70] = 1
    mask[30:50, 20:40] = 0  # an L
    w = polygon_explorer(np.zeros((60, 80, 3), np.uint8), mask, epsilon=0.0001)
    exact = w.update()
    assert exact["iou"] == pytest.approx(1.0) and exact["vertices"] == 6
    assert w.children[-1].value[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def samples():
    return list(make_samples(3, 7, SyntheticConfig(image_size=112), {"polygon": 1.0}, 0.02, decimals=2))


@pytest.mark.parametrize("answer_of, expected", [
    (lambda s: s.answer, lambda iou: iou > 0.85),  # the ground-truth answer
    (lambda s: "not a polygon", lambda iou: iou == 0.0),
])
def test_prediction_explorer_scores_what_it_shows(samples, answer_of, expected):
    w = prediction_explorer(samples, {"model": [answer_of(s) for s in samples]})
    for i in range(len(samples)):
        w.children[0].children[0].value = i  # the sample slider
        assert expected(w.update())
    assert w.children[-1].value[:4] == b"\x89PNG"


@pytest.mark.parametrize("answers, message", [
    ({}, "at least one"),
    ({"m": ["[[[0.1, 0.1], [0.5, 0.1], [0.3, 0.4]]]"]}, "1 answers for 3 samples"),
])
def test_prediction_explorer_rejects_mismatched_inputs(samples, answers, message):
    with pytest.raises(ValueError, match=message):
        prediction_explorer(samples, answers)
