"""Where a checkpoint loses IoU on the validation scenes (seed 999, n 500): answers on the wrong object
(``evaluate.failure_kind``: the answer's centroid is nearer another object) against poor outlines of the right one —
how many, their mean IoU, and the share of gIoU each loses; by object count, and on 2–3-object scenes by the kind of referring expression
(``referring.expression_kind``: the wrong object is chosen only where the sentence names the target by colour, shape
or size — LOG session 33).
Run: python scripts/diagnostics/failure_kinds.py [--model CHECKPOINT] [--json OUT]      (LOG session 32)"""
import argparse
import json

import numpy as np
import torch

from simpleseg_lite.evaluate import checkpoint_settings, eval_samples, evaluate, failure_kind
from simpleseg_lite.model import load_model
from simpleseg_lite.referring import expression_kind

p = argparse.ArgumentParser()
p.add_argument("--model", default="data/checkpoints/lite-sft")
p.add_argument("--n", type=int, default=500)
p.add_argument("--seed", type=int, default=999)
p.add_argument("--json", default=None, help="write each answer with its IoU, kind and object count here")
a = p.parse_args()
torch.set_num_threads(2)
st = checkpoint_settings(a.model)
samples = eval_samples("synthetic", a.n, a.seed, "polygon", st["epsilon"], st["decimals"], st["image_size"])
model, processor = load_model(a.model, dtype=torch.float32)
rows = evaluate(model, processor, samples, dependence=False)["rows"]
iou = np.array([r["iou"] for r in rows])
kind = np.array([failure_kind(s, r["answer"]) for s, r in zip(samples, rows)])
objects = np.array([len(s.metadata["objects"]) for s in samples])
print(f"{a.model}: gIoU {iou.mean():.3f} on {len(iou)} scenes (seed {a.seed})")
for k in ("shape", "wrong object", "invalid"):
    m = kind == k
    mean = f"{iou[m].mean():.3f}" if m.any() else "–"
    print(f"  {k:12} n {m.sum():3d}, mean IoU {mean}, gIoU lost {(1 - iou[m]).sum() / len(iou):.3f}")
for j in np.unique(objects):
    m = objects == j
    print(f"  {j} object(s): n {m.sum()}, gIoU {iou[m].mean():.3f}, wrong object {(kind[m] == 'wrong object').mean():.3f}")
sentence = np.array([expression_kind(s.metadata.get("rule")) for s in samples])
multi = objects > 1
print("  2–3 objects by expression kind: n, gIoU, wrong-object share, gIoU (of all scenes) lost to wrong objects")
for k in sorted(set(sentence[multi]), key=lambda k: -((kind == "wrong object") & multi & (sentence == k)).sum()):
    m = multi & (sentence == k)
    w = m & (kind == "wrong object")
    print(f"    {k:13} n {m.sum():3d}, gIoU {iou[m].mean():.3f}, wrong {w.sum() / m.sum():.2f}, "
          f"lost {(1 - iou[w]).sum() / len(iou):.3f}")
if a.json:
    json.dump([{"iou": float(i), "kind": str(k), "objects": int(j), "answer": r["answer"]}
               for i, k, j, r in zip(iou, kind, objects, rows)], open(a.json, "w"))
