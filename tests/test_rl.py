"""The RL stage through trl's GRPOTrainer: data rows, reward wiring, and a real training step fed with
adversarial completions (garbage, 10k characters, NaN, ``<|image_pad|>`` text) that must not crash."""

import json

import numpy as np
import pytest
import torch

from simpleseg_lite import rewards
from simpleseg_lite.cli import main
from simpleseg_lite.data import SyntheticConfig, make_samples
from pycocotools import mask as mask_utils
from simpleseg_lite.model import SimpleSegLiteForConditionalGeneration, build_tiny_model
from simpleseg_lite.rl import (CLIP, GSPOConfig, build_trainer, greedy_baseline_advantages, group_best, read_history,
                               reward_functions, rl_row, rows_of, train_gspo, training_rows,
                               training_samples)

ADVERSARIAL = [
    "",
    "garbage ]]][[[ , , ,",
    "x" * 10_000,
    "[[[nan, nan], [nan, 1.0], [1.0, nan]]]",
    "<|image_pad|><|image_pad|><|image_pad|>",
    "[[[1e308, -1e308], [0.5, 0.5], [0.2, 0.9]]]",
    "[[[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1",
    "[[[0.2, 0.2], [0.8, 0.2], [0.5, 0.8]]]",
]


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("policy")
    model, processor = build_tiny_model(seed=0)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_rl_row_keeps_only_what_rewards_need():
    sample = next(make_samples(1, 3, SyntheticConfig(image_size=112), {"polygon": 1.0}, 0.02, decimals=2))
    row = rl_row(sample)
    assert row["prompt"][0]["content"][0] == {"type": "image"}
    assert row["prompt"][0]["content"][1]["text"] == sample.prompt
    assert isinstance(row["gt_rle"]["counts"], str) and row["gt_rle"]["size"] == [112, 112]
    mask = mask_utils.decode(sample.gt_rle)
    ys, xs = np.nonzero(mask)
    assert row["gt_centroid"] == pytest.approx([(xs.mean() + 0.5) / 112, (ys.mean() + 0.5) / 112])
    # the perfect answer earns the full IoU reward through the stored (text) RLE
    assert rewards.mask_iou_reward([sample.answer], [row["gt_rle"]])[0] > 0.85


@pytest.mark.parametrize("steps, iterations, prompts, expected", [(6, 2, 4, 12), (5, 2, 4, 12), (3, 1, 2, 6)])
def test_training_rows_cover_the_run_and_are_deterministic(steps, iterations, prompts, expected):
    cfg = GSPOConfig(max_steps=steps, num_iterations=iterations, prompts_per_step=prompts)
    a, b = training_rows(cfg, 112, 0.02, 2), training_rows(cfg, 112, 0.02, 2)
    assert len(a) == expected
    assert [r["prompt"] for r in a] == [r["prompt"] for r in b]
    assert [r["gt_rle"] for r in a] == [r["gt_rle"] for r in b]


@pytest.mark.parametrize("min_objects, max_objects", [(1, 1), (2, 3), (3, 3), (1, 3)])
def test_training_samples_respect_the_object_counts(min_objects, max_objects):
    cfg = GSPOConfig(max_steps=8, num_iterations=2, prompts_per_step=6, min_objects=min_objects,
                     max_objects=max_objects)
    counts = [len(s.metadata["objects"]) for s in training_samples(cfg, 112, 0.02, 2)]
    assert len(counts) == 24 and min(counts) >= min_objects and max(counts) <= max_objects
    if min_objects < max_objects:
        assert len(set(counts)) > 1  # not pinned to one count


@pytest.mark.parametrize("mix, kinds", [
    ({"attribute": 1.0, "size": 1.0}, {"attribute/c", "attribute/s", "attribute/cs", "size"}),
    ({"position": 1.0}, {"position"}),
    (None, {"attribute/c", "attribute/s", "attribute/cs", "position", "relation", "size"}),  # the default mix
])
def test_training_samples_follow_the_expression_mix(mix, kinds):
    from simpleseg_lite.referring import expression_kind

    cfg = GSPOConfig(max_steps=40, num_iterations=2, prompts_per_step=6, min_objects=2, expression_mix=mix)
    seen = {expression_kind(s.metadata["rule"]) for s in training_samples(cfg, 112, 0.02, 2)}
    assert seen <= kinds and (len(seen) >= 3 if len(kinds) > 1 else seen == kinds)


