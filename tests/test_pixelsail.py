"""Pixel-SAIL-lite: shapes, the attention pattern, the visual-prompt injection, the losses, training
through transformers' Trainer (checkpoint, resume), and one evaluation path with the polygon models."""

import json

import numpy as np
import pytest
import torch

from simpleseg_lite import data, pixelsail as ps
from simpleseg_lite.data import SyntheticConfig, make_samples


@pytest.fixture(scope="module")
def abl():
    """scripts/pixelsail_ablations.py as a module."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("abl", Path(__file__).parent.parent / "scripts" / "pixelsail_ablations.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


@pytest.mark.parametrize("extra, message", [
    (["--data", "refcoco"], "needs --refer-root"),
    (["--init", "a", "--text-init", "b"], "not both"),
    (["--lora"], "no --lora"),
    (["--text-init", "/no/such/model"], "no/such/model"),  # transformers' own message names the path
])
def test_train_pixelsail_cli_refuses_clearly(tmp_path, capsys, extra, message):
    from simpleseg_lite.cli import main

    assert main(["train", "--stage", "pixelsail", "--out", str(tmp_path / "x"), "--steps", "1", *extra]) == 2
    assert message in capsys.readouterr().err


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
    assert set(r) == {"polygon", "point_polygon", "box_polygon", "vp_question", "grounding"}
    for task in ("polygon", "point_polygon", "box_polygon"):
        assert 0 <= r[task]["gIoU"] <= 1 and len(r[task]["per_sample"]) == 2
    vp = r["vp_question"]
    assert 0 <= vp["accuracy"] <= 1 and 1 / 3 <= vp["chance"] <= 1
    assert vp["accuracy"] <= min(vp["colour_accuracy"], vp["shape_accuracy"])  # exact needs both words


def test_ablation_table_pairs_variants_on_the_same_samples(abl):

    def row(name, ious):
        task = {"gIoU": float(np.mean(ious)), "per_sample": ious}
        return {"variant": name, "train_wall_s": 60.0, "scores": {
            "polygon": task, "point_polygon": task, "box_polygon": task,
            "vp_question": {"accuracy": 0.9, "chance": 0.5, "colour_accuracy": 1.0, "shape_accuracy": 0.9}}}

    grounded = row("word_tokens", [0.9, 0.7, 0.8])
    grounded["scores"]["grounding"] = {"share_on_target": 0.81, "chance_share": 0.42}
    text = abl.table([row("learnable", [0.8, 0.6, 0.7]), row("plain", [0.5, 0.4, 0.4]), grounded])
    assert "| plain | 0.433 (-0.267 [" in text and "0.90 / 1.00 / 0.90 (0.50)" in text
    assert "| 0.81 (0.42) |" in text and text.count("| — |") == 2  # no grounding judged: a dash


@pytest.mark.parametrize("variant, init, message", [
    ("vision_match_words", None, "needs --init"),  # it continues a vision-only stage
    ("learnable", "runs/somewhere", "give no --init"),  # a from-scratch arm does not take one
])
def test_ablation_init_is_refused_where_it_does_not_belong(abl, tmp_path, variant, init, message):
    with pytest.raises(SystemExit, match=message):
        abl.run_variant(variant, tmp_path, steps=1, seed=1, n=1, threads=1, init=init)
    assert not any(tmp_path.iterdir())  # refused before training


# --- the full path: a real language model as the single transformer (tiny stand-ins here) ---------------
REFER = __import__("pathlib").Path(__file__).parent / "fixtures" / "refer"
TINY_LM = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "max_position_embeddings": 512, "rms_norm_eps": 1e-5}


def _save_language_model(folder, kind: str):
    """A randomly initialized tiny checkpoint of ``kind`` with the lite tokenizer, saved the way a real one is."""
    from simpleseg_lite.model import TinyConfig, build_tiny_model, build_tokenizer

    torch.manual_seed(0)
    if kind == "qwen2":
        from transformers import Qwen2Config, Qwen2ForCausalLM

        tok = build_tokenizer()
        model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok) + 7, tie_word_embeddings=True, **TINY_LM))
    elif kind == "qwen2_5_vl":
        model, processor = build_tiny_model(TinyConfig(hidden_size=64, num_layers=2, intermediate_size=128,
                                                       vision_hidden_size=32, vision_depth=1, vision_heads=2,
                                                       vision_intermediate_size=64, vision_fullatt_blocks=(0,),
                                                       position_fix=False))
        tok = processor.tokenizer
    else:  # a model type the full path does not take
        from transformers import LlamaConfig, LlamaForCausalLM

        tok = build_tokenizer()
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), **TINY_LM))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return model


@pytest.mark.parametrize("kind", ["qwen2", "qwen2_5_vl"])
def test_full_path_carries_the_language_model(tmp_path, kind):
    source = _save_language_model(tmp_path / "lm", kind).eval()
    model, tok = ps.from_language_model(tmp_path / "lm", image_size=112, head={"mask_dim": 16,
                                                                               "upsample_channels": (32, 16, 8)})
    model.eval()
    src_lm = source.model.language_model if kind == "qwen2_5_vl" else source.model
    assert model.config.hidden_size == 64 and model.config.text_init == str(tmp_path / "lm")
    assert torch.equal(model.lm.layers[1].mlp.down_proj.weight, src_lm.layers[1].mlp.down_proj.weight)
    # on text the carried transformer computes what the original did (all three mRoPE axes equal)
    ids = torch.tensor([tok("Please segment the red star.", add_special_tokens=False)["input_ids"]])
    pos = torch.arange(ids.shape[1])[None]
    with torch.no_grad():
        ours = model.lm_head(model.lm(input_ids=ids, position_ids=pos.expand(3, 1, -1)).last_hidden_state)
        theirs = source(input_ids=ids, position_ids=pos if kind == "qwen2" else None).logits
    seg = tok.convert_tokens_to_ids(ps.SEG_TOKEN)  # the first added token: the source's vocabulary ends here
    assert torch.allclose(ours[..., :seg], theirs[..., :seg], atol=1e-5)
    # the added tokens start at the mean embedding, and the model trains and round-trips
    assert torch.allclose(model.lm.embed_tokens.weight[seg], src_lm.embed_tokens.weight[: seg].mean(0), atol=1e-6)
    model.train()
    out = model(**ps.collate(list(ps.make_pixel_samples(3, 1)), tok, model.config))
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and model.patch_embed.weight.grad is not None
    model.save_pretrained(tmp_path / "ps")
    tok.save_pretrained(tmp_path / "ps")
    again, _ = ps.load(tmp_path / "ps")
    assert torch.equal(again.lm.layers[0].self_attn.q_proj.weight, model.lm.layers[0].self_attn.q_proj.weight)


def test_full_path_refuses_other_model_types(tmp_path):
    _save_language_model(tmp_path / "llama", "llama")
    with pytest.raises(ValueError, match="model type 'llama'"):
        ps.from_language_model(tmp_path / "llama")


@pytest.mark.parametrize("shape", [(112, 112), (48, 64), (480, 640)])
def test_patch_coverage_at_any_size(shape):
    h, w = shape
    region = np.zeros(shape, np.uint8)
    region[h // 2, w - 1] = 1  # one pixel in the last column, half-way down
    cells = ps.patch_coverage(region, 8)
    assert cells.shape == (8, 8) and cells.sum() == 1 and cells[4, 7] == 1
    with pytest.raises(ValueError, match="smaller than"):
        ps.patch_coverage(np.ones((4, 4), np.uint8), 8)


def test_masks_come_back_at_the_image_size(tiny):
    model, tok = tiny
    image = np.zeros((60, 80, 3), np.uint8)
    region = np.zeros((60, 80), np.uint8)
    region[10:20, 10:30] = 1
    out = ps.predict(model, tok, [image], ["Please segment <Prompt0>."], [region], max_new_tokens=6)
    text, mask = out[0]
    assert mask is None or mask.shape == (60, 80)
    model.eval()
    with torch.no_grad():  # force a [SEG] answer: the mask is decoded and resized
        prefix = ps._prefix_ids(tok, model.config, "Please segment <Prompt0>.")
        ids = torch.tensor([prefix + tok(ps.SEG_ANSWER, add_special_tokens=False)["input_ids"]])
        hidden = model.hidden(ps.pixel_values([image], 112), ids, torch.ones_like(ids))
        logits = model.mask_logits(hidden, ids, (ids == model.config.seg_token_id).float().argmax(1))
    assert logits.shape == (1, 112, 112)


def test_refcoco_pixel_samples_and_training(tmp_path):
    from simpleseg_lite.refcoco import refer_samples

    sample = refer_samples(REFER, "refcoco", "train")[0]
    seen = {}
    for i in range(40):
        ex = ps.refer_pixel_sample(sample, 56, np.random.default_rng(i))
        seen[ex.task] = ex
    assert set(seen) == set(ps.TASK_MIX)
    assert seen["mask"].image.shape == (56, 56, 3) and seen["mask"].mask.shape == (56, 56) and seen["mask"].mask.any()
    assert seen["vp_question"].answer == sample.expression and seen["vp_question"].mask is None
    assert seen["point_mask"].region.sum() == 1
    cfg = ps.PixelSailTrainConfig(out=str(tmp_path / "run"), data="refcoco", refer_root=str(REFER), max_steps=2,
                                  batch_size=2, eval_steps=2, eval_n=1, save_steps=2, image_size=56,
                                  model={"hidden_size": 32, "num_layers": 1, "intermediate_size": 64, "mask_dim": 8,
                                         "upsample_channels": (16, 8, 8)})
    folder = ps.train_pixelsail(cfg)
    rows = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines()]
    assert any("eval_gIoU" in r for r in rows) and not any("eval_vp_accuracy" in r for r in rows)
    with pytest.raises(FileNotFoundError, match="no REFER datasets"):
        ps.ReferPixelStream(2, ps.PixelSailTrainConfig(data="refcoco", refer_root=str(tmp_path)))
    with pytest.raises(ValueError, match="unknown data"):
        ps.train_pixelsail(ps.PixelSailTrainConfig(out=str(tmp_path / "x"), data="coco"))


def test_encoder_free_arm_writes_text_answers(tiny, tmp_path):
    """The localization study's encoder-free arm: SimpleSeg's own samples, LM loss only, judged as text."""
    from simpleseg_lite.evaluate import _answers

    model, tok = tiny
    exs = list(ps.text_pixel_samples(4, 3, SyntheticConfig(max_objects=1), {"polygon": 1, "box": 1}))
    assert all(e.mask is None and e.answer.startswith("[") for e in exs)
    batch = ps.collate(exs, tok, model.config)
    out = model(**batch)
    assert not batch["has_mask"].any() and "bce" not in out and torch.isfinite(out["loss"])
    texts = _answers(model, tok, [e.image for e in exs], [e.prompt for e in exs], 2, 5, "test")
    assert len(texts) == 4 and all(isinstance(t, str) for t in texts)
    cfg = ps.PixelSailTrainConfig(out=str(tmp_path / "ef"), max_steps=2, batch_size=2, eval_steps=0, save_steps=2,
                                  max_objects=1, text_tasks={"point": 1},
                                  model={"hidden_size": 32, "num_layers": 1, "intermediate_size": 64, "mask_dim": 8,
                                         "upsample_channels": (16, 8, 8)})
    rows = [json.loads(line) for line in (ps.train_pixelsail(cfg) / "history.jsonl").read_text().splitlines()]
    assert all(r.get("bce") is None for r in rows)  # no mask loss was ever computed


def test_ablation_reading_says_which_way_and_whether_beyond_noise(abl):

    def row(name, ious):
        task = {"gIoU": float(np.mean(ious)), "per_sample": ious}
        return {"variant": name, "scores": {"polygon": task, "point_polygon": task, "box_polygon": task}}

    worse = abl.reading([row("learnable", [0.8] * 20), row("plain", [0.5] * 20)])
    assert "plain − learnable, text→mask: -0.300" in worse and "learnable is better beyond the interval" in worse
    same = abl.reading([row("learnable", [0.5, 0.7] * 10), row("plain", [0.7, 0.5] * 10)])
    assert "inside the noise" in same


def _positions_image_first(ids, att, image_id, g):
    """The image-first rule written out token by token: vision (0, row, col), text from g."""
    pos = torch.zeros(3, *ids.shape, dtype=torch.long)
    for i in range(ids.shape[0]):
        valid = att[i].bool()
        img = (ids[i] == image_id) & valid
        k = torch.arange(int(img.sum()))
        pos[1, i, img], pos[2, i, img] = k // g, k % g
        text = valid & ~img
        pos[:, i, text] = g + torch.arange(int(text.sum()))
    return pos


@pytest.mark.parametrize("padding", ["right", "left"])
def test_positions_follow_qwen_rule_for_both_layouts(tiny, padding):
    model, tok = tiny
    c = model.config
    rows = [ps._prefix_ids(tok, c, p) for p in ("Please segment the red star.", "What is <Prompt0>?")]
    if padding == "left":
        ids, att = ps._left_pad(rows, tok.pad_token_id)
    else:
        ids = torch.full((2, max(map(len, rows))), tok.pad_token_id)
        att = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, : len(r)], att[i, : len(r)] = torch.tensor(r), 1
    assert torch.equal(model.positions(ids, att), _positions_image_first(ids, att, c.image_token_id, c.grid))
    c.text_first = True
    try:
        r = ps._prefix_ids(tok, c, "Please segment the red star.")
        ids, att = torch.tensor([r]), torch.ones(1, len(r), dtype=torch.long)
        pos = model.positions(ids, att)[:, 0]
        first = r.index(c.image_token_id)  # the prompt's tokens come first
        assert first > 0 and pos[:, :first].tolist() == [list(range(first))] * 3
        last = first + c.grid**2 - 1
        assert pos[:, last].tolist() == [first, first + c.grid - 1, first + c.grid - 1]  # bottom-right patch
        assert pos[:, last + 1].tolist() == [first + c.grid] * 3  # the text after continues past the grid
        out = model(**ps.collate(list(ps.make_pixel_samples(2, 1)), tok, c))
        assert torch.isfinite(out["loss"])
    finally:
        c.text_first = False


@pytest.mark.parametrize("decoder", ["dot", "mlp"])
def test_mask_decoders_and_why_the_dot_product_collapses(decoder):
    """The dot decoder's gradient on the pixel features is the [SEG] vector at every pixel (one direction per
    image: the collapse mechanism); the MLP decoder's varies from pixel to pixel."""
    model, tok = ps.build_model({"hidden_size": 64, "num_layers": 2, "intermediate_size": 128, "mask_dim": 16,
                                 "upsample_channels": (32, 16, 8), "mask_decoder": decoder}, seed=0)
    batch = ps.collate(list(ps.make_pixel_samples(2, 3, task_mix={"mask": 1.0})), tok, model.config)
    assert torch.isfinite(model(**batch)["loss"])
    torch.manual_seed(0)  # features and [SEG] vectors of order one, as after some training (at init both are ~0.02)
    feats = torch.randn(2, 16, 8, 8, requires_grad=True)
    seg = torch.randn(2, 16)
    logits = (model.mask_mlp(feats + seg[:, :, None, None])[:, 0] if decoder == "mlp"
              else torch.einsum("bd,bdhw->bhw", seg, feats))
    logits.sum().backward()
    grads = feats.grad[0].flatten(1).T  # pixels × mask_dim
    sv = torch.linalg.svdvals(grads)
    assert (sv[1] / sv[0] < 1e-5) == (decoder == "dot")


