"""Several checkpoints on the *same* samples, every pair compared (paired per-sample IoU, bootstrap 95% interval):
one evaluation per checkpoint instead of one per pair (``simpleseg-lite compare`` evaluates both sides each time).
Also the mean IoU by the scene's object count, and on 2–3-object scenes by the kind of referring expression
("attribute/c": named by colour alone, "attribute/s": by shape alone, "attribute/cs": both; LOG session 20). The first checkpoint sets the samples' ε and decimals.
Run: OMP_NUM_THREADS=1 python scripts/diagnostics/paired_arms.py --n 500 --seed 999 [--max-objects 3] [--task polygon]
     NAME=PATH [NAME=PATH ...]        (LOG session 18)"""
import argparse
import itertools
import json

import numpy as np
import torch

from simpleseg_lite.evaluate import checkpoint_settings, eval_samples, evaluate, sample_scores
from simpleseg_lite.metrics import paired_difference
from simpleseg_lite.model import load_model
from simpleseg_lite.referring import expression_kind

p = argparse.ArgumentParser()
p.add_argument("arms", nargs="+", help="NAME=PATH")
p.add_argument("--n", type=int, default=500)
p.add_argument("--seed", type=int, default=999)
p.add_argument("--max-objects", type=int, default=3)
p.add_argument("--task", default="polygon")
p.add_argument("--json", default=None, help="write the per-sample scores and the pairs here")
p.add_argument("--device", default="cpu", help="where the models generate (cuda on a GPU machine; same answers up to "
               "numerics)")
a = p.parse_args()
torch.set_num_threads(1)
arms = dict(x.split("=", 1) for x in a.arms)
st = checkpoint_settings(next(iter(arms.values())))
samples = eval_samples("synthetic", a.n, a.seed, a.task, st["epsilon"], st["decimals"], st["image_size"], None,
                       "refcoco", "val", a.max_objects)
objects = np.array([len(s.metadata["objects"]) for s in samples])


kinds = np.array([expression_kind(s.metadata.get("rule")) for s in samples])
scores, summary = {}, {}
for name, path in arms.items():
    model, processor = load_model(path, dtype=torch.float32)
    model.to(a.device)
    r = evaluate(model, processor, samples, dependence=False)
    scores[name] = sample_scores(r["rows"])
    summary[name] = {k: r.get(k) for k in ("gIoU", "cIoU", "prec_at_0.5", "valid_rate", "area_ratio_median")}
    by = {int(k): round(float(scores[name][objects == k].mean()), 3) for k in np.unique(objects)}
    print(f"{name}: {json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in summary[name].items()})} "
          f"by objects {by}", flush=True)
    multi = objects > 1
    print("  2–3 objects by expression kind: " + ", ".join(
        f"{k} {scores[name][multi & (kinds == k)].mean():.3f} (n {int((multi & (kinds == k)).sum())})"
        for k in sorted(set(kinds[multi]))), flush=True)
pairs = {}
for x, y in itertools.combinations(arms, 2):
    d = paired_difference(scores[x], scores[y])
    pairs[f"{y} - {x}"] = d
    print(f"{y} − {x}: {d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] ({d['better']} better / "
          f"{d['worse']} worse)")
if a.json:
    json.dump({"n": a.n, "seed": a.seed, "task": a.task, "summary": summary, "arms": arms,
               "scores": {k: v.tolist() for k, v in scores.items()}, "objects": objects.tolist(), "kinds": kinds.tolist(),
               "pairs": pairs}, open(a.json, "w"), indent=1, default=float)
