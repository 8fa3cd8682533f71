"""The localization arms (issue "A lite model that sees where"): rival designs of the tiny VLM trained
from scratch at equal cost — same data, seed, schedule, steps and threads — and judged on a validation
seed by single-object polygon gIoU, box IoU, point error and the coordinate-lattice diagnostic
(``simpleseg_lite.localization``), at two budgets (the mid-run checkpoint and the end).

    python scripts/localization_arms.py --arm base --out runs/arms      # one arm: train, then judge
    python scripts/localization_arms.py --table runs/arms               # the table of every judged arm
    python scripts/localization_arms.py --table runs/arms --export data/arms/localization_arms.json

Each arm writes ``<out>/<arm>/`` (the model, checkpoints, ``arm.json`` with its scores and s/step).
Run two arms at once on a 2-core machine (one thread each); the table says what ran beside what.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

MIX = {"polygon": 2.0, "box": 1.0, "point": 1.0}
ARMS = {  # name: (TinyConfig overrides, digit-loss weight, what it tests)
    "base": ({}, 0.0, "today's design: 16 image tokens of 28 px (2×2 merge), position fix"),
    "no_merge": ({"merge_size": 1}, 0.0, "finer token grid: 64 tokens of 14 px"),
    "patch_pos": ({"patch_positions": True}, 0.0, "learned position per 14-px patch before the ViT"),
    "interleaved_rope": ({"rope_layout": "interleaved"}, 0.0,
                         "mRoPE frequencies dealt to (t, h, w) in turn: the width axis gets fast ones too"),
    "conv_stem": ({"patch_stem": "conv"}, 0.0, "two 3×3 convs inside each patch before the projection"),
    "digit_loss": ({}, 1.0, "ordinal expected-value loss on coordinate digits (weight 1) beside CE"),
    "coord_tokens": ({"coord_tokens": True}, 1.0,
                     "one token per two-decimal coordinate and the ordinal loss over them (weight 1) beside CE"),
    "median_decoding": ({"coord_decoding": "median"}, 0.0,
                        "greedy coordinates at the median of the coordinate-token distribution (needs coord_tokens)"),
    "wide_vit": ({"vision_hidden_size": 256, "vision_depth": 6, "vision_intermediate_size": 1024,
                  "hidden_size": 192, "intermediate_size": 576}, 0.0,
                 "vision tower 256×6 (from 128×4), language model 192 (from 256) wide"),
    "word_tokens": ({"word_tokens": True}, 0.0,
                    "each prompt word one token (' star'), not its characters: ~23 prompt tokens instead of ~75"),
    "shape_question": ({}, 0.0, "the MIX plus 'What shape is the red shape?' → 'star' (1 part in 5): a loss that needs shape"),
    "muon": ({}, 0.0, "Muon on the hidden weight matrices, AdamW on the rest (the paper's optimizer; muon.py)"),
    "vision_pretrain": ({}, 0.0, "starts from a checkpoint of `simpleseg-lite pretrain-vision` (--init): a vision "
                                 "tower pre-trained alone to name each 2-px cell's shape (vision.py)"),
    "vision_aux": ({}, 0.0, "a training-only dense loss: each image token names the shape class of every 2-px cell "
                            "under it (sft.VisionAuxHead, weight 1), a stand-in for a pre-trained vision tower"),
    "local_tokens": ({"vision_window": 56, "vision_fullatt_blocks": (), "image_centre": "learned"}, 0.0,
                     "every ViT block attends within 56-px windows and the position fix subtracts a learned vector, "
                     "not the image mean: a distractor cannot move the other objects' tokens (LOG session 22)"),
    "box_aux": ({}, 0.0, "a training-only dense loss: each object pixel's image token gives that object's box "
                         "(sft.BoxAuxHead, weight 1): the tokens group pixels into objects (LOG session 23)"),
    "object_gate": ({"object_gate": True}, 0.0, "background image tokens reach the language model as their position "
                    "only (a hard gate learnt from the shape maps; needs vision_aux; LOG session 23)"),
    "colour_aux": ({}, 0.0, "a training-only dense loss: each image token names the colour of every 2-px cell under "
                            "it (sft.attach_colour_aux, weight 1; LOG session 20)"),
    # not a Qwen2.5-VL: Pixel-SAIL-lite's single transformer (no vision tower; 64 linear 14-px patch tokens with
    # (row, col) rotary positions, bidirectional among themselves) trained to write the same text answers
    "distractor_a": ({}, 0.0, "stage A's scenes hold 2–3 objects (one referred): the answer is never the scene's "
                              "summary, so the tower is not taught to broadcast it (LOG session 24)"),
    "read_loss": ({}, 0.0, "the read term from the first step (sft.read_out_loss, weight 1: head 0 of layer 3 must look "
                           "at the target's image tokens), so the answer never learns to read the scene's summary"),
    "attn_scale2": ({"attn_scale": 2.0}, 0.0, "the language model's attention logits ×2 (model.scale_attention): a "
                                             "sharper read-out of the image tokens (LOG session 24)"),
    "attn_scale4": ({"attn_scale": 4.0}, 0.0, "the same, ×4"),
    "query_vision": ({"query_vision": True}, 0.0, "the vision tower reads the question (model.SimpleSegLiteModel."
                                                  "prompt_query added to every patch): the scene summary it writes "
                                                  "into every token can be the referred object's (LOG session 24)"),
    "colour_skip": ({"colour_skip": 16}, 0.0, "16 colour detectors max-pooled per image token, added past the tower "
                                            "(model.ColourSkip): colour the merger drops reaches the words (LOG session 28)"),
    "pose_aux": ({}, 0.0, "the box head asked instead which way each object is turned (data.pose_maps: cos kθ, "
                          "sin kθ per object pixel): single objects lose their IoU to orientation (LOG session 29)"),
    "encoder_free": ({}, 0.0, "no vision tower: pixelsail's single transformer over 64 patch tokens, text answers"),
}


TRAINING = {"muon": {"optimizer": "muon"},  # arms that change sft.TrainConfig, not the model
            "shape_question": {"task_mix": {**MIX, "grounding_shape": 1.0}},
            "vision_aux": {"vision_aux": 1.0}, "box_aux": {"box_aux": 1.0},
            "pose_aux": {"box_aux": 1.0, "box_target": "pose"},
            "colour_aux": {"colour_aux": 1.0}, "distractor_a": {"min_objects": 2, "max_objects": 3},
            "read_loss": {"read_loss": 1.0}}


def combined(names: list[str]) -> tuple[dict, float, str]:
    """The union of several arms' switches (``conv_stem+digit_loss``)."""
    cfg, weight = {}, 0.0
    for n in names:
        c, w, _ = ARMS[n]
        cfg, weight = {**cfg, **c}, max(weight, w)
    return cfg, weight, " + ".join(names)


