"""The readable GSPO/GRPO losses against TRL 1.16's GRPOTrainer loss, plus the formula's properties.

TRL's ``GRPOTrainer._compute_loss`` is called unbound on a stub ``self`` that supplies only what the
loss path reads; the stub's log-prob function returns our ``logp_new`` tensor, so TRL's own tensor code
computes the ratio, clipping and normalisation on exactly our inputs.
"""

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

from simpleseg_lite.gspo import clip_fraction, group_advantages, grpo_loss, gspo_loss, sequence_ratio

trl_grpo = pytest.importorskip("trl.trainer.grpo_trainer")


def trl_loss(logp_new, logp_old, advantages, mask, eps_low, eps_high, level="sequence", loss_type="grpo"):
    """TRL's loss for these tensors (beta=0, no vLLM, no entropy mask/bonus, gradient accumulation 1)."""
    stub = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logp_new, torch.zeros_like(logp_new), None),
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level=level,
        loss_type=loss_type,
        beta=0.0,
        epsilon_low=eps_low,
        epsilon_high=eps_high,
        args=SimpleNamespace(delta=None),
        use_vllm=False,
        model=SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1,
        _entropy_bonus_enabled=False,
        aux_loss_enabled=False,
        accelerator=SimpleNamespace(reduce=lambda t, reduction: t, gather=lambda t: t),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
    )
    b, t = mask.shape
    inputs = {
        "prompt_ids": torch.zeros(b, 1, dtype=torch.long),
        "prompt_mask": torch.ones(b, 1, dtype=torch.long),
        "completion_ids": torch.zeros(b, t, dtype=torch.long),
        "completion_mask": mask,
        "advantages": advantages,
        "old_per_token_logps": logp_old,
    }
    return trl_grpo.GRPOTrainer._compute_loss(stub, None, inputs)


def make_batch(seed, b=8, t=12, spread=1e-3, dtype=torch.float32):
    """Log-probs near each other (ratios around 1 ± a few ε), ragged masks, one empty completion."""
    g = torch.Generator().manual_seed(seed)
    logp_old = -torch.rand(b, t, generator=g, dtype=dtype) * 3
    logp_new = logp_old + spread * torch.randn(b, t, generator=g, dtype=dtype)
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    lengths[-1] = 0  # an empty completion: TRL counts it as 0 in the mean
    mask = (torch.arange(t)[None] < lengths[:, None]).to(dtype)
    advantages = group_advantages(torch.rand(b, generator=g), group_size=4).to(dtype)
    return logp_new, logp_old, advantages, mask


