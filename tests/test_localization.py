"""The coordinate-lattice diagnostic and the point error: what they report on answers we construct."""

import json

import numpy as np
import pytest

from simpleseg_lite import localization as loc
from simpleseg_lite.data import SyntheticConfig, make_samples
from simpleseg_lite.evaluate import score_answers


@pytest.fixture(scope="module")
def polys():
    return list(make_samples(40, 11, SyntheticConfig(max_objects=1), {"polygon": 1.0}, 0.02, decimals=2))


def _snap(text: str) -> str:
    """The answer with every coordinate moved to the nearest value of the 12-lattice."""
    from simpleseg_lite.parse import parse_polygons
    from simpleseg_lite.serialize import polygons_to_text

    lattice = np.array(loc.LATTICE_12)
    snapped = [lattice[np.abs(p[..., None] - lattice).argmin(-1)] for p in parse_polygons(text).polygons]
    return polygons_to_text(snapped, 2)


@pytest.mark.parametrize("answer_of, tv_range, on_lattice", [
    (lambda s: s.answer, (0.0, 0.0), None),  # the ground truth itself: identical histograms
    (lambda s: _snap(s.answer), (0.5, 1.0), 1.0),  # every value on the lattice: far from the truth
    (lambda s: "no idea", (1.0, 1.0), None),  # nothing parseable: as far as it gets
])
def test_lattice_report(polys, answer_of, tv_range, on_lattice):
    r = loc.lattice_report(polys, [answer_of(s) for s in polys])
    assert tv_range[0] <= r["tv_distance"] <= tv_range[1]
    if on_lattice is not None:
        assert r["lattice_share_pred"] == on_lattice and r["distinct_pred"] <= 12
    assert r["lattice_share_gt"] < 0.5 and r["distinct_gt"] > 30  # the truth is not on a lattice


def test_disjoint_ground_truth_sets_differ_a_little():
    a = list(make_samples(200, 1, SyntheticConfig(), {"polygon": 1.0}, 0.02, decimals=2))
    b = list(make_samples(200, 2, SyntheticConfig(), {"polygon": 1.0}, 0.02, decimals=2))
    tv = loc.tv_distance(loc.coordinate_values([s.answer for s in a], [s.task for s in a]),
                         loc.coordinate_values([s.answer for s in b], [s.task for s in b]))
    assert 0.05 < tv < 0.25  # the sampling floor a perfect model would show on 200 answers


@pytest.mark.parametrize("answer, expected_px", [
    ("[0.5, 0.5]", None),  # compared with the label below
    ("not a point", np.hypot(112, 112)),  # unparseable: the image diagonal, counted
])
def test_point_errors_in_pixels(answer, expected_px):
    s = next(make_samples(1, 3, SyntheticConfig(max_objects=1), {"point": 1.0}, 0.02, decimals=2))
    label = np.array([float(v) for v in s.answer.strip("[]").split(",")])
    err = loc.point_errors([s], [answer])[0]
    want = np.hypot(*((np.array([0.5, 0.5]) - label) * 112)) if expected_px is None else expected_px
    assert err == pytest.approx(want)
    r = score_answers([s], [answer])
    assert r["point_err_px_mean"] == pytest.approx(want) and r["valid_rate"] == (expected_px is None)


def _digit_case(pred_digit: int, target: str = "[0.46, 0.2]"):
    """Logits that put all mass on ``pred_digit`` at the first decimal of the first number."""
    import torch

    from simpleseg_lite.model import build_tokenizer

    tok = build_tokenizer()
    ids = torch.tensor([tok(target, add_special_tokens=False)["input_ids"]])
    labels = ids.clone()
    logits = torch.full(ids.shape + (len(tok),), -20.0)
    logits[0, :-1].scatter_(-1, ids[0, 1:, None], 20.0)  # every next token right ...
    first = 3  # "[", "0", ".", then "4": its logits sit at position 2
    logits[0, first - 1] = -20.0
    logits[0, first - 1, tok.convert_tokens_to_ids(str(pred_digit))] = 20.0  # ... but this digit
    digits = torch.tensor(tok.convert_tokens_to_ids(list("0123456789")))
    return logits, labels, ids, digits, tok.convert_tokens_to_ids(".")


