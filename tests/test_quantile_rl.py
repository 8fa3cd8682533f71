"""GSPO over the median rule's stochastic twin (``quantile_rl``): the window probabilities, the sampler that
draws from them, and a short run on a tiny coordinate-token policy."""

import json
import math

import numpy as np
import pytest
import torch

from simpleseg_lite.model import TinyConfig, build_tiny_model
from simpleseg_lite.quantile_rl import (QuantileGSPOConfig, QuantileWindow, scaled_advantages, train_quantile_gspo,
                                        window_logprobs)

# three coordinate tokens (ids 10, 11, 12 with values 0.2, 0.5, 0.8) in a vocabulary of 16
IDS, VALUES = torch.tensor([12, 10, 11]), torch.tensor([0.8, 0.2, 0.5])  # deliberately not in value order
PROBS = {10: 0.2, 11: 0.5, 12: 0.3}  # CDF intervals in value order: [0, .2], [.2, .7], [.7, 1]


def logits_for(probs=PROBS, vocab=16):
    z = torch.full((vocab,), -30.0)
    for i, p in probs.items():
        z[i] = math.log(p)
    return z


@pytest.mark.parametrize("token, delta, expected", [
    (11, 0.25, 0.45 / 0.5),  # window [.25, .75] meets [.2, .7] on .45
    (12, 0.25, 0.05 / 0.5),  # meets [.7, 1] on .05
    (10, 0.25, 0.0),  # [0, .2] lies outside the window: floored at 1e-6
    (11, 0.1, 1.0),  # window [.4, .6] inside [.2, .7]: certain
    (10, 0.5, 0.2),  # δ = ½: plain sampling of the coordinate at T 1
])
def test_window_probability_is_the_cdf_overlap(token, delta, expected):
    lp, mask = window_logprobs(logits_for()[None, None], torch.tensor([[token]]), IDS, VALUES, delta)
    assert mask.item() == 1.0
    assert lp.exp().item() == pytest.approx(max(expected, 0.0) + 1e-6, abs=1e-5)


def test_text_tokens_are_not_sampled():
    lp, mask = window_logprobs(logits_for()[None, None], torch.tensor([[3]]), IDS, VALUES, 0.25)
    assert lp.item() == 0.0 and mask.item() == 0.0


def test_the_sampler_draws_with_the_window_probabilities():
    scores = logits_for().repeat(4000, 1)  # the top token (11) is a coordinate on every row
    picks = QuantileWindow(IDS, VALUES, 0.25, torch.Generator().manual_seed(0))(None, scores).argmax(-1)
    share = {t: float((picks == t).float().mean()) for t in (10, 11, 12)}
    assert share[10] == 0.0 and share[11] == pytest.approx(0.9, abs=0.02) and share[12] == pytest.approx(0.1, abs=0.02)


@pytest.mark.parametrize("rate, drawn_share", [(1.0, 1.0), (0.25, 0.25), (1e-9, 0.0)])
def test_sparse_exploration_draws_a_share_of_positions_and_takes_the_median_elsewhere(rate, drawn_share):
    scores = logits_for().repeat(4000, 1)  # median token 11 on every row
    window = QuantileWindow(IDS, VALUES, 0.25, torch.Generator().manual_seed(0), rate=rate)
    picks = window(None, scores).argmax(-1)
    drawn = window.stochastic_mask(3)  # one generation step, padded to 3
    assert drawn.shape == (4000, 3) and float(drawn[:, 1:].abs().sum()) == 0.0
    assert float(drawn[:, 0].mean()) == pytest.approx(drawn_share, abs=0.02)
    assert bool((picks[drawn[:, 0] == 0] == 11).all())  # not drawn: the median, as greedy decoding writes
    if drawn_share:  # drawn: the window's probabilities (0.9 / 0.1 for tokens 11 / 12)
        assert float((picks[drawn[:, 0] == 1] == 12).float().mean()) == pytest.approx(0.1, abs=0.03)


@pytest.mark.parametrize("first", [1, 2, 3])
def test_choice_exploration_draws_only_each_rows_first_coordinates(first):
    window = QuantileWindow(IDS, VALUES, 0.5, torch.Generator().manual_seed(0), first=first)
    text = logits_for({3: 0.6, 10: 0.1, 11: 0.2, 12: 0.1})  # a text step: not a coordinate, not counted
    picks = []
    for step in range(6):  # row 0 writes a text token at step 1, so its coordinates are steps 0, 2, 3, …
        scores = torch.stack([text if step == 1 else logits_for(), logits_for()]).repeat(500, 1)
        picks.append(window(None, scores).argmax(-1))
    drawn = window.stochastic_mask(6)
    coordinate_steps = {0: [0, 2, 3, 4, 5], 1: [0, 1, 2, 3, 4, 5]}
    for row, steps in coordinate_steps.items():
        rows = drawn[row::2]
        assert rows[:, steps[:first]].eq(1).all() and rows[:, steps[first:]].eq(0).all()
        assert rows[:, [t for t in range(6) if t not in steps]].eq(0).all()
        later = torch.stack(picks, 1)[row::2][:, steps[first:]]
        assert bool((later == 11).all())  # after the first ones: the median, as greedy decoding writes
    drawn_picks = torch.stack(picks, 1)[1::2][:, :first]  # δ ½: the model's own distribution, 0.2 / 0.5 / 0.3
    assert float((drawn_picks == 10).float().mean()) == pytest.approx(0.2, abs=0.03)


