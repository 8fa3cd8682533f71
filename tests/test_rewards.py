"""Rule rewards: values on a table of answers, adversarial completions, TRL's calling convention."""

import numpy as np
import pytest

from simpleseg_lite.metrics import answer_iou, mask_to_rle, polygons_iou, rasterize
from simpleseg_lite.rewards import (
    REWARD_WEIGHTS,
    centroid_reward,
    combined_reward,
    completion_text,
    format_reward,
    gt_centroid_of,
    length_penalty,
    mask_iou_reward,
    reward_funcs_and_weights,
    size_reward,
)

SQUARE = np.array([[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]])
GT = mask_to_rle(rasterize([SQUARE], 40, 40))  # centroid (0.5, 0.5)


def answer(*polygons):
    """Answer text for normalized polygons, unclipped (``serialize.polygons_to_text`` would clip)."""
    return "[" + ", ".join("[" + ", ".join(f"[{x:.3f}, {y:.3f}]" for x, y in p) + "]" for p in polygons) + "]"


PERFECT = answer(SQUARE)


def rewards(text, gt=GT):
    return mask_iou_reward([text], [gt])[0], centroid_reward([text], [gt])[0], format_reward([text])[0]


@pytest.mark.parametrize(
    "text,iou,centroid,fmt",
    [
        (PERFECT, 1.0, 1.0, 1.0),  # the ground-truth polygon
        (f"The object is at {PERFECT}.", 1.0, 1.0, 1.0),  # prose around the list is ignored
        (answer(SQUARE + [0.25, 0]), 1 / 3, 0.5, 1.0),  # shifted half its width: centroid 0.25 away
        (answer(SQUARE * 0.3 + 0.72), 0.0, 0.0, 1.0),  # in the corner: no overlap, centroid 0.52 away ≥ scale
        (answer(SQUARE * 0.5 + [0.35, 0.25]), 0.25, 0.8, 1.0),  # a quarter of the area inside, 0.1 off centre
        (PERFECT[:-2], 1.0, 1.0, 0.5),  # truncated after the last vertex: complete pairs kept
        # cut mid-vertex: the triangle of the first three vertices (half the square, less diagonal pixels)
        (answer(SQUARE[:3])[:-2] + ", [0.7", polygons_iou([SQUARE[:3]], GT), 1 - np.hypot(1, 1) / 12 / 0.5, 0.5),
        (PERFECT[1:-1], 1.0, 1.0, 0.5),  # a bare polygon [[x, y], ...]
        (answer(SQUARE, SQUARE[:2]), 1.0, 1.0, 0.5),  # a 2-vertex part is dropped
        (answer(SQUARE - [0.3, 0]), 0.1 / 0.375, 0.45, 0.5),  # x = −0.05 clipped to 0: [0, 0.45] × [0.25, 0.75]
        (answer(np.repeat(SQUARE[:1], 5, axis=0)), 0.0, 0.0, 1.0),  # one point repeated: no area, no centroid
        ("[[[0.5, 0.5], " * 2_000, 0.0, 0.0, 0.5),  # a repetition loop: usable text, degenerate shape
    ],
)
def test_reward_table(text, iou, centroid, fmt):
    got = rewards(text)
    assert got == pytest.approx((iou, centroid, fmt), abs=1e-6)


ADVERSARIAL = [
    "garbage",  # prose only
    "",  # empty answer
    "[]",  # empty list
    "x" * 10_000,  # 10k characters of junk
    "9" * 10_000,  # a 10k-digit number
    "[[" * 5_000,  # 10k opening brackets
    "[[[0.5, 0.5], " * 5_000,  # a repetition loop past the vertex cap
    "<|image_pad|>" * 64,  # vision tokens sampled by an untrained policy
    "[[[nan, nan], [nan, 0.5], [0.5, 0.5]]]",  # NaN coordinates
    "[[[inf, 0.1], [0.2, 0.1], [0.2, 0.2]]]",  # infinite coordinate
    "[[[1e400, 0.1], [0.2, 0.1], [0.2, 0.2]]]",  # overflows to inf
    "[[[100, 120], [300, 120], [300, 300], [100, 300]]]",  # numbers as pixels
    "[[[0.1, 0.1], [0.2, 0.2]]]",  # two vertices
    "[[0.1, 0.2, 0.3, 0.4]]",  # a box, not a polygon
    None,  # no completion
    42,  # a number
    float("nan"),  # NaN itself
    b"[[[0.25, 0.25], [0.75, 0.25], [0.75, 0.75]]]",  # bytes, not text
    {"content": PERFECT},  # a bare dict
    [],  # an empty conversation
    [{"role": "user", "content": PERFECT}],  # no assistant message
    [{"role": "assistant", "content": None}],  # assistant without content
    [{"role": "assistant", "content": [{"type": "image"}]}],  # content parts without text
]