def test_unknown_mask_decoder_is_refused():
    with pytest.raises(ValueError, match="mask_decoder must be one of"):
        ps.PixelSailConfig(mask_decoder="attention")


@pytest.mark.parametrize("answer, share, largest, several", [
    ("target", 1.0, 1.0, 0.0),  # only the referred object
    ("all", None, 0.0, 1.0),  # every object alike: the collapsed head
    ("none", 0.0, 0.0, 0.0),  # no [SEG]: an empty mask
])
def test_grounding_tells_the_target_from_every_object(tiny, monkeypatch, answer, share, largest, several):
    from simpleseg_lite import data

    cfg = data.SyntheticConfig(min_objects=2, max_objects=3)
    scenes = {i: data._pick(np.random.default_rng((5, i)), cfg) for i in range(6)}

    def fake_predict(model, tok, images, prompts, regions=None, **kw):
        out = []
        for im in images:  # the same (seed, i) draws the same scene: find it by its image
            scene, t, _ = next(v for v in scenes.values() if np.array_equal(v[0].image, im))
            union = np.max([o.mask for o in scene.objects], axis=0)
            out.append(("It is [SEG].", {"target": scene.objects[t].mask, "all": union, "none": None}[answer]))
        return out

    monkeypatch.setattr(ps, "predict", fake_predict)
    r = ps.grounding(*tiny, n=6, seed=5, batch_size=4)
    assert r["n"] == 6 and 1 / 3 <= r["chance_share"] <= 1 / 2
    if share is not None:
        assert r["share_on_target"] == pytest.approx(share)
    else:
        assert r["share_on_target"] < 0.8
    assert r["target_is_largest"] <= 1 and r["covers_several"] == pytest.approx(several)
    if answer != "all":
        assert r["target_is_largest"] == pytest.approx(largest)
    assert len(r["feature_rank"]) == 2 and all(0 <= v <= 1 for v in r["feature_rank"])
    assert sum(r["kinds"].values()) == 6 and set(r["kinds"]) <= {"attribute", "position", "size", "relation"}
    if share is not None:  # every kind scores alike when the answer ignores the words
        assert all(v == pytest.approx(share) for v in r["share_by_kind"].values())


