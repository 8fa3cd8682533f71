"""Arms of the Pixel-SAIL stage, all from one vision-stage checkpoint (issue 12, session 19).

The committed lite-pixelsail sees shapes (its vision stage) and answers the prompt question, yet its text→mask
answers do not choose: on 2–3-object scenes the mask lies on the referred object no more often than on the others
(`pixelsail.grounding`). Each arm changes one thing in the second stage and starts from the same vision stage
(`--init`), with the same seed and stream; each is judged on the validation seed (999 by default) by
`scripts/eval_pixelsail.py`'s `judge` (n text→mask samples of 1–3 objects, the prompt question with and without the
injection, grounding), and paired against the arm `base` (the committed recipe) on the same samples.

    python scripts/pixelsail_stage_arms.py --arm named --init runs/psv18m --out runs/ps19 --threads 1
    python scripts/pixelsail_stage_arms.py --all --init runs/psv18m --out runs/ps19   # every arm at once (a GPU)
    python scripts/pixelsail_stage_arms.py --table runs/ps19

Budget: the issue allows 60 CPU-minutes for the whole checkpoint; the vision stage took 20.8 of them, and one
Pixel-SAIL step costs ~1.9 s on one thread, so an arm may take up to ~1,200 steps.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

ATTR3 = {"attribute": 3.0, "position": 1.0, "relation": 1.0, "size": 0.5}  # attribute expressions 3× as often
COLOUR_STAGE = {"min_objects": 2, "shape_free": 1.0, "expression_mix": {"attribute": 1.0}, "task_mix": {"mask": 1.0}}
ARMS = {  # name: (PixelSailTrainConfig fields, what changes)
    "base": ({}, "the committed recipe: 800 steps × 32, lr 1e-3 cosine, seed 2, vision_aux 1"),
    "named": ({"named_answers": True}, "text→mask answers name the object first: 'It is the red star [SEG].'"),
    "attr3": ({"expression_mix": ATTR3}, "attribute expressions ('the red star') 3× as frequent in training"),
    "named_attr3": ({"named_answers": True, "expression_mix": ATTR3}, "named answers and attribute expressions 3×"),
    "select1": ({"model": {"select_loss": 1.0}}, "+ the per-image softmax selection loss (weight 1)"),
    "min2": ({"min_objects": 2}, "every training scene has 2–3 objects"),
    "mask_heavy": ({"task_mix": {"mask": 0.7, "point_mask": 0.1, "box_mask": 0.1, "vp_question": 0.1}},
                   "text→mask 0.7 of the mix (committed: 0.5)"),
    "lr2e3": ({"lr": 2e-3}, "learning rate 2e-3"),
    "noaux": ({"vision_aux": 0.0}, "the dense shape loss off in this stage"),
    "s1200": ({"max_steps": 1200}, "1,200 steps (the most the 60-minute budget allows)"),
    "named_s1200": ({"named_answers": True, "max_steps": 1200}, "named answers, 1,200 steps"),
    "colour_first": ({"curriculum": [(100, COLOUR_STAGE)]}, "the first 100 of the 800 steps: text→mask on 2–3 "
                     "objects named by colour alone ('the red shape')"),
    # session 19, second round: the colour-first curriculum combined with the other arms that led
    "cf_attr3": ({"curriculum": [(100, COLOUR_STAGE)], "expression_mix": ATTR3}, "colour-first, then attribute 3×"),
    "cf_min2": ({"curriculum": [(100, COLOUR_STAGE)], "min_objects": 2}, "colour-first, then 2–3 objects only"),
    "cf200": ({"curriculum": [(200, COLOUR_STAGE)]}, "a 200-step colour stage, then 600 of the stream"),
    "cf_attr3_min2": ({"curriculum": [(100, COLOUR_STAGE)], "expression_mix": ATTR3, "min_objects": 2},
                      "colour-first, then attribute 3× on 2–3 objects"),
    "cf_named": ({"curriculum": [(100, COLOUR_STAGE)], "named_answers": True}, "colour-first, then named answers"),
    "cf_lr2e3": ({"curriculum": [(100, COLOUR_STAGE)], "lr": 2e-3}, "colour-first, lr 2e-3"),
    "base_seed3": ({"seed": 3}, "the committed recipe, stream and order seed 3"),
    "cf_seed3": ({"curriculum": [(100, COLOUR_STAGE)], "seed": 3}, "colour-first, seed 3"),
    # session 19, on this CPU: cf_attr3_min2 chose with seed 2 (GPU and CPU) but not with seed 3; its 100-step colour
    # stage leaves the "every object" plateau in some sample orders only (scripts/diagnostics/colour_stage.py)
    "cf300_attr3_min2": ({"curriculum": [(300, COLOUR_STAGE)], "expression_mix": ATTR3, "min_objects": 2,
                         "max_steps": 1000}, "a 300-step colour stage, then 700 steps of attribute 3× on 2–3 objects"),
}


def run_arm(name: str, init: str, out: Path, steps: int, seed: int, threads: int, n: int, eval_seed: int,
            save_steps: int) -> dict:
    import torch

    from eval_pixelsail import judge
    from simpleseg_lite.pixelsail import PixelSailTrainConfig, train_pixelsail
    from simpleseg_lite.report import jsonable

    fields, what = ARMS[name]
    fields = dict(fields)
    stages = fields.pop("curriculum", [])
    scale = steps / 800  # the arms' step counts are for --steps 800; a smaller --steps shrinks them alike
    total = round(fields.pop("max_steps", 800) * scale)
    seed = fields.pop("seed", seed)
    folder, left, start = out / name, total, time.perf_counter()
    common = {"seed": seed, "threads": threads, "vision_aux": 1.0, "save_steps": save_steps}
    for k, (stage_steps, stage_fields) in enumerate(stages):
        stage_steps = max(1, round(stage_steps * scale))
        stage = folder / f"stage{k}"
        if not (stage / "summary.json").is_file():
            train_pixelsail(PixelSailTrainConfig(out=str(stage), init=init, max_steps=stage_steps, eval_steps=0,
                                                 **{**common, **stage_fields}), resume=(stage / "checkpoints").is_dir())
        init, left = str(stage), left - stage_steps
    cfg = PixelSailTrainConfig(out=str(folder), init=init, max_steps=left, eval_steps=200, **{**common, **fields})
    train_pixelsail(cfg, resume=(folder / "checkpoints").is_dir())
    wall = time.perf_counter() - start
    torch.set_num_threads(threads)
    row = {"arm": name, "what": what, "steps": total, "seed": seed, "threads": threads, "train_wall_s": round(wall, 1),
           "device": "cuda" if torch.cuda.is_available() else "cpu", "eval_seed": eval_seed,
           **judge(str(folder), eval_seed, n, n)}
    (folder / "arm.json").write_text(json.dumps(jsonable(row)))
    return row


def table(rows: list[dict], against: str = "base") -> str:
    from simpleseg_lite.metrics import paired_difference

    refs = {}  # each row is paired with the reference trained on the same device (GPU rows with the GPU's base)
    for r in rows:
        if r["arm"] == against:
            refs.setdefault(r.get("device", "cpu"), r)
    lines = ["| arm | steps | gIoU | paired vs base [95% CI] (better/worse) | cIoU | P@0.5 | question (off) | "
             "on target (chance) | covers several | train min (device) |", "|" + "---|" * 10]
    for r in rows:
        e, vp, g = r["eval"], r["vp_question"], r["grounding"]
        pair = "—"
        ref = refs.get(r.get("device", "cpu"))
        if ref is not None and r is not ref:
            d = paired_difference(ref["per_sample"], r["per_sample"])
            pair = f"{d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] ({d['better']}/{d['worse']})"
        name = r["arm"] + (f" (seed {r['seed']})" if r.get("seed", 2) != 2 else "")
        lines.append(f"| {name} | {r['steps']} | {e['gIoU']:.3f} | {pair} | {e['cIoU']:.3f} | {e['prec_at_0.5']:.2f} | "
                     f"{vp['with_injection']['accuracy']:.2f} ({vp['without_injection']['accuracy']:.2f}) | "
                     f"{g['share_on_target']:.2f} ({g['chance_share']:.2f}) | {g['covers_several']:.2f} | "
                     f"{r['train_wall_s'] / 60:.1f} ({r.get('device', 'cpu')}) |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arm", choices=sorted(ARMS))
    ap.add_argument("--all", action="store_true", help="launch every arm (or --arms) as its own process, all at once")
    ap.add_argument("--arms", default=None, help="with --all: a comma-separated subset")
    ap.add_argument("--init", default="runs/psv18m", help="the vision-stage folder every arm starts from")
    ap.add_argument("--out", default="runs/ps19")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=200, help="validation samples (text→mask; prompt question; grounding)")
    ap.add_argument("--eval-seed", type=int, default=999)
    ap.add_argument("--save-steps", type=int, default=50)
    ap.add_argument("--table", nargs="+", default=None, help="print the table of the judged arms in these folders "
                    "(each paired against the first arm named 'base' trained on the same device)")
    ap.add_argument("--export", default=None, help="with --table: write the rows (no per-sample scores) and the table "
                    "as JSON (notebook 08)")
    args = ap.parse_args()
    if args.table:
        rows = []
        for folder in args.table:
            found = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*/arm.json"))]
            rows += sorted(found, key=lambda r: list(ARMS).index(r["arm"]) if r["arm"] in ARMS else 99)
        text = table(rows)
        print(text)
        if args.export:
            keep = ("arm", "what", "steps", "seed", "train_wall_s", "device", "eval_seed", "eval", "vp_question",
                    "grounding")
            Path(args.export).parent.mkdir(parents=True, exist_ok=True)
            Path(args.export).write_text(json.dumps({"rows": [{k: r.get(k) for k in keep} for r in rows],
                                                     "table": text}, indent=1))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.all:
        names = args.arms.split(",") if args.arms else list(ARMS)
        procs = {}
        for name in names:
            cmd = [sys.executable, __file__, "--arm", name, "--init", args.init, "--out", str(out), "--steps",
                   str(args.steps), "--seed", str(args.seed), "--threads", str(args.threads), "--n", str(args.n),
                   "--eval-seed", str(args.eval_seed), "--save-steps", str(args.save_steps)]
            log = open(out / f"{name}.log", "w")
            procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ,
                                                                                         "PYTHONUNBUFFERED": "1"})
        for name, p in procs.items():
            print(name, "exit", p.wait(), flush=True)
        return
    if not args.arm:
        ap.error("give --arm NAME, --all or --table DIR")
    row = run_arm(args.arm, args.init, out, args.steps, args.seed, args.threads, args.n, args.eval_seed, args.save_steps)
    print(json.dumps({k: row[k] for k in ("arm", "train_wall_s", "eval", "vp_question", "grounding")}, default=str))


if __name__ == "__main__":
    main()
