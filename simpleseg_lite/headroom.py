"""Where RL's headroom is, measured on the SFT policy before any RL (the pass@k view).

GSPO can mostly only move the greedy answer towards the best of the answers the policy already samples:
it raises the probability of answers whose reward beat their group's mean. So before tuning a run, for a
fixed set of prompts we measure

* **greedy IoU** — what evaluation scores today (mask IoU of the greedy answer),
* **mean and best of G** sampled answers at each temperature — best-of-G minus greedy is the gain RL could
  reach by sharpening alone; mean-of-G below greedy says hot samples are mostly worse,
* **flat groups** — the share of groups whose G rewards are all equal: their standardized advantage is 0,
  so they give no gradient at all (wasted generation),
* **reward spread** — the mean within-group standard deviation of the summed reward (what trl divides by).

Rewards are ``rewards.combined_reward`` with the run's weights; IoU is ``rewards.mask_iou_reward``.
Coordinates and masks follow ``metrics`` (normalized (x, y), pixel-edge, y down).

Taught in ``notebooks/06_gspo_iou_rewards.py``.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.std import tqdm

from .rewards import REWARD_WEIGHTS, combined_reward, gt_centroid_of, mask_iou_reward

FLAT = 1e-6  # a group whose reward std is below this gives trl's standardized advantage 0


def _generate(model, processor, samples, batch_size, max_new_tokens, do_sample=False, temperature=1.0):
    from .model import generate

    out = []
    for k in range(0, len(samples), batch_size):
        chunk = samples[k : k + batch_size]
        out += generate(model, processor, [s.load_image() for s in chunk], [s.prompt for s in chunk],
                        max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature)
    return out


def headroom(model, processor, samples, temperatures=(0.3, 0.7, 1.0), group_size: int = 8,
             weights: dict | None = None, batch_size: int = 32, max_new_tokens: int = 160, seed: int = 0) -> dict:
    """Greedy vs sampled answers of one policy on ``samples`` (text→polygon ``data.Sample``s).

    Returns ``{"greedy_iou", "n", "group_size", "rows": [{"temperature", "mean_iou", "best_iou",
    "flat_groups", "reward_std", "best_minus_greedy"}], "per_sample": {...}}``; per-sample arrays
    (greedy IoU, best-of-G IoU per temperature) let a notebook pair them.
    """
    samples = list(samples)
    weights = dict(REWARD_WEIGHTS) if weights is None else weights
    rles = [s.gt_rle for s in samples]
    greedy = np.asarray(mask_iou_reward(_generate(model, processor, samples, batch_size, max_new_tokens), rles))
    rows, per_sample = [], {"greedy_iou": greedy.tolist()}
    grouped = [s for s in samples for _ in range(group_size)]
    for t in tqdm(temperatures, desc="temperatures", unit="T"):
        torch.manual_seed(seed)
        answers = _generate(model, processor, grouped, batch_size, max_new_tokens, do_sample=True, temperature=t)
        g_rles = [s.gt_rle for s in grouped]
        iou = np.asarray(mask_iou_reward(answers, g_rles)).reshape(len(samples), group_size)
        reward = np.asarray(combined_reward(answers, weights, gt_rle=g_rles,
                                            gt_centroid=[gt_centroid_of(r) for r in g_rles]))
        reward = reward.reshape(len(samples), group_size)
        spread = reward.std(axis=1)
        rows.append({"temperature": float(t), "mean_iou": float(iou.mean()), "best_iou": float(iou.max(1).mean()),
                     "flat_groups": float((spread < FLAT).mean()), "reward_std": float(spread.mean()),
                     "best_minus_greedy": float(iou.max(1).mean() - greedy.mean())})
        per_sample[f"best_iou_T{t:g}"] = iou.max(1).tolist()
    return {"greedy_iou": float(greedy.mean()), "n": len(samples), "group_size": group_size, "rows": rows,
            "per_sample": per_sample}


def plot_headroom(report: dict, ax=None):
    """Greedy IoU (a line) against the mean and the best of G sampled answers per temperature, and the
    share of flat groups (right axis)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3.6))[1]
    t = [r["temperature"] for r in report["rows"]]
    ax.axhline(report["greedy_iou"], color="black", ls="--", label="greedy")
    ax.plot(t, [r["mean_iou"] for r in report["rows"]], "o-", label=f"mean of G={report['group_size']}")
    ax.plot(t, [r["best_iou"] for r in report["rows"]], "s-", label=f"best of G={report['group_size']}")
    ax.set(xlabel="sampling temperature", ylabel="mask IoU (mean over prompts)",
           title=f"RL's headroom on {report['n']} prompts")
    right = ax.twinx()
    right.bar(t, [r["flat_groups"] for r in report["rows"]], width=0.08, alpha=0.25, color="grey")
    right.set(ylabel="share of flat groups (grey)", ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    return ax
