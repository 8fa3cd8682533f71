"""Where does the blend between target and distractor enter? An oracle that hides the distractors' image tokens from
chosen rows of the language model's attention at test time (issue 14, LOG session 22).

On 2–3-object validation scenes (seed 999), the model answers text→polygon and text→point four ways:
  none   — as trained;
  answer — the positions that write the answer (and the one that predicts its first token) cannot attend to image
           tokens a distractor covers more than the target does;
  text   — the same for every text position after the image (the prompt too), image tokens untouched;
  all    — no position, image tokens included, can attend to those tokens (the LM never reads them; the vision tower
           still mixes them in).
  (the swap modes below mask no attention: the language model reads every token, swapped or not)
  swap   — the language model reads the tokens a distractor dominates as they are in the erased image below
           (background), the other tokens as they are: is a distractor's presence felt only through its own tokens?
  swap_rest — the opposite: distractor-dominated tokens as they are, every other token from the erased image: do the
           target's and background tokens carry the distractor with them (the vision tower mixes patches)?
  swap_target / swap_bg — swap_rest split in two: only the target's tokens (those it covers, no distractor
           dominating), or only the pure-background tokens, from the erased image (LOG session 23);
  swap_rest_pre — as swap_rest, but swapped at the merger's output, before the position fix's centring (which
           subtracts the mean of the image's 16 tokens), so the centring still sees the distractor;
  centre_erased — every token as it is, but centred on the erased image's mean: the centring channel alone;
  erase  — (for scale) the distractors painted over with the background in the image itself (dilated 1 px; the
           median background value), i.e. a one-object scene with the same target and sentence.
If `answer` already lands the outlines on the target, the answer's own soft read-out is what blends; if only `text` or
`all` does, the blend is already in the states the answer reads. The masking is an additive −inf bias in the text
model's eager attention (the model's weights are untouched); image-first prompts only.
Run: OMP_NUM_THREADS=1 python scripts/diagnostics/oracle_read.py CHECKPOINT [--n 400] [--modes none,answer,text,all,swap,swap_rest,erase]"""
import argparse
import json

import dataclasses

import cv2
import numpy as np
import torch
from pycocotools import mask as mask_utils

import simpleseg_lite.model as lite_model
import transformers.models.qwen2_5_vl.modeling_qwen2_5_vl as qwen
from simpleseg_lite import data
from simpleseg_lite.evaluate import checkpoint_settings, evaluate, sample_scores
from simpleseg_lite.parse import parse_point
from simpleseg_lite.sft import target_cells

p = argparse.ArgumentParser()
p.add_argument("checkpoint")
p.add_argument("--n", type=int, default=400, help="samples drawn (1–3 objects); the 2–3-object ones are scored")
p.add_argument("--seed", type=int, default=999)
p.add_argument("--modes", default="none,answer,text,all")
p.add_argument("--tasks", default="polygon,point")
p.add_argument("--json", default=None)
a = p.parse_args()
torch.set_num_threads(1)

STATE = {"mode": "none", "hidden": None, "ids": None, "prompt_len": None}
eager = qwen.eager_attention_forward


def masked_eager(module, query, key, value, attention_mask, *args, **kwargs):
    """The stock eager attention plus −inf on (row, column) pairs the oracle hides (text attention only)."""
    # only the three masking modes hide tokens (until session 23 every mode but none did, so the swap modes also hid
    # the distractor-dominated tokens from the language model: LOG session 23)
    if STATE["mode"] in ("answer", "text", "all") and isinstance(module, qwen.Qwen2_5_VLAttention) \
            and STATE["ids"] is not None:
        ids = STATE["ids"]
        n, length = ids.shape
        image = ids == image_token_id
        cols = torch.zeros(n, length, dtype=torch.bool)
        where = image.nonzero()
        order = torch.cumsum(image.long(), 1) - 1  # index of each image token within its image (row-major)
        cols[where[:, 0], where[:, 1]] = STATE["hidden"][where[:, 0], order[where[:, 0], where[:, 1]]]
        positions = torch.arange(length)
        after_image = positions[None] > torch.where(image, positions[None], -1).max(1, keepdim=True).values
        if STATE["mode"] == "answer":
            rows = (positions >= STATE["prompt_len"] - 1)[None].expand(n, -1)
        elif STATE["mode"] == "text":
            rows = after_image
        else:
            rows = torch.ones(n, length, dtype=torch.bool)
        block = rows[:, :, None] & cols[:, None, :]
        bias = torch.zeros(n, 1, length, length, dtype=query.dtype).masked_fill(block[:, None], float("-inf"))
        q_len, k_len = query.shape[-2], key.shape[-2]
        bias = bias[..., k_len - q_len:k_len, :k_len]
        attention_mask = bias if attention_mask is None else attention_mask + bias
    return eager(module, query, key, value, attention_mask, *args, **kwargs)


qwen.eager_attention_forward = masked_eager
generate = lite_model.generate
BATCH = {"k": 0}


def oracle_generate(model, processor, images, prompts, **kwargs):
    """``model.generate`` with this batch's hidden tokens in STATE (evaluate answers in order, 32 at a time)."""
    k = BATCH["k"]
    STATE["hidden"], STATE["target_tok"] = HIDDEN[k:k + len(images)], TARGET_TOK[k:k + len(images)]
    if STATE["mode"] in ("swap", "swap_rest", "swap_target", "swap_bg", "swap_rest_pre", "centre_erased"):
        STATE["erased_pv"] = processor.image_processor(images=[s.load_image() for s in ERASED[k:k + len(images)]],
                                                       return_tensors="pt")["pixel_values"]
    BATCH["k"] += len(images)
    handle = model.register_forward_pre_hook(capture, with_kwargs=True)
    STATE["prompt_len"] = None
    try:
        return generate(model, processor, images, prompts, **kwargs)
    finally:
        handle.remove()


