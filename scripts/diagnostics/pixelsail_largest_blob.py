"""Diagnostic (LOG session 17): Pixel-SAIL-lite masks with and without keeping only the largest connected component,
same weights and samples; prints components per mask, both metric sets and the paired IoU difference.
Run: python scripts/diagnostics/pixelsail_largest_blob.py data/checkpoints/lite-pixelsail 999"""
import sys

import cv2
import numpy as np
import torch

from simpleseg_lite.pixelsail import load, predict_samples
from simpleseg_lite.evaluate import eval_samples, score_masks, checkpoint_settings
from simpleseg_lite.metrics import paired_difference
torch.set_num_threads(1)
ck = sys.argv[1]; seed = int(sys.argv[2])
model, tok = load(ck)
st = checkpoint_settings(ck)
samples = eval_samples("synthetic", 200, seed, "polygon", st["epsilon"], st["decimals"], st["image_size"])
images = [s.load_image() for s in samples]
preds = predict_samples(model, tok, samples, 32, images)
def largest(m):
    if m is None or m.sum() == 0: return m
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m.astype(np.uint8), connectivity=8)
    if n <= 2: return m
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (lab == k).astype(np.uint8)
base = score_masks(samples, preds)
cc = score_masks(samples, [(a, largest(m)) for a, m in preds])
ncomp = [cv2.connectedComponents(m.astype(np.uint8))[0] - 1 if m is not None else 0 for _, m in preds]
print("components per mask: mean", np.mean(ncomp), "share >1", np.mean(np.array(ncomp) > 1))
for name, r in (("raw", base), ("largest CC", cc)):
    print(name, {k: round(r[k], 4) for k in ("gIoU", "cIoU", "prec_at_0.5", "valid_rate")})
d = paired_difference(np.array([r["iou"] for r in base["rows"]]), np.array([r["iou"] for r in cc["rows"]]))
print("paired CC - raw", round(d["mean"], 4), [round(x, 4) for x in d["ci95"]], d["better"], d["worse"])
