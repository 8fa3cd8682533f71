"""Diagnostic (LOG session 17): each checkpoint greedy under both coordinate rules (argmax, median) on the same
validation samples, headroom (mean / best of 8 at T 0.3 and 1.0) on the first 64, and the paired difference of each
later checkpoint against the first under each rule.
Run: python scripts/diagnostics/rl_decoding_rules.py data/checkpoints/lite-sft,runs/gspo16_7e-5 200 999"""
import sys, json, torch, numpy as np
from simpleseg_lite.evaluate import eval_samples, evaluate, checkpoint_settings
from simpleseg_lite.model import load_model, set_coord_decoding
from simpleseg_lite.headroom import headroom
from simpleseg_lite.metrics import paired_difference
torch.set_num_threads(1)
ckpts = sys.argv[1].split(",")
n = int(sys.argv[2]); seed = int(sys.argv[3])
st = checkpoint_settings(ckpts[0])
samples = eval_samples("synthetic", n, seed, "polygon", st["epsilon"], st["decimals"], st["image_size"])
res = {}
for c in ckpts:
    model, proc = load_model(c, dtype=torch.float32)
    for rule in ("argmax", "median"):
        set_coord_decoding(model, proc, rule)
        r = evaluate(model, proc, samples, dependence=False)
        res[(c, rule)] = np.array([row["iou"] for row in r["rows"]])
        print(c, rule, round(r["gIoU"], 4), flush=True)
    set_coord_decoding(model, proc, "median")
    h = headroom(model, proc, samples[:64], temperatures=(0.3, 1.0), group_size=8)
    print(c, "headroom", json.dumps({k: v for k, v in h.items() if k in ("greedy_iou",)}), [(r["temperature"], round(r["mean_iou"], 3), round(r["best_iou"], 3)) for r in h["rows"]], flush=True)
base = ckpts[0]
for c in ckpts[1:]:
    for rule in ("argmax", "median"):
        p = paired_difference(res[(base, rule)], res[(c, rule)])
        print(c, rule, "vs base", round(p["mean"], 4), [round(x, 4) for x in p["ci95"]])
