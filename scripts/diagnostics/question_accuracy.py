"""Can the polygon model answer "What colour is <expr>?" / "What shape is <expr>?" (the pre-training curriculum's
questions, ``data.make_grounding_samples``)? Exact-answer accuracy on 1–3-object validation scenes (seed 999), and
the share a model would get by naming a random object of the scene (chance). LOG session 20.
Run: OMP_NUM_THREADS=1 python scripts/diagnostics/question_accuracy.py NAME=PATH [...] [--n 200]"""
import argparse

import numpy as np
import torch

from simpleseg_lite import data
from simpleseg_lite.model import generate, load_model

p = argparse.ArgumentParser()
p.add_argument("arms", nargs="+", help="NAME=PATH")
p.add_argument("--n", type=int, default=200)
p.add_argument("--seed", type=int, default=999)
a = p.parse_args()
torch.set_num_threads(1)
sets = {q: list(data.make_grounding_samples(a.n, a.seed, data.SyntheticConfig(), questions=(q,), decimals=2))
        for q in ("colour", "shape")}
for name, path in [x.split("=", 1) for x in a.arms]:
    model, processor = load_model(path, dtype=torch.float32)
    model.eval()
    out = []
    for q, samples in sets.items():
        answers = []
        for start in range(0, len(samples), 32):
            chunk = samples[start:start + 32]
            answers += generate(model, processor, [s.load_image() for s in chunk], [s.prompt for s in chunk],
                                max_new_tokens=8)
        right = np.mean([ans.strip() == s.answer for ans, s in zip(answers, samples)])
        key = "colour" if q == "colour" else "name"
        chance = np.mean([np.mean([o[key] == s.answer for o in s.metadata["objects"]]) for s in samples])
        out.append(f"{q} {right:.2f} (random object of the scene {chance:.2f})")
    print(f"{name}: " + ", ".join(out), flush=True)
