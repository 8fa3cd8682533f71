"""The GSPO objective (Zheng et al. 2025, "Group Sequence Policy Optimization"), written out to read.

For each prompt the policy samples a group of G answers o_1..o_G and the rewards r_i score them. GSPO
maximizes

    J(θ) = E[ 1/G Σ_i min( s_i(θ) Â_i, clip(s_i(θ), 1 − ε_low, 1 + ε_high) Â_i ) ]
    Â_i  = (r_i − mean_j r_j) / (std_j r_j + eps)                       group-relative advantage
    s_i  = (π_θ(o_i|x) / π_old(o_i|x))^(1/|o_i|) = exp( 1/|o_i| Σ_t log π_θ/π_old (o_i,t) )

— one importance ratio per *sequence* (the length-normalized likelihood ratio), clipped as a whole,
where GRPO clips every token's ratio r_i,t = π_θ/π_old (o_i,t) separately (``grpo_loss``). The paper's
ε are tiny (3e-4 / 4e-4) because s_i is a geometric mean over tokens and so stays close to 1.

At scale the objective runs inside TRL's ``GRPOTrainer`` with ``importance_sampling_level="sequence"``,
``loss_type="grpo"``, ``beta=0`` (docs/lite_model.md, "GSPO settings"); ``tests/test_gspo.py`` checks that these functions give
TRL's loss and gradients on the same tensors. Departures, all matching TRL rather than the paper:
``eps`` = 1e-4 and the unbiased (Bessel) std in the advantage; a completion with no tokens contributes
0 to the mean instead of being dropped; no KL term (β = 0). Other TRL ``loss_type``s differ at the
sequence level: "bnpo"/"dr_grpo"/"dapo" weight each sequence's loss by its token count, "luspo" by its length.

Shapes: ``logp_*`` and ``mask`` are (B, T) over completion tokens (mask 1 on real tokens, 0 on
padding); ``rewards`` and ``advantages`` are (B,), groups contiguous (B = n_prompts × G).

Taught in ``notebooks/06_gspo_iou_rewards.py``.
"""

from __future__ import annotations

import torch

# TRL's constant in Â_i = (r_i − mean) / (std + eps).
ADV_EPS = 1e-4


def group_advantages(rewards, group_size: int, scale: bool = True, eps: float = ADV_EPS) -> torch.Tensor:
    """Â_i = (r_i − mean_group) / (std_group + eps), groups of ``group_size`` consecutive rewards → (B,).

    ``scale=False`` keeps only the centering (Dr. GRPO's choice). A group whose rewards are all equal gets
    Â = 0: nothing to learn from it."""
    r = torch.as_tensor(rewards, dtype=torch.float32).view(-1, group_size)  # (n_prompts, G)
    adv = r - r.mean(dim=1, keepdim=True)  # r_i − mean_j r_j
    if scale and group_size > 1:  # a group of one has no std (and Â = 0 already)
        adv = adv / (r.std(dim=1, keepdim=True) + eps)  # unbiased std, as TRL
    return adv.view(-1)


def sequence_ratio(logp_new, logp_old, mask) -> torch.Tensor:
    """s_i = exp( Σ_t m_t (log π_θ − log π_old) / Σ_t m_t ) → (B,). Equals 1 when the policies agree."""
    log_ratio = (logp_new - logp_old) * mask  # log π_θ/π_old per completion token, 0 on padding
    length = mask.sum(-1).clamp(min=1.0)  # |o_i| (an empty completion divides by 1, not 0)
    return torch.exp(log_ratio.sum(-1) / length)  # s_i = exp(mean_t log π_θ/π_old)


def clipped_surrogate(ratio, advantages, eps_low: float, eps_high: float) -> torch.Tensor:
    """min(ratio · Â, clip(ratio, 1 − ε_low, 1 + ε_high) · Â), elementwise (the PPO surrogate).

    Clipping only ever *lowers* the objective: once the ratio has moved past the clip range in the
    direction the advantage rewards, its gradient is zero."""
    unclipped = ratio * advantages  # s · Â
    clipped = torch.clamp(ratio, 1 - eps_low, 1 + eps_high) * advantages  # clip(s, 1−ε_low, 1+ε_high) · Â
    return torch.min(unclipped, clipped)


def gspo_loss(logp_new, logp_old, advantages, mask, eps_low: float = 3e-4, eps_high: float = 4e-4) -> torch.Tensor:
    """GSPO loss = −1/B Σ_i min(s_i Â_i, clip(s_i, 1 − ε_low, 1 + ε_high) Â_i), a scalar to minimize."""
    s = sequence_ratio(logp_new, logp_old, mask)  # (B,)
    objective = clipped_surrogate(s, advantages, eps_low, eps_high)  # (B,)
    has_tokens = (mask.sum(-1) > 0).to(objective.dtype)  # an empty completion adds 0 (as TRL)
    return -(objective * has_tokens).mean()  # −1/B Σ_i …


def grpo_loss(logp_new, logp_old, advantages, mask, eps_low: float = 0.2, eps_high: float = 0.2) -> torch.Tensor:
    """The token-level twin: −1/B Σ_i 1/|o_i| Σ_t min(r_i,t Â_i, clip(r_i,t, 1 − ε_low, 1 + ε_high) Â_i),
    with r_i,t = π_θ/π_old (o_i,t) — each token clipped on its own (TRL ``loss_type="grpo"``, token level)."""
    r = torch.exp(logp_new - logp_old)  # r_i,t, (B, T)
    objective = clipped_surrogate(r, advantages.unsqueeze(-1), eps_low, eps_high)  # (B, T)
    per_sequence = (objective * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)  # 1/|o_i| Σ_t
    return -per_sequence.mean()  # −1/B Σ_i


def clip_fraction(logp_new, logp_old, advantages, mask, eps_low: float = 3e-4, eps_high: float = 4e-4) -> float:
    """Share of sequences whose clipped term is active (s_i < 1 − ε_low with Â < 0, or s_i > 1 + ε_high
    with Â > 0): TRL logs it as ``clip_ratio/region_mean``; near 0 or near 1 suggests retuning ε."""
    s = sequence_ratio(logp_new, logp_old, mask)
    clipped = ((s < 1 - eps_low) & (advantages < 0)) | ((s > 1 + eps_high) & (advantages > 0))
    return float(clipped.float().mean())