def test_gspo_cli_passes_and_checks_the_expression_mix(tmp_path, monkeypatch, capsys):
    import simpleseg_lite.quantile_rl as q
    from simpleseg_lite.cli import main

    seen = {}
    monkeypatch.setattr(q, "train_quantile_gspo", lambda cfg, resume=False: seen.setdefault("cfg", cfg) and tmp_path)
    assert main(["gspo", "--out", str(tmp_path), "--init", str(tmp_path), "--quantile-window", "0.5",
                 "--expression-mix", '{"attribute": 1, "size": 1}']) == 0
    assert seen["cfg"].expression_mix == {"attribute": 1.0, "size": 1.0}
    assert main(["gspo", "--out", str(tmp_path), "--init", str(tmp_path), "--expression-mix", '{"colour": 1}']) == 2
    assert "unknown name(s) ['colour']" in capsys.readouterr().err
    assert main(["gspo", "--out", str(tmp_path / "r"), "--init", str(tmp_path), "--data", "refcoco",
                 "--expression-mix", '{"size": 1}']) == 2
    assert "needs --data synthetic" in capsys.readouterr().err


@pytest.mark.parametrize("shift", [0, 3, 20, -5, -90])
def test_planted_target_moves_only_the_mask(shift):
    from dataclasses import replace

    from simpleseg_lite.rl import planted_target

    sample = next(make_samples(1, 4, SyntheticConfig(image_size=112), {"polygon": 1.0}, 0.02, decimals=2))
    mask = np.zeros((112, 112), np.uint8)
    mask[40:60, 85:105] = 1  # 7 px from the right edge: +20 pushes 13 columns off, −90 pushes 5 off the left
    sample = replace(sample, gt_rle=mask_utils.encode(np.asfortranarray(mask)))
    moved = planted_target(sample, shift)
    got = mask_utils.decode(moved.gt_rle)
    expected = np.zeros_like(mask)
    expected[40:60, max(85 + shift, 0) : min(105 + shift, 112)] = 1
    assert (got == expected).all()
    assert (moved.prompt, moved.answer, moved.image) == (sample.prompt, sample.answer, sample.image)
    assert (mask_utils.decode(sample.gt_rle) == mask).all()  # the input is not changed


@pytest.mark.parametrize("shift", [112, -112, 500])
def test_planted_target_refuses_absurd_shifts(shift):
    from simpleseg_lite.rl import planted_target

    sample = next(make_samples(1, 4, SyntheticConfig(image_size=112), {"polygon": 1.0}, 0.02, decimals=2))
    with pytest.raises(ValueError, match="off a 112-px-wide image"):
        planted_target(sample, shift)


@pytest.mark.parametrize("split, field", [(None, None), ("name=circle,square", "name"), ("colour=red", "colour"),
                                          ("name= star , cross", "name")])
def test_plant_direction_follows_the_target_object(split, field):
    from simpleseg_lite.rl import plant_direction

    for s in make_samples(30, 11, SyntheticConfig(image_size=112), {"polygon": 1.0}, 0.02, decimals=2):
        target = s.metadata["objects"][s.metadata["target"]]
        wanted = {v.strip() for v in split.split("=")[1].split(",")} if split else None
        assert plant_direction(s, split) == (1 if wanted is None or target[field] in wanted else -1)


@pytest.mark.parametrize("split, message", [("shape=circle", "FIELD one of"), ("name=", "FIELD one of"),
                                            ("name=circel", "unknown name"), ("colour=purple,red", "unknown colour")])
def test_plant_direction_refuses_bad_splits(split, message):
    from simpleseg_lite.rl import plant_direction

    sample = next(make_samples(1, 4, SyntheticConfig(image_size=112), {"polygon": 1.0}, 0.02, decimals=2))
    with pytest.raises(ValueError, match=message):
        plant_direction(sample, split)


@pytest.mark.parametrize("split", [None, "name=circle,square,triangle"])
def test_plant_shift_scores_the_training_rows_against_the_moved_target(split):
    from dataclasses import replace

    from simpleseg_lite.rl import plant_direction

    base = GSPOConfig(max_steps=6, num_iterations=1, prompts_per_step=3)
    plain, planted = training_rows(base, 112, 0.02, 2), training_rows(replace(base, plant_shift=5, plant_split=split),
                                                                       112, 0.02, 2)
    directions = [plant_direction(s, split) for s in training_samples(base, 112, 0.02, 2)]
    assert [r["prompt"] for r in plain] == [r["prompt"] for r in planted]
    for a, b, d in zip(plain, planted, directions):
        cols = np.nonzero(mask_utils.decode(a["gt_rle"]).any(axis=0))[0]
        moved = b["gt_centroid"][0] - a["gt_centroid"][0]
        if 5 <= cols.min() and cols.max() < 107:  # nothing pushed off the image: the whole mask moved 5 px
            assert moved == pytest.approx(d * 5 / 112, abs=1e-6)
        else:  # columns dropped at the edge: the rest still moved that way
            assert 0 < d * moved <= 5 / 112 + 1e-6
    assert split is None or set(directions) == {1, -1}  # both ways in 18 scenes


