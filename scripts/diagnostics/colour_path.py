"""Where along the vision path does the colour of an object go? (LOG session 20.) For one lite checkpoint:
  1. a linear colour probe per 14-px patch (≥ 50% one object) after the patch embedding and after every ViT block;
  2. the same per 28-px merged token (≥ 30% one object) at the merger's input (its RMSNorm, 4 patches), after its
     first linear layer and GELU, after the merger, and after ``PositionalImageTokens`` (what the LM reads);
  3. the share of the object tokens' variance (RMS-normalized, as the LM's first layer sees them) explained by the
     object's colour, its shape and the token's position.
Training scenes seeds 41 / 31 / 51, test scenes 42 / 32 (validation seeds, never used in training).
Run: OMP_NUM_THREADS=1 python scripts/diagnostics/colour_path.py data/checkpoints/lite-sft"""
import sys

import numpy as np
import torch

from simpleseg_lite import data
from simpleseg_lite.model import load_model

torch.set_num_threads(1)
torch.manual_seed(0)
model, proc = load_model(sys.argv[1], dtype=torch.float32)
model.eval()
cfg = data.SyntheticConfig()
colours, shapes = list(data.COLOURS), list(cfg.shapes)
visual, grabbed = model.model.visual, {}
hooks = {"patch_embed": visual.patch_embed, **{f"block {i}": b for i, b in enumerate(visual.blocks)},
         "merger input": visual.merger.ln_q, "merger fc1+GELU": visual.merger.mlp[1], "merger": visual.merger,
         "LM input": model.model.image_positions}
for name, module in hooks.items():
    module.register_forward_hook(lambda m, a, o, name=name: grabbed.__setitem__(name, o if torch.is_tensor(o) else o[0]))


def probe(xtr, ytr, xte, yte, k=len(colours)):
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    a, b = torch.tensor((xtr - mu) / sd, dtype=torch.float32), torch.tensor((xte - mu) / sd, dtype=torch.float32)
    lin = torch.nn.Linear(a.shape[1], k)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(400):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(lin(a), torch.tensor(ytr)).backward()
        opt.step()
    return round(float((lin(b).argmax(1).numpy() == yte).mean()), 3)


def run(seed, n):
    scenes = [data.make_scene(np.random.default_rng((seed, i)), cfg) for i in range(n)]
    with torch.no_grad():
        enc = proc.image_processor(images=[s.image for s in scenes], return_tensors="pt")
        model.model.get_image_features(enc["pixel_values"], enc["image_grid_thw"])
    return scenes


def owner(scene, box, share):
    cover = [o.mask[box].mean() for o in scene.objects]
    j = int(np.argmax(cover))
    return scene.objects[j] if cover[j] >= share else None


def patch_features(seed, n):  # processor order: 2×2 merge groups in raster order, raster order inside each group
    scenes = run(seed, n)
    order = [(gr * 2 + r, gc * 2 + c) for gr in range(4) for gc in range(4) for r in range(2) for c in range(2)]
    keep, y = [], []
    for k, s in enumerate(scenes):
        for j, (r, c) in enumerate(order):
            o = owner(s, (slice(r * 14, r * 14 + 14), slice(c * 14, c * 14 + 14)), 0.5)
            if o is not None:
                keep.append(k * 64 + j)
                y.append(colours.index(o.colour))
    names = ["patch_embed", *(f"block {i}" for i in range(len(visual.blocks)))]
    return {name: grabbed[name][keep].numpy() for name in names}, np.array(y)


def token_features(seed, n):
    scenes = run(seed, n)
    views = {"merger input": grabbed["merger input"].reshape(n, 16, -1),
             "merger fc1+GELU": grabbed["merger fc1+GELU"].reshape(n, 16, -1),
             "merger": grabbed["merger"].reshape(n, 16, -1), "LM input": grabbed["LM input"]}
    x, y = {k: [] for k in views}, []
    for k, s in enumerate(scenes):
        for t in range(16):
            r, c = divmod(t, 4)
            o = owner(s, (slice(r * 28, r * 28 + 28), slice(c * 28, c * 28 + 28)), 0.3)
            if o is not None:
                for name, v in views.items():
                    x[name].append(v[k, t].numpy())
                y.append((colours.index(o.colour), shapes.index(o.name), t))
    return {k: np.array(v) for k, v in x.items()}, np.array(y)


(ptr, pytr), (pte, pyte) = patch_features(41, 300), patch_features(42, 150)
print(f"{sys.argv[1]}: colour probe per 14-px patch ({len(pyte)} test patches):",
      {k: probe(ptr[k], pytr, pte[k], pyte) for k in ptr}, flush=True)
(ttr, tytr), (tte, tyte) = token_features(31, 600), token_features(32, 300)
print(f"{sys.argv[1]}: colour probe per 28-px token ({len(tyte)} test tokens):",
      {k: probe(ttr[k], tytr[:, 0], tte[k], tyte[:, 0]) for k in ttr}, flush=True)
(v, vy) = token_features(51, 400)
x = v["LM input"] / np.sqrt((v["LM input"] ** 2).mean(-1, keepdims=True))
x = x - x.mean(0)
total = (x ** 2).sum()
share = {name: round(float(sum(((x[vy[:, i] == u].mean(0)) ** 2).sum() * (vy[:, i] == u).sum()
                                for u in np.unique(vy[:, i])) / total), 3)
         for i, name in enumerate(("colour", "shape", "token position"))}
print(f"{sys.argv[1]}: share of the object tokens' variance between ({len(vy)} tokens):", share)
