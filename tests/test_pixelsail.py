"""Pixel-SAIL-lite: shapes, the attention pattern, the visual-prompt injection, the losses, training
through transformers' Trainer (checkpoint, resume), and one evaluation path with the polygon models."""

import json

import numpy as np
import pytest
import torch

from simpleseg_lite import pixelsail as ps
from simpleseg_lite.data import SyntheticConfig, make_samples


@pytest.fixture(scope="module")
def tiny():
    return ps.build_model({"hidden_size": 64, "num_layers": 2, "intermediate_size": 128, "mask_dim": 16,
                           "upsample_channels": (32, 16, 8)}, seed=0)


def test_shapes_and_losses(tiny):
    model, tok = tiny
    batch = ps.collate(list(ps.make_pixel_samples(6, 1)), tok, model.config)
    assert batch["pixel_values"].shape == (6, 3, 112, 112) and batch["prompt_regions"].shape == (6, 1, 8, 8)
    assert (batch["input_ids"] == model.config.image_token_id).sum(1).tolist() == [64] * 6
    out = model(**batch)
    assert out["logits"].shape[:2] == batch["input_ids"].shape and torch.isfinite(out["loss"])
    assert {"bce", "dice", "lm_loss"} <= set(out)
    hidden = model.hidden(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
    assert model.mask_features(hidden, batch["input_ids"]).shape == (6, 16, 64, 64)  # 8 → 64 in three blocks


def test_attention_is_bidirectional_among_vision_tokens_only(tiny):
    model, tok = tiny
    ids = torch.tensor([[model.config.image_token_id] * 3 + [10, 11, tok.pad_token_id]])
    att = torch.tensor([[1, 1, 1, 1, 1, 0]])
    allowed = model.attention(ids, att, torch.float32)[0, 0] == 0
    assert allowed[0, 2] and allowed[2, 0]  # vision ↔ vision, both ways
    assert not allowed[3, 4] and allowed[4, 3]  # text is causal
    assert not allowed[4, 5]  # padding is never a key


@pytest.mark.parametrize("inject, changes", [(True, True), (False, False)])
def test_visual_prompt_injection_touches_only_its_patches(tiny, inject, changes):
    model, tok = tiny
    model.config.inject_prompts = inject
    try:
        ex = next(ps.make_pixel_samples(1, 3, task_mix={"vp_question": 1.0}))
        b = ps.collate([ex], tok, model.config)
        with_prompt = model.embed(b["pixel_values"], b["input_ids"], b["prompt_regions"])
        without = model.embed(b["pixel_values"], b["input_ids"], torch.zeros_like(b["prompt_regions"]))
        moved = (with_prompt - without).abs().sum(-1)[0] > 0
        covered = b["prompt_regions"][0, 0].flatten() > 0
        assert moved[:64].any() == changes
        if changes:
            assert torch.equal(moved[:64], covered) and not moved[64:].any()
    finally:
        model.config.inject_prompts = True


@pytest.mark.parametrize("logit, target, expected", [
    (20.0, 1.0, 0.0),  # confident and right: no Dice loss
    (-20.0, 1.0, 1.0),  # confident and wrong: Dice loss ~1
])
def test_dice(logit, target, expected):
    assert float(ps.dice_loss(torch.full((2, 8, 8), logit), torch.full((2, 8, 8), target))) == pytest.approx(expected, abs=0.02)


def test_samples_and_prompts():
    seen = {ex.task: ex for ex in ps.make_pixel_samples(40, 0)}
    assert set(seen) == set(ps.TASK_MIX)
    assert seen["vp_question"].mask is None and seen["vp_question"].answer.startswith("the ")
    assert seen["point_mask"].region.sum() == 1 and seen["box_mask"].region.sum() > seen["point_mask"].region.sum()
    with pytest.raises(ValueError, match="unknown Pixel-SAIL task"):
        next(ps.make_pixel_samples(1, 0, task_mix={"polygon": 1.0}))
    for task in ("polygon", "point_polygon", "box_polygon"):
        s = next(make_samples(1, 5, SyntheticConfig(), {task: 1.0}, 0.02, decimals=2))
        prompt, region = ps.pixel_prompt(s)
        assert ("<Prompt0>" in prompt) == (region is not None)


def test_missing_seg_is_an_empty_mask_and_counted():
    from simpleseg_lite.evaluate import score_masks

    s = list(make_samples(2, 5, SyntheticConfig(), {"polygon": 1.0}, 0.02, decimals=2))
    from pycocotools import mask as mask_utils

    truth = mask_utils.decode(s[0].gt_rle)
    r = score_masks(s, [("It is [SEG].", truth), ("no idea", None)])
    assert r["valid_rate"] == 0.5 and r["rows"][0]["iou"] == 1.0 and r["rows"][1]["iou"] == 0.0
    assert r["gIoU"] == pytest.approx(0.5)


def test_train_resume_save_load_and_eval_cli(tmp_path, capsys):
    from simpleseg_lite.cli import main

    out = tmp_path / "ps"
    small = json.dumps({"hidden_size": 64, "num_layers": 2, "intermediate_size": 128, "mask_dim": 16})
    base = ["train", "--stage", "pixelsail", "--out", str(out), "--batch-size", "4", "--threads", "1",
            "--save-steps", "2", "--eval-steps", "2", "--model-config", small]
    assert main([*base, "--steps", "2"]) == 0
    assert main([*base, "--steps", "4", "--resume"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] and (out / "checkpoints" / "checkpoint-4").is_dir()
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert any("eval_gIoU" in h for h in history)
    assert ps.is_pixelsail(out)
    capsys.readouterr()
    assert main(["eval", "--model", str(out), "--n", "3", "--threads", "1", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("gIoU", "cIoU", "prec_at_0.5", "valid_rate", "image_dependence"):
        assert key in r
    assert main(["train", "--stage", "pixelsail", "--out", str(tmp_path / "x"), "--model-config",
                 '{"merge_size": 1}']) == 2  # a SimpleSeg field is not a Pixel-SAIL one
    assert "PixelSailConfig" in capsys.readouterr().err


def test_predict_decodes_a_mask_at_a_generated_seg(tiny):
    model, tok = tiny
    seg, end = model.config.seg_token_id, tok.convert_tokens_to_ids("<|im_end|>")
    script = iter([seg, end])

    class Forced(torch.nn.Module):  # the LM head answers "[SEG]" then <|im_end|>, whatever the weights say
        def forward(self, h):
            logits = torch.zeros(h.shape[0], model.config.vocab_size)
            logits[:, next(script)] = 1.0
            return logits

    real = model.lm_head  # swapped by hand: monkeypatch would delattr a submodule on undo (it lives in _modules)
    model.lm_head = Forced()
    try:
        img = np.zeros((112, 112, 3), np.uint8)
        (text, mask), = ps.predict(model, tok, [img], ["Please segment the red star."])
    finally:
        model.lm_head = real
    assert "[SEG]" in text and mask is not None and mask.shape == (112, 112) and mask.dtype == np.uint8


def test_judge_reports_every_task_and_the_prompt_question(tiny):
    model, tok = tiny
    r = ps.judge(model, tok, n=2)
    assert set(r) == {"polygon", "point_polygon", "box_polygon", "vp_question"}
    for task in ("polygon", "point_polygon", "box_polygon"):
        assert 0 <= r[task]["gIoU"] <= 1 and len(r[task]["per_sample"]) == 2
    vp = r["vp_question"]
    assert 0 <= vp["accuracy"] <= 1 and 1 / 3 <= vp["chance"] <= 1


def test_ablation_table_pairs_variants_on_the_same_samples():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("abl", Path(__file__).parent.parent / "scripts" / "pixelsail_ablations.py")
    abl = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(abl)

    def row(name, ious):
        task = {"gIoU": float(np.mean(ious)), "per_sample": ious}
        return {"variant": name, "train_wall_s": 60.0, "scores": {
            "polygon": task, "point_polygon": task, "box_polygon": task,
            "vp_question": {"accuracy": 0.9, "chance": 0.5}}}

    text = abl.table([row("learnable", [0.8, 0.6, 0.7]), row("plain", [0.5, 0.4, 0.4])])
    assert "| plain | 0.433 (-0.267 [" in text and "0.90 (0.50)" in text