@pytest.mark.parametrize(
    "ours,level,eps,spread,dtype",
    [
        (gspo_loss, "sequence", (3e-4, 4e-4), 1e-3, torch.float32),  # the lite GSPO settings (docs/lite_model.md), some clipped
        (gspo_loss, "sequence", (3e-4, 4e-4), 1e-3, torch.float64),  # the same in double precision
        (gspo_loss, "sequence", (0.2, 0.28), 0.5, torch.float32),  # wide ε, far-off policy
        (grpo_loss, "token", (0.2, 0.2), 0.3, torch.float32),  # token-level twin, TRL's default ε
        (grpo_loss, "token", (0.2, 0.28), 0.3, torch.float64),  # asymmetric (DAPO) ε
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_and_gradient_match_trl(ours, level, eps, spread, dtype, seed):
    logp_new, logp_old, adv, mask = make_batch(seed, spread=spread, dtype=dtype)
    a = logp_new.clone().requires_grad_(True)
    b = logp_new.clone().requires_grad_(True)
    mine = ours(a, logp_old, adv, mask, *eps)
    theirs = trl_loss(b, logp_old, adv, mask, *eps, level=level)
    mine.backward()
    theirs.backward()
    assert mine.item() == pytest.approx(theirs.item(), abs=1e-5)
    assert torch.allclose(a.grad, b.grad, atol=1e-5)


def test_comparison_batches_exercise_clipping():
    # the batches above have sequences outside [1 − ε_low, 1 + ε_high]: both branches compared
    fractions = [clip_fraction(*make_batch(seed, spread=1e-3), 3e-4, 4e-4) for seed in range(3)]
    assert 0 < max(fractions) < 1


def test_advantages_match_trl_formula():
    # TRL: (r − group mean) / (nanstd(group) + 1e-4), nanstd with Bessel's correction
    r = torch.tensor([0.1, 0.9, 0.4, 0.4, 1.0, 1.0, 0.0, 0.5])
    grouped = r.view(-1, 4)
    expected = (grouped - grouped.mean(1, keepdim=True)) / (trl_grpo.nanstd(grouped, dim=1).unsqueeze(1) + 1e-4)
    assert torch.allclose(group_advantages(r, 4), expected.view(-1), atol=1e-6)


@pytest.mark.parametrize(
    "rewards,group_size",
    [
        ([0.0, 1.0, 0.5, 0.25], 4),  # one group
        ([0.0, 1.0, 0.2, 0.2, 0.9, 0.1], 2),  # three groups of two
        ([0.3, 0.3, 0.3, 0.3], 4),  # all equal: zero advantage
        ([1.0, 2.0, 3.0], 1),  # group of one: no std, zero advantage
    ],
)
def test_advantages_zero_mean_per_group(rewards, group_size):
    adv = group_advantages(rewards, group_size)
    assert torch.isfinite(adv).all()
    assert torch.allclose(adv.view(-1, group_size).mean(1), torch.zeros(len(rewards) // group_size), atol=1e-6)


def test_advantages_unscaled_is_centering_only():
    assert torch.allclose(group_advantages([1.0, 3.0], 2, scale=False), torch.tensor([-1.0, 1.0]))


def test_ratio_is_one_for_identical_policies_and_ignores_padding():
    logp = -torch.rand(3, 5)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.float32)
    assert torch.allclose(sequence_ratio(logp, logp, mask), torch.ones(3))
    shifted = logp + torch.tensor([0, 0, 0, 5.0, 5.0])  # changes only padding of row 0
    assert sequence_ratio(shifted, logp, mask)[0] == pytest.approx(1.0)


def test_ratio_is_geometric_mean_of_token_ratios():
    logp_old = torch.zeros(1, 4)
    logp_new = torch.log(torch.tensor([[2.0, 0.5, 4.0, 1.0]]))
    assert sequence_ratio(logp_new, logp_old, torch.ones(1, 4)).item() == pytest.approx(4.0 ** 0.25)


@pytest.mark.parametrize(
    "log_s,adv,clipped",
    [
        (0.0, 1.0, False),  # on-policy: inside the range
        (2e-4, 1.0, False),  # s − 1 < ε_high
        (1e-3, 1.0, True),  # s > 1 + ε_high with Â > 0: clipped, no gradient
        (1e-3, -1.0, False),  # s > 1 + ε_high with Â < 0: the pessimistic unclipped term wins
        (-1e-3, -1.0, True),  # s < 1 − ε_low with Â < 0: clipped
        (-1e-3, 1.0, False),  # s < 1 − ε_low with Â > 0: unclipped
    ],
)
def test_clipping_engages_outside_range(log_s, adv, clipped):
    logp_old = torch.zeros(1, 3)
    logp_new = torch.full((1, 3), log_s, requires_grad=True)
    advantages, mask = torch.tensor([adv]), torch.ones(1, 3)
    gspo_loss(logp_new, logp_old, advantages, mask, 3e-4, 4e-4).backward()
    assert (logp_new.grad.abs().sum().item() == 0) == clipped
    assert clip_fraction(logp_new.detach(), logp_old, advantages, mask) == float(clipped)


@pytest.mark.parametrize("adv", [1.0, -1.0])
@pytest.mark.parametrize("loss", [gspo_loss, grpo_loss])
def test_gradient_descent_moves_likelihood_with_advantage_sign(loss, adv):
    # a descent step on the loss raises log π of an answer with Â > 0 and lowers it for Â < 0
    logp_new = torch.full((1, 4), -1.0, requires_grad=True)
    loss(logp_new, logp_new.detach(), torch.tensor([adv]), torch.ones(1, 4)).backward()
    assert torch.all(torch.sign(-logp_new.grad) == torch.sign(torch.tensor(adv)))