@pytest.mark.parametrize("pred_digit, expected", [
    (4, 0.0),  # exact: nothing to pay
    (5, 1 / 3),  # a near miss: 1 tenth, averaged over the 3 decimal digits of "0.46" and "0.2"
    (9, 5 / 3),  # a far miss costs five times as much — cross-entropy would charge both the same
])
def test_ordinal_digit_loss_charges_by_distance(pred_digit, expected):
    from simpleseg_lite.sft import ordinal_digit_loss

    assert float(ordinal_digit_loss(*_digit_case(pred_digit))) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("pred, expected", [
    ("0.46", 0.0),  # exact
    ("0.47", 0.05),  # one hundredth off on the first of the two coordinates: 0.1 tenths, averaged over 2
    ("0.96", 2.5),  # five tenths off: fifty times the near miss
])
def test_ordinal_coord_loss_charges_by_distance(pred, expected):
    import torch

    from simpleseg_lite.model import build_tokenizer, coordinate_values
    from simpleseg_lite.sft import ordinal_coord_loss

    tok = build_tokenizer(coord_tokens=True)
    ids = torch.tensor([tok("[0.46, 0.2]", add_special_tokens=False)["input_ids"]])
    assert tok.convert_ids_to_tokens(ids[0]) == ["[", "0.46", ", ", "0.2", "]"]
    logits = torch.full(ids.shape + (len(tok),), -30.0)
    logits[0, :-1].scatter_(-1, ids[0, 1:, None], 30.0)
    logits[0, 0] = -30.0
    logits[0, 0, tok.convert_tokens_to_ids(pred)] = 30.0  # the first coordinate's prediction
    coord_ids, values = (torch.tensor(v) for v in coordinate_values(tok))
    assert float(ordinal_coord_loss(logits, ids.clone(), coord_ids, values)) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("coord_tokens, pred, expected", [
    (False, "5", 1 / 3),  # characters: the digit term, one tenth off, averaged over the 3 decimal digits
    (True, "0.56", 0.5),  # coordinate tokens: the whole-coordinate term, one tenth off on the first of 2 coordinates
])
def test_ordinal_loss_for_picks_the_term_that_fits_the_tokenizer(coord_tokens, pred, expected):
    import torch

    from simpleseg_lite.model import build_tokenizer
    from simpleseg_lite.sft import ordinal_loss_for

    tok = build_tokenizer(coord_tokens=coord_tokens)
    ids = torch.tensor([tok("[0.46, 0.2]", add_special_tokens=False)["input_ids"]])
    logits = torch.full(ids.shape + (len(tok),), -30.0)
    logits[0, :-1].scatter_(-1, ids[0, 1:, None], 30.0)
    at = 0 if coord_tokens else 2  # the position that predicts "0.46" / its first decimal "4"
    logits[0, at] = -30.0
    logits[0, at, tok.convert_tokens_to_ids(pred)] = 30.0
    assert float(ordinal_loss_for(tok)(logits, ids.clone(), ids)) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("text", ["[[[0.54, 0.5], [0.55, 0.71], [0.35, 0.71]]]", "[0.0, 1.0, 0.07, 0.99]",
                                  "Give the polygon of the red star.", "10.5, 0.300 and 1.00"])
def test_coord_tokens_keep_the_text_and_shorten_coordinates(text):
    from simpleseg_lite.model import build_tokenizer

    chars, coords = build_tokenizer(), build_tokenizer(coord_tokens=True)
    ids = coords(text, add_special_tokens=False)["input_ids"]
    assert coords.decode(ids) == text == chars.decode(chars(text, add_special_tokens=False)["input_ids"])
    n_chars = len(chars(text, add_special_tokens=False)["input_ids"])
    assert len(ids) < n_chars if "0." in text else len(ids) == n_chars


