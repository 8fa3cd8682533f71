"""Headroom of the median sampler (``quantile_rl.QuantileWindow``) over the whole outline, on the first N validation
scenes: the greedy answer, the ground-truth answer (the ceiling of the answer format), and the mean / best of G answers
with every coordinate drawn (``headroom.choice_headroom`` with ``first=0``) at several window half-widths δ, and with
sparse draws; for single objects and for all scenes.
Run: python scripts/diagnostics/outline_headroom.py [--model data/checkpoints/lite-sft --n 300 --g 8]
     (validation seed 999; LOG session 33)"""
import argparse

import numpy as np
import torch

from simpleseg_lite.evaluate import checkpoint_settings, eval_samples
from simpleseg_lite.headroom import choice_headroom
from simpleseg_lite.model import load_model
from simpleseg_lite.rewards import mask_iou_reward

p = argparse.ArgumentParser()
p.add_argument("--model", default="data/checkpoints/lite-sft")
p.add_argument("--n", type=int, default=300)
p.add_argument("--seed", type=int, default=999)
p.add_argument("--g", type=int, default=8, help="answers per prompt")
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
st = checkpoint_settings(a.model)
samples = list(eval_samples("synthetic", a.n, a.seed, "polygon", st["epsilon"], st["decimals"], st["image_size"]))
model, processor = load_model(a.model, dtype=torch.float32)
single = np.array([len(s.metadata["objects"]) == 1 for s in samples])
ceiling = np.array(mask_iou_reward([s.answer for s in samples], [s.gt_rle for s in samples]))
arms = {f"δ {d}": choice_headroom(model, processor, samples, first=0, group_size=a.g, delta=d, batch_size=8)
        for d in (0.1, 0.25, 0.5)}
arms["sparse 0.1, δ 0.5"] = choice_headroom(model, processor, samples, first=0, group_size=a.g, delta=0.5, batch_size=8,
                                            rate=0.1)
greedy = np.array(next(iter(arms.values()))["per_sample"]["greedy"])
for name, m in (("single objects", single), ("all scenes", np.ones_like(single))):
    print(f"{name} (n {m.sum()}): ground-truth answer {ceiling[m].mean():.3f}, greedy {greedy[m].mean():.3f}")
    for arm, r in arms.items():
        mean, best = (np.array(r["per_sample"][k])[m].mean() for k in ("mean", "best"))
        print(f"   {arm:18} mean of {a.g} {mean:.3f}, best of {a.g} {best:.3f}")
