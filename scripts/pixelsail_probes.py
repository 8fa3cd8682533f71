"""Where does Pixel-SAIL-lite lose *which object*? Linear probes on one checkpoint (LOG, "Session 8").

Scenes of 2–3 objects, the prompt "Please segment the {colour} shape." for a colour exactly one object has
(384 prompts, seed 4242). A logistic-regression probe (fitted on the first half, scored on the second) reads
the asked colour from the [SEG] state and from seg_mlp's output, and each object's colour from its pooled
last-layer vision states and from the head's pooled pixel features.

    python scripts/pixelsail_probes.py data/checkpoints/lite-pixelsail
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F

from simpleseg_lite import data
from simpleseg_lite import pixelsail as ps


def probe(x: np.ndarray, y: np.ndarray, classes: int, steps: int = 300) -> float:
    """Held-out accuracy of a linear probe (fit on the first half, score on the second)."""
    n = len(x) // 2
    xt = torch.tensor(x, dtype=torch.float32)
    xt = (xt - xt[:n].mean(0)) / (xt[:n].std(0) + 1e-6)
    yt = torch.tensor(y)
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        (F.cross_entropy(xt[:n] @ w + b, yt[:n]) + 1e-3 * w.pow(2).sum()).backward()
        opt.step()
    return float(((xt[n:] @ w + b).argmax(1) == yt[n:]).float().mean())


def main(path: str, n: int = 384, seed: int = 4242) -> dict:
    torch.set_num_threads(2)
    model, tok = ps.load(path)
    model.eval()
    cfg = data.SyntheticConfig(min_objects=2, max_objects=3)
    colours = list(data.COLOURS)
    exs, i = [], 0
    while len(exs) < n:
        rng = np.random.default_rng((seed, i))
        i += 1
        scene, _, _ = data._pick(rng, cfg)
        c = colours[rng.integers(len(colours))]
        target = [o for o in scene.objects if o.colour == c]
        if len(target) == 1:
            exs.append((ps.PixelSample(scene.image, f"Please segment the {c} shape.", ps.SEG_ANSWER, "mask",
                                       target[0].mask, None, len(scene.objects)), c, scene))
    seg, seg_out, asked, vis, pix, obj = [], [], [], [], [], []
    g = model.config.grid
    for k in range(0, n, 32):
        chunk = exs[k : k + 32]
        b = ps.collate([e for e, _, _ in chunk], tok, model.config)
        with torch.no_grad():
            h = model.hidden(b["pixel_values"], b["input_ids"], b["attention_mask"], b["prompt_regions"])
            at = h[torch.arange(len(h)), (b["input_ids"] == model.config.seg_token_id).float().argmax(1)]
            seg.append(at.numpy())
            seg_out.append(model.seg_mlp(at).numpy())
            v = h[b["input_ids"] == model.config.image_token_id].reshape(len(h), g, g, -1).permute(0, 3, 1, 2)
            f = model.mask_features(h, b["input_ids"])
        asked += [colours.index(c) for _, c, _ in chunk]
        for j, (_, _, scene) in enumerate(chunk):
            for o in scene.objects:
                m = torch.from_numpy(o.mask).float()[None, None]
                for maps, out in ((v, vis), (f, pix)):
                    w = F.interpolate(m, size=maps.shape[-2:], mode="area")[0, 0]
                    out.append(((maps[j] * w).sum((1, 2)) / w.sum().clamp(min=1e-6)).numpy())
                obj.append(colours.index(o.colour))
    k = len(colours)
    result = {"chance (asked colour)": float(np.bincount(asked).max() / len(asked)),
              "asked colour from h_[SEG]": probe(np.concatenate(seg), np.array(asked), k),
              "asked colour from seg_mlp(h_[SEG])": probe(np.concatenate(seg_out), np.array(asked), k),
              "object colour from last-layer vision states": probe(np.array(vis), np.array(obj), k),
              "object colour from the head's pixel features": probe(np.array(pix), np.array(obj), k)}
    for name, value in result.items():
        print(f"{name:48s} {value:.2f}")
    return result


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/checkpoints/lite-pixelsail")
