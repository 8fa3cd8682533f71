"""Diagnostic: how fast does the single transformer learn to name a shape?
mode "single": one-object scenes, "What is <Prompt0>?" with the object's mask injected (as the vp question);
mode "single_noinj": one-object scenes, no region; mode "multi": the stream's 1-3-object scenes (the vp question)."""
import json, sys, time
import numpy as np, torch
from simpleseg_lite import data, pixelsail as ps

mode = sys.argv[1]; cfg_json = json.loads(sys.argv[2]); steps = int(sys.argv[3]); lr = float(sys.argv[4])
torch.set_num_threads(1)
scene_cfg = data.SyntheticConfig(min_objects=1, max_objects=1 if mode.startswith("single") else 3)
def samples(seed, n):
    exs = list(ps.make_pixel_samples(n, seed, scene_cfg, {"vp_question": 1.0}))
    if mode == "single_noinj":
        for e in exs: e.region = None
    return exs
model, tok = ps.build_model(cfg_json, seed=1)
opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
from transformers import get_cosine_schedule_with_warmup
sched = get_cosine_schedule_with_warmup(opt, 20, steps)
held = samples(2000, 96)
shapes = list(data.SHAPES)
shape_ids = [tok.convert_tokens_to_ids(s) for s in shapes]
def acc():
    """teacher-forced: argmax over the five shape words at the shape position"""
    model.eval()
    with torch.no_grad():
        b = ps.collate(held, tok, model.config)
        logits = model(**{k: v for k, v in b.items() if k not in ("labels", "masks", "has_mask")})["logits"]
        right = []
        for i, ex in enumerate(held):
            truth = ex.answer.split()[-1]
            pos = [j for j in range(b["labels"].shape[1]) if b["labels"][i, j] == tok.convert_tokens_to_ids(truth)][0]
            pred = shapes[int(logits[i, pos - 1, shape_ids].argmax())]
            right.append(pred == truth)
    model.train()
    return float(np.mean(right))
start = time.time()
for step in range(1, steps + 1):
    out = model(**ps.collate(samples(10**6 + step, 32), tok, model.config))
    out["loss"].backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step(); sched.step(); opt.zero_grad()
    if step % 50 == 0:
        print(json.dumps({"mode": mode, "step": step, "lm": round(float(out["lm_loss"]), 4), "shape_acc": acc(),
                          "min": round((time.time() - start) / 60, 1)}), flush=True)