@pytest.mark.parametrize("scale, expected", [
    ("group", [-0.7071, 0.7071, 0.0, 0.0]),  # (r − mean) / group std; a flat group gives 0
    ("none", [-0.05, 0.05, 0.0, 0.0]),
    ("batch", [-0.1561, 0.1561, 0.0, 0.0]),  # ±0.05 / the batch std of [.5, .6, 0, 0] (0.3202, unbiased)
])
def test_advantages_scaled_by_group_batch_or_not_at_all(scale, expected):
    rewards = [0.5, 0.6, 0.0, 0.0]
    assert scaled_advantages(rewards, 2, scale).tolist() == pytest.approx(expected, abs=1e-3)


def test_an_unknown_reward_scaling_is_refused():
    with pytest.raises(ValueError, match="scale_rewards"):
        scaled_advantages([0.1, 0.2], 2, "prompt")


def test_rate_zero_writes_the_median_and_leaves_the_global_generator_alone():
    scores = logits_for().repeat(50, 1)
    state = torch.get_rng_state()
    window = QuantileWindow(IDS, VALUES, 0.25, rate=0.0)
    assert bool((window(None, scores).argmax(-1) == 11).all())
    assert torch.equal(torch.get_rng_state(), state) and float(window.stochastic_mask(1).sum()) == 0.0


def test_an_unknown_baseline_is_refused_before_anything_loads(tmp_path):
    with pytest.raises(ValueError, match="baseline must be one of"):
        train_quantile_gspo(QuantileGSPOConfig(out=str(tmp_path / "run"), init=str(tmp_path / "none"), baseline="best"))
    assert not (tmp_path / "run").exists()


def test_sparse_exploration_records_text_rows_as_not_drawn():
    scores = torch.stack([logits_for({3: 0.6, 10: 0.1, 11: 0.2, 12: 0.1}), logits_for()])
    window = QuantileWindow(IDS, VALUES, 0.25, torch.Generator().manual_seed(0), rate=1.0)
    window(None, scores)
    assert window.stochastic_mask(1)[:, 0].tolist() == [0.0, 1.0]


def test_rows_whose_top_token_is_text_are_left_alone():
    scores = logits_for({3: 0.6, 10: 0.1, 11: 0.2, 12: 0.1})[None]
    assert torch.equal(QuantileWindow(IDS, VALUES, 0.25)(None, scores.clone()), scores)


def test_a_gradient_step_on_a_rewarded_draw_moves_the_median_towards_it():
    z = logits_for()[None, None].clone().requires_grad_(True)
    lp, _ = window_logprobs(z, torch.tensor([[12]]), IDS, VALUES, 0.25)
    lp.sum().backward()
    with torch.no_grad():
        p = torch.softmax(z + 0.5 * z.grad, -1)[0, 0]  # a step up log π(0.8)
    cdf_at_05 = float(p[10] + p[11])
    assert cdf_at_05 < 0.7  # more of the mass now above 0.5: the median moved towards 0.8


@pytest.fixture(scope="module")
def coord_policy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coord_policy")
    model, processor = build_tiny_model(TinyConfig(coord_tokens=True), seed=0)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "summary.json").write_text(json.dumps({"config": {"epsilon": 0.02, "decimals": 2, "image_size": 112}}))
    return folder


@pytest.mark.parametrize("rate, baseline, first, scale, gt_sft, policy", [
    (1.0, "group", 0, "group", 0.0, 1.0), (0.3, "group", 0, "group", 0.0, 1.0), (0.3, "greedy", 0, "group", 0.0, 1.0),
    (0.3, "greedy+", 0, "group", 0.0, 1.0), (1.0, "group", 2, "batch", 0.0, 1.0), (0.3, "greedy", 0, "batch", 0.0, 1.0),
    (1.0, "group", 0, "group", 1.0, 1.0),  # GSPO + SFT on the ground truth
    (1.0, "group", 0, "group", 1.0, 0.0),  # the control: the same loop, SFT alone
])
def test_a_short_run_trains_logs_and_resumes(coord_policy, tmp_path, rate, baseline, first, scale, gt_sft, policy):
    cfg = QuantileGSPOConfig(out=str(tmp_path / "run"), init=str(coord_policy), max_steps=2, prompts_per_step=2,
                             num_generations=2, max_completion_length=12, threads=1, eval_steps=2, eval_n=2,
                             save_steps=2, lr=1e-3, rate=rate, baseline=baseline, first=first, scale_rewards=scale,
                             min_objects=2 if first else 1, gt_sft=gt_sft, policy_loss=policy)
    out = train_quantile_gspo(cfg)
    rows = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    if gt_sft:  # the SFT term is logged, finite and positive; with policy_loss 0 the loss is that term alone
        steps = [r for r in rows if "loss" in r]
        assert all(r["gt_sft_loss"] > 0 for r in steps)
        if not policy:
            assert all(r["loss"] == pytest.approx(r["gt_sft_loss"], rel=1e-6) for r in steps)
    assert [r["step"] for r in rows if "eval_gIoU" in r] == [0, 2]
    assert all(np.isfinite(r["loss"]) for r in rows if "loss" in r)
    assert (out / "checkpoint" / "trainer_state.pt").is_file()
    cfg.max_steps = 3
    train_quantile_gspo(cfg, resume=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] and summary["steps"] == 3 and summary["config"]["stage"] == "gspo_quantile"