def capture(module, args, kwargs):
    ids = kwargs.get("input_ids")
    if ids is not None:
        STATE["ids"] = ids
        if STATE["prompt_len"] is None:
            STATE["prompt_len"] = ids.shape[1]


lite_model.generate = oracle_generate


def swapped_features(pixel_values, image_grid_thw=None, **kwargs):
    """The image tokens the language model reads, with the oracle's tokens taken from the erased images."""
    out = image_features(pixel_values, image_grid_thw, **kwargs)
    if STATE["mode"] in ("swap_rest_pre", "centre_erased"):
        n = len(out.pooler_output)
        raw = model.model.visual(pixel_values, grid_thw=image_grid_thw).pooler_output.view(n, -1, out.pooler_output[0].shape[-1])
        clean = model.model.visual(STATE["erased_pv"], grid_thw=image_grid_thw).pooler_output.view(raw.shape)
        fix = model.model.image_positions
        if STATE["mode"] == "swap_rest_pre":
            out.pooler_output = tuple(fix(torch.where(~STATE["hidden"][:, :, None], clean, raw)).unbind(0))
        else:
            centred = raw - clean.mean(dim=1, keepdim=True)
            out.pooler_output = tuple((torch.nn.functional.layer_norm(centred, centred.shape[-1:]) + fix.weight).unbind(0))
    if STATE["mode"] in ("swap", "swap_rest", "swap_target", "swap_bg"):
        other = image_features(STATE["erased_pv"], image_grid_thw, **kwargs).pooler_output
        hidden, target_tok = STATE["hidden"], STATE["target_tok"]
        take = {"swap": hidden, "swap_rest": ~hidden, "swap_target": target_tok,
                "swap_bg": ~hidden & ~target_tok}[STATE["mode"]]
        out.pooler_output = tuple(torch.where(take[i][:, None], e, o)
                                  for i, (o, e) in enumerate(zip(out.pooler_output, other)))
    return out


def erased(samples, targets, objects):
    """The same samples with every distractor painted over by the background (its median), 1 px dilated."""
    out = []
    for s, target, every in zip(samples, targets, objects):
        image = np.asarray(s.load_image()).copy()
        kernel = np.ones((3, 3), np.uint8)
        others = cv2.dilate(((every > 0) & (target == 0)).astype(np.uint8), kernel) > 0
        others &= cv2.dilate(target.astype(np.uint8), kernel) == 0
        background = cv2.dilate((every > 0).astype(np.uint8), kernel, iterations=2) == 0
        image[others] = np.median(image[background], axis=0).astype(np.uint8)
        out.append(dataclasses.replace(s, image=image))
    return out
model, processor = lite_model.load_model(a.checkpoint, dtype=torch.float32)
model.set_attn_implementation({"text_config": "eager"})
model.config.use_cache = False
model.generation_config.use_cache = False
image_token_id = model.config.image_token_id
image_features = model.model.get_image_features
model.model.get_image_features = swapped_features
st = checkpoint_settings(a.checkpoint)
side = model.config.image_position_tokens ** 0.5 if getattr(model.config, "image_position_tokens", None) else 4
results = {}
for task in a.tasks.split(","):
    scene = data.SyntheticConfig(image_size=st["image_size"])
    samples = [s for s in data.make_samples(a.n, a.seed, scene, {task: 1.0}, st["epsilon"], decimals=st["decimals"],
                                            labels=True) if len(s.metadata["objects"]) > 1]
    targets = np.stack([mask_utils.decode({k: s.gt_rle[k] for k in ("size", "counts")}) for s in samples])
    objects = np.stack([(s.metadata["shape_labels"] > 0).astype(np.uint8) for s in samples])
    token_px = targets.shape[-1] // round(side)
    target = target_cells(torch.as_tensor(targets), token_px)
    others = target_cells(torch.as_tensor(objects), token_px) - target
    HIDDEN = others > target  # (n, T): tokens a distractor covers more than the target
    TARGET_TOK = (target > 0) & ~HIDDEN  # tokens the target covers, no distractor dominating
    ERASED = erased(samples, targets, objects)
    for mode in a.modes.split(","):
        STATE["mode"], BATCH["k"] = ("none" if mode == "erase" else mode), 0
        r = evaluate(model, processor, ERASED if mode == "erase" else samples, dependence=False)
        if task == "point":
            hits = []
            for s, row, gt in zip(samples, r["rows"], targets):
                pt = parse_point(row["answer"])
                size = gt.shape[0]
                hits.append(pt is not None and gt[min(size - 1, int(pt[1] * size)), min(size - 1, int(pt[0] * size))] > 0)
            value = {"inside_target": float(np.mean(hits)),
                     "median_err_px": float(np.median([row["point_err_px"] for row in r["rows"]]))}
        else:
            value = {"mean_iou": float(sample_scores(r["rows"]).mean()), "gIoU": r["gIoU"]}
        results[f"{task}/{mode}"] = value
        print(f"{task:8s} {mode:7s} n {len(samples)}: " + ", ".join(f"{k} {v:.3f}" for k, v in value.items()),
              flush=True)
if a.json:
    json.dump(results, open(a.json, "w"), indent=1)
