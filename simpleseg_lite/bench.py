"""Speed benchmarks that print numbers (``simpleseg-lite bench geometry``). Targets live here, not in tests.

The geometry benchmark measures, on **one thread**, the three calls that sit in every hot loop:

* ``mask2poly``: binary mask → answer text (``serialize.mask_to_answer``, ε = 0.005 of the perimeter);
* ``parse``: answer text → polygons (``parse.parse_polygons``);
* ``reward``: answer text + precomputed ground-truth RLE → IoU (``metrics.answer_iou``, the function
  the IoU reward calls: parse + rasterize in RLE space + intersection/union).

Masks: 640×480 "wobbly blobs" — a radius r(θ) = R·(1 + Σ_k a_k sin(kθ + φ_k)) with harmonics k = 2..15,
R drawn in [60, 140] px — chosen so the default ε gives ~60 vertices per polygon (the printed
``vertices_mean`` says what was measured). Deterministic by seed.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from .metrics import answer_iou, mask_to_rle
from .parse import parse_polygons
from .serialize import mask_to_answer


def wobbly_blob(rng: np.random.Generator, height: int = 480, width: int = 640) -> np.ndarray:
    """A random smooth star-like object mask (uint8 0/1), fully inside the image."""
    radius = rng.uniform(60, 140)
    theta = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 16):
        r += rng.uniform(0.01, 0.06) * np.sin(k * theta + rng.uniform(0, 2 * np.pi))
    cx = rng.uniform(radius * 1.5, width - radius * 1.5)
    cy = rng.uniform(radius * 1.5, height - radius * 1.5)
    pts = np.stack([cx + radius * r * np.cos(theta), cy + radius * r * np.sin(theta)], axis=1)
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask


def _rate(fn, items, min_seconds: float) -> float:
    """Calls per second of ``fn`` over ``items``, repeated until ``min_seconds`` have passed."""
    n, start = 0, time.perf_counter()
    while True:
        for it in items:
            fn(it)
        n += len(items)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return n / elapsed


def bench_geometry(n_masks: int = 64, seed: int = 0, min_seconds: float = 1.0, epsilon: float = 0.005) -> dict:
    """Run the geometry benchmark on one thread and return its numbers."""
    cv2.setNumThreads(1)
    rng = np.random.default_rng(seed)
    masks = [wobbly_blob(rng) for _ in range(n_masks)]
    answers = [mask_to_answer(m, epsilon=epsilon) for m in masks]
    gts = [mask_to_rle(m) for m in masks]
    parsed = [parse_polygons(a) for a in answers]
    pairs = list(zip(answers, gts))
    return {
        "mask2poly_per_s": _rate(lambda m: mask_to_answer(m, epsilon=epsilon), masks, min_seconds),
        "parse_per_s": _rate(parse_polygons, answers, min_seconds),
        "reward_per_s": _rate(lambda p: answer_iou(*p), pairs, min_seconds),
        "vertices_mean": float(np.mean([sum(len(p) for p in r.polygons) for r in parsed])),
        "chars_mean": float(np.mean([len(a) for a in answers])),
        "iou_mean": float(np.mean([answer_iou(a, g) for a, g in pairs])),
        "masks": f"{n_masks} wobbly blobs, 640x480, seed {seed}, epsilon {epsilon} (perimeter)",
        "threads": 1,
    }


# --- answer latency of the two systems (notebook 08) ---------------------------------------------------
def answer_latency(model, processor, samples, repeats: int = 3) -> dict:
    """Seconds per answer, one sample at a time, split into **prefill** (the prompt and image up to the first
    new token), **decode** (the rest of the answer) and **mask head** (Pixel-SAIL-lite only: decoding the
    mask at ``[SEG]``), plus the tokens generated per answer. Median over ``repeats`` passes of ``samples``;
    the threads are whatever ``torch`` is set to. Works for the polygon models (``model.generate``) and for
    Pixel-SAIL-lite (``pixelsail.predict``)."""
    import torch

    from .pixelsail import PixelSailLite, pixel_prompt, predict

    def timed(fn):
        start = time.perf_counter()
        out = fn()
        return time.perf_counter() - start, out

    rows = []
    for _ in range(repeats):
        for s in samples:
            image = s.load_image()
            if isinstance(model, PixelSailLite):
                from .pixelsail import _left_pad, _prefix_ids, patch_coverage, pixel_values

                prompt, region = pixel_prompt(s)
                tok, cfg = processor, model.config
                pv = pixel_values([image], cfg.image_size)
                reg = torch.from_numpy(patch_coverage(region, cfg.grid))[None, None]
                ids, att = _left_pad([_prefix_ids(tok, cfg, prompt)], tok.pad_token_id)
                with torch.no_grad():  # prefill: one forward over image + prompt, and the first token's logits
                    first, _ = timed(lambda: model.lm_head(model.hidden(pv, ids, att, reg)[:, -1]))
                total, out = timed(lambda: predict(model, tok, [image], [prompt], [region]))
                answer = tok(out[0][0], add_special_tokens=False)["input_ids"]
                ids, att = _left_pad([_prefix_ids(tok, cfg, prompt) + answer], tok.pad_token_id)
                with torch.no_grad():  # the mask head alone, on the hidden states of the full answer
                    hidden = model.hidden(pv, ids, att, reg)
                    head, _ = timed(lambda: model.mask_logits(hidden, ids, torch.tensor([ids.shape[1] - 1])))
                rows.append((first, max(total - first - head, 0.0), head, len(answer) + 1))
            else:
                from .model import generate

                first, _ = timed(lambda: generate(model, processor, [image], [s.prompt], max_new_tokens=1))
                total, out = timed(lambda: generate(model, processor, [image], [s.prompt], max_new_tokens=256))
                tokens = len(processor.tokenizer(out[0], add_special_tokens=False)["input_ids"]) + 1
                rows.append((first, max(total - first, 0.0), 0.0, tokens))
    a = np.asarray(rows)
    return {"prefill_s": float(np.median(a[:, 0])), "decode_s": float(np.median(a[:, 1])),
            "mask_head_s": float(np.median(a[:, 2])), "total_s": float(np.median(a[:, :3].sum(1))),
            "tokens_per_answer": float(np.mean(a[:, 3])), "n": len(samples), "repeats": repeats,
            "threads": torch.get_num_threads()}


# --- the RL step's forward and backward, with and without sharing a group's image -------------------------
def bench_group_step(init: str, prompts: int = 16, generations: int = 8, seed: int = 0, repeats: int = 2) -> dict:
    """Seconds for one forward + backward over a GRPO/GSPO-shaped batch — ``prompts`` synthetic scenes, each
    repeated ``generations`` times with its ground-truth answer as the completion — with the vision tower
    encoding each distinct image once (``model.share_image_encoding``, which ``load_model`` sets up for the lite
    and the stock Qwen2.5-VL classes) and once per row (the stock behaviour). Also the largest difference of the
    loss and of any gradient between the two (floating-point summation order only). Median of ``repeats``;
    threads: whatever ``torch`` is set to."""
    import torch

    from .evaluate import checkpoint_settings, eval_samples
    from .model import collate_sft, load_model, share_image_encoding

    st = checkpoint_settings(init)
    model, processor = load_model(init)  # shares repeated images, lite or stock (`model.share_image_encoding`)
    if not share_image_encoding(model):  # else the flag below would switch nothing and both timings be one path
        raise ValueError(f"{init} has no Qwen2.5-VL inside: group-step measures its image sharing (pass a "
                         "simpleseg-lite or Qwen2.5-VL checkpoint, e.g. data/checkpoints/lite-sft)")
    samples = eval_samples("synthetic", prompts, seed, epsilon=st["epsilon"], decimals=st["decimals"],
                           image_size=st["image_size"])
    rows = [{"image": s.load_image(), "prompt": s.prompt, "answer": s.answer} for s in samples
            for _ in range(generations)]
    batch = collate_sft(rows, processor)

    def step(share: bool):
        model.model.share_repeated_images = share
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        loss = model(**batch).loss
        loss.backward()
        seconds = time.perf_counter() - start
        return seconds, float(loss.detach()), {n: p.grad.detach().clone() for n, p in model.named_parameters()
                                      if p.grad is not None}

    times = {True: [], False: []}
    out = {}
    for _ in range(repeats):
        for share in (True, False):
            seconds, loss, grads = step(share)
            times[share].append(seconds)
            out[share] = (loss, grads)
    model.model.share_repeated_images = True
    g_shared, g_each = out[True][1], out[False][1]
    return {
        "shared_s": float(np.median(times[True])), "each_row_s": float(np.median(times[False])),
        "speedup": float(np.median(times[False]) / np.median(times[True])),
        "loss_diff": abs(out[True][0] - out[False][0]),
        "grad_max_abs_diff": max(float((g_shared[n] - g_each[n]).abs().max()) for n in g_each),
        "grad_max_abs": max(float(g.abs().max()) for g in g_each.values()),
        "rows": len(rows), "images": prompts, "repeats": repeats, "threads": torch.get_num_threads(),
        "init": str(init),
    }