def training_overrides(names: list[str]) -> dict:
    """The ``sft.TrainConfig`` fields the arms in ``names`` change (``TRAINING``)."""
    return {k: v for n in names for k, v in TRAINING.get(n, {}).items()}


VALUE_KEYS = ("x_pred", "y_pred", "x_gt", "y_gt", "polygon_per_sample", "box_per_sample", "point_per_sample")


def _train_timed(folder: Path, run, judge_only: bool) -> tuple[bool, float]:
    """``(resumed, wall seconds)`` of ``run(resume)`` — or, with ``judge_only``, of the arm's earlier run."""
    if judge_only:  # judge a trained arm again (e.g. after the judge changed); keeps its training record
        record = folder / "arm.json"
        if record.is_file():
            old = json.loads(record.read_text())
            return old["resumed"], old["train_wall_s"]
        summary = json.loads((folder / "summary.json").read_text())  # trained, never judged: the run's own record
        return bool(summary.get("resumed")), float(summary["wall_seconds"])
    resume = (folder / "checkpoints").is_dir()
    start = time.perf_counter()
    run(resume)
    return resume, time.perf_counter() - start


def _judge(load, folder: Path, steps: int, n: int, val_seed: int, threads: int,
           end_only: bool = False) -> tuple[dict, dict, object]:
    """The judge at both budgets (mid-run checkpoint, end; ``end_only``: the end alone):
    ``(scores per budget, the end's values, model)``."""
    import torch

    from simpleseg_lite.localization import localization_scores

    torch.set_num_threads(threads)
    budgets, values = {}, {}
    chosen = ((f"step {steps // 2}", folder / "checkpoints" / f"checkpoint-{steps // 2}"), (f"step {steps}", folder))
    for label, path in chosen[1:] if end_only else chosen:
        model, processor = load(path)
        budgets[label] = localization_scores(model, processor, n=n, seed=val_seed, keep_values=True)
        values = {k: budgets[label].pop(k) for k in VALUE_KEYS}  # the last budget's
    return budgets, values, model


