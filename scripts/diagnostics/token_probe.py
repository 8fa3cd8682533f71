"""Do the image tokens the language model reads carry each object's colour and shape? A linear probe per
attribute, trained on the merged image tokens of 600 scenes, tested on 300 others (LOG session 20).

Each 28-px token (16 at 112 px) is labelled with the object covering most of it, if that object covers at
least ``--min-share`` of the token; background-dominated tokens are left out. ``--layer k`` probes the language
model's hidden state at the image positions after layer k instead of the vision tower's output (k = 0: the
input embeddings the LM gets). A raw-pixel probe (each token's mean RGB) is the reference for colour.
Run: OMP_NUM_THREADS=1 python scripts/diagnostics/token_probe.py data/checkpoints/lite-sft [--layer k]"""
import argparse

import numpy as np
import torch

from simpleseg_lite import data
from simpleseg_lite.model import chat_text, load_model

p = argparse.ArgumentParser()
p.add_argument("model")
p.add_argument("--layer", type=int, default=None)
p.add_argument("--min-share", type=float, default=0.3)
a = p.parse_args()
torch.set_num_threads(1)
torch.manual_seed(0)
model, processor = load_model(a.model, dtype=torch.float32)
model.eval()
cfg = data.SyntheticConfig(image_size=model.config.image_size if hasattr(model.config, "image_size") else 112)
colours, shapes = list(data.COLOURS), list(cfg.shapes)


def features(seed, n):
    feats, raw, col, shp = [], [], [], []
    for start in range(0, n, 50):
        scenes = [data.make_scene(np.random.default_rng((seed, start + i)), cfg) for i in range(min(50, n - start))]
        with torch.no_grad():
            if a.layer is None:
                enc = processor.image_processor(images=[s.image for s in scenes], return_tensors="pt")
                tok = torch.stack(model.model.get_image_features(enc["pixel_values"],
                                                                 enc["image_grid_thw"]).pooler_output)
            else:
                texts = [chat_text(processor, "Where is the shape? Answer with a polygon.")] * len(scenes)
                enc = processor(images=[s.image for s in scenes], text=texts, return_tensors="pt", padding=True)
                out = model(**enc, output_hidden_states=True)
                h = out.hidden_states[a.layer]
                is_img = enc["input_ids"] == model.config.image_token_id
                tok = torch.stack([h[i][is_img[i]] for i in range(len(scenes))])
        g = int(round(tok.shape[1] ** 0.5))
        cell = cfg.image_size // g
        for s, t in zip(scenes, tok):
            for k in range(g * g):
                r, c = divmod(k, g)
                box = (slice(r * cell, (r + 1) * cell), slice(c * cell, (c + 1) * cell))
                cover = [o.mask[box].mean() for o in s.objects]
                j = int(np.argmax(cover))
                if cover[j] < a.min_share:
                    continue
                feats.append(t[k].numpy())
                raw.append(s.image[box].reshape(-1, 3).mean(0) / 255.0)
                col.append(colours.index(s.objects[j].colour))
                shp.append(shapes.index(s.objects[j].name))
    return np.array(feats), np.array(raw), np.array(col), np.array(shp)


def probe(xtr, ytr, xte, yte, classes, steps=500):
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = torch.tensor((xtr - mu) / sd, dtype=torch.float32), torch.tensor((xte - mu) / sd, dtype=torch.float32)
    lin = torch.nn.Linear(xtr.shape[1], classes)
    opt = torch.optim.Adam(lin.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(lin(xtr), torch.tensor(ytr)).backward()
        opt.step()
    return float((lin(xte).argmax(1).numpy() == yte).mean())


tr, te = features(31, 600), features(32, 300)
where = "vision tower output" if a.layer is None else f"LM hidden state after layer {a.layer}"
print(f"{a.model} ({where}): {len(tr[0])} / {len(te[0])} object tokens")
for name, y, k in (("colour", 2, len(colours)), ("shape", 3, len(shapes))):
    chance = np.bincount(te[y], minlength=k).max() / len(te[y])
    print(f"  {name}: probe on tokens {probe(tr[0], tr[y], te[0], te[y], k):.3f}, on mean RGB "
          f"{probe(tr[1], tr[y], te[1], te[y], k):.3f} (majority class {chance:.3f})")