def test_min_objects_gives_every_training_scene_a_distractor():
    stream = ps.PixelStream(12, ps.PixelSailTrainConfig(min_objects=2))
    assert all(stream[i].objects >= 2 for i in range(12))


@pytest.mark.parametrize("text, tokens", [
    ("the green square", ["the", " ", "green", " ", "square"]),
    ("greenish", list("greenish")),  # only whole words
    ("It is [SEG].", ["It", " ", "is", " ", "[SEG]", "."]),
    ("What is <Prompt0>?", ["What", " ", "is", " ", "<Prompt0>", "?"]),
])
def test_word_tokens(text, tokens):
    tok = ps.build_tokenizer(word_tokens=True)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == tokens and tok.decode(ids) == text
    assert len(ps.build_tokenizer()(text, add_special_tokens=False)["input_ids"]) >= len(ids)


def test_scene_words_cover_the_prompts_and_no_special_token():
    from simpleseg_lite.data import COLOURS, SHAPES

    words = ps.scene_words()
    assert set(COLOURS) | set(SHAPES) | {"leftmost", "above", "segment"} <= set(words)
    assert not {"SEG", "Prompt", "expr"} & set(words)


def test_word_token_model_saves_and_loads(tmp_path):
    model, tok = ps.build_model({"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1,
                                 "intermediate_size": 64, "mask_dim": 8, "upsample_channels": (16, 8, 8),
                                 "word_tokens": True})
    assert model.config.vocab_size == len(tok) > len(ps.build_tokenizer())
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    again, tok2 = ps.load(tmp_path)
    text = "Please segment the leftmost red star."
    assert tok2(text)["input_ids"] == tok(text)["input_ids"] and again.config.word_tokens
    assert not again.use_kernels  # no Hub kernels (downloaded code) on load