@pytest.mark.parametrize("rule, probs, expected", [
    ("median", {"0.1": 0.3, "0.12": 0.3, "0.5": 0.4}, "0.12"),  # cumulative 0.3, 0.6: the median is 0.12
    ("median", {"0.04": 0.35, "0.05": 0.25, "0.06": 0.4}, "0.05"),  # argmax (0.06) would miss the median
    ("mean", {"0.2": 0.5, "0.4": 0.5}, "0.3"),
    ("mean", {"0.9": 0.5, "1.0": 0.5}, "0.95"),
    # two modes (two objects): the median falls between them, the local median stays in the bigger one
    ("median", {"0.2": 0.3, "0.22": 0.15, "0.6": 0.1, "0.7": 0.05, "0.72": 0.4}, "0.6"),
    ("local_median", {"0.2": 0.3, "0.22": 0.15, "0.6": 0.1, "0.7": 0.05, "0.72": 0.4}, "0.72"),
    ("local_median", {"0.1": 0.3, "0.12": 0.3, "0.14": 0.4}, "0.12"),  # one mode: the median
])
def test_coordinate_decoding_writes_the_median_or_mean(rule, probs, expected):
    import torch

    from simpleseg_lite.model import CoordinateDecoding, build_tokenizer

    tok = build_tokenizer(coord_tokens=True)
    scores = torch.full((2, len(tok)), -1e4)
    for token, p in probs.items():
        scores[0, tok.convert_tokens_to_ids(token)] = float(torch.tensor(p).log())
    scores[1, tok.convert_tokens_to_ids("]")] = 5.0  # a row whose top token is not a coordinate: untouched
    out = CoordinateDecoding(tok, rule)(torch.zeros(2, 1, dtype=torch.long), scores)
    assert tok.convert_ids_to_tokens(int(out[0].argmax())) == expected
    assert torch.equal(out[1], scores[1])


def test_coordinate_decoding_refuses_a_character_tokenizer_and_bad_rules():
    from simpleseg_lite.model import CoordinateDecoding, TinyConfig, build_tiny_model, build_tokenizer

    with pytest.raises(ValueError, match="coord_tokens"):
        CoordinateDecoding(build_tokenizer(), "median")
    with pytest.raises(ValueError, match="median"):
        CoordinateDecoding(build_tokenizer(coord_tokens=True), "mode")
    with pytest.raises(ValueError, match="window"):
        CoordinateDecoding(build_tokenizer(coord_tokens=True), "local_median", window=0.0)
    with pytest.raises(ValueError, match="coord_tokens=True"):
        build_tiny_model(TinyConfig(coord_decoding="median"))


@pytest.mark.parametrize("a, b, mean, excludes_zero", [
    ([0.1] * 50, [0.3] * 50, 0.2, True),  # every sample better by 0.2
    ([0.1, 0.3] * 25, [0.3, 0.1] * 25, 0.0, False),  # as many better as worse: no gain
])
def test_paired_difference(a, b, mean, excludes_zero):
    r = loc.paired_difference(a, b)
    assert r["mean"] == pytest.approx(mean)
    assert (r["ci95"][0] > 0 or r["ci95"][1] < 0) == excludes_zero
    assert r["better"] + r["worse"] <= r["n"] == 50