def _record(folder: Path, net, values: dict, **fields) -> dict:
    """Write ``arm.json``: the fields, s/step, the parameter count of ``net`` and the end's coordinate values."""
    row = {**fields, "s_per_step": round(fields["train_wall_s"] / fields["steps"], 2),
           "params_M": round(sum(p.numel() for p in net.parameters()) / 1e6, 2),
           "values_at_end": values}  # polygon coordinates at the end (the lattice picture)
    (folder / "arm.json").write_text(json.dumps(row, indent=1))
    return row


def run_arm(name: str, out: Path, steps: int, seed: int, val_seed: int, n: int, threads: int,
            judge_only: bool = False, end_only: bool = False, init: str | None = None) -> dict:
    import torch

    from simpleseg_lite.model import load_model
    from simpleseg_lite.sft import TrainConfig, train

    if name == "encoder_free":
        return run_encoder_free(out, steps, seed, val_seed, n, threads, judge_only, end_only)
    model_cfg, weight, what = combined(name.split("+"))
    if ("vision_pretrain" in name.split("+")) != bool(init):
        raise SystemExit("the vision_pretrain arm and --init go together: --init is the pretrain-vision checkpoint "
                         "(its model switches must be the arm's)")
    folder = out / name
    settings = {"task_mix": MIX, "max_objects": 1, **training_overrides(name.split("+"))}
    cfg = TrainConfig(out=str(folder), stage="pretrain", max_steps=steps, batch_size=32, lr=2e-3, warmup_steps=20,
                      seed=seed, threads=threads, eval_steps=0, save_steps=steps // 2,
                      model=model_cfg, digit_loss=weight, init=init, **settings)
    resume, wall = _train_timed(folder, lambda r: train(cfg, resume=r), judge_only)
    budgets, values, model = _judge(lambda p: load_model(p, dtype=torch.float32), folder, steps, n, val_seed, threads,
                                    end_only)
    return _record(folder, model, values, arm=name, what=what, model=model_cfg, digit_loss=weight, steps=steps,
                   seed=seed, val_seed=val_seed, n=n, threads=threads, train_wall_s=round(wall, 1), resumed=resume,
                   scores=budgets, **({"init": init} if init else {}))


def run_encoder_free(out: Path, steps: int, seed: int, val_seed: int, n: int, threads: int,
                     judge_only: bool = False, end_only: bool = False) -> dict:
    """The encoder-free arm: the same recipe (single objects, MIX, 300 × 32, lr 2e-3, warm-up 20, seed) through
    ``pixelsail.train_pixelsail`` with ``text_tasks`` — the language-model loss on SimpleSeg's answers, no mask."""
    import torch

    from simpleseg_lite.pixelsail import PixelSailLite, PixelSailTrainConfig, train_pixelsail
    from simpleseg_lite.pixelsail import load as load_pixelsail

    folder = out / "encoder_free"
    cfg = PixelSailTrainConfig(out=str(folder), max_steps=steps, batch_size=32, lr=2e-3, warmup_steps=20, seed=seed,
                               threads=threads, max_objects=1, text_tasks=MIX, eval_steps=0, save_steps=steps // 2)
    resume, wall = _train_timed(folder, lambda r: train_pixelsail(cfg, resume=r), judge_only)
    tok = load_pixelsail(folder)[1]  # trainer checkpoints hold no tokenizer
    budgets, values, model = _judge(lambda p: (PixelSailLite.from_pretrained(p, dtype=torch.float32), tok), folder,
                                    steps, n, val_seed, threads, end_only)
    return _record(folder, model, values, arm="encoder_free", what=ARMS["encoder_free"][2],
                   model={"pixelsail": True}, digit_loss=0.0, steps=steps, seed=seed, val_seed=val_seed, n=n,
                   threads=threads, train_wall_s=round(wall, 1), resumed=resume, scores=budgets)


def quiet_bench(names: list[str], threads: int, steps: int = 6) -> dict:
    """Seconds per optimizer step of each arm's model on one fixed batch of 32 (median of the last
    ``steps - 2``), forward + loss + backward + the arm's optimizer step: the cost per step without the data pipeline or
    other load. Run it with nothing else on the machine."""
    import statistics

    import torch

    from simpleseg_lite import data
    from simpleseg_lite.model import TinyConfig, build_tiny_model, collate_sft
    from simpleseg_lite.muon import build_optimizer
    from simpleseg_lite.sft import ordinal_loss_for

    torch.set_num_threads(threads)
    samples = data.make_samples(32, 5, data.SyntheticConfig(max_objects=1), MIX, 0.02, decimals=2)
    rows = [{"image": s.load_image(), "prompt": s.prompt, "answer": s.answer} for s in samples]
    out = {}
    for name in names:
        model_cfg, weight, _ = combined(name.split("+"))
        model, processor = build_tiny_model(TinyConfig(**model_cfg), seed=1)
        batch = collate_sft(rows, processor)
        ordinal_loss = ordinal_loss_for(processor.tokenizer)
        opt = build_optimizer(training_overrides(name.split("+")).get("optimizer", "adamw"), model, 1e-3, 0.01,
                              (0.9, 0.98)) or torch.optim.AdamW(model.parameters(), 1e-3)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            result = model(**batch)
            loss = result.loss
            if weight:
                loss = loss + weight * ordinal_loss(result.logits, batch["labels"], batch["input_ids"])
            loss.backward()
            opt.step()
            opt.zero_grad()
            times.append(time.perf_counter() - start)
        out[name] = round(statistics.median(times[2:]), 2)
    return out


def restore(export: Path, out: Path) -> list[str]:
    """Write each arm of an ``--export`` file back to ``<out>/<arm>/arm.json`` (and the quiet s/step to
    ``<out>/quiet_bench.json``); arms already judged under ``out`` are kept as they are. Returns the arms written."""
    records = json.loads(export.read_text())["arms"]
    bench_path, written = out / "quiet_bench.json", []
    quiet = json.loads(bench_path.read_text()) if bench_path.is_file() else {}
    for r in records:
        if r.get("quiet_s_per_step") is not None:
            quiet.setdefault(r["arm"], r["quiet_s_per_step"])
        target = out / r["arm"] / "arm.json"
        if target.is_file():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({k: v for k, v in r.items() if k != "quiet_s_per_step"}, indent=1))
        written.append(r["arm"])
    out.mkdir(parents=True, exist_ok=True)
    bench_path.write_text(json.dumps(quiet))
    return written


