"""Diagnostic (LOG session 18, issue 14): do 1–3-object answers fail where the target shares an image token with
a distractor? Scores a checkpoint's text→polygon answers on N samples of a seed, and splits the multi-object ones
by whether some `px`-px token square of the image holds pixels of both the target and another object (28 px: the
lite model's merged tokens at 112 px; 14 px: what no 2×2 merge would give).
Run: OMP_NUM_THREADS=1 python scripts/diagnostics/clutter_tokens.py data/checkpoints/lite-sft 999 300"""
import sys

import numpy as np
import torch

from simpleseg_lite import data
from simpleseg_lite.evaluate import checkpoint_settings, evaluate, sample_scores
from simpleseg_lite.model import load_model


def scenes(n, seed, cfg):
    """The scenes behind ``data.make_samples(n, seed, cfg)`` (polygon task), drawn with the same generator calls."""
    for i in range(n):
        rng = np.random.default_rng((seed, i))
        rng.choice(1, p=[1.0])  # make_samples' task draw
        scene, t, _ = data._pick(rng, cfg, needs_expression=True)
        yield scene, t


def shares_token(scene, t, px):
    """True when a px-px token square holds pixels of the target and of another object."""
    def cells(mask):
        s = mask.shape[0] // px
        return mask.reshape(s, px, s, px).any((1, 3))
    mine = cells(scene.objects[t].mask)
    return any((mine & cells(o.mask)).any() for k, o in enumerate(scene.objects) if k != t)


def main(path, seed=999, n=300):
    torch.set_num_threads(1)
    cfg = data.SyntheticConfig()
    st = checkpoint_settings(path)
    samples = list(data.make_samples(n, seed, cfg, epsilon=st["epsilon"], decimals=st["decimals"]))
    model, processor = load_model(path, dtype=torch.float32)
    iou = np.asarray(sample_scores(evaluate(model, processor, samples, dependence=False)["rows"]))
    rows = [(len(s.objects), shares_token(s, t, 28), shares_token(s, t, 14)) for s, t in scenes(n, seed, cfg)]
    k, s28, s14 = (np.asarray(c) for c in zip(*rows))
    print(f"{path}, seed {seed}, n {n}")
    print("| objects | token px | shares a token | n | mean IoU | not shared | n | mean IoU |")
    print("|---|---|---|---|---|---|---|---|")
    for objs in (2, 3):
        for px, sh in ((28, s28), (14, s14)):
            a, b = (k == objs) & sh, (k == objs) & ~sh
            print(f"| {objs} | {px} | | {a.sum()} | {iou[a].mean():.3f} | | {b.sum()} | "
                  f"{iou[b].mean() if b.any() else float('nan'):.3f} |")
    print(f"single objects: n {(k == 1).sum()}, mean IoU {iou[k == 1].mean():.3f}")


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:]))
