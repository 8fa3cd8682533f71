"""Vision pre-training: the lite stand-in for Qwen2.5-VL's pre-trained vision tower.

SimpleSeg starts from a VLM whose vision tower has seen billions of images, so it arrives knowing edges,
corners and shapes. The lite model's tower starts from random weights and learns only from the answers' loss.
Measured here (``papermill_runs/LOG.md``, session 13), that left it knowing *where* an object is long before
*what outline* it has: the polygon arms wrote one generic blob for every shape.

This stage trains the vision path alone — the ViT, its merger and ``model.PositionalImageTokens``, i.e. the
image tokens the language model reads — to name the shape class of every 2-px cell of synthetic scenes
(``sft.VisionAuxHead``'s dense loss, ``data.shape_labels``). No text, no language model, so a step costs about
a quarter of a VLM step. The result is a whole tiny VLM checkpoint (the language model untouched at its
random init) that the next stages load with ``--init``.

    simpleseg-lite pretrain-vision --out runs/vision --steps 3000 --model-config '{"coord_tokens": true}'

Measured with ``scripts/shape_probe.py`` (the same loop; single objects, batch 32, lr 2e-3, ``fg_weight`` 10):
the stock tower names 0.44 of held-out objects' shapes after 500 steps, 0.65 after 1,000 and 0.905 after
2,000 (chance 0.20), at 0.44 s/step on one thread.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.std import tqdm

from . import data
from .sft import (BOX_HEAD_FILE, BoxAuxHead, VisionAuxHead, box_loss, dense_loss,  # noqa: F401 (re-exported)
                  gate_loss, object_tokens)


HEAD_FILE = "vision_aux_head.pt"  # the trained VisionAuxHead, beside the model
COLOUR_HEAD_FILE = "colour_aux_head.pt"  # the colour head (``colour_aux``), beside it


@dataclass
class VisionPretrainConfig:
    out: str = "runs/vision"  # final model, checkpoint.pt, history.jsonl, summary.json
    max_steps: int = 3000
    batch_size: int = 32
    lr: float = 2e-3  # peak; linear warm-up, then cosine to 0
    warmup_steps: int = 20
    weight_decay: float = 0.01
    fg_weight: float = 10.0  # a cell's loss weight per unit of object cover (objects cover ~7% of cells)
    max_objects: int = 3  # objects per scene (1–3: more shapes per step than single objects)
    seed: int = 1
    threads: int = 2
    save_steps: int = 250
    eval_steps: int = 500  # shape accuracy on held-out scenes every this many steps (0: only at the end)
    eval_n: int = 200
    eval_seed: int = 2000  # validation scenes (training uses seeds ≥ 10**7)
    image_size: int = 112
    model: dict = field(default_factory=dict)  # model.TinyConfig (or pixelsail.PixelSailConfig) fields, fresh model
    init: str | None = None  # simpleseg: continue the vision path of this lite checkpoint (and its heads)
    colour_aux: float = 0.0  # simpleseg: weight of a second dense head naming each cell's colour (sft.attach_colour_aux)
    box_aux: float = 0.0  # simpleseg: weight of a dense head giving each object pixel its object's box (sft.BoxAuxHead)
    box_target: str = "box"  # simpleseg: what that head is asked for, "box" or the object's turn "pose" (data.box_maps)
    system: str = "simpleseg"  # "pixelsail": the single transformer of pixelsail.py (see pixelsail_shape_logits)


SYSTEMS = ("simpleseg", "pixelsail")


def scenes_batch(seed: int, start: int, n: int, cfg: data.SyntheticConfig, colours: bool = False):
    """Scenes ``start … start+n-1`` of ``seed`` and their ``shape_labels`` maps, (n, H, W) uint8 (joint
    (shape, colour) classes with ``colours``)."""
    scenes = [data.make_scene(np.random.default_rng((seed, start + i)), cfg) for i in range(n)]
    return scenes, torch.as_tensor(np.stack([data.shape_labels(s, colours) for s in scenes]))


def shape_logits(model, processor, head: VisionAuxHead, scenes) -> torch.Tensor:
    """(n, classes, S/2, S/2) class logits of each 2-px cell, read off the image tokens the LM would see."""
    enc = processor.image_processor(images=[s.image for s in scenes], return_tensors="pt")
    tokens = model.model.get_image_features(enc["pixel_values"], enc["image_grid_thw"]).pooler_output
    return head(torch.stack(tokens))


def joint_logits(shape: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """Joint (shape, colour) class scores (``data.shape_labels(…, colours=True)``'s classes) from a shape head's
    and a colour head's logits, (n, classes, h, w) each: log p(shape) + log p(colour), background with background.
    What ``dense_scores(…, colours=True)`` reads when shape and colour have heads of their own."""
    ls, lc = shape.log_softmax(1), colour.log_softmax(1)
    pairs = (ls[:, 1:, None] + lc[:, None, 1:]).flatten(1, 2)  # shape-major, as shape_labels numbers them
    return torch.cat([ls[:, :1] + lc[:, :1], pairs], 1)


def pixelsail_shape_logits(model, scenes) -> torch.Tensor:
    """``shape_logits`` for Pixel-SAIL-lite: the image alone through the single transformer (its g² vision tokens,
    bidirectional among themselves), read by ``model.vision_aux_head``. With the paper's image-first layout the
    vision states of a full prompt are the same as these (they never attend to the text after them), so what this
    stage teaches is what the mask head and the language model later read."""
    from .pixelsail import pixel_values

    cfg = model.config
    pv = pixel_values([s.image for s in scenes], cfg.image_size).to(model.patch_embed.weight.device)
    ids = torch.full((len(scenes), cfg.grid ** 2), cfg.image_token_id, device=pv.device)
    hidden = model.hidden(pv, ids, torch.ones_like(ids))
    return model.vision_shape_logits(hidden, ids)


def shape_scores(model, processor, head: VisionAuxHead, n: int = 200, seed: int = 2000, max_objects: int = 3,
                 image_size: int = 112) -> dict:
    """``shape_acc``: share of objects whose pixels' majority class is their shape (chance 1 / 5 with the
    default shapes); ``fg_iou``: IoU of predicted vs true foreground, over ``n`` held-out scenes."""
    return dense_scores(lambda scenes: shape_logits(model, processor, head, scenes), n, seed, max_objects, image_size)


def dense_scores(forward, n: int = 200, seed: int = 2000, max_objects: int = 3, image_size: int = 112,
                 colours: bool = False) -> dict:
    """``shape_scores`` for any ``forward(scenes) → (n, classes, h, w)`` class logits on a grid of whole cells.
    ``colours``: the logits are joint (shape, colour) classes (``data.shape_labels(…, colours=True)``); the shape
    is voted over them, and ``colour_acc`` (share of objects whose pixels' majority colour is theirs) is added."""
    cfg = data.SyntheticConfig(image_size=image_size, max_objects=max_objects)
    right = right_colour = total = inter = union = 0
    with torch.no_grad():
        for start in range(0, n, 50):
            scenes, labels = scenes_batch(seed, start, min(50, n - start), cfg)
            logits = forward(scenes)
            cell = labels.shape[-1] // logits.shape[-1]
            joint = logits.argmax(1).repeat_interleave(cell, 1).repeat_interleave(cell, 2).numpy()
            pred = data.label_shapes(joint, colours)
            for s, p, j in zip(scenes, pred, joint):
                for o in s.objects:
                    votes = np.bincount(p[o.mask.view(bool)], minlength=len(data.SHAPE_CLASSES))[1:]
                    right += int(votes.argmax() + 1 == data.SHAPE_CLASSES.index(o.name))
                    if colours:
                        hue = np.bincount(data.label_colours(j[o.mask.view(bool)]), minlength=len(data.COLOURS) + 1)
                        right_colour += int(hue[1:].argmax() == list(data.COLOURS).index(o.colour))
                    total += 1
            fg_p, fg_t = pred > 0, labels.numpy() > 0
            inter, union = inter + int((fg_p & fg_t).sum()), union + int((fg_p | fg_t).sum())
    out = {"shape_acc": right / total, "fg_iou": inter / max(union, 1), "objects": total}
    return {**out, "colour_acc": right_colour / total} if colours else out


def box_error_px(tokens_of, head: BoxAuxHead, n: int = 200, seed: int = 2000, max_objects: int = 3,
                 image_size: int = 112, target: str = "box") -> float:
    """Held-out error of a ``BoxAuxHead``: the mean over object pixels' cells of |predicted − true| box side, in
    pixels (the mean of the four sides), on ``n`` scenes of ``seed``. ``tokens_of(scenes)`` → (n, T, D) image tokens.
    ``target="pose"`` (``data.pose_maps``): the mean |predicted − true| per channel instead, unitless (0.45 = a cos or
    sin of kθ off by 1)."""
    cfg = data.SyntheticConfig(image_size=image_size, max_objects=max_objects)
    total = weight = 0.0
    with torch.no_grad():
        for start in range(0, n, 50):
            scenes, _ = scenes_batch(seed, start, min(50, n - start), cfg)
            maps = torch.as_tensor(np.stack([data.box_maps(s, target) for s in scenes]))
            logits = head(tokens_of(scenes))
            on = (maps[:, 2:3] > 0).float()
            cover = torch.nn.functional.avg_pool2d(on, head.cell)
            total += float(box_loss(logits, maps)) * float(cover.sum())
            weight += float(cover.sum())
    return total / max(weight, 1e-9) / 4 * (image_size if target == "box" else 1)


def gate_scores(model, processor, n: int = 200, seed: int = 2000, max_objects: int = 3, image_size: int = 112) -> dict:
    """How the object gate (``TinyConfig.object_gate``) sorts held-out tokens: ``gate_open_on_objects``, the share
    of tokens holding any object pixel that it keeps open, and ``gate_closed_on_background``, the share of the
    others it closes, over ``n`` scenes of ``seed``."""
    cfg = data.SyntheticConfig(image_size=image_size, max_objects=max_objects)
    fix = model.model.image_positions
    hit = objects = shut = background = 0
    with torch.no_grad():
        for start in range(0, n, 50):
            scenes, labels = scenes_batch(seed, start, min(50, n - start), cfg)
            enc = processor.image_processor(images=[s.image for s in scenes], return_tensors="pt")
            model.model.get_image_features(enc["pixel_values"], enc["image_grid_thw"])
            fg = object_tokens(labels, round(fix.gate_logits.shape[1] ** 0.5))
            open_ = fix.gate_logits > 0
            hit, objects = hit + int((open_ & fg).sum()), objects + int(fg.sum())
            shut, background = shut + int((~open_ & ~fg).sum()), background + int((~fg).sum())
    return {"gate_open_on_objects": hit / max(objects, 1), "gate_closed_on_background": shut / max(background, 1)}


def pretrain_vision(cfg: VisionPretrainConfig, resume: bool = False) -> Path:
    """Train the vision path of a fresh tiny VLM on the dense shape loss; save the whole model and its processor
    in ``cfg.out``. ``resume``: continue from ``out/checkpoint.pt`` (written every ``save_steps``).

    ``cfg.system = "pixelsail"``: a fresh Pixel-SAIL-lite instead, whose "vision path" is the patch embedding
    and the whole single transformer run on the image alone (``pixelsail_shape_logits``); the head is the
    model's own ``vision_aux_head`` (``config.vision_aux`` = 1), saved with it, so ``train --stage pixelsail
    --init`` continues with it."""
    if cfg.system not in SYSTEMS:
        raise ValueError(f"unknown system {cfg.system!r}; one of {SYSTEMS}")
    if cfg.box_target not in data.BOX_TARGETS:
        raise ValueError(f"box_target must be one of {data.BOX_TARGETS} (what the box head is asked for), "
                         f"got {cfg.box_target!r}")
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.system == "pixelsail":
        from .pixelsail import build_model

        model, processor = build_model({"image_size": cfg.image_size, **cfg.model, "vision_aux": 1.0}, seed=cfg.seed)
        head, box_head = model.vision_aux_head, None
        colours = model.config.aux_colours  # the head names shape × colour ({"aux_colours": true} in cfg.model)
        unused = ("lm_head", "prompt_proj", "upsample", "pixel_mlp", "seg_mlp", "match", "mask_mlp", "lm.embed_tokens")
        trained = model  # checkpointed whole; the optimizer holds only what this stage trains
        params = [p for name, p in model.named_parameters() if not name.startswith(unused)]

        def forward(scenes):
            return pixelsail_shape_logits(model, scenes)
    else:
        from .model import TinyConfig, build_tiny_model, load_model

        if cfg.init:  # the vision path of a lite checkpoint, its language model carried along untouched
            if cfg.model:
                raise ValueError("pretrain-vision --init continues a model as it is; give no model config")
            model, processor = load_model(cfg.init, dtype=torch.float32)
        else:
            model, processor = build_tiny_model(TinyConfig(**{"image_size": cfg.image_size, **cfg.model}),
                                                seed=cfg.seed)
        if not hasattr(model.model, "image_positions"):
            raise ValueError("pretrain-vision needs the lite model (TinyConfig.position_fix=True)")
        dim, token_px = model.config.text_config.hidden_size, 14 * model.config.vision_config.spatial_merge_size
        head = VisionAuxHead(dim, token_px)
        colour_head = VisionAuxHead(dim, token_px, classes=1 + len(data.COLOURS)) if cfg.colour_aux else None
        box_head = BoxAuxHead(dim, token_px) if cfg.box_aux else None
        for h, file in ((head, HEAD_FILE), (colour_head, COLOUR_HEAD_FILE), (box_head, BOX_HEAD_FILE)):
            if h is not None and cfg.init and (Path(cfg.init) / file).is_file():
                h.load_state_dict(torch.load(Path(cfg.init) / file))
        colours = colour_head is not None  # held-out scores then name the colour too
        trained = torch.nn.ModuleList([model.model.visual, model.model.image_positions, head,
                                       *([colour_head] if colours else []), *([box_head] if box_head is not None else [])])
        params = list(trained.parameters())

        def tokens_of(scenes):  # the image tokens the language model would read, (n, T, D)
            enc = processor.image_processor(images=[s.image for s in scenes], return_tensors="pt")
            return torch.stack(model.model.get_image_features(enc["pixel_values"], enc["image_grid_thw"]).pooler_output)

        def both(scenes):  # (shape logits, colour logits) of the same image tokens
            tokens = tokens_of(scenes)
            return head(tokens), colour_head(tokens)

        def forward(scenes):
            return joint_logits(*both(scenes)) if colours else shape_logits(model, processor, head, scenes)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:  # linear warm-up, cosine to 0
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        return 0.5 * (1 + np.cos(np.pi * (step - cfg.warmup_steps) / max(cfg.max_steps - cfg.warmup_steps, 1)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    checkpoint, history = out / "checkpoint.pt", out / "history.jsonl"
    step, wall_before = 0, 0.0
    if resume and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        trained.load_state_dict(state["trained"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step, wall_before = state["step"], state["wall_seconds"]
        torch.set_rng_state(state["torch_rng"])
    elif history.exists():
        history.unlink()
    scene_cfg = data.SyntheticConfig(image_size=cfg.image_size, max_objects=cfg.max_objects)
    start = time.perf_counter()
    model.train()

    def evaluate(at: int) -> dict:
        model.eval()
        row = {"step": at, **dense_scores(forward, cfg.eval_n, cfg.eval_seed, cfg.max_objects, cfg.image_size,
                                          colours)}
        if cfg.system == "simpleseg" and getattr(model.model.image_positions, "gate", None) is not None:
            row.update(gate_scores(model, processor, cfg.eval_n, cfg.eval_seed, cfg.max_objects, cfg.image_size))
        if box_head is not None:
            row["box_l1_px" if cfg.box_target == "box" else "pose_l1"] = box_error_px(
                tokens_of, box_head, cfg.eval_n, cfg.eval_seed, cfg.max_objects, cfg.image_size, cfg.box_target)
        model.train()
        with history.open("a") as f:
            f.write(json.dumps(row) + "\n")
        return row

    bar = tqdm(range(step, cfg.max_steps), initial=step, total=cfg.max_steps, desc="vision pre-training")
    for step in bar:
        scenes, labels = scenes_batch(10**7 + cfg.seed, step * cfg.batch_size, cfg.batch_size, scene_cfg,
                                      colours and cfg.system == "pixelsail")
        if cfg.system == "simpleseg" and (colours or box_head is not None):  # one term per head, weighted
            tokens = tokens_of(scenes)
            loss = dense_loss(head(tokens), labels, cfg.fg_weight)
            if colours:
                colour_labels = torch.as_tensor(np.stack([data.colour_labels(s) for s in scenes]))
                loss = loss + cfg.colour_aux * dense_loss(colour_head(tokens), colour_labels, cfg.fg_weight)
            if box_head is not None:
                boxes = torch.as_tensor(np.stack([data.box_maps(s, cfg.box_target) for s in scenes]))
                box_term = box_head.loss(box_head(tokens), boxes)
                loss = loss + cfg.box_aux * box_term
        else:
            loss = dense_loss(forward(scenes), labels, cfg.fg_weight)
        gate = getattr(getattr(model.model, "image_positions", None), "gate", None) if cfg.system == "simpleseg" else None
        if gate is not None:  # the object gate (TinyConfig.object_gate) learns whether a token holds an object
            loss = loss + gate_loss(model.model.image_positions.gate_logits, labels)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        done = step + 1
        if done % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
            row = {"step": done, "loss": loss.item(), "lr": schedule.get_last_lr()[0]}
            if cfg.system == "simpleseg" and box_head is not None:
                row["box_loss"] = box_term.item()  # L1 of the four box sides, in fractions of the image side
            with history.open("a") as f:
                f.write(json.dumps(row) + "\n")
        if cfg.eval_steps and done % cfg.eval_steps == 0 and done < cfg.max_steps:
            bar.write(json.dumps(evaluate(done)))
        if done % cfg.save_steps == 0 or done == cfg.max_steps:
            torch.save({"trained": trained.state_dict(), "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(), "step": done, "torch_rng": torch.get_rng_state(),
                        "wall_seconds": wall_before + time.perf_counter() - start}, checkpoint)
    final = evaluate(cfg.max_steps)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    if cfg.system == "simpleseg":  # `train --vision-aux` from this folder continues with it (Pixel-SAIL: inside)
        torch.save(head.state_dict(), out / HEAD_FILE)
        if colours:  # and `train --colour-aux` with this one
            torch.save(colour_head.state_dict(), out / COLOUR_HEAD_FILE)
        if box_head is not None:  # and `train --box-aux` with this one
            torch.save(box_head.state_dict(), out / BOX_HEAD_FILE)
    config = asdict(cfg)
    if cfg.init and (Path(cfg.init) / "summary.json").is_file():  # the answers' settings of the model carried along
        before = json.loads((Path(cfg.init) / "summary.json").read_text()).get("config", {})
        config.update({k: before[k] for k in ("epsilon", "decimals") if k in before})  # evaluate.checkpoint_settings
    summary = {"config": config, "steps": cfg.max_steps, "final": final, "resumed": bool(resume and step),
               "wall_seconds": round(wall_before + time.perf_counter() - start, 1), "torch_threads": cfg.threads}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return out
