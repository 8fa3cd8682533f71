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


def _small_square(size=112, side=3):
    mask = np.zeros((size, size), np.uint8)
    mask[52 : 52 + side, 52 : 52 + side] = 1
    return mask


@pytest.mark.parametrize("decimals, collapses", [
    (1, True),  # 11-px steps on a 3-px object: every vertex rounds onto one point
    (3, False),  # 0.1-px steps: the square survives
])
def test_polygon_explorer_explains_a_collapsed_polygon(decimals, collapses):
    w = polygon_explorer(np.zeros((112, 112, 3), np.uint8), _small_square(), epsilon=0.001, decimals=decimals)
    stats = w.children[2].value
    assert ("no polygon left" in stats) == collapses
    assert ("use more decimals" in stats) == collapses
    assert (w.last["vertices"] == 0) == collapses


def test_explorer_readout_and_picture_follow_the_slider():
    mask = np.zeros((112, 112), np.uint8)
    yy, xx = np.mgrid[:112, :112]
    mask[(xx - 56) ** 2 + (yy - 56) ** 2 < 40**2] = 1  # a disc: ε decides the vertex count
    w = polygon_explorer(np.zeros((112, 112, 3), np.uint8), mask, epsilon=0.0005)
    before = (w.children[2].value, w.children[-1].value, w.last["vertices"])
    w.children[0].children[0].value = 0.05  # the ε slider, as a user would move it
    after = (w.children[2].value, w.children[-1].value, w.last["vertices"])
    assert after[2] < before[2] and after[0] != before[0] and after[1] != before[1]


def test_explorers_carry_a_static_snapshot_and_a_legend(samples):
    w = polygon_explorer(np.zeros((112, 112, 3), np.uint8), _small_square(side=30), epsilon=0.005)
    bundle = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # the live widget, for a kernel
    assert "data:image/png;base64," in bundle["text/html"] and "vertices" in bundle["text/html"]
    assert "ground-truth mask" in bundle["text/html"]  # the legend is inside the widget
    p = prediction_explorer(samples, {"model": [s.answer for s in samples]})
    assert "data:image/png;base64," in p._repr_mimebundle_()["text/html"]


def test_explorer_picture_is_shown_at_its_own_size():
    import io

    from PIL import Image

    w = polygon_explorer(np.zeros((75, 100, 3), np.uint8), _small_square(75, 20), epsilon=0.005)
    png = Image.open(io.BytesIO(w.children[-1].value))
    assert png.size[0] == int(w.children[-1].width)  # 1:1, not stretched
    assert png.size[1] == round(png.size[0] * 75 / 100)  # the image's aspect


def test_answer_and_truth_colours_are_no_object_colour():
    from matplotlib.colors import to_rgb

    from simpleseg_lite.data import COLOURS
    from simpleseg_lite.viz import ANSWER_COLOUR, TRUTH_COLOUR

    for colour in (ANSWER_COLOUR, TRUTH_COLOUR):
        rgb = np.array(to_rgb(colour)) * 255
        assert min(np.abs(rgb - np.array(c)).max() for c in COLOURS.values()) > 100


def test_pca_rgb_shape_and_range():
    import numpy as np

    from simpleseg_lite.viz import pca_rgb

    f = np.random.default_rng(0).normal(size=(16, 8, 6))
    rgb = pca_rgb(f)
    assert rgb.shape == (8, 6, 3) and rgb.min() >= 0 and rgb.max() <= 1 + 1e-9


SQUARE = [[0.25, 0.2, 0.6, 0.2, 0.6, 0.5, 0.25, 0.5]]  # x 20..48, y 12..30 px on an 80 × 60 image


@pytest.mark.parametrize("mask_box, answer, expected_xlim, expected_ylim", [
    ((10, 30, 20, 50), SQUARE, (14, 56), (36, 4)),  # mask rows 10..29, cols 20..49 hold the answer; margin 6
    ((0, 5, 0, 5), SQUARE, (0, 54), (36, 0)),        # an answer away from the target stays in view; clipped at 0
    ((0, 5, 0, 5), [], (0, 11), (11, 0)),            # no answer drawn: the mask alone
    (None, SQUARE, (14, 54), (36, 6)),               # empty mask: the answer alone
    (None, [], (0, 80), (60, 0)),                    # nothing to zoom on: the whole image
])
def test_compare_outlines_zooms_on_the_target_and_answers(mask_box, answer, expected_xlim, expected_ylim):
    import matplotlib.pyplot as plt

    from simpleseg_lite.viz import compare_outlines

    mask = np.zeros((60, 80), np.uint8)
    if mask_box:
        r0, r1, c0, c1 = mask_box
        mask[r0:r1, c0:c1] = 1
    ax = compare_outlines(np.zeros((60, 80, 3), np.uint8), mask, {"before": answer, "after": []})
    assert ax.get_xlim() == pytest.approx(expected_xlim) and ax.get_ylim() == pytest.approx(expected_ylim)
    legend = ax.get_legend()
    assert ([t.get_text() for t in legend.get_texts()] if legend else []) == (["before"] if answer else [])
    plt.close(ax.figure)


@pytest.mark.parametrize("mask_shape, n_outlines, message", [
    ((50, 80), 1, "does not match image"),
    ((60, 80), 5, "pass more colors"),
])
def test_compare_outlines_rejects_bad_input(mask_shape, n_outlines, message):
    from simpleseg_lite.viz import compare_outlines

    with pytest.raises(ValueError, match=message):
        compare_outlines(np.zeros((60, 80, 3), np.uint8), np.zeros(mask_shape, np.uint8),
                         {f"a{i}": [] for i in range(n_outlines)})
