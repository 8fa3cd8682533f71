"""Diagnostic (session 19): why does the 100-step colour stage of the Pixel-SAIL-lite curriculum barely learn to choose?

Session 10's plain loop taught a *fresh* model to pick an object by colour in ~100 steps (share on target 0.995); the
same stage run by `train_pixelsail` from the vision stage (`runs/psv18m`) reaches 0.45–0.49 (chance 0.445). This loop
runs that stage's exact stream (`PixelStream` with the curriculum's first-stage fields) from a given folder and changes
one thing at a time: the dense shape loss on or off, gradient clipping, learning rate.

    python scripts/diagnostics/colour_stage.py runs/psv18m --vision-aux 1 --clip 1 --lr 1e-3 --steps 100

Prints the teacher-forced share on target of 'Please segment the {colour} shape.' (64 held-out scenes, as
colour_probe.py) every 25 steps, with the loss parts.
"""
import argparse
import json
import time

import numpy as np
import torch
from transformers import get_cosine_schedule_with_warmup

from simpleseg_lite import data, pixelsail as ps

ap = argparse.ArgumentParser()
ap.add_argument("init", help="a Pixel-SAIL-lite folder, or 'fresh' for a new token_match + word_tokens model")
ap.add_argument("--steps", type=int, default=100)
ap.add_argument("--lr", type=float, default=1e-3)
ap.add_argument("--vision-aux", type=float, default=1.0)
ap.add_argument("--clip", type=float, default=1.0, help="max gradient norm (0: no clipping)")
ap.add_argument("--seed", type=int, default=2)
ap.add_argument("--beta2", type=float, default=0.98)
ap.add_argument("--shuffle", type=int, default=None, help="draw the stream's examples in a random order (this seed)")
ap.add_argument("--save", default=None, help="save the model here at the end")
args = ap.parse_args()
torch.set_num_threads(1)
torch.manual_seed(args.seed)
if args.init == "fresh":
    model, tok = ps.build_model({"token_match": True, "word_tokens": True, "vision_aux": args.vision_aux}, seed=1)
else:
    model, tok = ps.load(args.init)
if args.vision_aux and not hasattr(model, "vision_aux_head"):
    from simpleseg_lite.sft import VisionAuxHead

    model.vision_aux_head = VisionAuxHead(model.config.hidden_size, model.config.patch_size, ps.aux_classes(model.config))
model.config.vision_aux = args.vision_aux
cfg = ps.PixelSailTrainConfig(seed=args.seed, min_objects=2, shape_free=1.0, expression_mix={"attribute": 1.0},
                              task_mix={"mask": 1.0}, vision_aux=max(args.vision_aux, 1e-9))
stream = ps.PixelStream(args.steps * 32, cfg)
opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, args.beta2))
sched = get_cosine_schedule_with_warmup(opt, 20, args.steps)
scene_cfg = data.SyntheticConfig(min_objects=2, max_objects=3)
held, i = [], 0
while len(held) < 64:
    rng = np.random.default_rng((777, i))
    i += 1
    sc = data.make_scene(rng, scene_cfg)
    if len({o.colour for o in sc.objects}) < len(sc.objects):
        continue
    t = int(rng.integers(len(sc.objects)))
    e = ps.PixelSample(sc.image, f"Please segment the {sc.objects[t].colour} shape.", ps.SEG_ANSWER, "mask",
                       sc.objects[t].mask, None, len(sc.objects))
    e.others = [x.mask for k, x in enumerate(sc.objects) if k != t]
    held.append(e)


def share():
    model.eval()
    with torch.no_grad():
        b = ps.collate(held, tok, model.config)
        h = model.hidden(b["pixel_values"], b["input_ids"], b["attention_mask"], b["prompt_regions"])
        seg = (b["input_ids"] == model.config.seg_token_id).float().argmax(1)
        pm = (model.mask_logits(h, b["input_ids"], seg) > 0).numpy()
    model.train()
    s = []
    for e, p in zip(held, pm):
        a = (p & e.mask.astype(bool)).sum()
        o = sum((p & x.astype(bool)).sum() for x in e.others)
        s.append(a / (a + o) if a + o else 0.0)
    return float(np.mean(s))


order = np.random.default_rng(args.shuffle).permutation(len(stream)) if args.shuffle is not None else np.arange(len(stream))
start = time.time()
model.train()
print(json.dumps({"step": 0, "share_on_target": round(share(), 3), "chance": 0.445}), flush=True)
for step in range(1, args.steps + 1):
    batch = ps.collate([stream[int(order[(step - 1) * 32 + k])] for k in range(32)], tok, model.config)
    if not args.vision_aux:
        batch.pop("shape_labels", None)
    out = model(**batch)
    out["loss"].backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip if args.clip else float("inf"))
    opt.step()
    sched.step()
    opt.zero_grad()
    if step % 25 == 0:
        print(json.dumps({"step": step, "share_on_target": round(share(), 3), "bce": round(float(out["bce"]), 4),
                          "dice": round(float(out["dice"]), 3), "aux": round(float(out.get("vision_aux", 0)), 3),
                          "grad_norm": round(float(norm), 2), "min": round((time.time() - start) / 60, 1)}), flush=True)
if args.save:  # the same weights through save_pretrained / from_pretrained: does the choice survive the round trip?
    model.save_pretrained(args.save)
    tok.save_pretrained(args.save)
    print(json.dumps({"saved": args.save, "share_on_target_in_memory": round(share(), 3)}), flush=True)