def test_token_match_adds_a_full_rank_term_that_trains_and_round_trips(tmp_path):
    small = {"hidden_size": 64, "num_layers": 2, "intermediate_size": 128, "mask_dim": 16,
             "upsample_channels": (32, 16, 8)}
    plain, tok = ps.build_model(small, seed=0)
    model, _ = ps.build_model({**small, "token_match": True}, seed=0)
    batch = ps.collate(list(ps.make_pixel_samples(4, 1, task_mix={"mask": 1.0})), tok, model.config)
    out = model(**batch)
    out["loss"].backward()
    assert model.match.weight.grad.abs().sum() > 0 and not hasattr(plain, "match")
    with torch.no_grad():  # M = 0 gives back the dot-product head exactly
        model.match.weight.zero_()
        hidden = model.hidden(batch["pixel_values"], batch["input_ids"], batch["attention_mask"])
        seg_index = (batch["input_ids"] == model.config.seg_token_id).float().argmax(1)
        base = torch.einsum("bd,bdhw->bhw", model.seg_mlp(hidden[torch.arange(4), seg_index]),
                            model.mask_features(hidden, batch["input_ids"]))
        base = torch.nn.functional.interpolate(base[:, None], size=(112, 112), mode="bilinear", align_corners=False)[:, 0]
        assert torch.allclose(model.mask_logits(hidden, batch["input_ids"], seg_index), base, atol=1e-5)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    again, _ = ps.load(tmp_path)
    assert again.config.token_match and torch.equal(again.match.weight, model.match.weight)