def table(out: Path) -> str:
    from simpleseg_lite.localization import arms_paired, arms_table

    bench = out / "quiet_bench.json"
    quiet = json.loads(bench.read_text()) if bench.is_file() else {}
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("*/arm.json"))]
    rows = [{**r, "quiet_s_per_step": quiet.get(r["arm"])} for r in rows]
    return arms_table(rows) + "\n\n" + arms_paired(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arm", help=f"one of {sorted(ARMS)}, or several joined by '+'")
    ap.add_argument("--out", default="runs/arms")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--val-seed", type=int, default=2000, help="validation seed (the report uses another)")
    ap.add_argument("--n", type=int, default=100, help="samples per task in the judge")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table", metavar="DIR", help="print the table of the arms judged under DIR")
    ap.add_argument("--export", metavar="JSON", help="with --table: also write every arm's record to this file")
    ap.add_argument("--quiet-bench", metavar="ARMS", help="comma-separated arms: s/step on a fixed batch, nothing else")
    ap.add_argument("--init", help="the vision_pretrain arm: the pretrain-vision checkpoint to start from")
    ap.add_argument("--judge-only", action="store_true", help="judge an arm trained before, without training")
    ap.add_argument("--end-only", action="store_true", help="judge the end of the run only (not the mid-run budget)")
    ap.add_argument("--restore", metavar="JSON", help="write the arm records of an export (e.g. the committed "
                    "data/arms/localization_arms.json) back under --out, so new arms are tabled and paired with them")
    args = ap.parse_args()
    if args.restore:
        for name in restore(Path(args.restore), Path(args.out)):
            print(f"restored {args.out}/{name}/arm.json")
        return
    if args.quiet_bench:
        print(json.dumps(quiet_bench(args.quiet_bench.split(","), args.threads)))
        return
    if args.table:
        print(table(Path(args.table)))
        if args.export:
            rows = [json.loads(p.read_text()) for p in sorted(Path(args.table).glob("*/arm.json"))]
            bench = Path(args.table) / "quiet_bench.json"  # written by: --quiet-bench ... > DIR/quiet_bench.json
            quiet = json.loads(bench.read_text()) if bench.is_file() else {}
            for r in rows:
                r["quiet_s_per_step"] = quiet.get(r["arm"])
            Path(args.export).write_text(json.dumps({"mix": MIX, "arms": rows}, indent=1))
        return
    row = run_arm(args.arm, Path(args.out), args.steps, args.seed, args.val_seed, args.n, args.threads,
                  args.judge_only, args.end_only, args.init)
    print(json.dumps({k: v for k, v in row.items() if k != "values_at_end"}, indent=1))


if __name__ == "__main__":
    main()
