"""The RL arms table that notebook 06 §7 reads (``data/arms/rl_arms.json``): every GSPO arm from the committed
lite-sft at the committed recipe's cost, paired with the SFT model on the same 500 validation scenes (seed 999).

Adds (or replaces, by name) the arms of one ``scripts/diagnostics/paired_arms.py --json`` file: for each arm, gIoU,
gIoU by object count, the median area ratio, and the paired difference with the SFT arm (mean IoU difference, bootstrap
95% interval, better / worse). Arms already in the table and not in the file are kept as they are (earlier sessions'
rows, whose per-sample scores were not kept, carry ``"source"``: where in papermill_runs/LOG.md they were measured).

Run:  python scripts/rl_arms.py PAIRED.json --commands COMMANDS.json [--split validation|unseen] [--session N]
      COMMANDS.json maps each arm name to {"command": ..., "group": ..., "what": ..., "wall_min": ...}
      Session 32's inputs are committed: data/arms/rl_arms_scores_{999,9900}.json (LOG session 32)"""
import argparse
import json
from pathlib import Path

import numpy as np

from simpleseg_lite.metrics import paired_difference

p = argparse.ArgumentParser()
p.add_argument("paired", help="a paired_arms.py --json file whose arms include the start, named --start")
p.add_argument("--commands", required=True)
p.add_argument("--start", default="sft", help="the arm every other is paired with")
p.add_argument("--recipe", default=None,
               help="the committed recipe's arm: each other arm also gets vs_recipe, its paired difference with it "
                    "(how the paper states its ablations)")
p.add_argument("--split", choices=["validation", "unseen"], default="validation")
p.add_argument("--session", type=int, required=True)
p.add_argument("--out", default="data/arms/rl_arms.json")
a = p.parse_args()

paired = json.loads(Path(a.paired).read_text())
commands = json.loads(Path(a.commands).read_text())
out = Path(a.out)
table = json.loads(out.read_text()) if out.is_file() else {
    "about": "GSPO arms from data/checkpoints/lite-sft, each at the committed recipe's cost unless its command says "
             "otherwise (96 optimizer steps, 16 prompts x 8 answers, seed 5, 2 threads), paired per sample with the SFT "
             "model: mean IoU difference and bootstrap 95% interval (metrics.paired_difference). Written by "
             "scripts/rl_arms.py; read by notebooks/06_gspo_iou_rewards.py section 7.",
    "validation": {"seed": 999, "n": 500}, "unseen": {"seed": 9900, "n": 500}, "arms": []}
if (paired["seed"], paired["n"]) != (table[a.split]["seed"], table[a.split]["n"]):
    raise SystemExit(f"{a.paired} is seed {paired['seed']} n {paired['n']}; the table's {a.split} split is "
                     f"seed {table[a.split]['seed']} n {table[a.split]['n']}")
scores = {k: np.asarray(v) for k, v in paired["scores"].items()}
objects = np.asarray(paired["objects"])
rows = {r["name"]: r for r in table["arms"]}
for name, meta in commands.items():
    if name not in scores:
        raise SystemExit(f"{name} is not an arm of {a.paired} (arms: {sorted(scores)})")
    s = scores[name]
    result = {"gIoU": round(float(s.mean()), 4),
              "gIoU_by_objects": {int(k): round(float(s[objects == k].mean()), 4) for k in np.unique(objects)},
              "area_ratio": round(float(paired["summary"][name]["area_ratio_median"]), 3)}
    if name != a.start:
        d = paired_difference(scores[a.start], s)
        result["vs_sft"] = {"mean": round(d["mean"], 5), "ci95": [round(x, 5) for x in d["ci95"]],
                            "better": d["better"], "worse": d["worse"]}
    if a.recipe and name not in (a.start, a.recipe):
        d = paired_difference(scores[a.recipe], s)
        result["vs_recipe"] = {"mean": round(d["mean"], 5), "ci95": [round(x, 5) for x in d["ci95"]],
                               "better": d["better"], "worse": d["worse"]}
    row = rows.setdefault(name, {"name": name})
    row.update({k: v for k, v in meta.items()})
    row[a.split] = {**result, "session": a.session}
table["arms"] = list(rows.values())
out.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n")
print(f"{out}: {len(table['arms'])} arms; {a.split} rows for {', '.join(commands)}")