@pytest.mark.parametrize("fields, says", [({}, "not the paper's: none"),
                                          ({"token_match": True, "word_tokens": True},
                                           "`token_match=True`, `word_tokens=True`"),
                                          ({"patch_stem": "conv"}, "`patch_stem=conv`")])
def test_model_card_names_the_lite_switches(tmp_path, fields, says):
    from dataclasses import asdict

    model, tok = ps.build_model({"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1,
                                 "intermediate_size": 64, "mask_dim": 8, "upsample_channels": (16, 8, 8), **fields})
    model.save_pretrained(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps({"config": asdict(ps.PixelSailTrainConfig()), "params_M": 0.1,
                                                       "wall_seconds": 60.0, "torch_threads": 2}))
    text = ps.write_model_card(tmp_path, "simpleseg-lite train --stage pixelsail", {"gIoU": 0.5}).read_text()
    assert says in text and "| gIoU | 0.500 |" in text and "1–3 objects" in text


def test_sincos_2d_codes_row_and_column_apart():
    code = ps.sincos_2d(8, 16).reshape(8, 8, 16)
    assert code.abs().max() <= 1.0
    assert torch.equal(code[:, 3, :8], code[:, 5, :8])  # the row half ignores the column
    assert torch.equal(code[2, :, 8:], code[6, :, 8:])  # the column half ignores the row
    flat = code.reshape(64, 16)
    assert len({tuple(r.tolist()) for r in flat.round(decimals=4)}) == 64  # every patch gets its own code
    with pytest.raises(ValueError, match="multiple of 4"):
        ps.sincos_2d(8, 18)