@pytest.mark.parametrize("change, message", [({"plant_shift": -3}, "≥ 0"),
                                             ({"plant_split": "name=circle"}, "needs plant_shift")])
def test_training_samples_refuse_bad_plants(change, message):
    with pytest.raises(ValueError, match=message):
        training_samples(GSPOConfig(max_steps=2, num_iterations=1, prompts_per_step=2, **change), 112, 0.02, 2)


@pytest.mark.parametrize("extra, message", [
    (["--plant-shift", "-2"], "pixels to the right"),
    (["--plant-shift", "4", "--quantile-window", "0.5"], "control of the trl path"),
    (["--plant-shift", "4", "--data", "refcoco"], "control of the trl path"),
    (["--plant-split", "name=circle"], "needs --plant-shift"),
])
def test_gspo_cli_refuses_bad_plant_shifts(tmp_path, capsys, extra, message):
    from simpleseg_lite.cli import main

    assert main(["gspo", "--out", str(tmp_path / "r"), "--init", str(tmp_path), *extra]) == 2
    assert message in capsys.readouterr().err


def test_gspo_cli_refuses_bad_object_counts(tmp_path, capsys):
    from simpleseg_lite.cli import main

    assert main(["gspo", "--out", str(tmp_path / "r"), "--init", str(tmp_path), "--min-objects", "3",
                 "--max-objects", "2"]) == 2
    assert "--min-objects 3" in capsys.readouterr().err


@pytest.mark.parametrize("weights, names", [
    ({"mask_iou_reward": 1.0, "centroid_reward": 0.5, "format_reward": 0.25, "length_penalty": 0.0},
     ["mask_iou_reward", "centroid_reward", "format_reward"]),
    ({"mask_iou_reward": 1.0, "centroid_reward": 0.0, "format_reward": 0.25, "length_penalty": 0.5},
     ["mask_iou_reward", "format_reward", "length_penalty"]),
])
def test_reward_functions_drop_zero_weights_and_keep_trl_names(weights, names):
    funcs, w = reward_functions(GSPOConfig(reward_weights=weights, length_budget=10))
    assert [f.__name__ for f in funcs] == names and w == [weights[n] for n in names]
    if "length_penalty" in names:  # the run's budget, not the paper's 256 tokens
        assert funcs[-1](["x" * 20]) == [-1.0] and funcs[-1](["x" * 10]) == [0.0]


def test_adversarial_completions_score_zero_and_never_raise():
    gt = rl_row(next(make_samples(1, 4, SyntheticConfig(image_size=112), {"polygon": 1.0}, 0.02)))["gt_rle"]
    total = rewards.combined_reward(ADVERSARIAL, gt_rle=[gt] * len(ADVERSARIAL))
    assert all(np.isfinite(total))
    # nothing unusable earns IoU; only the last two (truncated, plausible triangle) can
    assert rewards.mask_iou_reward(ADVERSARIAL[:6], [gt] * 6) == [0.0] * 6


