"""Can the lite model's vision path learn *what shape* an object is? (issue "A lite model that sees where")

The polygon arms showed a model that places and sizes objects well but writes one generic outline for every
shape. This probe asks the vision path alone — no language model, no text — to name the shape class of every
2-px cell of the image (``sft.VisionAuxHead``'s dense loss) and measures, on a validation seed, how often the
majority vote over an object's pixels names its shape, and the foreground IoU. A plain small CNN on the same
data and steps is the yardstick of how hard the task is.

    python scripts/shape_probe.py --variant vit --steps 300 --threads 1     # the stock tower (+ position fix)
    python scripts/shape_probe.py --variant cnn --steps 300 --threads 1     # the yardstick

Variants (at least 10 steps: the one-cycle schedule needs them): ``vit`` (TinyConfig defaults), ``vit_conv`` (patch_stem="conv"), ``vit_nomerge`` (merge_size=1),
``vit_wide`` (vision tower 256 × 6), ``cnn``. Prints one JSON line per evaluation.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

from simpleseg_lite import data
from simpleseg_lite.sft import VisionAuxHead, dense_loss
from simpleseg_lite.vision import dense_scores, scenes_batch

VARIANTS = {"vit": {}, "vit_conv": {"patch_stem": "conv"}, "vit_nomerge": {"merge_size": 1},
            "vit_wide": {"vision_hidden_size": 256, "vision_depth": 6, "vision_intermediate_size": 1024}}


class ShapeCNN(nn.Module):
    """The yardstick: five 3×3 conv layers (two of stride 2) → class logits on the 2-px grid (B, K, S/2, S/2)."""

    def __init__(self, classes: int = len(data.SHAPE_CLASSES), width: int = 48):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 3, 2, 1), nn.GELU(), nn.Conv2d(w, w, 3, 1, 1), nn.GELU(),
            nn.Conv2d(w, 2 * w, 3, 2, 1), nn.GELU(), nn.Conv2d(2 * w, 2 * w, 3, 1, 2, dilation=2), nn.GELU(),
            nn.Conv2d(2 * w, 2 * w, 3, 1, 4, dilation=4), nn.GELU(),
            nn.Upsample(scale_factor=2), nn.Conv2d(2 * w, classes, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def batch(seed: int, start: int, n: int, max_objects: int):
    return scenes_batch(seed, start, n, data.SyntheticConfig(max_objects=max_objects))


def build(variant: str):
    """``(forward(scenes) → logits (B, K, S/2, S/2), parameters, module)``."""
    if variant == "cnn":
        net = ShapeCNN()

        def forward(scenes):
            x = torch.as_tensor(np.stack([s.image for s in scenes])).permute(0, 3, 1, 2).float() / 127.5 - 1
            return net(x)

        return forward, list(net.parameters()), net
    from simpleseg_lite.model import TinyConfig, build_tiny_model

    model, processor = build_tiny_model(TinyConfig(**VARIANTS[variant]), seed=0)
    inner = model.model
    cfg = model.config.vision_config
    head = VisionAuxHead(model.config.text_config.hidden_size, 14 * cfg.spatial_merge_size)
    modules = nn.ModuleList([inner.visual, inner.image_positions, head])

    def forward(scenes):
        enc = processor.image_processor(images=[s.image for s in scenes], return_tensors="pt")
        out = inner.get_image_features(enc["pixel_values"], enc["image_grid_thw"])
        return head(torch.stack(out.pooler_output))

    return forward, [p for p in modules.parameters() if p.requires_grad], modules


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", choices=[*VARIANTS, "cnn"], default="vit")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--max-objects", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--val-seed", type=int, default=2000)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--fg-weight", type=float, default=1.0,
                    help="weight of a cell's loss per unit of object cover (1: plain; objects are ~7%% of cells)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    forward, params, _ = build(args.variant)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=args.steps, pct_start=min(20 / args.steps, 0.5),
                                                anneal_strategy="cos")
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        scenes, labels = batch(10**7 + args.seed, (step - 1) * args.batch_size, args.batch_size, args.max_objects)
        logits = forward(scenes)
        loss = dense_loss(logits, labels, args.fg_weight)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % args.eval_every == 0 or step == args.steps:
            row = {"variant": args.variant, "fg_weight": args.fg_weight, "step": step, "loss": round(loss.item(), 4),
                   "s_per_step": round((time.perf_counter() - start) / step, 3),
                   **{k: round(v, 3) if isinstance(v, float) else v
                      for k, v in dense_scores(forward, args.n, args.val_seed, args.max_objects).items()}}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
