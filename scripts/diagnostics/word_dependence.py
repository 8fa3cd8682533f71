"""Does the polygon model read the referring words? On 2-object scenes whose objects differ in the word asked about,
the target's true answer is scored (teacher-forced log-likelihood) under the sentence that names the target and under
the one that names the other object: colour ("the red shape" / "the blue shape"), shape ("the star" / "the circle")
or position ("the leftmost shape" / "the rightmost shape", objects ≥ 20 px apart in x). A model that reads the word
prefers the right sentence (share → 1); a word-blind one scores both alike (share 0.5, mean gap 0).
Validation scenes (seed 999); LOG session 20.
Run: OMP_NUM_THREADS=1 python scripts/diagnostics/word_dependence.py NAME=PATH [...] [--n 128] [--words colour]"""
import argparse

import numpy as np
import torch

from simpleseg_lite import data
from simpleseg_lite.evaluate import checkpoint_settings
from simpleseg_lite.model import collate_sft, load_model

p = argparse.ArgumentParser()
p.add_argument("arms", nargs="+", help="NAME=PATH")
p.add_argument("--n", type=int, default=128)
p.add_argument("--seed", type=int, default=999)
p.add_argument("--words", choices=["colour", "shape", "position"], default="colour")
a = p.parse_args()
torch.set_num_threads(1)
arms = dict(x.split("=", 1) for x in a.arms)
st = checkpoint_settings(next(iter(arms.values())))
cfg = data.SyntheticConfig(min_objects=2, max_objects=2)
rows, i = [], 0
while len(rows) < a.n:
    rng = np.random.default_rng((a.seed, i))
    i += 1
    scene = data.make_scene(rng, cfg)
    t = int(rng.integers(2))
    target, other = scene.objects[t], scene.objects[1 - t]
    if a.words == "colour" and target.colour != other.colour:
        exprs = [f"the {o.colour} shape" for o in (target, other)]
    elif a.words == "shape" and target.name != other.name:
        exprs = [f"the {o.name}" for o in (target, other)]
    elif a.words == "position" and abs(target.centre[0] - other.centre[0]) >= 20:
        left = target.centre[0] < other.centre[0]
        exprs = ["the leftmost shape", "the rightmost shape"][::1 if left else -1]
    else:
        continue
    answer = data.mask_to_answer(target.mask, st["epsilon"], decimals=st["decimals"])
    template = data.PROMPTS["polygon"][0]
    rows.append([{"image": scene.image, "prompt": template.format(expr=e), "answer": answer} for e in exprs])


def loglik(model, processor, examples):
    batch = collate_sft(examples, processor)
    labels = batch.pop("labels")
    with torch.no_grad():
        logits = model(**batch).logits[:, :-1]
    lp = logits.float().log_softmax(-1).gather(-1, labels[:, 1:].clamp(min=0)[..., None])[..., 0]
    return (lp * (labels[:, 1:] != -100)).sum(1).numpy()


for name, path in arms.items():
    model, processor = load_model(path, dtype=torch.float32)
    model.eval()
    gaps = []
    for start in range(0, len(rows), 32):
        chunk = rows[start:start + 32]
        right = loglik(model, processor, [r[0] for r in chunk])
        wrong = loglik(model, processor, [r[1] for r in chunk])
        gaps.extend(right - wrong)
    gaps = np.array(gaps)
    print(f"{name} ({a.words}): prefers the right word {np.mean(gaps > 0):.2f} of {len(gaps)} scenes; "
          f"mean log-likelihood gap {gaps.mean():+.2f} nats (median {np.median(gaps):+.2f})", flush=True)