def _adversarial_generate(original, tokenizer, texts, max_new):
    """Wrap ``generate``: keep the prompts, replace every sampled completion by an adversarial text."""
    def generate(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        prompt_len = kwargs["input_ids"].shape[1]
        rows = []
        for i in range(out.shape[0]):
            text = texts[i % len(texts)]
            ids = tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"][:max_new - 1]
            ids = ids + [tokenizer.eos_token_id] + [tokenizer.pad_token_id] * (max_new - 1 - len(ids))
            rows.append(ids)
        return torch.cat([out[:, :prompt_len], torch.tensor(rows, dtype=out.dtype)], dim=1)
    return generate


def test_a_gspo_step_on_adversarial_completions(tiny_policy, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_policy)
    max_new = 48
    monkeypatch.setattr(SimpleSegLiteForConditionalGeneration, "generate",
                        _adversarial_generate(SimpleSegLiteForConditionalGeneration.generate, tok, ADVERSARIAL, max_new))
    cfg = GSPOConfig(out=str(tmp_path / "run"), init=str(tiny_policy), max_steps=2, prompts_per_step=2,
                     num_generations=4, max_completion_length=max_new, threads=1, eval_steps=0, save_steps=100,
                     lr=1e-4)
    before = {k: v.clone() for k, v in SimpleSegLiteForConditionalGeneration.from_pretrained(tiny_policy).state_dict().items()}
    out = train_gspo(cfg)
    history = read_history(out / "history.jsonl")
    assert np.isfinite(history["loss"][1]).all()
    # the completions really were ours: only the truncated and the plain triangle are usable (format 0.5 and 1;
    # the 1e308 one is clipped, 0.5), and an untrained policy never writes a well-formed polygon by chance
    assert 0.0 < history["rewards/format_reward/mean"][1][0] <= 2.0 / len(ADVERSARIAL) + 1e-6
    after = SimpleSegLiteForConditionalGeneration.from_pretrained(out).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "the policy did not move"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["clip"] == list(CLIP["sequence"]) and summary["config"]["level"] == "sequence"


def test_freeze_vision_keeps_the_tower_and_moves_the_rest(tiny_policy, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_policy)  # completions with different rewards, so there is a gradient
    monkeypatch.setattr(SimpleSegLiteForConditionalGeneration, "generate",
                        _adversarial_generate(SimpleSegLiteForConditionalGeneration.generate, tok, ADVERSARIAL, 48))
    cfg = GSPOConfig(out=str(tmp_path / "run"), init=str(tiny_policy), max_steps=2, prompts_per_step=2,
                     num_generations=4, max_completion_length=48, threads=1, eval_steps=0, save_steps=100,
                     lr=1e-3, freeze_vision=True)
    before = SimpleSegLiteForConditionalGeneration.from_pretrained(tiny_policy).state_dict()
    after = SimpleSegLiteForConditionalGeneration.from_pretrained(train_gspo(cfg)).state_dict()
    tower = [k for k in before if k.startswith("model.visual.")]
    assert tower and all(torch.equal(before[k], after[k]) for k in tower)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("model.language_model."))


def trl_and_policy_logps(trainer, temperature):
    """One generated batch scored twice: by trl's loss path and by a plain fp32 forward of the policy."""
    ds = trainer.train_dataset
    out = trainer._generate_and_score_completions([ds[0], ds[0], ds[1], ds[1]])
    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], 1)
    mask = torch.cat([out["prompt_mask"], out["completion_mask"]], 1)
    k = out["completion_ids"].shape[1]
    images = {key: out[key] for key in ("pixel_values", "image_grid_thw", "mm_token_type_ids")}
    # the image tokens' own places, not trl's `mm_token_type_ids`: those came from a second processor call and must
    # line up with the (left-padded) prompt ids the answers were sampled after
    marks = (ids == trainer.model.config.image_token_id).to(out["mm_token_type_ids"].dtype)
    assert out["prompt_mask"].sum(1).unique().numel() > 1  # prompts of different lengths: some rows are padded
    with torch.no_grad():
        trl_lp = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, k, num_images=out["num_images"],
                                                            **images)[0]
        logits = trainer.model(input_ids=ids, attention_mask=mask, **{**images, "mm_token_type_ids": marks}
                               ).logits[:, -k - 1:-1] / temperature
        own_lp = torch.log_softmax(logits.float(), -1).gather(-1, out["completion_ids"][..., None])[..., 0]
    keep = out["completion_mask"].bool()
    return trl_lp[keep], own_lp[keep]


def test_trl_scores_the_answers_as_the_fp32_policy_sampled_them(tiny_policy, tmp_path):
    # GRPOConfig turns bf16 on when left unset; on a CPU that is bf16 autocast in every scoring forward, and
    # the ratio and gradient then belong to another model than the one that sampled (0.1–0.2 nats apart)
    cfg = GSPOConfig(out=str(tmp_path / "run"), init=str(tiny_policy), max_steps=1, prompts_per_step=2,
                     num_generations=2, max_completion_length=16, threads=1, eval_steps=0, temperature=0.7)
    trainer, _ = build_trainer(cfg)
    assert not trainer.args.bf16
    trl_lp, own_lp = trl_and_policy_logps(trainer, cfg.temperature)
    assert trl_lp.numel() > 0 and torch.allclose(trl_lp, own_lp, atol=1e-4)