def test_arms_script_records_train_time_and_reuses_it_when_judging_again(tmp_path):
    import importlib.util
    from pathlib import Path

    import torch

    spec = importlib.util.spec_from_file_location("arms", Path(__file__).parent.parent / "scripts" / "localization_arms.py")
    arms = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(arms)
    calls = []
    resumed, wall = arms._train_timed(tmp_path, calls.append, judge_only=False)
    assert calls == [False] and not resumed and wall >= 0  # no checkpoints/: a fresh run
    row = arms._record(tmp_path, torch.nn.Linear(3, 2), {"x_pred": [0.5]}, arm="a", steps=10, train_wall_s=20.0,
                       resumed=False, model={"merge_size": 1})  # an arm's record names its model config
    assert row["s_per_step"] == 2.0 and row["params_M"] == 0.0 and json.loads((tmp_path / "arm.json").read_text())["arm"] == "a"
    assert arms._train_timed(tmp_path, calls.append, judge_only=True) == (False, 20.0) and calls == [False]
    assert "encoder_free" in arms.ARMS
    (tmp_path / "arm.json").unlink()  # trained but never judged: the run's summary.json is the record
    (tmp_path / "summary.json").write_text(json.dumps({"wall_seconds": 31.5, "resumed": True}))
    assert arms._train_timed(tmp_path, calls.append, judge_only=True) == (True, 31.5)


