"""Diagnostic: can Pixel-SAIL-lite's mask head learn to pick an object by its colour alone?
Train from scratch on 2-3-object scenes of distinct colours, "Please segment the {colour} shape." -> "It is [SEG].",
mask = that object. Teacher-forced share of predicted object pixels on the target, held out, every 50 steps."""
import json, sys, time
import numpy as np, torch
from simpleseg_lite import data, pixelsail as ps

cfg_json = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {"token_match": True, "word_tokens": True}
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 300
lr = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-3
torch.set_num_threads(1)
scene_cfg = data.SyntheticConfig(min_objects=2, max_objects=3)

def samples(seed, n):
    out = []
    i = 0
    while len(out) < n:
        rng = np.random.default_rng((seed, i)); i += 1
        scene = data.make_scene(rng, scene_cfg)
        if len({o.colour for o in scene.objects}) < len(scene.objects):
            continue
        t = int(rng.integers(len(scene.objects)))
        o = scene.objects[t]
        out.append(ps.PixelSample(scene.image, f"Please segment the {o.colour} shape.", ps.SEG_ANSWER, "mask", o.mask,
                                  None, len(scene.objects)))
        out[-1].others = [x.mask for k, x in enumerate(scene.objects) if k != t]
    return out

model, tok = ps.build_model(cfg_json, seed=1)
import os
opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, float(os.environ.get("BETA2", "0.999"))))
from transformers import get_cosine_schedule_with_warmup
sched = get_cosine_schedule_with_warmup(opt, 20, steps)
held = samples(777, 64)

def share():
    model.eval()
    with torch.no_grad():
        b = ps.collate(held, tok, model.config)
        h = model.hidden(b["pixel_values"], b["input_ids"], b["attention_mask"], b["prompt_regions"])
        seg = (b["input_ids"] == model.config.seg_token_id).float().argmax(1)
        m = (model.mask_logits(h, b["input_ids"], seg) > 0).numpy()
    model.train()
    s = []
    for ex, pm in zip(held, m):
        on_t = (pm & ex.mask.astype(bool)).sum(); on_o = sum((pm & o.astype(bool)).sum() for o in ex.others)
        s.append(on_t / (on_t + on_o) if on_t + on_o else 0.0)
    return float(np.mean(s)), float(np.mean([1 / ex.objects for ex in held]))

start = time.time()
for step in range(1, steps + 1):
    batch = ps.collate(samples(10**6 + step, 32), tok, model.config)
    out = model(**batch)
    out["loss"].backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step(); sched.step(); opt.zero_grad()
    if step % 50 == 0:
        sh, ch = share()
        print(json.dumps({"step": step, "bce": round(float(out["bce"]), 4), "dice": round(float(out["dice"]), 3),
                          "share_on_target": round(sh, 3), "chance": round(ch, 3), "min": round((time.time() - start) / 60, 1)}), flush=True)