def test_beta_gives_a_frozen_copy_of_the_start_policy_as_the_kl_reference(tiny_policy, tmp_path):
    cfg = GSPOConfig(out=str(tmp_path / "run"), init=str(tiny_policy), max_steps=1, prompts_per_step=2,
                     num_generations=2, max_completion_length=16, threads=1, eval_steps=0, temperature=0.7, beta=0.1)
    trainer, _ = build_trainer(cfg)
    ref = trainer.ref_model
    assert trainer.beta == 0.1 and ref is not None and ref is not trainer.model
    assert type(ref) is type(trainer.model) and not any(p.requires_grad for p in ref.parameters())
    ds = trainer.train_dataset
    out = trainer._generate_and_score_completions([ds[0], ds[0], ds[1], ds[1]])
    keep = out["completion_mask"].bool()
    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], 1)
    mask = torch.cat([out["prompt_mask"], out["completion_mask"]], 1)
    images = {key: out[key] for key in ("pixel_values", "image_grid_thw", "mm_token_type_ids")}
    with torch.no_grad():
        policy = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, ids.shape[1] - out[
            "prompt_ids"].shape[1], num_images=out["num_images"], **images)[0]
    assert torch.allclose(out["ref_per_token_logps"][keep], policy[keep], atol=1e-4)  # at the start: the same model
    with torch.no_grad():  # the policy moves, the reference does not
        for p in trainer.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        moved = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, ids.shape[1] - out[
            "prompt_ids"].shape[1], num_images=out["num_images"], **images)[0]
        again = trainer._get_per_token_logps_and_entropies(ref, ids, mask, ids.shape[1] - out["prompt_ids"].shape[1],
                                                           num_images=out["num_images"], **images)[0]
    assert torch.allclose(again[keep], out["ref_per_token_logps"][keep], atol=1e-5)
    assert not torch.allclose(moved[keep], again[keep], atol=1e-3)
    with pytest.raises(ValueError, match="beta"):
        build_trainer(GSPOConfig(out=str(tmp_path / "r"), init=str(tiny_policy), beta=-1.0))


@pytest.mark.parametrize("advantages, group, best", [
    ([1.0, -1.0, 0.0, 0.0], 4, [1, 0, 0, 0]),
    ([-1.0, 1.5, 0.2, -0.7, 0.0, 0.0, 0.0, 0.0], 4, [0, 1, 0, 0, 0, 0, 0, 0]),  # a flat group has no best
    ([0.3, -0.3, -0.5, 0.5], 2, [1, 0, 0, 1]),
])
def test_group_best_marks_the_best_answer_of_each_group(advantages, group, best):
    assert group_best(torch.tensor(advantages), group).tolist() == best


def test_group_best_refuses_a_batch_that_is_not_whole_groups():
    with pytest.raises(ValueError, match="groups of 4"):
        group_best(torch.zeros(6), 4)


def test_rows_of_selects_each_rows_own_image(tiny_policy, tmp_path):
    cfg = GSPOConfig(out=str(tmp_path / "run"), init=str(tiny_policy), max_steps=1, prompts_per_step=2,
                     num_generations=2, max_completion_length=16, threads=1, eval_steps=0, best_sft=1.0)
    trainer, _ = build_trainer(cfg)
    ds = trainer.train_dataset
    out = trainer._generate_and_score_completions([ds[0], ds[0], ds[1], ds[1]])
    assert out["lite_best"].shape == (4,) and out["lite_best"].sum() <= 2
    # as trl hands a batch to compute_loss: rows shuffled, each row's patches moved with it
    from trl.trainer.utils import shuffle_sequence_dict, split_pixel_values_by_grid, unsplit_pixel_values_by_grid

    torch.manual_seed(1)
    out = unsplit_pixel_values_by_grid(shuffle_sequence_dict(split_pixel_values_by_grid(out)))
    full = rows_of(out, torch.ones(4, dtype=torch.bool))
    part = rows_of(out, torch.tensor([False, True, True, False]))
    assert part["pixel_values"].shape[0] == full["pixel_values"].shape[0] // 2
    with torch.no_grad():
        logits_full = trainer.model(**{k: v for k, v in full.items() if k != "labels"}).logits
        logits_part = trainer.model(**{k: v for k, v in part.items() if k != "labels"}).logits
    assert torch.allclose(logits_full[1:3], logits_part, atol=1e-5)
    assert (part["labels"][:, : out["prompt_ids"].shape[1]] == -100).all()


