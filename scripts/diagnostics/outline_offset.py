"""How much of an RL gain a fixed rule would give: each checkpoint's greedy answers with every outline moved outwards
by d pixels (``headroom.offset_outlines``: shapely ``buffer``, mitred corners; d < 0 shrinks), scored against the
mask. Polygons learned from coarse-ε targets cut inside the contour (Douglas–Peucker keeps vertices *on* it), so a
positive d repairs part of that without training; an RL gain larger than the best fixed d's (chosen on the validation
seed, read on an unseen one) is more than a constant. With ``--versus NAME@D`` also the paired difference of every
arm's plain answers (d 0) against NAME's answers moved out by D px.
Run: OMP_NUM_THREADS=1 python scripts/diagnostics/outline_offset.py --n 500 --seed 999 NAME=PATH [NAME=PATH ...]
     [--offsets -1,0,0.5,1,1.5,2,3] [--versus sft_eps06@0.5] [--json OUT]        (LOG session 35)"""
import argparse
import json

import torch

from simpleseg_lite.evaluate import checkpoint_settings, eval_samples, evaluate
from simpleseg_lite.headroom import offset_scores
from simpleseg_lite.metrics import paired_difference
from simpleseg_lite.model import load_model


def ci(p: dict) -> str:
    return f"{p['mean']:+.3f} [{p['ci95'][0]:+.3f}, {p['ci95'][1]:+.3f}] ({p['better']} better / {p['worse']} worse)"


ap = argparse.ArgumentParser()
ap.add_argument("arms", nargs="+", help="NAME=PATH")
ap.add_argument("--n", type=int, default=500)
ap.add_argument("--seed", type=int, default=999)
ap.add_argument("--offsets", default="-1,0,0.5,1,1.5,2,3", help="pixels, comma-separated")
ap.add_argument("--versus", default=None, help="NAME@D: pair every other arm's plain answers with NAME's moved D px")
ap.add_argument("--json", default=None, help="write every arm's per-sample IoU at every offset here")
a = ap.parse_args()
torch.set_num_threads(1)
arms = dict(x.split("=", 1) for x in a.arms)
offsets = sorted({0.0, *(float(x) for x in a.offsets.split(","))})
if a.versus:
    ref, ref_d = a.versus.rsplit("@", 1)
    if ref not in arms or float(ref_d) not in offsets:
        raise SystemExit(f"--versus {a.versus}: NAME must be one of {list(arms)} and D one of --offsets {offsets}")
st = checkpoint_settings(next(iter(arms.values())))
samples = eval_samples("synthetic", a.n, a.seed, "polygon", st["epsilon"], st["decimals"], st["image_size"])
record = {"n": a.n, "seed": a.seed, "offsets": offsets, "arms": arms, "gIoU": {}, "vs_0": {}, "scores": {}}
scores = {}
for name, path in arms.items():
    model, processor = load_model(path, dtype=torch.float32)
    answers = [r["answer"] for r in evaluate(model, processor, samples, dependence=False)["rows"]]
    scores[name] = offset_scores(samples, answers, offsets)
    record["gIoU"][name] = {str(d): float(v.mean()) for d, v in scores[name].items()}
    record["scores"][name] = {str(d): v.round(4).tolist() for d, v in scores[name].items()}
    print(f"{name}: " + ", ".join(f"{d:+g} px {v.mean():.3f}" for d, v in scores[name].items()), flush=True)
    for d, v in scores[name].items():
        if d:
            record["vs_0"].setdefault(name, {})[str(d)] = p = paired_difference(scores[name][0.0], v)
            print(f"  {d:+g} px vs 0: {ci(p)}", flush=True)
if a.versus:
    record["versus"] = {}
    base = scores[ref][float(ref_d)]
    for name in arms:
        if name != ref:
            record["versus"][name] = p = paired_difference(base, scores[name][0.0])
            print(f"{name} − {ref} moved {float(ref_d):+g} px: {ci(p)}", flush=True)
if a.json:
    json.dump(record, open(a.json, "w"), default=float)