@pytest.mark.parametrize("completion", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_completions_score_zero(completion):
    columns = {"gt_rle": [GT], "prompts": ["p"], "trainer_state": None}  # extra TRL keywords are ignored
    assert mask_iou_reward([completion], **columns) == [0.0]
    assert centroid_reward([completion], **columns) == [0.0]
    assert format_reward([completion], **columns) == [0.0]
    assert combined_reward([completion], **columns) == [0.0]


def test_invalid_answer_scores_zero_even_for_empty_ground_truth():
    # evaluation scores "no mask vs no mask" as IoU 1; the reward must not pay for garbage
    empty = mask_to_rle(np.zeros((20, 20), np.uint8))
    assert answer_iou("garbage", empty) == 1.0
    assert mask_iou_reward(["garbage"], [empty]) == [0.0]
    assert centroid_reward([PERFECT], [empty]) == [0.0]  # no ground-truth centroid


@pytest.mark.parametrize(
    "text",
    [
        PERFECT,  # exact
        answer(SQUARE + [0.13, -0.07]),  # shifted
        answer(SQUARE * 0.3, SQUARE * 0.3 + 0.6),  # two parts
        PERFECT[:-3],  # truncated
        answer(np.array([[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]])),  # self-intersecting bow tie
    ],
)
def test_mask_iou_reward_is_the_evaluation_iou(text):
    assert mask_iou_reward([text], [GT]) == [answer_iou(text, GT)]


@pytest.mark.parametrize(
    "completion",
    [
        [{"role": "assistant", "content": PERFECT}],  # TRL's conversational completion
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": PERFECT}],  # last assistant message
        [{"role": "assistant", "content": [{"type": "text", "text": PERFECT}]}],  # multimodal content parts
    ],
)
def test_conversational_completions(completion):
    assert completion_text(completion) == PERFECT
    assert rewards(completion) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    "mask",
    [
        np.pad(np.ones((4, 6)), ((3, 5), (2, 8))),  # rectangle
        np.pad(np.tri(9), 2),  # triangle
        np.pad(np.ones((7, 7)), 1) - np.pad(np.pad(np.ones((3, 3)), 2), 1),  # ring with a hole
        np.pad(np.ones((1, 11)), ((4, 4), (0, 2))),  # one-pixel line touching the left border
        np.eye(9)[:, ::-1],  # thin diagonal
        (np.arange(120).reshape(10, 12) % 7 < 2),  # many parts
        np.ones((5, 8)),  # the whole image
    ],
)
def test_gt_centroid_from_rle_matches_pixel_centres(mask):
    mask = mask.astype(np.uint8)
    h, w = mask.shape
    rows, cols = np.nonzero(mask)
    expected = ((cols + 0.5).mean() / w, (rows + 0.5).mean() / h)  # normalized, pixel-edge convention
    rle = mask_to_rle(mask)
    assert gt_centroid_of(rle) == pytest.approx(expected)  # compressed counts (bytes)
    assert gt_centroid_of(dict(rle, counts=rle["counts"].decode())) == pytest.approx(expected)  # as str
    flat = mask.ravel(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    runs = runs if flat[0] == 0 else [0] + runs  # uncompressed counts start with a run of zeros
    assert gt_centroid_of({"size": [h, w], "counts": runs}) == pytest.approx(expected)


def test_gt_centroid_column_overrides_mask():
    assert centroid_reward([PERFECT], [GT], gt_centroid=[(0.5, 0.75)]) == [pytest.approx(0.5)]


@pytest.mark.parametrize(
    "completion,ids,expected",
    [
        ("x" * 100, None, 0.0),  # within the budget of 256
        ("x" * 256, None, 0.0),  # at the budget
        ("x" * 384, None, -0.5),  # 1.5 × budget
        ("x" * 10_000, None, -1.0),  # capped at −1
        ("short", [[0] * 512], -1.0),  # token ids, when TRL passes them, take precedence over characters
        (None, None, 0.0),  # not text: nothing to charge
    ],
)
def test_length_penalty(completion, ids, expected):
    assert length_penalty([completion], completion_ids=ids) == [pytest.approx(expected)]


def test_combined_reward_is_the_weighted_sum():
    texts = [PERFECT, answer(SQUARE + [0.25, 0]), "garbage", "x" * 600]
    funcs, weights = reward_funcs_and_weights()
    assert [f.__name__ for f in funcs] == [k for k, w in REWARD_WEIGHTS.items() if w]  # TRL logs these names
    expected = sum(w * np.array(f(texts, gt_rle=[GT] * 4)) for f, w in zip(funcs, weights))
    assert combined_reward(texts, gt_rle=[GT] * 4) == pytest.approx(expected.tolist())
    with_length = combined_reward(texts, weights={"format_reward": 1.0, "length_penalty": 1.0}, gt_rle=[GT] * 4)
    assert with_length == pytest.approx([1.0, 1.0, 0.0, -1.0])


def test_batch_shape():
    texts = [PERFECT, None, "garbage", answer(SQUARE + [0.25, 0])] * 3
    for fn in (mask_iou_reward, centroid_reward, format_reward, length_penalty, combined_reward):
        out = fn(texts, gt_rle=[GT] * len(texts))
        assert len(out) == len(texts) and all(isinstance(v, float) for v in out)


@pytest.mark.parametrize("polygon, expected", [
    (SQUARE, 1.0),  # the target itself
    (SQUARE + 0.2, 1.0),  # same area anywhere: size ignores position (the centroid and IoU terms see it)
    (np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]), 0.25),  # 4× the area
    (np.array([[0.25, 0.25], [0.5, 0.25], [0.5, 0.5], [0.25, 0.5]]), 0.25),  # ¼ of it
])
def test_size_reward_is_the_area_ratio(polygon, expected):
    assert size_reward([answer(polygon)], [GT]) == [pytest.approx(expected, abs=0.02)]


@pytest.mark.parametrize("completion", ["garbage", "", None, "[[[0.1, 0.1], [0.2, 0.2], [0.1, 0.1]]]"])
def test_size_reward_of_unusable_answers_is_zero(completion):
    assert size_reward([completion], [GT]) == [0.0]


def test_size_reward_against_an_empty_target_is_zero():
    assert size_reward([PERFECT], [mask_to_rle(np.zeros((40, 40), np.uint8))]) == [0.0]
