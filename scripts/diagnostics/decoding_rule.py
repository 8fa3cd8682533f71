"""Diagnostic (LOG session 11): judge a coord_tokens arm again with another greedy decoding rule for coordinates,
paired against its own arm.json (argmax). Run: OMP_NUM_THREADS=2 python scripts/diagnostics/decoding_rule.py
runs/arms/coord_tokens+no_merge median|mean"""
import sys, json, torch
from simpleseg_lite.model import load_model
from simpleseg_lite.localization import localization_scores, paired_difference
torch.set_num_threads(2)
m, p = load_model(sys.argv[1], dtype=torch.float32)
m.config.lite_coord_decoding = sys.argv[2]
r = localization_scores(m, p, n=100, seed=2000, keep_values=True)
ref = json.load(open(sys.argv[1] + "/arm.json"))["values_at_end"]
print(sys.argv[2], {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if not isinstance(v, (list, dict))})
for k in ["polygon_per_sample", "box_per_sample", "point_per_sample"]:
    d = paired_difference(ref[k], r[k]); print(k, round(d["mean"], 4), [round(x, 4) for x in d["ci95"]], d["better"], d["worse"])
json.dump(r, open(f"runs/decoding_{sys.argv[2]}.json", "w"))