def test_a_policy_without_coordinate_tokens_is_refused(tmp_path):
    model, processor = build_tiny_model(seed=0)
    model.save_pretrained(tmp_path / "p")
    processor.save_pretrained(tmp_path / "p")
    with pytest.raises(ValueError, match="coord_tokens"):
        train_quantile_gspo(QuantileGSPOConfig(out=str(tmp_path / "run"), init=str(tmp_path / "p"), threads=1))


def test_the_gspo_cli_routes_a_quantile_window(tmp_path, monkeypatch):
    import simpleseg_lite.quantile_rl as q
    from simpleseg_lite.cli import main

    seen = {}
    monkeypatch.setattr(q, "train_quantile_gspo", lambda cfg, resume=False: seen.setdefault("cfg", cfg) and tmp_path)
    assert main(["gspo", "--out", str(tmp_path), "--init", str(tmp_path), "--quantile-window", "0.1", "--steps", "9",
                 "--rewards", '{"size_reward": 0.5}', "--explore-rate", "0.1", "--max-objects", "1",
                 "--baseline", "greedy"]) == 0
    cfg = seen["cfg"]
    assert (cfg.delta, cfg.max_steps, cfg.reward_weights["size_reward"]) == (0.1, 9, 0.5)
    assert (cfg.rate, cfg.max_objects, cfg.baseline) == (0.1, 1, "greedy")
    seen.clear()
    assert main(["gspo", "--out", str(tmp_path), "--init", str(tmp_path), "--quantile-window", "0.5",
                 "--explore-first", "2", "--min-objects", "2", "--scale-rewards", "batch"]) == 0
    cfg = seen["cfg"]
    assert (cfg.first, cfg.min_objects, cfg.scale_rewards, cfg.rate) == (2, 2, "batch", 1.0)
    seen.clear()  # the greedy baseline's advantages take the same scaling (rl.greedy_baseline_advantages)
    assert main(["gspo", "--out", str(tmp_path), "--init", str(tmp_path), "--quantile-window", "0.5",
                 "--baseline", "greedy", "--scale-rewards", "batch"]) == 0
    assert (seen["cfg"].baseline, seen["cfg"].scale_rewards) == ("greedy", "batch")


@pytest.mark.parametrize("extra", [["--lora"], ["--best-sft", "1"], ["--level", "token"], ["--freeze-vision"]])
def test_the_gspo_cli_refuses_what_the_quantile_path_cannot_do(tmp_path, extra, capsys):
    from simpleseg_lite.cli import main

    assert main(["gspo", "--out", str(tmp_path), "--init", str(tmp_path), "--quantile-window", "0.1", *extra]) == 2
    assert "lite synthetic path only" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [(["--explore-rate", "0.2"], "needs --quantile-window"),
                                            (["--quantile-window", "0.1", "--explore-rate", "0"], "--explore-rate 0"),
                                            (["--quantile-window", "0.1", "--explore-rate", "1.5"], "--explore-rate 1.5"),
                                            (["--explore-first", "2"], "needs --quantile-window"),
                                            (["--gt-sft", "1"], "needs --quantile-window"),
                                            (["--quantile-window", "0.5", "--gt-sft", "0", "--policy-loss", "0"],
                                             "not all 0"),
                                            (["--quantile-window", "0.1", "--explore-first", "-1"], "--explore-first -1"),
                                            (["--quantile-window", "0.1", "--explore-first", "2", "--explore-rate", "0.5"],
                                             "not together with --explore-rate"),
                                            (["--baseline", "greedy+"], "needs --quantile-window")])
def test_the_gspo_cli_checks_the_explore_rate(tmp_path, extra, message, capsys):
    from simpleseg_lite.cli import main

    assert main(["gspo", "--out", str(tmp_path), "--init", str(tmp_path), *extra]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("delta", ["0", "0.7", "-0.1"])
def test_the_gspo_cli_refuses_a_window_outside_half_the_cdf(tmp_path, delta, capsys):
    from simpleseg_lite.cli import main

    assert main(["gspo", "--out", str(tmp_path), "--init", str(tmp_path), "--quantile-window", delta]) == 2
    assert "half-width" in capsys.readouterr().err
