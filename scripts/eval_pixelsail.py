"""Judge a Pixel-SAIL-lite checkpoint on an unseen seed, the way issue 12's "done when" asks, and pair it with the
committed one on the same samples.

    python scripts/eval_pixelsail.py runs/ps14 --seed 7000 [--against data/checkpoints/lite-pixelsail] [--threads 1]

Writes <checkpoint>/judged_<seed>.json and prints: `evaluate` on n text→mask samples of 1–3 objects (gIoU, cIoU,
Prec@0.5, valid rate, image dependence), the paired per-sample IoU against --against (bootstrap 95% CI), the
visual-prompt question with the injection on and switched off at test time (``config.inject_prompts = False``), and
text→mask grounding on 2–3-object scenes (`pixelsail.grounding`).
"""
import argparse
import json
from pathlib import Path

import torch

from simpleseg_lite import pixelsail as ps
from simpleseg_lite.evaluate import eval_samples, evaluate, sample_scores
from simpleseg_lite.metrics import paired_difference
from simpleseg_lite.report import jsonable


def judge(path: str, seed: int, n: int, n_vp: int) -> dict:
    model, tok = ps.load(path)
    samples = eval_samples("synthetic", n, seed, "polygon")
    r = evaluate(model, tok, samples)
    out = {"eval": {k: v for k, v in r.items() if not isinstance(v, (list, dict))}, "per_sample": sample_scores(r["rows"])}
    vp_on = ps.vp_accuracy(model, tok, n_vp, seed)
    model.config.inject_prompts = False  # the same weights, the region withheld
    vp_off = ps.vp_accuracy(model, tok, n_vp, seed)
    model.config.inject_prompts = True
    out["vp_question"] = {"with_injection": {k: v for k, v in vp_on.items() if k != "per_sample"},
                          "without_injection": {k: v for k, v in vp_off.items() if k != "per_sample"}}
    g = ps.grounding(model, tok, n=n_vp, seed=seed)
    out["grounding"] = {k: g[k] for k in ("share_on_target", "chance_share", "target_is_largest", "covers_several")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--seed", type=int, default=7000, help="an unseen seed (training uses seeds ≥ 10**7)")
    ap.add_argument("--n", type=int, default=200, help="text→mask samples for eval and the paired comparison")
    ap.add_argument("--n-vp", type=int, default=200, help="scenes for the prompt question and grounding")
    ap.add_argument("--against", default="data/checkpoints/lite-pixelsail")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = {"checkpoint": args.checkpoint, "seed": args.seed, **judge(args.checkpoint, args.seed, args.n, args.n_vp)}
    if args.against and Path(args.against).is_dir():
        ref = judge(args.against, args.seed, args.n, args.n_vp)
        d = paired_difference(ref["per_sample"], result["per_sample"])
        result["against"] = {"checkpoint": args.against, "eval": ref["eval"], "vp_question": ref["vp_question"],
                             "grounding": ref["grounding"], "paired_iou": d}
    Path(args.checkpoint, f"judged_{args.seed}.json").write_text(json.dumps(jsonable(result), indent=1))
    show = {k: v for k, v in result.items() if k != "per_sample"}
    print(json.dumps(jsonable(show), indent=1))


if __name__ == "__main__":
    main()