@pytest.mark.parametrize("position, params", [("none", ()), ("sincos", ("pos_gain",)), ("learned", ("pos_embed",))])
def test_vision_position_code_changes_only_the_patches_and_round_trips(tmp_path, position, params):
    small = {"hidden_size": 64, "num_layers": 2, "intermediate_size": 128, "mask_dim": 16,
             "upsample_channels": (32, 16, 8)}
    model, tok = ps.build_model({**small, "vision_position": position}, seed=0)
    batch = ps.collate(list(ps.make_pixel_samples(2, 1, task_mix={"mask": 1.0})), tok, model.config)
    with torch.no_grad():
        if position == "learned":
            model.pos_embed.normal_()
        emb = model.embed(batch["pixel_values"], batch["input_ids"])
        patches = model.patch_embed(model.patches(batch["pixel_values"]))
    img = batch["input_ids"] == model.config.image_token_id
    moved = (emb[img].reshape(2, 64, -1) - patches).abs().sum(-1)
    assert (moved > 0).all() if params else (moved == 0).all()
    assert torch.equal(emb[~img], model.lm.embed_tokens(batch["input_ids"])[~img])  # text untouched
    out = model(**batch)
    out["loss"].backward()
    for name in params:
        assert getattr(model, name).grad.abs().sum() > 0
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    again, _ = ps.load(tmp_path)
    assert again.config.vision_position == position
    with torch.no_grad():
        assert torch.allclose(again.embed(batch["pixel_values"], batch["input_ids"]), emb, atol=1e-6)


@pytest.mark.parametrize("stem, params", [("linear", ("patch_embed.weight",)),
                                          ("conv", ("stem.0.weight", "stem.3.weight", "patch_embed.weight"))])
def test_patch_stem_gives_one_token_per_patch_that_trains_and_round_trips(tmp_path, stem, params):
    small = {"hidden_size": 64, "num_layers": 2, "intermediate_size": 128, "mask_dim": 16,
             "upsample_channels": (32, 16, 8), "stem_channels": 8}
    model, tok = ps.build_model({**small, "patch_stem": stem}, seed=0)
    batch = ps.collate(list(ps.make_pixel_samples(2, 1, task_mix={"mask": 1.0})), tok, model.config)
    tokens = model.vision_embed(batch["pixel_values"])
    assert tokens.shape == (2, 64, 64)
    # token (i, j) depends on patch (i, j) — and, through the stem's overlapping 3×3 windows, on its border only
    bumped = batch["pixel_values"].clone()
    bumped[:, :, 14 * 3 + 5, 14 * 4 + 5] += 1.0  # a pixel inside patch (3, 4), away from its borders
    moved = (model.vision_embed(bumped) - tokens).abs().sum(-1)[0].reshape(8, 8)
    assert moved[3, 4] > 0 and (moved.flatten().gt(0).sum() == 1)
    model(**batch)["loss"].backward()
    named = dict(model.named_parameters())
    for name in params:
        assert named[name].grad.abs().sum() > 0
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    again, _ = ps.load(tmp_path)
    assert again.config.patch_stem == stem
    with torch.no_grad():
        assert torch.allclose(again.vision_embed(batch["pixel_values"]), tokens, atol=1e-6)


@pytest.mark.parametrize("fields, message", [({"patch_stem": "vit"}, "patch_stem must be one of"),
                                             ({"patch_stem": "conv", "patch_size": 7, "image_size": 112},
                                              "patch_size must be even")])
def test_unknown_or_impossible_patch_stem_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        ps.PixelSailConfig(**fields)


def test_unknown_vision_position_is_refused():
    with pytest.raises(ValueError, match="vision_position must be one of"):
        ps.PixelSailConfig(vision_position="rope")


def _two_objects():
    target = torch.zeros(1, 16, 16)
    target[0, 2:6, 2:6] = 1
    other = torch.zeros(1, 16, 16)
    other[0, 10:14, 10:14] = 1
    return target, other


@pytest.mark.parametrize("mask, expected", [
    ("target", 0.0),  # only the target: the floor
    ("both", np.log(2)),  # the target and an equal distractor alike: log 2
    ("everything", np.log(256 / 16)),  # no choice at all: log(pixels / target pixels)
])
def test_selection_loss_charges_for_every_object_masked_alike(mask, expected):
    target, other = _two_objects()
    on = {"target": target, "both": target + other, "everything": torch.ones_like(target)}[mask]
    logits = 50.0 * (2 * on - 1)  # confident: softmax mass spread evenly over the "on" pixels
    assert float(ps.selection_loss(logits, target)) == pytest.approx(expected, abs=1e-4)


def test_selection_loss_skips_empty_targets_and_trains_through_the_model():
    target, _ = _two_objects()
    assert float(ps.selection_loss(torch.randn(2, 16, 16), torch.zeros(2, 16, 16))) == 0.0
    both = torch.cat([target, torch.zeros_like(target)])
    logits = torch.randn(2, 16, 16)
    assert float(ps.selection_loss(logits, both)) == pytest.approx(float(ps.selection_loss(logits[:1], target)))
    small = {"hidden_size": 64, "num_layers": 2, "intermediate_size": 128, "mask_dim": 16,
             "upsample_channels": (32, 16, 8)}
    plain, tok = ps.build_model(small, seed=0)
    model, _ = ps.build_model({**small, "select_loss": 1.0}, seed=0)
    batch = ps.collate(list(ps.make_pixel_samples(4, 1, task_mix={"mask": 1.0})), tok, model.config)
    a, b = plain(**batch), model(**batch)
    assert "select" not in a and float(b["loss"]) == pytest.approx(float(a["loss"]) + float(b["select"]), rel=1e-5)
    with pytest.raises(ValueError, match="select_loss"):
        ps.PixelSailConfig(select_loss=-1.0)


