"""Headroom of the median sampler (``quantile_rl.QuantileWindow``) on the first N validation scenes: the greedy answer,
the ground-truth answer (the ceiling of the answer format), and the mean / best of G answers with every coordinate
drawn at several window half-widths δ (and sparse draws), for single objects and for all scenes.
Run: python scripts/diagnostics/outline_headroom.py   (validation seed 999, 300 scenes, G 8; LOG session 33)"""
import sys

import numpy as np
import torch

from simpleseg_lite.evaluate import checkpoint_settings, eval_samples
from simpleseg_lite.model import load_model, coordinate_values
from simpleseg_lite.quantile_rl import QuantileWindow, _batch, window_generate
from simpleseg_lite.rewards import mask_iou_reward
torch.set_num_threads(2)
m = sys.argv[1] if len(sys.argv) > 1 else "data/checkpoints/lite-sft"
st = checkpoint_settings(m)
S = [s for s in eval_samples("synthetic", 300, 999, "polygon", st["epsilon"], st["decimals"], st["image_size"])]
model, proc = load_model(m, dtype=torch.float32); tok = proc.tokenizer
ids, vals = (torch.tensor(x) for x in coordinate_values(tok))
gen = torch.Generator().manual_seed(0)
def run(chunk, rep, win):
    enc = _batch(proc, [{"prompt": s.prompt, "image": s.load_image()} for s in chunk for _ in range(rep)])
    seq = window_generate(model, tok, enc, win, 160)
    return tok.batch_decode(seq[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
G = 8
res = {"gt": [], "greedy": [], "objects": []}
arms = [("d0.1", dict(delta=0.1)), ("d0.25", dict(delta=0.25)), ("d0.5", dict(delta=0.5)), ("sparse0.1 d0.5", dict(delta=0.5, rate=0.1))]
for a, _ in arms: res[a] = []
for k in range(0, len(S), 8):
    ch = S[k:k+8]
    res["gt"] += mask_iou_reward([s.answer for s in ch], [s.gt_rle for s in ch])
    res["greedy"] += mask_iou_reward(run(ch, 1, QuantileWindow(ids, vals, 0.5, rate=0.0)), [s.gt_rle for s in ch])
    res["objects"] += [len(s.metadata["objects"]) for s in ch]
    for a, kw in arms:
        t = run(ch, G, QuantileWindow(ids, vals, kw["delta"], gen, rate=kw.get("rate", 1.0)))
        iou = np.array(mask_iou_reward(t, [s.gt_rle for s in ch for _ in range(G)])).reshape(len(ch), G)
        res[a] += iou.tolist()

obj = np.array(res["objects"])
for name, msk in (("single objects", obj == 1), ("all", obj > 0)):
    print(name, msk.sum(), "GT answer ceiling", round(np.mean(np.array(res["gt"])[msk]), 3), "greedy", round(np.mean(np.array(res["greedy"])[msk]), 3))
    for a, _ in arms:
        x = np.array(res[a])[msk]
        print(f"   {a:16} mean {x.mean():.3f} best-of-8 {x.max(1).mean():.3f} best-of-4 {x[:, :4].max(1).mean():.3f} best-of-2 {x[:, :2].max(1).mean():.3f}")
