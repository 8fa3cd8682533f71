"""Which-object headroom on the 2–3-object validation scenes (``headroom.choice_headroom``): the greedy answer against
G answers whose first vertex (the first K coordinates) is drawn from the model while the rest follow the median rule.
Run: python scripts/diagnostics/choice_headroom.py [--model data/checkpoints/lite-sft --n 200 --k 2 --g 8]
     (validation seed 999; LOG session 32)"""
import argparse
import json

import torch

from simpleseg_lite.evaluate import checkpoint_settings, eval_samples
from simpleseg_lite.headroom import choice_headroom
from simpleseg_lite.model import load_model

p = argparse.ArgumentParser()
p.add_argument("--model", default="data/checkpoints/lite-sft")
p.add_argument("--n", type=int, default=200, help="validation scenes drawn; those with 2–3 objects are used")
p.add_argument("--seed", type=int, default=999)
p.add_argument("--k", type=int, default=2, help="coordinates drawn at the start of each answer")
p.add_argument("--g", type=int, default=8, help="answers per prompt")
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
st = checkpoint_settings(a.model)
samples = [s for s in eval_samples("synthetic", a.n, a.seed, "polygon", st["epsilon"], st["decimals"], st["image_size"])
           if len(s.metadata["objects"]) > 1]
model, processor = load_model(a.model, dtype=torch.float32)
print(json.dumps({k: round(v, 3) if isinstance(v, float) else v
                  for k, v in choice_headroom(model, processor, samples, a.k, a.g).items()}))
