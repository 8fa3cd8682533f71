"""Pixel-SAIL's ablations at lite scale (notebook 08 §4): the full design against the paper's *plain* baseline
(no learnable upsampling: the [SEG] dot product on the 8 × 8 token grid, resized bilinearly) and against
no visual-prompt injection, each trained from scratch at equal cost — same stream, seed, steps, threads —
and judged on validation seed 2000 (``pixelsail.judge``: text→mask, point→mask, box→mask gIoU and the
"What is <Prompt0>?" accuracy), with paired differences on the same samples.

    python scripts/pixelsail_ablations.py --variant learnable --out runs/pixelsail-abl   # one variant
    python scripts/pixelsail_ablations.py --table runs/pixelsail-abl --export data/pixelsail/ablations.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

# the first stage of a curriculum: every scene has 2–3 objects and every text→mask expression is a colour
COLOUR_STAGE = {"min_objects": 2, "shape_free": 1.0, "expression_mix": {"attribute": 1.0}, "task_mix": {"mask": 1.0}}
VARIANTS = {
    "learnable": ({}, "the full lite design: three learnable upsampling blocks, prompt injection"),
    "plain": ({"upsample_blocks": 0}, "the paper's plain baseline: dot product on the 8×8 token grid, bilinear"),
    "no_injection": ({"inject_prompts": False}, "no visual-prompt injection (<Prompt0> carries no region)"),
    # not in the paper: the prompt before the image, so the vision tokens read the question (grounding)
    "text_first": ({"text_first": True}, "prompt before the image: vision tokens also attend to the question"),
    # grounding (text→mask on 2–3 objects): the dot-product head collapses to "every object" at lite scale
    "mlp_decoder": ({"mask_decoder": "mlp"}, "mask logit = MLP([SEG] vector + pixel features), not their dot product"),
    "multi_only": ({}, "every training scene has 2–3 objects (a distractor always there)", {"min_objects": 2}),
    "word_tokens": ({"word_tokens": True}, "the scenes' words as single tokens (a colour is one token, not 3–6 letters)"),
    "word_text_first": ({"word_tokens": True, "text_first": True}, "word tokens, and the prompt before the image"),
    "token_match": ({"token_match": True}, "+ a full-rank match of [SEG] against each vision token's state"),
    "token_match_words": ({"token_match": True, "word_tokens": True}, "token match and word tokens"),
    # the vision states carry almost no absolute position (rotary positions act only inside attention)
    "sincos_pos": ({"vision_position": "sincos"}, "a fixed 2-D sinusoidal position code added to every patch"),
    "learned_pos": ({"vision_position": "learned"}, "a learned absolute position embedding added to every patch"),
    "sincos_match_words": ({"vision_position": "sincos", "token_match": True, "word_tokens": True},
                           "sinusoidal position code, token match and word tokens"),
    # which object: a signal through the language-model loss, and the simplest grounding problem alone
    "named_match_words": ({"token_match": True, "word_tokens": True}, "token match, word tokens, and text→mask "
                          "answers that name the object: 'It is the red star [SEG].'", {"named_answers": True}),
    "select": ({"select_loss": 1.0}, "+ a per-image softmax over pixels (selection_loss, weight 1) beside BCE and Dice"),
    "select_match_words": ({"select_loss": 1.0, "token_match": True, "word_tokens": True},
                           "selection loss, token match and word tokens"),
    "attribute_match_words": ({"token_match": True, "word_tokens": True}, "token match, word tokens, trained on "
                              "attribute expressions only ('the red star', 'the star')",
                              {"expression_mix": {"attribute": 1.0}}),
    # session 10: trained on colour-only prompts a fresh model grounds within ~100 steps; shapes it barely names
    "shapefree_match_words": ({"token_match": True, "word_tokens": True}, "token match, word tokens, and half of the "
                              "text→mask expressions written without a shape name ('the red shape')",
                              {"shape_free": 0.5}),
    "shapefree_sincos_match_words": ({"token_match": True, "word_tokens": True, "vision_position": "sincos"},
                                     "shape-free half, token match, word tokens and a 2-D sinusoidal position code",
                                     {"shape_free": 0.5}),
    # a grounding curriculum: first a stage where colour alone picks the object, then the stream (same total steps)
    "colour_first_match_words": ({"token_match": True, "word_tokens": True}, "token match, word tokens; the first "
                                 "100 of the 300 steps are text→mask on 2–3 objects named by colour ('the red shape')",
                                 {"curriculum": [(100, COLOUR_STAGE)]}),
    "colour_first_interleaved": ({"token_match": True, "word_tokens": True, "rope_layout": "interleaved"},
                                 "colour-first curriculum, token match, word tokens, interleaved mRoPE",
                                 {"curriculum": [(100, COLOUR_STAGE)]}),
    "colour_keep_match_words": ({"token_match": True, "word_tokens": True}, "token match, word tokens; 150 steps of "
                                "the colour stage, then 150 of a stream where half the expressions name no shape and "
                                "attribute expressions are 3× as frequent",
                                {"curriculum": [(150, COLOUR_STAGE)], "shape_free": 0.5,
                                 "expression_mix": {"attribute": 3.0, "position": 1.0, "relation": 1.0, "size": 0.5}}),
    # session 14: the transformer first learns to see shapes on its own (pretrain-vision --system pixelsail, built
    # with token_match + word_tokens); the dense loss stays on. Needs --init: that stage's folder (its cost is not
    # in this arm's train minutes)
    "vision_match_words": ({"token_match": True, "word_tokens": True}, "token match, word tokens, from a vision-only "
                           "stage on the dense shape loss (--init), that loss kept on (vision_aux 1)",
                           {"vision_aux": 1.0, "needs_init": True}),
}
TASKS = (("polygon", "text→mask"), ("point_polygon", "point→mask"), ("box_polygon", "box→mask"))


def run_variant(name: str, out: Path, steps: int, seed: int, n: int, threads: int, init: str | None = None) -> dict:
    import torch

    from simpleseg_lite.pixelsail import PixelSailTrainConfig, judge, load, train_pixelsail

    folder = out / name
    model_fields, what, *train_fields = VARIANTS[name]
    fields = dict(train_fields[0]) if train_fields else {}
    stages = fields.pop("curriculum", [])  # [(steps, PixelSailTrainConfig fields)] before the main stage
    if fields.pop("needs_init", False) != bool(init):
        raise SystemExit(f"variant {name}: " + ("needs --init (a pretrain-vision --system pixelsail folder)"
                                                if not init else "trains from scratch; give no --init"))
    left = steps
    start = time.perf_counter()
    resume = (folder / "checkpoints").is_dir()
    for k, (stage_steps, stage_fields) in enumerate(stages):
        stage = folder / f"stage{k}"
        stage_cfg = PixelSailTrainConfig(out=str(stage), max_steps=stage_steps, seed=seed, threads=threads, eval_steps=0,
                                         save_steps=max(stage_steps // 2, 1), model=model_fields, init=init,
                                         **stage_fields)
        if not (stage / "summary.json").is_file():  # a finished stage is not trained again
            train_pixelsail(stage_cfg, resume=(stage / "checkpoints").is_dir())
        init, left = str(stage), left - stage_steps
    cfg = PixelSailTrainConfig(out=str(folder), max_steps=left, seed=seed, threads=threads, eval_steps=0,
                               save_steps=max(left // 4, 1), model=model_fields, init=init, **fields)
    train_pixelsail(cfg, resume=resume)
    wall = time.perf_counter() - start
    torch.set_num_threads(threads)
    model, tok = load(folder)
    row = {"variant": name, "what": what, "steps": steps, "seed": seed, "threads": threads,
           "train_wall_s": round(wall, 1), "resumed": resume, "init": init, "scores": judge(model, tok, n=n)}
    (folder / "variant.json").write_text(json.dumps(row, indent=1))
    return row


def table(rows: list[dict], against: str = "learnable") -> str:
    from simpleseg_lite.metrics import paired_difference

    ref = next((r for r in rows if r["variant"] == against), None)
    head = "| variant | " + " | ".join(f"{label} gIoU" for _, label in TASKS) + " | prompt question: exact / colour / shape (chance) | text→mask on target (chance) | train min (threads) |"
    lines = [head, "|" + "---|" * (len(TASKS) + 4)]
    for r in rows:
        s = r["scores"]
        cells = []
        for task, _ in TASKS:
            cell = f"{s[task]['gIoU']:.3f}"
            if ref is not None and r is not ref:
                d = paired_difference(ref["scores"][task]["per_sample"], s[task]["per_sample"])
                cell += f" ({d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}])"
            cells.append(cell)
        vp, g = s["vp_question"], s.get("grounding")
        on_target = f"{g['share_on_target']:.2f} ({g['chance_share']:.2f})" if g else "—"
        lines.append(f"| {r['variant']} | " + " | ".join(cells) +
                     f" | {vp['accuracy']:.2f} / {vp.get('colour_accuracy', float('nan')):.2f} / "
                     f"{vp.get('shape_accuracy', float('nan')):.2f} ({vp['chance']:.2f}) | {on_target} | "
                     f"{r['train_wall_s'] / 60:.1f} ({r.get('threads', '?')}) |")
    return "\n".join(lines) + (f"\n\nIn brackets: paired difference from '{against}' on the same validation samples (95% CI). "
                               "On target: the share of the mask's object pixels on the referred object in 2–3-object "
                               "scenes (pixelsail.grounding; chance: what masking every object alike gives).")


def reading(rows: list[dict], against: str = "learnable") -> str:
    """One sentence per variant and task, read off the paired intervals: which way, and whether beyond noise."""
    from simpleseg_lite.metrics import paired_difference

    ref = next((r for r in rows if r["variant"] == against), None)
    if ref is None:
        return ""
    out = []
    for r in rows:
        if r is ref:
            continue
        for task, label in TASKS:
            d = paired_difference(ref["scores"][task]["per_sample"], r["scores"][task]["per_sample"])
            lo, hi = d["ci95"]
            verdict = (f"{against} is better beyond the interval" if hi < 0 else
                       f"{r['variant']} is better beyond the interval" if lo > 0 else "inside the noise")
            out.append(f"{r['variant']} − {against}, {label}: {d['mean']:+.3f} [{lo:+.3f}, {hi:+.3f}] — {verdict}.")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=sorted(VARIANTS))
    ap.add_argument("--out", default="runs/pixelsail-abl")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=100, help="validation samples per task (seed 2000)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init", default=None, help="the starting folder of variants that need one (vision_match_words)")
    ap.add_argument("--grounding", default=None, help="add pixelsail.grounding to every judged variant in this folder "
                    "that lacks it (variants judged before it existed)")
    ap.add_argument("--table", default=None, help="print the table of the judged variants in this folder")
    ap.add_argument("--export", default=None, help="with --table: write rows + table as JSON (notebook 08)")
    args = ap.parse_args()
    if args.grounding:
        import torch

        from simpleseg_lite.pixelsail import grounding, load

        torch.set_num_threads(args.threads)
        for p in sorted(Path(args.grounding).glob("*/variant.json")):
            row = json.loads(p.read_text())
            if "grounding" not in row["scores"]:
                row["scores"]["grounding"] = grounding(*load(p.parent), n=args.n)
                p.write_text(json.dumps(row, indent=1))
                print(p.parent.name, {k: v for k, v in row["scores"]["grounding"].items()})
        return
    if args.table:
        rows = [json.loads(p.read_text()) for p in sorted(Path(args.table).glob("*/variant.json"))]
        text = table(rows)
        print(text)
        if args.export:
            Path(args.export).parent.mkdir(parents=True, exist_ok=True)
            slim = [{**r, "scores": {k: {a: b for a, b in v.items() if a != "per_sample"} for k, v in r["scores"].items()}}
                    for r in rows]
            Path(args.export).write_text(json.dumps({"rows": slim, "table": text, "reading": reading(rows)}, indent=1))
        print(reading(rows))
        return
    if not args.variant:
        ap.error("give --variant NAME or --table DIR")
    print(json.dumps(run_variant(args.variant, Path(args.out), args.steps, args.seed, args.n, args.threads,
                                 args.init)["scores"],
                     default=lambda o: None)[:2000])


if __name__ == "__main__":
    main()
