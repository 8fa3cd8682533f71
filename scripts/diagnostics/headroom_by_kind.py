"""Where the sampler's headroom lies, by the kind of referring sentence: on N scenes, the greedy answer against the
best of G answers drawn two ways — every coordinate from the median sampler's window (δ ``--delta``, the outline) and
only the first vertex from the model's own distribution (δ ½, the choice of object) — and the best of both groups.
Each kind's *share* is its summed (best − greedy) divided by all N scenes, so the shares add up to the whole headroom:
the most that sharpening this policy towards its best of G could add to gIoU, sentence kind by sentence kind.
Run: python scripts/diagnostics/headroom_by_kind.py [--model data/checkpoints/lite-sft --n 500 --seed 999 --g 8
     --json OUT]   (LOG session 34)"""
import argparse
import json

import numpy as np
import torch

from simpleseg_lite.evaluate import checkpoint_settings, eval_samples
from simpleseg_lite.headroom import choice_headroom
from simpleseg_lite.model import load_model
from simpleseg_lite.referring import expression_kind

p = argparse.ArgumentParser()
p.add_argument("--model", default="data/checkpoints/lite-sft")
p.add_argument("--n", type=int, default=500)
p.add_argument("--seed", type=int, default=999)
p.add_argument("--g", type=int, default=8, help="answers per prompt, per sampler")
p.add_argument("--delta", type=float, default=0.25, help="window half-width of the outline sampler")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--json", help="write the per-sample IoUs and the table here")
a = p.parse_args()
torch.set_num_threads(a.threads)
st = checkpoint_settings(a.model)
samples = list(eval_samples("synthetic", a.n, a.seed, "polygon", st["epsilon"], st["decimals"], st["image_size"]))
model, processor = load_model(a.model, dtype=torch.float32)
outline = choice_headroom(model, processor, samples, first=0, group_size=a.g, delta=a.delta, batch_size=8)["per_sample"]
choice = choice_headroom(model, processor, samples, first=2, group_size=a.g, delta=0.5, batch_size=8)["per_sample"]
greedy = np.array(outline["greedy"])
best = {"outline": np.array(outline["best"]), "choice": np.array(choice["best"])}
best["both"] = np.maximum(best["outline"], best["choice"])
kinds = np.array([expression_kind(s.metadata.get("rule")) if len(s.metadata["objects"]) > 1 else "single object"
                  for s in samples])
n = len(samples)
rows = []
print(f"{a.model}, seed {a.seed}, n {n}, G {a.g}: greedy {greedy.mean():.3f}; best of G — outline (δ {a.delta}) "
      f"{best['outline'].mean():.3f}, choice {best['choice'].mean():.3f}, both {best['both'].mean():.3f}")
print(f"{'kind':16} {'n':>4} {'greedy':>7} | best: {'outline':>7} {'choice':>7} {'both':>7} | share of the headroom: "
      f"{'outline':>7} {'choice':>7} {'both':>7}")
for kind in ["single object", "position", "relation", "size", "attribute/s", "attribute/cs", "attribute/c", "all"]:
    m = np.ones(n, bool) if kind == "all" else kinds == kind
    if not m.any():
        continue
    row = {"kind": kind, "n": int(m.sum()), "greedy": float(greedy[m].mean()),
           **{f"best_{k}": float(v[m].mean()) for k, v in best.items()},
           **{f"share_{k}": float((v - greedy)[m].sum() / n) for k, v in best.items()}}
    rows.append(row)
    print(f"{kind:16} {row['n']:>4} {row['greedy']:7.3f} |       {row['best_outline']:7.3f} {row['best_choice']:7.3f} "
          f"{row['best_both']:7.3f} |                        {row['share_outline']:+7.3f} {row['share_choice']:+7.3f} "
          f"{row['share_both']:+7.3f}")
if a.json:
    with open(a.json, "w") as f:
        json.dump({"model": a.model, "seed": a.seed, "n": n, "g": a.g, "delta": a.delta, "rows": rows,
                   "per_sample": {"kind": kinds.tolist(), "greedy": greedy.tolist(),
                                  **{k: v.tolist() for k, v in best.items()}}}, f)