@pytest.mark.parametrize("policy_loss", [1.0, 0.0])
def test_best_of_group_sft_trains_and_logs_its_loss(tiny_policy, tmp_path, monkeypatch, policy_loss):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_policy)  # answers with different rewards: every group has a best
    monkeypatch.setattr(SimpleSegLiteForConditionalGeneration, "generate",
                        _adversarial_generate(SimpleSegLiteForConditionalGeneration.generate, tok, ADVERSARIAL, 48))
    cfg = GSPOConfig(out=str(tmp_path / "run"), init=str(tiny_policy), max_steps=2, prompts_per_step=2,
                     num_generations=4, max_completion_length=48, threads=1, eval_steps=0, save_steps=100,
                     lr=1e-3, best_sft=1.0, policy_loss=policy_loss)
    before = SimpleSegLiteForConditionalGeneration.from_pretrained(tiny_policy).state_dict()
    out = train_gspo(cfg)
    history = read_history(out / "history.jsonl")
    assert np.isfinite(history["best_sft_loss"][1]).all() and (history["best_sft_loss"][1] > 0).all()
    assert ("clip_ratio/region_mean" in history) == bool(policy_loss)  # the GSPO term ran only when weighted
    after = SimpleSegLiteForConditionalGeneration.from_pretrained(out).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_gspo_cli_refuses_no_loss(tmp_path, tiny_policy, capsys):
    assert main(["gspo", "--init", str(tiny_policy), "--out", str(tmp_path / "r"), "--best-sft", "0",
                 "--policy-loss", "0"]) != 0
    assert "not all 0" in capsys.readouterr().err


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_reward_scaling_reaches_trl(tiny_policy, tmp_path, scale):
    cfg = GSPOConfig(out=str(tmp_path / "run"), init=str(tiny_policy), max_steps=1, threads=1, eval_steps=0,
                     scale_rewards=scale)
    assert build_trainer(cfg)[0].args.scale_rewards == scale


def test_unknown_reward_scaling_is_refused(tiny_policy, tmp_path):
    with pytest.raises(ValueError, match="scale_rewards"):
        build_trainer(GSPOConfig(out=str(tmp_path / "run"), init=str(tiny_policy), scale_rewards="std"))


@pytest.mark.parametrize("prompts, generations, per_device, accumulation", [(16, 8, 128, 1), (4, 2, 8, 1), (64, 8, 128, 4), (20, 8, 80, 2)])
def test_large_batches_are_split_for_memory(tiny_policy, tmp_path, prompts, generations, per_device, accumulation):
    cfg = GSPOConfig(out=str(tmp_path / "run"), init=str(tiny_policy), max_steps=1, prompts_per_step=prompts,
                     num_generations=generations, threads=1, eval_steps=0)
    trainer, _ = build_trainer(cfg)
    assert (trainer.args.per_device_train_batch_size, trainer.args.gradient_accumulation_steps) == (per_device,
                                                                                                    accumulation)


@pytest.mark.filterwarnings("error::FutureWarning")  # a run prints nothing a user cannot act on (deprecated names)
def test_a_gspo_run_resumes(tiny_policy, tmp_path):
    out = tmp_path / "run"
    cfg = GSPOConfig(out=str(out), init=str(tiny_policy), max_steps=2, prompts_per_step=2, num_generations=2,
                     max_completion_length=16, threads=1, eval_steps=1, eval_n=2, save_steps=1)
    train_gspo(cfg)
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    assert read_history(out / "history.jsonl")["eval_gIoU"][0].tolist() == [0, 1, 2]
    cfg.max_steps = 3
    train_gspo(cfg, resume=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] and summary["steps"] == 3


