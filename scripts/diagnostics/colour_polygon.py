"""Can the polygon model find an object named by its colour alone? Text→polygon on 2–3-object scenes, every
sentence of the form "the red shape" (``data.make_samples(shape_free=1)`` with attribute expressions only), and the
same scenes' sentences with the default mix, for the checkpoints given (validation seed 999; LOG session 20).
Run: OMP_NUM_THREADS=1 python scripts/diagnostics/colour_polygon.py NAME=PATH [NAME=PATH ...] [--n 200]"""
import argparse

import numpy as np
import torch

from simpleseg_lite import data
from simpleseg_lite.evaluate import checkpoint_settings, evaluate, sample_scores
from simpleseg_lite.model import load_model

p = argparse.ArgumentParser()
p.add_argument("arms", nargs="+", help="NAME=PATH")
p.add_argument("--n", type=int, default=200)
p.add_argument("--seed", type=int, default=999)
a = p.parse_args()
torch.set_num_threads(1)
arms = dict(x.split("=", 1) for x in a.arms)
st = checkpoint_settings(next(iter(arms.values())))
sets = {
    "by colour alone": list(data.make_samples(a.n, a.seed, data.SyntheticConfig(min_objects=2, expression_mix={
        "attribute": 1.0}), {"polygon": 1.0}, st["epsilon"], decimals=st["decimals"], shape_free=1.0)),
    "default sentences": list(data.make_samples(a.n, a.seed, data.SyntheticConfig(min_objects=2), {"polygon": 1.0},
                                                st["epsilon"], decimals=st["decimals"])),
}
for name, path in arms.items():
    model, processor = load_model(path, dtype=torch.float32)
    out = []
    for label, samples in sets.items():
        scores = sample_scores(evaluate(model, processor, samples, dependence=False)["rows"])
        out.append(f"{label}: mean IoU {scores.mean():.3f}, > 0.5 {np.mean(scores > 0.5):.2f}")
    print(f"{name} (2–3 objects, n {a.n} each, seed {a.seed}): " + "; ".join(out), flush=True)
