"""The planted-reward control read out: did an RL run learn to move its outlines to where its rewards were scored?
For each checkpoint, the greedy answers on N scenes: the horizontal offset of each right-object answer's centroid from
the target's (pixels, + = right; mean, with a bootstrap 95% interval paired against the first checkpoint), IoU with
the true target and with the planted one (``rl.planted_target``), and the area ratio. A run trained with
``gspo --plant-shift K`` that works moves the offset towards +K. With ``--split FIELD=V1,V2`` (the run's
``--plant-split``) the offsets are reported for the two groups of targets apart: a policy that sees FIELD moves one
group right and the other left; one blind to it can only move both by the average.
With ``--record FILE --label L --command C --wall MIN`` and exactly two checkpoints (the start, then the run) the run
is added to (or replaced in) the record notebook 06 reads (``data/arms/planted_shift.json``; ``headroom.planted_table``
and ``headroom.plot_planted``).
Run: python scripts/diagnostics/planted_shift.py --shift 4 [--split name=circle,square,triangle]
     sft=data/checkpoints/lite-sft planted=runs/NAME ...   (validation seed 999, n 200; LOG session 34)"""
import argparse
import json

import numpy as np
import torch

from simpleseg_lite.evaluate import checkpoint_settings, eval_samples, evaluate, failure_kind
from simpleseg_lite.metrics import answer_iou, paired_difference, polygons_centroid
from simpleseg_lite.model import load_model
from simpleseg_lite.parse import parse_polygons
from simpleseg_lite.rewards import gt_centroid_of
from simpleseg_lite.rl import plant_direction, planted_target

p = argparse.ArgumentParser()
p.add_argument("arms", nargs="+", help="NAME=PATH; the first is the reference of the paired offsets")
p.add_argument("--shift", type=int, required=True, help="the planted shift in pixels (the run's --plant-shift)")
p.add_argument("--split", default=None, help="the run's --plant-split, FIELD=V1,V2")
p.add_argument("--n", type=int, default=200)
p.add_argument("--seed", type=int, default=999)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--json", help="write each arm's summary and per-scene offsets (None: wrong object / no answer) here")
p.add_argument("--record", help="add the run (the second checkpoint) to this record, e.g. data/arms/planted_shift.json")
p.add_argument("--label", help="--record: the run's row label")
p.add_argument("--command", help="--record: the command that trained the run")
p.add_argument("--wall", type=float, help="--record: the run's training wall time, minutes")
a = p.parse_args()
if a.record and (len(a.arms) != 2 or not (a.label and a.command and a.wall)):
    p.error("--record takes exactly two checkpoints (start, run) and --label, --command, --wall")
torch.set_num_threads(a.threads)
arms = dict(x.split("=", 1) for x in a.arms)
st = checkpoint_settings(next(iter(arms.values())))
samples = list(eval_samples("synthetic", a.n, a.seed, "polygon", st["epsilon"], st["decimals"], st["image_size"]))
direction = np.array([plant_direction(s, a.split) for s in samples])
planted = [planted_target(s, a.shift * d) for s, d in zip(samples, direction)]
groups = {"all": np.ones(len(samples), bool)}
if a.split:
    groups = {f"{a.split} (planted +{a.shift})": direction > 0, f"the others (planted −{a.shift})": direction < 0}
group_of = [next(g for g, m in groups.items() if m[i]) for i in range(len(samples))]
width = samples[0].width
offsets, record = {}, {}
print(f"seed {a.seed}, n {len(samples)}, planted shift {a.shift} px (image {width} px wide)"
      + (f", split {a.split}" if a.split else ""))
print(f"{'arm':12} {'targets':36} {'x offset px (right-object answers)':44} {'IoU true':>9} {'IoU planted':>12}")
first = next(iter(arms))
for name, path in arms.items():
    model, processor = load_model(path, dtype=torch.float32)
    rows = evaluate(model, processor, samples, batch_size=16, dependence=False)["rows"]
    answers = [r["answer"] for r in rows]
    dx = []
    for s, text in zip(samples, answers, strict=True):
        r = parse_polygons(text)
        c = polygons_centroid(r.polygons) if r.valid else None
        dx.append(np.nan if c is None or failure_kind(s, text) == "wrong object"
                  else (c[0] - gt_centroid_of(s.gt_rle)[0]) * width)
    offsets[name] = dx = np.array(dx)
    true_iou = np.array([r["iou"] for r in rows])
    planted_iou = np.array([answer_iou(t, s.gt_rle) for t, s in zip(answers, planted, strict=True)])
    record[name] = {"path": path, "area_ratio": float(np.median([r["area_ratio"] for r in rows
                                                                 if r.get("area_ratio") is not None])),
                    "groups": {}, "per_sample_x_offset_px": [None if np.isnan(v) else round(float(v), 3) for v in dx]}
    for group, m in groups.items():
        ok = m & ~np.isnan(dx)
        line = f"{np.nanmean(dx[m]):+6.2f} (n {ok.sum()})"
        g = {"x_offset_px": float(np.nanmean(dx[m])), "iou_true": float(true_iou[m].mean()),
             "iou_planted": float(planted_iou[m].mean()), "n": int(m.sum()),
             "planted_px": int(a.shift * direction[m][0])}
        if name != first:
            both = ok & ~np.isnan(offsets[first])
            g["offset_vs_first"] = d = paired_difference(offsets[first][both], dx[both])
            line += f" vs {first} {d['mean']:+.2f} [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]"
        record[name]["groups"][group] = g
        print(f"{name:12} {group:36} {line:44} {g['iou_true']:9.3f} {g['iou_planted']:12.3f}")
if a.json:
    with open(a.json, "w") as f:
        json.dump({"seed": a.seed, "n": len(samples), "shift_px": a.shift, "split": a.split, "arms": record}, f)
if a.record:
    from pathlib import Path

    start_name, run_name = arms
    path = Path(a.record)
    book = json.loads(path.read_text()) if path.exists() else {
        "about": "Planted-reward controls (gspo --plant-shift / --plant-split): GSPO runs whose rewards are scored against "
                 "the target moved sideways, from the lite-sft at the committed recipe's cost; each read out on the same "
                 "scenes as the start by scripts/diagnostics/planted_shift.py --record. Offsets: right-object answers' "
                 "centroid minus the true target's, px (None: wrong object or no answer). Read by notebook 06 section 7.",
        "seed": a.seed, "n": len(samples), "start": {"name": start_name, "path": arms[start_name],
                                                     "per_sample_x_offset_px": record[start_name]["per_sample_x_offset_px"]},
        "arms": []}
    if (book["seed"], book["n"], book["start"]["path"]) != (a.seed, len(samples), arms[start_name]):
        raise SystemExit(f"{path} holds seed {book['seed']}, n {book['n']} from {book['start']['path']}: not this run's")
    entry = {"name": run_name, "label": a.label, "command": a.command, "wall_min": a.wall, "shift_px": a.shift,
             "split": a.split, "start_groups": record[start_name]["groups"], "groups": record[run_name]["groups"],
             "area_ratio": [record[start_name]["area_ratio"], record[run_name]["area_ratio"]],
             "group_of_sample": group_of, "per_sample_x_offset_px": record[run_name]["per_sample_x_offset_px"]}
    book["arms"] = [x for x in book["arms"] if x["name"] != run_name] + [entry]
    path.write_text(json.dumps(book) + "\n")
    print(f"{run_name} recorded in {path} ({len(book['arms'])} runs)")
