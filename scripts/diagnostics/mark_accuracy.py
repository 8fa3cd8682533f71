"""Do the language model's image states single out the referred object? (issue 14, LOG session 21)

For each checkpoint, the image states after layer L (``sft.MarkHead.image_states``) are scored per token, and a scene
counts as a hit when the best-scoring token is one the target covers more than any other object does. The scorer is
the checkpoint's own ``mark_head.pt`` (trained with ``train --mark-loss``) or, with ``--probe``, a fresh linear scorer
trained on frozen states of training scenes (seeds ≥ 10**7), which asks whether the states *hold* the choice at all.
Scenes: text→polygon samples of 2–3 objects (validation seed 999), and single objects for reference.
Run: OMP_NUM_THREADS=1 python scripts/diagnostics/mark_accuracy.py NAME=PATH [...] [--n 300] [--probe] [--layer L]"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_utils

from simpleseg_lite import data
from simpleseg_lite.evaluate import checkpoint_settings
from simpleseg_lite.model import collate_sft, load_model
from simpleseg_lite.sft import MarkHead, PointerHead, target_cells

p = argparse.ArgumentParser()
p.add_argument("arms", nargs="+", help="NAME=PATH")
p.add_argument("--n", type=int, default=300)
p.add_argument("--seed", type=int, default=999)
p.add_argument("--probe", action="store_true", help="train a fresh linear scorer on frozen states instead")
p.add_argument("--probe-n", type=int, default=1536)
p.add_argument("--layer", type=int, default=None, help="layer to read (default: the head's, or the middle one)")
p.add_argument("--read", action="store_true", help="instead: where each attention head of layer --layer (default: the "
               "read term's, or the one above the middle) looks while the true answer is teacher-forced")
a = p.parse_args()
torch.set_num_threads(1)


def samples(n, seed, min_objects, max_objects, st):
    """(row, target mask, every object's pixels) for n text→polygon samples."""
    cfg = data.SyntheticConfig(min_objects=min_objects, max_objects=max_objects)
    rows = []
    for s in data.make_samples(n, seed, cfg, {"polygon": 1.0}, st["epsilon"], decimals=st["decimals"], labels=True):
        target = mask_utils.decode({k: s.gt_rle[k] for k in ("size", "counts")})
        rows.append(({"image": s.load_image(), "prompt": s.prompt, "answer": s.answer}, target,
                     (s.metadata["shape_labels"] > 0).astype(np.uint8)))
    return rows


def states_and_cells(model, processor, rows, layer):
    """Image states after ``layer`` (n, T, D), the target's share of each token (n, T), and whether each token is
    one the target covers at least as much as all other objects together (n, T)."""
    states, cells, best = [], [], []
    for start in range(0, len(rows), 32):
        chunk = rows[start:start + 32]
        batch = collate_sft([r[0] for r in chunk], processor)
        batch.pop("labels")
        with torch.no_grad():
            hidden = model(**batch, output_hidden_states=True).hidden_states
        states.append(MarkHead(1, layer).image_states(hidden, batch["input_ids"], model.config.image_token_id))
        token_px = chunk[0][1].shape[-1] // round(states[-1].shape[1] ** 0.5)
        target = target_cells(torch.as_tensor(np.stack([r[1] for r in chunk])), token_px)
        objects = target_cells(torch.as_tensor(np.stack([r[2] for r in chunk])), token_px)
        cells.append(target)
        best.append((target > 0) & (target >= objects - target))
    return torch.cat(states), torch.cat(cells), torch.cat(best)


def read_hits(model, processor, rows, layer):
    """Two (n, heads) tables: whether each head's attention on the image tokens peaks on a token the target covers at
    least as much as all other objects together, (1) averaged over the positions that predict the answer (teacher-
    forced: once coordinates are written they give the target away) and (2) at the position that predicts the
    answer's first token alone, where only the sentence and the image can say which object is meant; and (n, heads)
    the share of each head's image attention that falls on those target tokens at that position."""
    hits, firsts, masses = [], [], []
    for start in range(0, len(rows), 32):
        chunk = rows[start:start + 32]
        batch = collate_sft([r[0] for r in chunk], processor)
        labels = batch.pop("labels")
        with torch.no_grad():
            attention = model(**batch, output_attentions=True).attentions[layer - 1]  # (n, heads, L, L)
        predicts = torch.zeros_like(labels, dtype=torch.bool)
        predicts[:, :-1] = labels[:, 1:] != -100
        image = batch["input_ids"] == model.config.image_token_id
        where = image.nonzero()[:, 1].view(len(image), -1)
        on_image = attention.gather(-1, where[:, None, None, :].expand(-1, attention.shape[1], attention.shape[2], -1))
        mean = (on_image * predicts[:, None, :, None]).sum(2)  # (n, heads, T)
        first = on_image[torch.arange(len(labels)), :, predicts.float().argmax(1)]  # (n, heads, T)
        token_px = chunk[0][1].shape[-1] // round(where.shape[1] ** 0.5)
        target = target_cells(torch.as_tensor(np.stack([r[1] for r in chunk])), token_px)
        objects = target_cells(torch.as_tensor(np.stack([r[2] for r in chunk])), token_px)
        best = (target > 0) & (target >= objects - target)  # (n, T)
        hits.append(best.gather(1, mean.argmax(-1)))
        firsts.append(best.gather(1, first.argmax(-1)))
        share = first / first.sum(-1, keepdim=True).clamp_min(1e-9)  # each head's image attention, renormalized
        masses.append((share * best[:, None].float()).sum(-1))
    return torch.cat(hits).float(), torch.cat(firsts).float(), torch.cat(masses)


for name, path in (x.split("=", 1) for x in a.arms):
    model, processor = load_model(path, dtype=torch.float32)
    model.eval()
    st = checkpoint_settings(path)
    if a.read:
        cfg = json.loads((Path(path) / "summary.json").read_text())["config"]
        layers = model.config.text_config.num_hidden_layers
        layer = a.layer or cfg.get("read_layer") or min(layers, layers // 2 + 1)
        model.set_attn_implementation({"text_config": "eager"})
        for label, lo, hi in (("2–3 objects", 2, 3), ("1 object", 1, 1)):
            hit, first, mass = read_hits(model, processor, samples(a.n, a.seed, lo, hi, st), layer)
            print(f"{name} [layer {layer}, answer's attention] {label}: peak on the target, by head: "
                  + " ".join(f"{h:.3f}" for h in hit.mean(0).tolist()) + " over the answer; "
                  + " ".join(f"{h:.3f}" for h in first.mean(0).tolist()) + " before its first token, where the share "
                  "of the image attention on those tokens is " + " ".join(f"{h:.2f}" for h in mass.mean(0).tolist())
                  + f" (n {len(hit)})", flush=True)
        continue
    saved = Path(path) / "mark_head.pt"
    if a.probe or not saved.is_file():
        layer = a.layer or model.config.text_config.num_hidden_layers // 2
        head = MarkHead(model.config.text_config.hidden_size, layer)
        train_rows = samples(a.probe_n, 10**7 + 21, 1, 3, st)
        xs, cs, _ = states_and_cells(model, processor, train_rows, layer)
        opt = torch.optim.Adam(head.parameters(), lr=1e-2)
        for step in range(300):
            idx = torch.randint(len(xs), (256,))
            loss = PointerHead.loss(head(xs[idx]), cs[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        how = f"probe (layer {layer}, {a.probe_n} training scenes)"
    else:
        cfg = json.loads((Path(path) / "summary.json").read_text())["config"]
        state = torch.load(saved)
        head = MarkHead(state["score.weight"].shape[1],
                        a.layer or cfg.get("mark_layer") or model.config.text_config.num_hidden_layers // 2)
        head.load_state_dict(state)
        how = f"its mark head (layer {head.layer})"
    for label, lo, hi in (("2–3 objects", 2, 3), ("1 object", 1, 1)):
        rows = samples(a.n, a.seed, lo, hi, st)
        xs, cs, best = states_and_cells(model, processor, rows, head.layer)
        with torch.no_grad():
            top = head(xs).argmax(1)
        hit = best[torch.arange(len(top)), top].float()
        print(f"{name} [{how}] {label}: top token on the target {hit.mean():.3f} of {len(hit)} "
              f"(± {1.96 * hit.std() / len(hit) ** 0.5:.3f})", flush=True)