@pytest.mark.parametrize("argv, message", [
    (["gspo", "--out", "x", "--init", "/no/such/checkpoint"], "no such checkpoint"),
    (["gspo", "--out", "x", "--rewards", '{"iou": 1}'], "unknown reward"),
])
def test_gspo_cli_reports_bad_input(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_gspo_cli_passes_its_settings(tmp_path, monkeypatch):
    import simpleseg_lite.rl as rl

    seen = {}
    monkeypatch.setattr(rl, "train_gspo", lambda cfg, resume=False: seen.setdefault("cfg", cfg) and tmp_path)
    argv = ["gspo", "--out", str(tmp_path), "--init", str(tmp_path), "--num-iterations", "1", "--temperature", "0.5",
            "--steps", "7", "--plant-shift", "3", "--freeze-vision", "--best-sft", "0.5", "--policy-loss", "0", "--scale-rewards", "batch",
            "--clip", "0.003", "0.004"]
    assert main(argv) == 0
    cfg = seen["cfg"]
    assert cfg.scale_rewards == "batch"
    assert (cfg.num_iterations, cfg.temperature, cfg.max_steps, cfg.level) == (1, 0.5, 7, "sequence")
    assert cfg.clip == (0.003, 0.004)
    seen.clear()
    assert main(argv[:-3]) == 0 and seen["cfg"].clip is None  # no --clip: rl.CLIP[level]
    seen.clear()
    assert main(argv[:-5]) == 0 and seen["cfg"].scale_rewards == "group"  # the paper's per-group std by default
    assert cfg.freeze_vision and (cfg.best_sft, cfg.policy_loss) == (0.5, 0.0)
    assert cfg.plant_shift == 3 and GSPOConfig().plant_shift == 0  # the control is off unless asked for


def test_a_missing_refer_root_fails_before_the_model_loads(tiny_policy, tmp_path, monkeypatch):
    import simpleseg_lite.model as model_module

    monkeypatch.setattr(model_module, "load_model", lambda *a, **k: pytest.fail("loaded the model before the data"))
    cfg = GSPOConfig(out=str(tmp_path / "out"), init=str(tiny_policy), data="refcoco",
                     refer_root=str(tmp_path / "no-refer"), max_steps=1)
    with pytest.raises(FileNotFoundError, match="not found"):
        train_gspo(cfg)


NAN = float("nan")


@pytest.mark.parametrize("rewards, greedy, group, scale, expected", [
    ([0.2, 0.4, 0.6, 0.8], [0.5], 4, "none", [-0.3, -0.1, 0.1, 0.3]),  # ReMax: the greedy answer is the baseline
    ([0.2, 0.4, 0.6, 0.8], [0.8], 4, "none", [-0.6, -0.4, -0.2, 0.0]),  # none beats greedy: nothing is pushed up
    ([0.2, 0.4, 0.6, 0.8], [0.5], 4, "group", [v / (0.2582 + 1e-4) for v in (-0.3, -0.1, 0.1, 0.3)]),
    ([0.1, 0.3, 0.5, 0.5], [0.2, 0.5], 2, "batch", [v / (0.1915 + 1e-4) for v in (-0.1, 0.1, 0.0, 0.0)]),
    ([0.5, 0.5], [0.5], 2, "group", [0.0, 0.0]),  # a flat group equal to greedy: no signal, no division by 0
    ([NAN, 0.7, 0.3], [0.5], 3, "none", [0.0, 0.2, -0.2]),  # an unscorable answer gets 0
])
def test_greedy_baseline_advantages(rewards, greedy, group, scale, expected):
    out = greedy_baseline_advantages(torch.tensor(rewards), torch.tensor(greedy), group, scale)
    assert torch.allclose(out, torch.tensor(expected), atol=1e-3)


@pytest.mark.parametrize("rewards, greedy, group, scale, message", [
    ([0.1, 0.2, 0.3], [0.5], 2, "none", "do not match"),
    ([0.1, 0.2], [0.5], 2, "std", "scale"),
])
def test_greedy_baseline_refuses_bad_shapes_and_scales(rewards, greedy, group, scale, message):
    with pytest.raises(ValueError, match=message):
        greedy_baseline_advantages(torch.tensor(rewards), torch.tensor(greedy), group, scale)


def test_a_greedy_baseline_run_scores_the_greedy_answers_and_trains(tiny_policy, tmp_path, monkeypatch):
    """The greedy answers are generated (here replaced, like every completion, by fixed texts), scored by the run's
    weighted rewards against the right prompts' masks, logged, and the step trains on finite losses."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_policy)
    texts = ADVERSARIAL[::-1]  # the greedy answers are rows 0 and 1: a plausible triangle and a truncated one
    monkeypatch.setattr(SimpleSegLiteForConditionalGeneration, "generate",
                        _adversarial_generate(SimpleSegLiteForConditionalGeneration.generate, tok, texts, 48))
    cfg = GSPOConfig(out=str(tmp_path / "run"), init=str(tiny_policy), max_steps=2, prompts_per_step=2,
                     num_generations=4, max_completion_length=48, threads=1, eval_steps=0, save_steps=100,
                     lr=1e-3, baseline="greedy")
    out = train_gspo(cfg)
    history = read_history(out / "history.jsonl")
    settings = json.loads((out / "summary.json").read_text())["config"]
    rows = training_rows(cfg, settings["image_size"], settings["epsilon"], settings["decimals"])[:2]
    expected = np.mean([rewards.combined_reward([texts[k]], dict(cfg.reward_weights), gt_rle=[rows[k]["gt_rle"]],
                                                gt_centroid=[rows[k]["gt_centroid"]])[0] for k in range(2)])
    assert history["greedy_reward"][1][0] == pytest.approx(expected, abs=1e-5) and expected > 0
    assert 0.0 <= history["beats_greedy"][1][0] <= 1.0
    assert np.isfinite(history["loss"][1]).all()
    with pytest.raises(ValueError, match="baseline"):
        build_trainer(GSPOConfig(out=str(tmp_path / "r2"), init=str(tiny_policy), baseline="mean"))


def test_gspo_cli_passes_the_baseline(tmp_path, monkeypatch):
    import simpleseg_lite.rl as rl

    seen = {}
    monkeypatch.setattr(rl, "train_gspo", lambda cfg, resume=False: seen.setdefault("cfg", cfg) and tmp_path)
    assert main(["gspo", "--out", str(tmp_path), "--init", str(tmp_path), "--baseline", "greedy"]) == 0
    assert seen["cfg"].baseline == "greedy"
    seen.clear()
    assert main(["gspo", "--out", str(tmp_path), "--init", str(tmp_path)]) == 0 and seen["cfg"].baseline == "group"


@pytest.mark.parametrize("data", ["synthetic", "refcoco"])  # refcoco: native resolution, grids differ per image
def test_a_gspo_step_on_a_stock_qwen_encodes_each_image_once(tmp_path, monkeypatch, data):
    """The full path's class (a stock `Qwen2_5_VLForConditionalGeneration`, loaded by `load_model`) through trl:
    every tower call of a step — generation's prefill, the old log-probabilities, the training pass — gets each
    prompt's image once, not once per answer of its group (`model.share_image_encoding`); with REFER images at
    native resolution the batch mixes image sizes."""
    from pathlib import Path

    from transformers import Qwen2VLImageProcessorPil
    from transformers.models.qwen2_5_vl import modeling_qwen2_5_vl as qwen

    from simpleseg_lite.model import SimpleSegLiteProcessor, TinyConfig

    folder = tmp_path / "stock"
    model, processor = build_tiny_model(TinyConfig(hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1,
                                                   intermediate_size=128, vision_hidden_size=32, vision_depth=2,
                                                   vision_heads=2, vision_intermediate_size=64,
                                                   position_fix=False), seed=0)
    assert type(model) is qwen.Qwen2_5_VLForConditionalGeneration
    if data == "refcoco":  # no fixed size: Qwen's own resize, at least 112² px, so the fixture's 64×48, 48×64 and
        # 64×64 photos get three different grids
        images = Qwen2VLImageProcessorPil(merge_size=2, size={"shortest_edge": 112 * 112, "longest_edge": 168 * 168})
        processor = SimpleSegLiteProcessor(images, processor.tokenizer, chat_template=processor.chat_template)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    calls = []
    tower = qwen.Qwen2_5_VisionTransformerPretrainedModel.forward

    def counting(self, hidden_states, grid_thw, **kwargs):
        calls.append([tuple(g) for g in grid_thw.tolist()])
        return tower(self, hidden_states, grid_thw, **kwargs)

    monkeypatch.setattr(qwen.Qwen2_5_VisionTransformerPretrainedModel, "forward", counting)
    # refcoco: the fixture's train split is 4 sentences on 2 photos (64×48 and 48×64), so 3 prompts span both
    cfg = GSPOConfig(out=str(tmp_path / "run"), init=str(folder), max_steps=1,
                     prompts_per_step=2 if data == "synthetic" else 3, num_generations=4, max_completion_length=8,
                     threads=1, eval_steps=0, save_steps=100, data=data,
                     refer_root=str(Path(__file__).parent / "fixtures" / "refer") if data == "refcoco" else None)
    out = train_gspo(cfg)
    assert len(calls) >= 3 and all(1 <= len(grids) <= 2 for grids in calls)  # 8 or 12 rows, ≤ 2 images a call
    if data == "synthetic":
        assert all(len(grids) == 2 for grids in calls)
    else:
        assert any(len(set(grids)) == 2 for grids in calls)  # two sizes in one batch
    assert np.isfinite(read_history(out / "history.jsonl")["loss"][1]).all()