def test_named_answers_name_the_object_before_seg():
    plain = list(ps.make_pixel_samples(20, 4, task_mix={"mask": 1.0, "vp_question": 1.0}))
    named = list(ps.make_pixel_samples(20, 4, task_mix={"mask": 1.0, "vp_question": 1.0}, named=True))
    for a, b in zip(plain, named):
        assert (a.prompt, a.task, a.objects) == (b.prompt, b.task, b.objects) and np.array_equal(a.image, b.image)
        if a.task == "mask":
            assert a.answer == ps.SEG_ANSWER and b.answer.startswith("It is the ") and b.answer.endswith(" [SEG].")
            colour, shape = b.answer.split()[3:5]
            assert colour in data.COLOURS and shape in data.SHAPES
        else:
            assert a.answer == b.answer


def test_shape_free_expressions_name_no_shape_and_leave_the_default_stream_alone():
    mix = {"mask": 1.0, "vp_question": 1.0}
    plain = list(ps.make_pixel_samples(40, 6, task_mix=mix))
    assert [(e.prompt, e.answer) for e in plain] == [(e.prompt, e.answer)
                                                      for e in ps.make_pixel_samples(40, 6, task_mix=mix, shape_free=0.0)]
    free = list(ps.make_pixel_samples(40, 6, task_mix=mix, shape_free=1.0))
    shapes = set(data.SHAPES)
    assert any(shapes & set(e.expression.split()) for e in plain if e.task == "mask")
    for e in free:
        if e.task == "mask":
            assert not shapes & set(e.expression.split()), e.expression
            assert e.mask is not None and e.mask.sum() > 0
        else:  # the question still names the shape
            assert e.answer.split()[-1] in shapes
    with pytest.raises(ValueError, match="shape_free"):
        next(ps.make_pixel_samples(1, 0, shape_free=1.5))


def test_shape_free_rules_still_pick_exactly_one_object():
    from simpleseg_lite import referring

    cfg = SyntheticConfig(min_objects=2, max_objects=3)
    checked = 0
    for i in range(60):
        rng = np.random.default_rng((8, i))
        scene = data.make_scene(rng, cfg)
        size = scene.image.shape[1::-1]
        for t in range(len(scene.objects)):
            for kind in referring.EXPRESSION_KINDS:
                for rule in referring.valid_rules(scene, t, kind, use_shape=False):
                    assert rule[1][1] is None and (rule[3] is None or rule[3][1] is None)
                    assert referring.denotes(rule, scene.objects, size) == ([t], [t])
                    checked += 1
    assert checked > 50


@pytest.mark.parametrize("layout", ["chunked", "interleaved"])
def test_rope_layout_round_trips_and_interleaves_the_axes(tmp_path, layout):
    small = {"hidden_size": 64, "num_layers": 2, "intermediate_size": 128, "mask_dim": 16,
             "upsample_channels": (32, 16, 8)}
    model, tok = ps.build_model({**small, "rope_layout": layout}, seed=0)
    section = model.lm.rotary_emb.mrope_section
    assert section == ([1] * 8 if layout == "interleaved" else [2, 3, 3])  # 16-dim heads: 8 frequencies
    batch = ps.collate(list(ps.make_pixel_samples(2, 1, task_mix={"mask": 1.0})), tok, model.config)
    model.eval()
    with torch.no_grad():
        logits = model(**batch)["logits"]
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    again, _ = ps.load(tmp_path)
    assert again.lm.rotary_emb.mrope_section == section
    with torch.no_grad():
        assert torch.allclose(again(**batch)["logits"], logits, atol=1e-5)
    with pytest.raises(ValueError, match="rope_layout"):
        ps.PixelSailConfig(rope_layout="spiral")


TINY_PS = '{"hidden_size": 32, "num_layers": 1, "intermediate_size": 64, "mask_dim": 8, "upsample_channels": [16, 8, 8]}'