def test_arms_script_restores_an_export_without_overwriting_judged_arms(tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("arms", Path(__file__).parent.parent / "scripts" / "localization_arms.py")
    arms = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(arms)
    export = tmp_path / "export.json"
    export.write_text(json.dumps({"mix": arms.MIX, "arms": [{"arm": "base", "steps": 300, "quiet_s_per_step": 2.35},
                                                             {"arm": "no_merge", "steps": 300, "quiet_s_per_step": None}]}))
    out = tmp_path / "arms"
    (out / "no_merge").mkdir(parents=True)
    (out / "no_merge" / "arm.json").write_text(json.dumps({"arm": "no_merge", "steps": 600}))  # judged here: kept
    assert arms.restore(export, out) == ["base"]
    assert json.loads((out / "base" / "arm.json").read_text()) == {"arm": "base", "steps": 300}
    assert json.loads((out / "no_merge" / "arm.json").read_text())["steps"] == 600
    assert json.loads((out / "quiet_bench.json").read_text()) == {"base": 2.35}
    assert arms.restore(export, out) == []  # a second restore writes nothing


@pytest.mark.parametrize("name,init", [("coord_tokens+vision_pretrain", None), ("coord_tokens", "runs/vision")])
def test_vision_pretrain_arm_and_init_go_together(tmp_path, name, init):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("arms", Path(__file__).parent.parent / "scripts" / "localization_arms.py")
    arms = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(arms)
    with pytest.raises(SystemExit, match="--init"):  # refused before any training starts
        arms.run_arm(name, tmp_path, 2, 1, 2000, 2, 1, init=init)
    assert arms.training_overrides(["vision_aux"]) == {"vision_aux": 1.0}
    # stage A with a distractor in every scene (session 24): the arm's scene sizes replace the single-object default
    assert arms.training_overrides(["box_aux", "distractor_a"]) == {"box_aux": 1.0, "min_objects": 2, "max_objects": 3}
    # the box head asked for each object's turn (session 29): both fields are sft.TrainConfig's
    assert arms.training_overrides(["pose_aux"]) == {"box_aux": 1.0, "box_target": "pose"}


def test_every_arms_model_switches_are_tiny_config_fields():
    import dataclasses
    import importlib.util
    from pathlib import Path

    from simpleseg_lite.model import TinyConfig

    spec = importlib.util.spec_from_file_location("arms", Path(__file__).parent.parent / "scripts" / "localization_arms.py")
    arms = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(arms)
    for name in arms.ARMS:
        cfg, weight, _ = arms.combined([name])
        dataclasses.replace(TinyConfig(), **cfg)  # a TypeError names a switch the model does not have
        assert weight in (0.0, 1.0)
    assert arms.combined(["attn_scale2", "box_aux"])[0] == {"attn_scale": 2.0}


def test_coord_tokens_model_saves_loads_and_generates_with_median_decoding(tmp_path):
    import numpy as np
    import torch

    from simpleseg_lite.model import TinyConfig, build_tiny_model, coordinate_values, generate, load_model

    model, processor = build_tiny_model(TinyConfig(coord_tokens=True, coord_decoding="median", merge_size=1), seed=0)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded, proc = load_model(tmp_path, dtype=torch.float32)
    assert loaded.config.lite_coord_decoding == "median"
    assert len(coordinate_values(proc.tokenizer)[0]) == 111  # the merges came back with the tokenizer
    image = np.zeros((112, 112, 3), np.uint8)
    out = generate(loaded, proc, [image], ["Give the polygon of the red star."], max_new_tokens=4)
    assert len(out) == 1 and isinstance(out[0], str)


@pytest.mark.parametrize("coord_tokens, rule, exit_code", [
    (True, None, 0),  # the checkpoint's own rule (median, from its config)
    (True, "argmax", 0),  # the same weights judged under argmax
    (True, "mean", 0),
    (False, "median", 2),  # digit characters: no distribution over whole coordinates, refused with a message
    (False, "argmax", 0),
])
def test_eval_decoding_overrides_the_checkpoints_rule(tmp_path, capsys, coord_tokens, rule, exit_code):
    from simpleseg_lite.cli import main
    from simpleseg_lite.model import TinyConfig, build_tiny_model

    cfg = TinyConfig(coord_tokens=coord_tokens, coord_decoding="median" if coord_tokens else "argmax")
    model, processor = build_tiny_model(cfg, seed=0)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    args = ["eval", "--model", str(tmp_path), "--n", "2", "--threads", "1", "--json", "--max-new-tokens", "6"]
    assert main(args + (["--decoding", rule] if rule else [])) == exit_code
    captured = capsys.readouterr()
    if exit_code:
        assert "coord_tokens" in captured.err
    else:
        assert json.loads(captured.out)["coord_decoding"] == (rule or "median")


@pytest.mark.parametrize("text, tokens", [
    ("Give the polygon of the red star.", ["Give", " the", " polygon", " of", " the", " red", " star", "."]),
    ("Where is the circle? Answer with a polygon.",
     ["Where", " is", " the", " circle", "?", " Answer", " with", " a", " polygon", "."]),
    ("Point to [0.35, 0.2].", ["Point", " to", " ", "[", "0.35", ", ", "0.2", "]", "."]),  # coordinates: coord tokens
    ("the reddish star", ["the", " red", "d", "i", "s", "h", " star"]),  # " red" also starts a longer word
    ("Reddish", ["R", "e", "d", "d", "i", "s", "h"]),  # not a prompt word: characters
    ("top left", ["top", " left"]),  # a grounding answer
])
def test_word_tokens_make_prompt_words_single_tokens_and_keep_the_text(text, tokens):
    from simpleseg_lite.model import build_tokenizer

    tok = build_tokenizer(coord_tokens=True, word_tokens=True)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == tokens
    assert tok.decode(ids) == text


def test_word_tokens_shorten_every_synthetic_prompt_and_round_trip(tmp_path):
    import torch

    from simpleseg_lite import data
    from simpleseg_lite.model import TinyConfig, build_tiny_model, chat_text, load_model

    model, processor = build_tiny_model(TinyConfig(coord_tokens=True, word_tokens=True), seed=0)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    words, chars = load_model(tmp_path, dtype=torch.float32)[1].tokenizer, build_tiny_model(TinyConfig())[1].tokenizer
    samples = [*data.make_samples(40, 3, data.SyntheticConfig(), data.SFT_TASK_MIX, 0.02, decimals=2),
               *data.make_grounding_samples(20, 3, decimals=2)]
    for s in samples:
        text = chat_text(processor, s.prompt) + s.answer
        ids = words(text)["input_ids"]
        assert words.decode(ids) == text  # the saved tokenizer came back with its words
        assert len(ids) < len(chars(text)["input_ids"]) / 2


@pytest.mark.parametrize("answers, match, err, corr", [
    (None, 1.0, 0.0, 1.0),  # the ground truth itself: every count right
    ("[[[0.1, 0.1], [0.2, 0.1], [0.2, 0.2], [0.1, 0.2], [0.1, 0.15]]]", None, None, "nan"),  # one blob for all
    ("not a polygon", 0.0, None, "nan"),  # unparseable: 0 vertices, counted
])
def test_vertex_counts_tell_a_shape_from_a_blob(answers, match, err, corr):
    samples = list(make_samples(30, 4, SyntheticConfig(max_objects=1), {"polygon": 1.0}, 0.02, decimals=2))
    gt = [len(loc.answer_numbers(s.answer, "polygon")) for s in samples]
    texts = [s.answer for s in samples] if answers is None else [answers] * len(samples)
    r = loc.vertex_counts(samples, texts)
    assert len(set(gt)) > 2  # the scenes mix shapes with different counts
    if match is not None:
        assert r["vertex_count_match"] == match
    if err is not None:
        assert r["vertex_count_err"] == err
    assert np.isnan(r["vertex_count_corr"]) if corr == "nan" else r["vertex_count_corr"] == pytest.approx(corr)
    if answers == "not a polygon":
        assert r["vertex_count_err"] == pytest.approx(np.mean(gt))


def _turned(sample, degrees: float) -> str:
    """The sample's own answer turned by ``degrees`` about its vertices' mean (pixel space, y down)."""
    from simpleseg_lite.parse import parse_polygons
    from simpleseg_lite.serialize import polygons_to_text

    p = parse_polygons(sample.answer).polygons[0] * (sample.width, sample.height)
    z = (p[:, 0] + 1j * p[:, 1])
    c = z.mean()
    z = (z - c) * np.exp(1j * np.radians(degrees)) + c
    return polygons_to_text([np.stack([z.real / sample.width, z.imag / sample.height], 1)], 3)


@pytest.fixture(scope="module")
def shapes():
    """Two single-object samples of each symmetric shape, larger than the default (less rasterization noise)."""
    out = {}
    for s in make_samples(200, 29, SyntheticConfig(max_objects=1, size_range=(0.5, 0.6)), {"polygon": 1.0}, 0.0,
                          decimals=3):
        out.setdefault(s.metadata["objects"][0]["name"], []).append(s)
    return {k: v[:2] for k, v in out.items()}


@pytest.mark.parametrize("shape, turn, expected", [
    ("star", 0, 0), ("star", 10, 10), ("star", -25, 25), ("star", 62, 10),  # 72°-symmetric: 62° looks like −10°
    ("square", 15, 15), ("square", 80, 10), ("triangle", 40, 40), ("cross", 30, 30),
])
def test_orientation_report_measures_the_turn_and_undoes_it(shapes, shape, turn, expected):
    samples = shapes[shape]
    r = loc.orientation_report(samples, [_turned(s, turn) for s in samples])[shape]
    assert r["n"] == 2 and r["chance"] == pytest.approx(90 / loc.SYMMETRY[shape])
    assert r["rot_err_mean"] == pytest.approx(expected, abs=2.0)
    assert r["iou_aligned"] > 0.93  # turned back, the answer is the truth again (up to the pixel grid)
    if expected >= 10:
        assert r["iou"] < r["iou_aligned"] - 0.05


def test_orientation_report_scores_unparseable_answers_zero_and_skips_circles_rotation(shapes):
    star, circle = shapes["star"][0], shapes["circle"][0]
    r = loc.orientation_report([star, circle, circle], ["no polygon here", circle.answer, "[[[0.1, 0.1]]]"])
    assert r["star"]["n"] == 1 and r["star"]["iou"] == 0 and r["star"]["iou_aligned"] == 0
    assert np.isnan(r["star"]["rot_err_mean"])  # no parseable answer: no rotation to measure
    assert r["circle"]["n"] == 2 and r["circle"]["iou"] == pytest.approx(0.5 * 1.0, abs=0.02)
    assert np.isnan(r["circle"]["rot_err_mean"]) and np.isnan(r["circle"]["chance"])
