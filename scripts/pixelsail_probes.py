"""Where does Pixel-SAIL-lite lose *which object*? Linear probes on one checkpoint (LOG, "Session 8").

Scenes of 2–3 objects, the prompt "Please segment the {colour} shape." for a colour exactly one object has
(384 prompts, seed 4242). A logistic-regression probe (fitted on the first half, scored on the second) reads
the asked colour from the [SEG] state and from seg_mlp's output, and each object's colour from its pooled
last-layer vision states and from the head's pooled pixel features.

Session 9's probes, on the same kind of scenes (LOG "Session 9"; ``--position`` and ``--choice`` run together):

* ``--position``: does a vision state know where it is? Ridge regression of each token's row and column from its
  last-layer state (fit on the first half of the scenes, R² on the second).
* ``--choice``: can the target be read off the frozen states? A rank-16 bilinear map ⟨A·h_[SEG], B·h_v⟩ plus an
  objectness term, fitted (BCE over object tokens only) on the first half; on the second, the share of scenes whose
  top-scoring object token is the target's. On the colour prompts above and on the stream's own expressions.
* ``--named CHECKPOINT``: for a model trained with named answers ("It is the red star [SEG]."), on 64 scenes of
  2–3 objects (seed 2000): how often the name is the target's, and, when the name is an object in the scene, the
  share of the mask on that named object.

    python scripts/pixelsail_probes.py data/checkpoints/lite-pixelsail
    python scripts/pixelsail_probes.py data/checkpoints/lite-pixelsail --position --choice
    python scripts/pixelsail_probes.py runs/pixelsail-abl/named_match_words --named
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


def states(model, tok, exs: list) -> tuple[torch.Tensor, torch.Tensor]:
    """(h_[SEG] (n, C), last-layer vision states (n, g², C)) of ``PixelSample``s, teacher-forced."""
    seg, vis = [], []
    for k in range(0, len(exs), 32):
        b = ps.collate(exs[k : k + 32], tok, model.config)
        with torch.no_grad():
            h = model.hidden(b["pixel_values"], b["input_ids"], b["attention_mask"], b["prompt_regions"])
        seg.append(h[torch.arange(len(h)), (b["input_ids"] == model.config.seg_token_id).float().argmax(1)])
        vis.append(h[b["input_ids"] == model.config.image_token_id].reshape(len(h), model.config.grid**2, -1))
    return torch.cat(seg).float(), torch.cat(vis).float()


def position_r2(vis: torch.Tensor, grid: int) -> dict:
    """Held-out R² of a ridge regression from each vision state to its token's row and column."""
    n = len(vis)
    x = torch.cat([vis.reshape(-1, vis.shape[-1]), torch.ones(n * grid**2, 1)], 1)
    idx = torch.arange(grid**2).repeat(n)
    half = (n // 2) * grid**2
    out = {}
    for name, y in (("row", (idx // grid).float()), ("column", (idx % grid).float())):
        w = torch.linalg.solve(x[:half].T @ x[:half] + 1e-2 * torch.eye(x.shape[1]), x[:half].T @ y[:half])
        out[name] = float(1 - ((x[half:] @ w - y[half:]) ** 2).mean() / y[half:].var())
    return out


def choice(seg: torch.Tensor, vis: torch.Tensor, scenes: list, grid: int, rank: int = 16, steps: int = 1500) -> dict:
    """Rank-``rank`` bilinear read-out of the target among the object tokens (see the module docstring).
    ``scenes``: (scene, target index) per row. A token is an object's if that object covers > 30% of it."""
    torch.manual_seed(0)
    n, cells = len(seg), 112 // grid
    y, w = torch.zeros(n, grid**2), torch.zeros(n, grid**2)
    for i, (scene, t) in enumerate(scenes):
        cov = torch.stack([F.avg_pool2d(torch.tensor(o.mask, dtype=torch.float32)[None, None], cells).flatten()
                           for o in scene.objects])
        big = cov.max(0).values > 0.3
        y[i], w[i] = ((cov.argmax(0) == t) & big).float(), big.float()
    s = (seg - seg.mean(0)) / seg.std(0)
    v = (vis - vis.mean((0, 1))) / vis.std((0, 1))
    c, half = s.shape[1], n // 2
    a = (torch.randn(c, rank) * 0.05).requires_grad_()
    b = (torch.randn(c, rank) * 0.05).requires_grad_()
    u, bias = torch.zeros(c, requires_grad=True), torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([a, b, u, bias], lr=3e-3)

    def logits(rows):
        return torch.einsum("bk,bnk->bn", s[rows] @ a, v[rows] @ b) / c**0.5 + v[rows] @ u + bias

    fit = slice(0, half)
    for _ in range(steps):
        opt.zero_grad()
        loss = (F.binary_cross_entropy_with_logits(logits(fit), y[fit], reduction="none") * w[fit]).sum() / w[fit].sum()
        (loss + 1e-4 * (a.pow(2).sum() + b.pow(2).sum())).backward()
        opt.step()
    test = slice(half, n)
    with torch.no_grad():
        top = logits(test).masked_fill(w[test] == 0, -1e9).argmax(1)
    right = y[test][torch.arange(n - half), top]
    chance = float(np.mean([float(y[half + i][w[half + i] > 0].mean()) for i in range(n - half)]))
    return {"target chosen": float(right.mean()), "chance": chance}


def named(path: str, n: int = 64, seed: int = 2000) -> dict:
    """How a named-answers model's name and mask relate (see the module docstring)."""
    model, tok = ps.load(path)
    cfg = data.SyntheticConfig(min_objects=2, max_objects=3)
    items = [data._pick(np.random.default_rng((seed, i)), cfg) for i in range(n)]
    right, on_named = [], []
    for k in range(0, n, 32):
        chunk = items[k : k + 32]
        out = ps.predict(model, tok, [sc.image for sc, _, _ in chunk],
                         [ps.TASK_PROMPTS["mask"].format(expr=r[0]) for _, _, r in chunk])
        for (text, mask), (scene, t, _) in zip(out, chunk):
            name = (text.split() + ["", "", "", "", ""])[3:5]
            right.append(name == [scene.objects[t].colour, scene.objects[t].name])
            hit = [j for j, o in enumerate(scene.objects) if [o.colour, o.name] == name]
            if hit and mask is not None:
                on = np.array([(mask.astype(bool) & o.mask.astype(bool)).sum() for o in scene.objects], float)
                on_named.append(on[hit[0]] / max(on.sum(), 1.0))
    return {"names the target": float(np.mean(right)), "names an object in the scene": len(on_named) / n,
            "mask share on the named object": float(np.mean(on_named)) if on_named else float("nan")}


def extra(path: str, n: int = 384, seed: int = 4242) -> dict:
    """``--position`` and ``--choice`` on the colour prompts of ``main`` and on the stream's expressions."""
    model, tok = ps.load(path)
    model.eval()
    cfg = data.SyntheticConfig(min_objects=2, max_objects=3)
    colour, stream, i = [], [], 0
    while len(colour) < n:
        rng = np.random.default_rng((seed, i))
        i += 1
        scene, t, ref = data._pick(rng, cfg)
        stream.append((ps.PixelSample(scene.image, ps.TASK_PROMPTS["mask"].format(expr=ref[0]), ps.SEG_ANSWER, "mask",
                                      scene.objects[t].mask, None, len(scene.objects)), (scene, t)))
        c = list(data.COLOURS)[rng.integers(len(data.COLOURS))]
        hits = [j for j, o in enumerate(scene.objects) if o.colour == c]
        if len(hits) == 1:
            colour.append((ps.PixelSample(scene.image, f"Please segment the {c} shape.", ps.SEG_ANSWER, "mask",
                                          scene.objects[hits[0]].mask, None, len(scene.objects)), (scene, hits[0])))
    g, result = model.config.grid, {}
    for label, rows in (("colour prompts", colour), ("stream expressions", stream[:n])):
        seg, vis = states(model, tok, [e for e, _ in rows])
        if label == "colour prompts":
            result["position R² (row, column)"] = position_r2(vis, g)
        result[f"choice on {label}"] = choice(seg, vis, [sc for _, sc in rows], g)
    return result


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    path = args[0] if args else "data/checkpoints/lite-pixelsail"
    torch.set_num_threads(2)
    if "--named" in sys.argv:
        print(named(path))
    elif "--position" in sys.argv or "--choice" in sys.argv:
        for key, value in extra(path).items():
            print(f"{key:32s} {value}")
    else:
        main(path)