def test_train_pixelsail_cli_passes_the_stream_options_and_continues_a_model(tmp_path, capsys):
    """--min-objects / --expression-mix / --shape-free reach the stream; from --init only a loss weight may change."""
    from simpleseg_lite.cli import main

    base = ["train", "--stage", "pixelsail", "--steps", "1", "--batch-size", "2", "--eval-steps", "0",
            "--save-steps", "1", "--image-size", "56", "--threads", "1"]
    first = tmp_path / "first"
    assert main([*base, "--out", str(first), "--model-config", TINY_PS, "--min-objects", "2",
                 "--expression-mix", '{"attribute": 3, "position": 1}', "--shape-free", "0.5"]) == 0
    cfg = json.loads((first / "summary.json").read_text())["config"]
    assert (cfg["min_objects"], cfg["expression_mix"], cfg["shape_free"]) == (2, {"attribute": 3.0, "position": 1.0}, 0.5)
    stream = ps.PixelStream(4, ps.PixelSailTrainConfig(min_objects=2, image_size=56))
    assert stream.scene.min_objects == 2
    assert main([*base, "--init", str(first), "--out", str(tmp_path / "second"), "--model-config",
                 '{"select_loss": 1.0}']) == 0
    assert json.loads((tmp_path / "second" / "config.json").read_text())["select_loss"] == 1.0
    capsys.readouterr()
    assert main([*base, "--init", str(first), "--out", str(tmp_path / "third"), "--model-config",
                 '{"hidden_size": 64}']) == 2
    err = capsys.readouterr().err
    assert "cannot change" in err and "Traceback" not in err


@pytest.mark.parametrize("extra, message", [
    (["--stage", "pixelsail", "--expression-mix", "{attribute: 1}"], "not JSON"),
    (["--stage", "pixelsail", "--expression-mix", '{"atribute": 1}'], "unknown name"),  # a typo
    (["--stage", "pixelsail", "--expression-mix", '{"attribute": -1}'], "≥ 0"),
    (["--stage", "pixelsail", "--expression-mix", '{"attribute": 0}'], "not all 0"),
    (["--stage", "pixelsail", "--shape-free", "1.5"], "a share in [0, 1]"),
    (["--stage", "pixelsail", "--min-objects", "4"], "must be between 1 and --max-objects 3"),
    (["--stage", "sft", "--expression-mix", '{"atribute": 1}'], "unknown name"),  # sft takes it too (session 20)
    (["--stage", "sft", "--shape-free", "-0.1"], "a share in [0, 1]"),
    (["--stage", "sft", "--colour-aux", "1", "--data", "refcoco", "--refer-root", "x"], "--colour-aux needs --data synthetic"),
    (["--stage", "pixelsail", "--colour-aux", "1"], "for the polygon models"),
    (["--stage", "pixelsail", "--prompt-order", "text_first"], "for the polygon models"),
    (["--stage", "sft", "--colour-aux", "-1"], "--colour-aux is a loss weight ≥ 0"),  # was silently a negative loss
    (["--stage", "sft", "--vision-aux", "-0.5"], "--vision-aux is a loss weight ≥ 0"),
    (["--stage", "sft", "--shape-free", "1", "--data", "refcoco", "--refer-root", "x"], "need --data synthetic"),
    (["--stage", "pixelsail", "--task-mix", "{mask: 1}"], "--task-mix is not JSON"),  # was a traceback
    (["--stage", "pixelsail", "--task-mix", '{"polygon": 1}'], "unknown name"),  # a polygon task, not a mask one
    (["--stage", "sft", "--task-mix", '{"polygn": 1}'], "unknown name"),  # was a traceback after set-up
    (["--stage", "sft", "--steps", "0"], "--steps must be at least 1"),  # was trl's StopIteration
])
def test_train_pixelsail_stream_options_are_checked_first(extra, message, tmp_path, capsys):
    from simpleseg_lite.cli import main

    assert main(["train", "--out", str(tmp_path / "x"), "--steps", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_stage_arms_table_pairs_every_arm_with_base():
    """scripts/pixelsail_stage_arms.py: every arm's row carries its paired difference from 'base' on the same samples."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("stage_arms", Path(__file__).parent.parent / "scripts" /
                                                  "pixelsail_stage_arms.py")
    arms = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(arms)
    assert {"base", "colour_first", "cf_attr3_min2"} <= set(arms.ARMS)

    def row(name, ious):
        return {"arm": name, "steps": 800, "train_wall_s": 60.0, "per_sample": ious,
                "eval": {"gIoU": float(np.mean(ious)), "cIoU": 0.5, "prec_at_0.5": 0.5},
                "vp_question": {"with_injection": {"accuracy": 1.0}, "without_injection": {"accuracy": 0.1}},
                "grounding": {"share_on_target": 0.6, "chance_share": 0.4, "covers_several": 0.3}}

    text = arms.table([row("base", [0.5] * 10), row("cf_attr3_min2", [0.6] * 10)])
    lines = text.splitlines()
    assert lines[2].split("|")[4].strip() == "—"  # the reference itself
    assert "+0.100 [+0.100, +0.100] (10/0)" in lines[3]
