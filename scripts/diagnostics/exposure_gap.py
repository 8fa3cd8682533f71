"""Exposure bias of one or more checkpoints (``headroom.exposure_gap``): mask IoU of the free-running greedy answer
against the answer whose every coordinate is written after the *ground-truth* prefix, on the same scenes.
Run: python scripts/diagnostics/exposure_gap.py [NAME=CHECKPOINT ...] [--n 300 --seed 999 --json OUT]
     (default: the committed lite-sft; validation seed 999; LOG session 33)"""
import argparse
import json

import torch

from simpleseg_lite.evaluate import checkpoint_settings, eval_samples
from simpleseg_lite.headroom import exposure_gap
from simpleseg_lite.model import load_model

p = argparse.ArgumentParser()
p.add_argument("models", nargs="*", default=["lite-sft=data/checkpoints/lite-sft"], help="NAME=CHECKPOINT")
p.add_argument("--n", type=int, default=300)
p.add_argument("--seed", type=int, default=999)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--json", default=None, help="write each model's report (with per-scene IoUs) here")
a = p.parse_args()
torch.set_num_threads(a.threads)
reports = {}
print(f"{'model':24} {'n':>4} {'teacher-forced':>14} {'free':>6} {'gap':>6} | right object: {'n':>4} {'forced':>6} {'free':>6}")
for spec in a.models:
    name, _, path = spec.rpartition("=")
    name = name or path
    st = checkpoint_settings(path)
    samples = eval_samples("synthetic", a.n, a.seed, "polygon", st["epsilon"], st["decimals"], st["image_size"])
    model, processor = load_model(path, dtype=torch.float32)
    r = reports[name] = exposure_gap(model, processor, samples)
    ro = r["right_object"]
    print(f"{name:24} {r['n']:4d} {r['teacher_forced_iou']:14.3f} {r['free_iou']:6.3f} {r['gap']:+6.3f} | "
          f"{'':14}{r['n_right']:4d} {ro['teacher_forced_iou']:6.3f} {ro['free_iou']:6.3f}")
    for key, row in r["edge_px_by_vertex"].items():
        print(f"    px from the edge by vertex 0…11+, {key:14}: " + " ".join(f"{d:4.2f}" for d in row))
if a.json:
    json.dump(reports, open(a.json, "w"))
