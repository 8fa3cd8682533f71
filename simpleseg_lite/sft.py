"""Supervised training — the pre-training curriculum and SFT — through trl's ``SFTTrainer``.

The paper trains SFT → RL and, for its best models, pre-trains on web-scale grounding data first. The
lite path mirrors that on synthetic scenes:

* ``stage="pretrain"``: broad grounding from scratch — questions only the image can answer (colour,
  quadrant, point, count), text→point, text→box and some text→polygon (``PRETRAIN_MIX``);
* ``stage="sft"``: the paper's SFT task mix (text→point, text→box, text/point/box→polygon;
  ``data.SFT_TASK_MIX``), starting from the pre-trained checkpoint.

Data is generated on the fly: training example ``i`` is a pure function of ``(seed, i)``, so a run is
reproducible and resumable without storing a dataset. Progress, periodic held-out gIoU
(``history.jsonl``), checkpoints (``checkpoints/``) and ``--resume`` come from the trainer.

Departures and why: AdamW with a short warm-up and cosine decay (the paper uses Muon; ``optimizer="muon"``
is an arm, ``muon.py``); lr 2e-3 /
1e-3 and batch 32 for a 5M-parameter model trained from scratch (the paper fine-tunes at 5e-5);
fp32 on CPU (bf16 autocast is 20–30× *slower* on CPUs without native bf16, measured here);
ε = 0.02 and 2 decimals at 112 px for the lite model (median ~95 tokens vs ~470, oracle IoU 0.93 vs 0.99) while the
full path keeps the paper's ε = 0.005 and 3 decimals.

Taught in ``notebooks/05_sft.py``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import data

BOX_HEAD_FILE = "box_aux_head.pt"  # a trained BoxAuxHead beside a model (train --box-aux, pretrain-vision --box-aux)
PRETRAIN_MIX = {"grounding_colour": 1.0, "grounding_quadrant": 1.0, "grounding_point": 1.0, "grounding_count": 0.5,
                "point": 2.0, "box": 2.0, "polygon": 1.5}


@dataclass
class TrainConfig:
    """One supervised run. Defaults: the lite SFT stage on this CPU."""

    out: str = "runs/lite-sft"  # run folder: final model, checkpoints/, history.jsonl, summary.json
    stage: str = "sft"  # "pretrain" (curriculum, from scratch unless init is given) or "sft"
    init: str | None = None  # checkpoint to start from; None builds a fresh tiny model
    task_mix: dict | None = None  # None: PRETRAIN_MIX for pretrain, data.SFT_TASK_MIX for sft
    max_steps: int = 500
    batch_size: int = 32
    lr: float = 1e-3  # paper: 5e-5 (Muon, 7B); a 5M model from scratch needs far more
    warmup_steps: int = 20
    weight_decay: float = 0.01
    adam_beta2: float = 0.98
    optimizer: str = "adamw"  # "muon": Muon on hidden weight matrices, AdamW elsewhere (the paper's; muon.py)
    epsilon: float = 0.02  # paper: 0.005 (see module docstring)
    decimals: int = 2  # paper: 3
    ordering: str = "clockwise"  # the ordering ablation trains "shuffled"
    seed: int = 2
    threads: int = 2
    save_steps: int = 100
    eval_steps: int = 100  # held-out gIoU every this many steps (0: never)
    eval_n: int = 48
    eval_seed: int = 999  # never used for training (training uses seeds ≥ 10**7)
    image_size: int = 112
    max_objects: int = 3  # objects per synthetic scene (1 = the single-object warm-up of the curriculum)
    min_objects: int = 1  # 2: every training scene has a distractor (held-out checks keep 1–3 objects)
    expression_mix: dict | None = None  # weights over referring.EXPRESSION_KINDS; None: the default mix
    shape_free: float = 0.0  # share of expressions that name no shape (data.make_samples' shape_free)
    lora: bool = False  # LoRA adapters (full path, real Qwen2.5-VL)
    model: dict = field(default_factory=dict)  # model.TinyConfig fields for a fresh model, e.g. {"merge_size": 1}
    digit_loss: float = 0.0  # weight of the ordinal term on coordinate digits (``ordinal_digit_loss``); 0: off
    vision_aux: float = 0.0  # weight of the dense shape-map loss on the image tokens (``VisionAuxHead``); 0: off
    colour_aux: float = 0.0  # weight of a dense colour-map loss on the image tokens (``attach_colour_aux``); 0: off
    box_aux: float = 0.0  # weight of the dense instance-box loss on the image tokens (``BoxAuxHead``); 0: off
    box_target: str = "box"  # what that head is asked for: each object's "box" or its turn, "pose" (data.box_maps)
    # noisy prefixes (``NoisyPrefix``, a lite departure): each answer coordinate the model *reads* is moved by
    # 1…prefix_noise_steps grid steps with probability prefix_noise; the targets stay exact. 0: off
    prefix_noise: float = 0.0
    prefix_noise_steps: int = 2
    # a finite training set (synthetic data): example i uses scene i mod scene_pool, so the run sees scene_pool scenes
    # over and over, as a real data set's epochs do; 0: a fresh scene every example. With seed and a polygon-only mix
    # equal to a GSPO run's seed, its scenes are the ones that run's prompts show (``rl.training_samples``)
    scene_pool: int = 0
    prompt_order: str | None = None  # "text_first" / "image_first": set it (model.set_prompt_order); None: keep init's
    pointer_loss: float = 0.0  # weight of the pointer term (``PointerHead``: which image tokens the target covers)
    mark_loss: float = 0.0  # weight of the mark term (``MarkHead``: the LM's image states single out the target)
    mark_layer: int | None = None  # the language-model layer whose image states the mark term reads; None: the middle
    colour_skip: int = 0  # give the loaded model a ColourSkip of this many detectors (model.add_colour_skip); 0: none
    read_loss: float = 0.0  # weight of the read term (``read_out_loss``: one attention head of the answer on the target)
    read_layer: int | None = None  # the first layer (1-based) the read term trains; None: the one above the middle
    read_layers: int = 1  # the read term trains read_layer and the read_layers − 1 layers above it
    read_heads: int = 1  # … heads 0 … read_heads − 1 of each (the others stay free)
    data: str = "synthetic"  # "refcoco": the train splits of the REFER layout under refer_root (full path)
    refer_root: str | None = None
    refer_datasets: tuple = ("refcoco", "refcoco+", "refcocog", "refclef")  # the paper's SFT sources
    extra: dict = field(default_factory=dict)


class SyntheticStream(torch.utils.data.Dataset):
    """Training example ``i`` = a task drawn from the mix with rng ``(seed, i)``, then that task's sample.

    Rows are ``{"image": PIL, "prompt", "answer"}`` — what ``model.collate_sft`` batches."""

    def __init__(self, length: int, mix: dict, seed: int, cfg: TrainConfig):
        self.length, self.seed, self.cfg = length, seed, cfg
        self.tasks = list(mix)
        self.labels = cfg.vision_aux > 0 or cfg.colour_aux > 0 or cfg.box_aux > 0  # the dense maps ride along
        p = np.array([mix[t] for t in self.tasks], dtype=np.float64)
        self.p = p / p.sum()
        extra = {"expression_mix": dict(cfg.expression_mix)} if cfg.expression_mix else {}
        self.scene = data.SyntheticConfig(image_size=cfg.image_size, min_objects=cfg.min_objects,
                                          max_objects=cfg.max_objects, **extra)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        if self.cfg.scene_pool:
            i %= self.cfg.scene_pool  # a finite set, read again every scene_pool examples
        task = self.tasks[np.random.default_rng((self.seed, i)).choice(len(self.tasks), p=self.p)]
        sample_seed = self.seed * 10**7 + i  # disjoint from evaluation seeds (< 10**7)
        if task.startswith("grounding_"):
            gen = data.make_grounding_samples(1, sample_seed, self.scene, questions=(task[len("grounding_"):],),
                                              decimals=self.cfg.decimals, labels=self.labels,
                                              box_target=self.cfg.box_target)
        else:
            gen = data.make_samples(1, sample_seed, self.scene, {task: 1.0}, self.cfg.epsilon,
                                    ordering=self.cfg.ordering, decimals=self.cfg.decimals,
                                    labels=self.labels, shape_free=self.cfg.shape_free,
                                    box_target=self.cfg.box_target)
        s = next(gen)
        row = {"image": s.load_image(), "prompt": s.prompt, "answer": s.answer}
        for key, on in (("shape_labels", self.cfg.vision_aux > 0), ("colour_labels", self.cfg.colour_aux > 0)):
            if on:  # a greyscale image, so 🤗 datasets carries it like the photo
                from PIL import Image

                row[key] = Image.fromarray(s.metadata[key], mode="L")
        if self.cfg.box_aux > 0:  # the four box channels as an RGBA image, in 1/255 steps of the image side
            from PIL import Image

            row["box_maps"] = Image.fromarray(encode_box_maps(s.metadata["box_maps"]), mode="RGBA")
        # the target's mask, for the terms that need it (all zeros for a question with no single target)
        if self.cfg.pointer_loss > 0 or self.cfg.mark_loss > 0 or self.cfg.read_loss > 0:
            from PIL import Image

            from pycocotools import mask as mask_utils

            one = task != "grounding_count"  # "how many shapes?" has no single target: no pointer term
            mask = mask_utils.decode({k: s.gt_rle[k] for k in ("size", "counts")}).astype(np.uint8)
            row["target_mask"] = Image.fromarray(255 * mask * one, mode="L")
        return row


class ReferStream(torch.utils.data.Dataset):
    """RefCOCO-family training samples (text→polygon, one per sentence), cycled to ``length`` rows."""

    def __init__(self, length: int, cfg: TrainConfig):
        from .refcoco import refer_samples

        root = Path(cfg.refer_root or "")
        found = [d for d in cfg.refer_datasets if (root / d).is_dir()]
        if not found:
            raise FileNotFoundError(f"no REFER datasets {cfg.refer_datasets} under {root!s}: expected "
                                    "<root>/<dataset>/refs(<split_by>).p and instances.json (see refcoco.py)")
        self.samples = [s for d in found for s in refer_samples(root, d, "train", epsilon=cfg.epsilon,
                                                                   drop_eval_image_overlap=False, paraphrase=True)]
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        s = self.samples[i % len(self.samples)]
        return {"image": s.load_image(), "prompt": s.prompt, "answer": s.answer}


def _rows(stream):
    for i in range(len(stream)):
        yield stream[i]


def as_iterable(stream):
    """trl accepts 🤗 datasets only: wrap the stream as an ``IterableDataset`` (nothing is stored).
    On resume the trainer skips the consumed examples, which regenerates them (~1 ms each)."""
    from datasets import IterableDataset

    return IterableDataset.from_generator(_rows, gen_kwargs={"stream": stream})


def heldout_samples(cfg: TrainConfig, n: int | None = None, seed: int | None = None, task: str = "polygon"):
    """Evaluation samples at the training settings (ε, decimals, image size), from an unseen seed."""
    return list(data.make_samples(n or cfg.eval_n, cfg.eval_seed if seed is None else seed,
                                  data.SyntheticConfig(image_size=cfg.image_size), {task: 1.0}, cfg.epsilon,
                                  decimals=cfg.decimals))


def checkpointing_arg(on: bool) -> dict:
    """Activation (gradient) checkpointing as a ``TrainingArguments`` keyword, under the name the installed
    transformers reads: ``activation_checkpointing`` where it exists (later 5.x; ``gradient_checkpointing`` then
    warns and goes in 6, and mirrors the new name, which is what trl reads), else ``gradient_checkpointing``."""
    from transformers import TrainingArguments

    new = "activation_checkpointing" in TrainingArguments.__dataclass_fields__
    return {"activation_checkpointing" if new else "gradient_checkpointing": bool(on)}


def history_callback(model_ref, processor, heldout, every: int, path: Path, at_start: bool = False):
    """A trainer callback that appends the trainer's logs and, every ``every`` steps (and at step 0 when
    ``at_start``), greedy held-out gIoU on ``heldout`` to ``history.jsonl`` (the notebooks' curves)."""
    from transformers import TrainerCallback

    from .evaluate import evaluate

    def write(row):
        with path.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def held_out(step):
        r = evaluate(model_ref(), processor, heldout, dependence=False, max_new_tokens=160)
        write({"step": step, "eval_gIoU": r["gIoU"], "eval_valid_rate": r["valid_rate"]})

    class History(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            if at_start and every and heldout and state.global_step == 0:
                held_out(0)

        def on_log(self, args, state, control, logs=None, **kw):
            write({"step": state.global_step, **(logs or {})})

        def on_step_end(self, args, state, control, **kw):
            if every and heldout and state.global_step % every == 0:
                held_out(state.global_step)

    return History()


def ordinal_digit_loss(logits: torch.Tensor, labels: torch.Tensor, input_ids: torch.Tensor,
                       digit_ids: torch.Tensor, dot_id: int) -> torch.Tensor:
    """Expected-value loss on the decimal digits of coordinates: a near miss costs less than a far one.

    Cross-entropy treats "4" for "5" like "9" for "5". Here, at every label position whose target is
    the k-th decimal digit of a number (k = 1, 2: the previous input tokens are "." or "." + digit),
    ``E = Σ_d d · softmax(logits[digits])_d`` and the loss is ``|E − t| · 10^-(k-1)`` — the error in
    tenths of the image side — averaged over those positions. logits (B, L, V) predict position
    t + 1 from t (the usual shift); labels and input_ids are (B, L).
    """
    target, logits = labels[:, 1:], logits[:, :-1]
    prev, prev2 = input_ids[:, :-1], torch.nn.functional.pad(input_ids[:, :-2], (1, 0), value=-1)
    is_digit = (target.unsqueeze(-1) == digit_ids).any(-1)
    prev_digit = (prev.unsqueeze(-1) == digit_ids).any(-1)
    weight = torch.where(prev == dot_id, 1.0, torch.where(prev_digit & (prev2 == dot_id), 0.1, 0.0))
    weight = weight * is_digit
    if not weight.any():
        return logits.new_zeros(())
    p = torch.softmax(logits[..., digit_ids].float(), dim=-1)  # (B, L-1, 10)
    expected = p @ torch.arange(10, dtype=p.dtype, device=p.device)
    value = (target.unsqueeze(-1) == digit_ids).float().argmax(-1).to(p.dtype)  # the digit 0–9
    return (weight * (expected - value).abs()).sum() / (weight > 0).sum()


def ordinal_coord_loss(logits: torch.Tensor, labels: torch.Tensor, coord_ids: torch.Tensor,
                       coord_values: torch.Tensor) -> torch.Tensor:
    """``ordinal_digit_loss`` for a ``coord_tokens`` tokenizer, where each coordinate is one token.

    At every label position whose target is a coordinate token, ``E = Σ_v v · softmax(logits[coord_ids])_v``
    over the coordinate tokens' values and the loss is ``10 · |E − t|`` — the error in tenths of the image side,
    the unit of the digit loss's first decimal — averaged over those positions. logits (B, L, V) predict
    position t + 1 from t; labels (B, L); coord_ids (K,) with their values (K,) in [0, 1]."""
    target, logits = labels[:, 1:], logits[:, :-1]
    match = target.unsqueeze(-1) == coord_ids  # (B, L-1, K)
    is_coord = match.any(-1)
    if not is_coord.any():
        return logits.new_zeros(())
    p = torch.softmax(logits[is_coord][:, coord_ids].float(), dim=-1)  # (M, K)
    expected = p @ coord_values.to(p.dtype)
    value = coord_values.to(p.dtype)[match[is_coord].float().argmax(-1)]
    return 10 * (expected - value).abs().mean()


def ordinal_loss_for(tokenizer):
    """The ordinal term that fits ``tokenizer``: ``fn(logits, labels, input_ids) -> loss`` —
    ``ordinal_coord_loss`` for a ``coord_tokens`` tokenizer, ``ordinal_digit_loss`` for the character one."""
    from .model import coordinate_values

    coord_ids, coord_values = coordinate_values(tokenizer)
    if coord_ids:
        ids, values = torch.tensor(coord_ids), torch.tensor(coord_values)
        return lambda logits, labels, input_ids: ordinal_coord_loss(logits, labels, ids.to(logits.device),
                                                                    values.to(logits.device))
    digit_ids = torch.tensor(tokenizer.convert_tokens_to_ids(list("0123456789")))
    dot_id = tokenizer.convert_tokens_to_ids(".")
    return lambda logits, labels, input_ids: ordinal_digit_loss(logits, labels, input_ids, digit_ids.to(logits.device),
                                                                dot_id)


def answer_loss(model, batch: dict, labels: torch.Tensor, ordinal) -> torch.Tensor:
    """The SFT stage's answer loss on one batch without its auxiliary heads: cross-entropy over the answer tokens
    (``labels`` −100 elsewhere, as ``model.collate_sft`` writes them) plus the ordinal coordinate term ``ordinal``
    (``ordinal_loss_for``). Used beside RL: ``rl.best_sft_trainer`` (the group's best answer) and
    ``quantile_rl`` (the ground-truth answer, ``gt_sft``)."""
    logits = model(**batch, use_cache=False).logits
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                           ignore_index=-100)
    return ce + ordinal(logits, labels, batch["input_ids"])


class VisionAuxHead(torch.nn.Module):
    """A training-only dense head (``TrainConfig.vision_aux``): each image token the language model reads
    (the output of ``model.PositionalImageTokens``, (n_images, T, D), T = side²) → class logits for its
    ``token_px``-px square of the image on a ``cell``-px grid. Output (n_images, classes, side·c, side·c),
    c = token_px / cell, rows and columns in image order (token t covers grid row t // side, column t % side).

    Why: the stock model's vision tower learns only from the answer's loss, and at lite budgets it learns
    *where* an object is long before *what outline* it has (``docs/lite_model.md``). The real Qwen2.5-VL's
    tower was pre-trained on web images; this loss stands in for that by asking every image token to carry
    the shape class of each 2-px cell under it. The head is removed before the final save, so checkpoints
    are plain models."""

    def __init__(self, dim: int, token_px: int, classes: int = len(data.SHAPE_CLASSES), cell: int = 2):
        super().__init__()
        if token_px % cell:
            raise ValueError(f"token_px={token_px} is not a multiple of cell={cell}")
        self.cells, self.classes, self.cell = token_px // cell, classes, cell
        self.proj = torch.nn.Linear(dim, self.cells ** 2 * classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n, t, _ = tokens.shape
        side, c = round(t ** 0.5), self.cells
        if side * side != t:
            raise ValueError(f"expected a square grid of image tokens, got {t}")
        x = self.proj(tokens).view(n, side, side, c, c, self.classes)
        return x.permute(0, 5, 1, 3, 2, 4).reshape(n, self.classes, side * c, side * c)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor, fg_weight: float = 1.0) -> torch.Tensor:
        """``dense_loss`` of this head's ``logits`` against ``labels`` (n_images, H, W) class indices."""
        if labels.shape[-1] != logits.shape[-1] * self.cell or labels.shape[-2] != logits.shape[-2] * self.cell:
            raise ValueError(f"labels of {tuple(labels.shape[-2:])} px do not fit the head's "
                             f"{tuple(logits.shape[-2:])} grid of {self.cell}-px cells")
        return dense_loss(logits, labels, fg_weight)


def dense_loss(logits: torch.Tensor, labels: torch.Tensor, fg_weight: float = 1.0) -> torch.Tensor:
    """Soft cross-entropy of ``logits`` (n, K, h, w) against class maps ``labels`` (n, H, W), H = h · cell:
    each cell's target is the share of its pixels in each class. A cell weighs 1 + (fg_weight − 1) × the share
    of it that objects cover (objects are ~7% of a synthetic scene's cells)."""
    k, cell = logits.shape[1], labels.shape[-1] // logits.shape[-1]
    target = torch.nn.functional.avg_pool2d(
        torch.nn.functional.one_hot(labels.long(), k).permute(0, 3, 1, 2).float(), cell)
    weight = 1 + (fg_weight - 1) * (1 - target[:, 0])
    return (-(target * logits.float().log_softmax(1)).sum(1) * weight).sum() / weight.sum()


class BoxAuxHead(VisionAuxHead):
    """A training-only dense head (``TrainConfig.box_aux``, a lite departure): each image token → for each
    ``cell``-px cell under it, the box (x0, y0, x1, y1) of the object covering that cell, as fractions of the image
    side (``data.box_maps``; sigmoid outputs). Output (n_images, 4, side·c, side·c), laid out as ``VisionAuxHead``.

    Why: at 112 px the tower's attention spans the whole image, and trained only by the answers it writes a
    summary of the scene into every token; with two objects that summary is of both, and the answers follow it
    (LOG session 23: text→point lands inside the target 0.32 of the time with distractors, 0.59–0.70 when only the
    background tokens are recomputed with the distractors erased). Asking each object's pixels for *their own*
    object's extent is an instance-level target: global attention may be used, but to group an object's pixels,
    not to average the scene. Measured: +0.020 [+0.003, +0.036] gIoU in a short chain, all of it on single
    objects. The head is removed before the final save."""

    def __init__(self, dim: int, token_px: int, cell: int = 2):
        super().__init__(dim, token_px, classes=4, cell=cell)

    def loss(self, logits: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """``box_loss`` of this head's ``logits`` against ``maps`` (n_images, 4, H, W) (``data.box_maps``)."""
        if maps.shape[-1] != logits.shape[-1] * self.cell or maps.shape[-2] != logits.shape[-2] * self.cell:
            raise ValueError(f"box maps of {tuple(maps.shape[-2:])} px do not fit the head's "
                             f"{tuple(logits.shape[-2:])} grid of {self.cell}-px cells")
        return box_loss(logits, maps)


def box_loss(logits: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
    """L1 (summed over x0, y0, x1, y1, in fractions of the image side) between ``sigmoid(logits)`` (n, 4, h, w)
    and each cell's box: the cover-weighted mean of ``maps`` (n, 4, H, W), H = h · cell, over the cell's object
    pixels. A cell weighs the share of it that objects cover, so background cells add nothing; 0 for a batch
    with no object pixels."""
    cell = maps.shape[-1] // logits.shape[-1]
    on = (maps[:, 2:3] > 0).float()  # object pixels: their box's x1 is > 0
    cover = torch.nn.functional.avg_pool2d(on, cell)
    target = torch.nn.functional.avg_pool2d(maps.float() * on, cell) / cover.clamp_min(1e-6)
    err = (logits.float().sigmoid() - target).abs().sum(1, keepdim=True)
    return (err * cover).sum() / cover.sum().clamp_min(1e-6)


def gate_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BCE of the object gate's logits (n, T) (``model.PositionalImageTokens.gate_logits``, tokens row-major on a
    side × side grid) against whether any object pixel of ``labels`` (n, H, W) class maps (0: background) falls
    in the token's square."""
    fg = object_tokens(labels, round(logits.shape[1] ** 0.5)).float()
    return torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), fg.to(logits.device))


def object_tokens(labels: torch.Tensor, side: int) -> torch.Tensor:
    """(n, side²) bool, row-major: does any object pixel of ``labels`` (n, H, W) class maps (0: background) fall in
    each token's square of a side × side grid? The object gate's target (``gate_loss``, ``vision.gate_scores``)."""
    return torch.nn.functional.max_pool2d((labels > 0).float()[:, None], labels.shape[-1] // side).flatten(1) > 0


def encode_box_maps(maps: np.ndarray) -> np.ndarray:
    """``data.box_maps`` (4, H, W) floats in [0, 1] → uint8 (H, W, 4), in 1/255 steps (how rows carry them)."""
    return np.round(np.clip(maps, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)


def _attach_image_token_head(model, name: str, head: torch.nn.Module, switch: str) -> torch.nn.Module:
    """Set ``head`` as ``model.<name>`` with a hook that keeps the image tokens of the last forward pass in
    ``head.tokens``. Needs the lite model class (``model.PositionalImageTokens``); ``switch`` names the option."""
    inner = getattr(getattr(model, "model", None), "image_positions", None)
    if inner is None:
        raise ValueError(f"{switch} needs the lite model (TinyConfig.position_fix=True): it reads the image "
                         "tokens of model.PositionalImageTokens")
    setattr(model, name, head)

    def keep(module, args, output):
        head.tokens = output

    inner.register_forward_hook(keep)
    return head


def attach_vision_aux(model) -> VisionAuxHead:
    """Add a ``VisionAuxHead`` as ``model.lite_vision_aux``, reading the image tokens of the last forward pass."""
    token_px = 14 * model.config.vision_config.spatial_merge_size
    return _attach_image_token_head(model, "lite_vision_aux",
                                    VisionAuxHead(model.config.text_config.hidden_size, token_px), "vision_aux")


def attach_colour_aux(model) -> VisionAuxHead:
    """Add a second ``VisionAuxHead`` as ``model.lite_colour_aux`` (``TrainConfig.colour_aux``, a lite departure):
    the same image tokens name each 2-px cell's colour (``data.colour_labels``: background + the colours).

    Why: the shape-only dense loss (``vision_aux``, and the vision pre-training) leaves the image tokens blind
    to colour — a linear probe reads the colour of the object under a token at 0.28 (chance 0.23; the token's
    mean RGB gives 0.998) from the session-16 lite-sft (``scripts/diagnostics/token_probe.py``, LOG session 20)
    — and then "the red shape" cannot be grounded in a scene with a second object (mean IoU 0.07)."""
    token_px = 14 * model.config.vision_config.spatial_merge_size
    return _attach_image_token_head(model, "lite_colour_aux", VisionAuxHead(
        model.config.text_config.hidden_size, token_px, classes=1 + len(data.COLOURS)), "colour_aux")


def attach_box_aux(model) -> BoxAuxHead:
    """Add a ``BoxAuxHead`` as ``model.lite_box_aux`` (``TrainConfig.box_aux``), reading the image tokens of the
    last forward pass."""
    token_px = 14 * model.config.vision_config.spatial_merge_size
    return _attach_image_token_head(model, "lite_box_aux", BoxAuxHead(model.config.text_config.hidden_size,
                                                                      token_px), "box_aux")


class PointerHead(torch.nn.Module):
    """A training-only head (``TrainConfig.pointer_loss``, a lite departure): from the language model's last
    hidden state just before the answer (the state that writes the first coordinate), score each image token
    the language model reads (``model.PositionalImageTokens``' output, (n, T, D), row-major) by a scaled dot
    product of two ``dim``-wide projections, and ask the scores to point at the tokens the target covers
    (``loss``: cross-entropy against the share of the target's pixels under each token).

    Why: with distractors the lite model's outlines land *between* objects (LOG, session 18: a two-object answer's
    centroid is a median 18% of the way from the target to the distractor, at the right size), as a read-out that
    averages over several objects' image tokens would give. Cross-entropy on coordinates charges that only through
    the coordinates; this term asks the answer's state to single out one object's tokens before any is written."""

    def __init__(self, hidden: int, dim: int = 64):
        super().__init__()
        self.query, self.key = torch.nn.Linear(hidden, dim), torch.nn.Linear(hidden, dim)

    def forward(self, state: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(n, D) answer states, (n, T, D) image tokens → (n, T) scores."""
        return torch.einsum("nd,ntd->nt", self.query(state), self.key(tokens)) / self.query.out_features ** 0.5

    @staticmethod
    def loss(scores: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of ``scores`` (n, T) against ``cells`` (n, T), each row the target's share per token;
        rows without a target (all zeros) are left out. 0 when no row has one."""
        has = cells.sum(1) > 0
        if not has.any():
            return scores.sum() * 0.0
        q = cells[has] / cells[has].sum(1, keepdim=True)
        return -(q * scores[has].float().log_softmax(1)).sum(1).mean()


def target_cells(masks: torch.Tensor, token_px: int) -> torch.Tensor:
    """(n, H, W) target masks (0/255 or 0/1) → (n, T) the share of each ``token_px`` square (row-major) the target
    covers, T = (H / token_px)²; an empty mask gives a row of zeros."""
    m = (masks > 0).float()[:, None]
    return torch.nn.functional.avg_pool2d(m, token_px).flatten(1)


def attach_pointer(model) -> PointerHead:
    """Add a ``PointerHead`` as ``model.lite_pointer``, reading the image tokens of the last forward pass."""
    return _attach_image_token_head(model, "lite_pointer", PointerHead(model.config.text_config.hidden_size),
                                    "pointer_loss")


def image_token_positions(input_ids: torch.Tensor, image_token_id: int, term: str) -> torch.Tensor:
    """(n, T) positions of each row's image tokens; every row must hold one image of the same size (the lite
    model's fixed image), else a ValueError naming ``term``."""
    image = input_ids == image_token_id
    counts = image.sum(1)
    if not bool((counts == counts[0]).all()) or int(counts[0]) == 0:
        raise ValueError(f"{term} needs one fixed-size image per row, got {counts.tolist()} image tokens")
    return image.nonzero()[:, 1].view(len(image), -1)


class MarkHead(torch.nn.Module):
    """A training-only head (``TrainConfig.mark_loss``, a lite departure): one score per image token from the
    language model's hidden state *at that token* after layer ``layer`` (not the vision tower's output), and the
    pointer's loss (``PointerHead.loss``): the scores must single out the tokens the referred object covers.

    Why: the lite model chooses among objects poorly (mean IoU 0.07 for "the red shape" beside a second object,
    LOG session 20) although its image tokens can carry colour: the choice has to travel from the prompt word
    through the answer's attention to the right image tokens, and nothing but the coordinates' cross-entropy asks
    for it. With the prompt first (``model.set_prompt_order``, "text_first"), each image token can attend to the
    sentence, and this term asks the first ``layer`` layers to mark the target in the image states themselves, so
    the layers above find one marked object, as on a single-object scene. Pixel-SAIL-lite's mask head gets the
    same direct signal from its ``[SEG]`` state. Removed before the final save (``mark_head.pt`` beside it)."""

    def __init__(self, hidden: int, layer: int):
        super().__init__()
        self.layer = layer
        self.score = torch.nn.Linear(hidden, 1)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """(n, T, D) image states → (n, T) scores."""
        return self.score(states).squeeze(-1)

    def image_states(self, hidden_states: tuple, input_ids: torch.Tensor, image_token_id: int) -> torch.Tensor:
        """The ``layer``-th entry of a forward pass's ``hidden_states`` (0: the embeddings) at the image tokens,
        (n, T, D); every row must hold the same number T of image tokens (one fixed-size image)."""
        where = image_token_positions(input_ids, image_token_id, "mark_loss")
        states = hidden_states[self.layer]
        return states.gather(1, where[..., None].expand(-1, -1, states.shape[-1]))


def attach_mark(model, layer: int | None = None) -> MarkHead:
    """Add a ``MarkHead`` as ``model.lite_mark`` reading layer ``layer`` (None: the middle one, e.g. 2 of 4)."""
    layers = model.config.text_config.num_hidden_layers
    layer = layers // 2 if layer is None else layer
    if not 1 <= layer <= layers:
        raise ValueError(f"mark_layer must be 1…{layers} (a layer of the language model), got {layer}")
    head = MarkHead(model.config.text_config.hidden_size, layer)
    model.lite_mark = head
    return head


def read_out_loss(attention: torch.Tensor, labels: torch.Tensor, input_ids: torch.Tensor, image_token_id: int,
                  cells: torch.Tensor) -> torch.Tensor:
    """The read term (``TrainConfig.read_loss``, a lite departure): ``attention`` (n, L, L) is one head's attention
    weights in one layer; at every position that predicts an answer token (``labels`` ≠ −100 one step on), its
    weights on the image tokens, renormalized over them, must follow the target's share of each token ``cells``
    (n, T): cross-entropy, averaged over those positions and the rows that have a target (0 when none has).

    Why: with a second object in the scene, the lite model's outlines land between the objects, as a read-out that
    averages over both objects' image tokens would; even when the image states mark the target (``MarkHead``), the
    answer's attention has to learn to follow the mark from the coordinates' cross-entropy alone. This term trains
    one head of one layer to look at the target, and leaves the other heads free. Measured: added to a finished
    lite-sft it costs (−0.023 gIoU, LOG session 21); on from the first stage of the chain it is the largest gain since
    coordinate tokens (+0.119 [+0.101, +0.138] in the short chain; LOG session 24), because it keeps the answers from
    learning to read the scene's summary out of the background tokens in the single-object stage."""
    predicts = torch.zeros_like(labels, dtype=torch.bool)
    predicts[:, :-1] = labels[:, 1:] != -100
    has = (cells.sum(1) > 0) & predicts.any(1)
    if not has.any():
        return attention.sum() * 0.0
    where = image_token_positions(input_ids, image_token_id, "read_loss")[has]  # (m, T)
    on_image = attention[has].gather(-1, where[:, None, :].expand(-1, attention.shape[1], -1))  # (m, L, T)
    share = on_image / on_image.sum(-1, keepdim=True).clamp_min(1e-9)  # (m, L, T)
    q = cells[has] / cells[has].sum(1, keepdim=True)
    ce = -(q[:, None] * share.clamp_min(1e-9).log()).sum(-1)  # (m, L)
    at = predicts[has].float()
    return ((ce * at).sum(1) / at.sum(1)).mean()


def lite_loss_trainer(base, tokenizer, digit_weight: float = 0.0, vision_weight: float = 0.0,
                      pointer_weight: float = 0.0, colour_weight: float = 0.0, mark_weight: float = 0.0,
                      read_weight: float = 0.0, read_at: tuple = ((3, 0),), box_weight: float = 0.0):
    """``base`` (trl's ``SFTTrainer``) with ``loss = CE + digit_weight · ordinal_loss_for(tokenizer)
    + vision_weight · VisionAuxHead.loss`` (the digit term, or the whole-coordinate term with a ``coord_tokens``
    tokenizer; the dense term needs ``attach_vision_aux`` and rows with ``shape_labels``)
    + pointer_weight · PointerHead.loss`` (needs ``attach_pointer`` and rows with ``target_mask``)
    + colour_weight · the colour head's loss`` (``attach_colour_aux``, rows with ``colour_labels``)
    + box_weight · BoxAuxHead.loss`` (``attach_box_aux``, rows with ``box_maps``)
    + mark_weight · MarkHead's loss`` (``attach_mark``, rows with ``target_mask``)
    + read_weight · read_out_loss`` averaged over the (layer, head) pairs ``read_at`` (layers 1-based; the text
    model's attention must be eager, ``train`` sets it; rows with ``target_mask``); logs each term.

    CE is the mean over the batch's answer tokens, as trl's default without gradient accumulation (with
    accumulation, trl normalizes by the tokens of all micro-batches; this trainer does not)."""
    ordinal_loss = ordinal_loss_for(tokenizer) if digit_weight else None

    class LiteLossTrainer(base):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels, shape_labels, cells = inputs["labels"], inputs.get("shape_labels"), inputs.get("target_cells")
            colour_labels = inputs.get("colour_labels")
            extra = ("labels", "shape_labels", "target_cells", "colour_labels", "box_maps")
            outputs = model(**{k: v for k, v in inputs.items() if k not in extra},
                            use_cache=False, output_hidden_states=bool(pointer_weight or mark_weight),
                            output_attentions=bool(read_weight))
            logits = outputs.logits
            ce = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                                   ignore_index=-100)
            loss, terms = ce, {"ce_loss": float(ce.detach())}
            if digit_weight:
                ordinal = ordinal_loss(logits, labels, inputs["input_ids"])
                loss, terms["digit_loss"] = loss + digit_weight * ordinal, float(ordinal.detach())
            for name, weight, maps, key in (("vision_aux", vision_weight, shape_labels, "shape_labels"),
                                            ("colour_aux", colour_weight, colour_labels, "colour_labels"),
                                            ("box_aux", box_weight, inputs.get("box_maps"), "box_maps")):
                if weight:  # a dense map loss on the image tokens, read by its training-only head
                    if maps is None:
                        raise ValueError(f"{name} needs rows with {key} (synthetic data)")
                    head = getattr(model, f"lite_{name}")
                    dense = head.loss(head(head.tokens), maps.to(logits.device))
                    loss, terms[f"{name}_loss"] = loss + weight * dense, float(dense.detach())
            gate = getattr(getattr(getattr(model, "model", None), "image_positions", None), "gate", None)
            if gate is not None and shape_labels is not None:  # the object gate learns from its own term only
                term = gate_loss(model.model.image_positions.gate_logits, shape_labels)
                loss, terms["gate_loss"] = loss + term, float(term.detach())
            if pointer_weight:
                if cells is None:
                    raise ValueError("pointer_loss needs rows with target_mask (synthetic data)")
                head = model.lite_pointer
                before = (labels != -100).float().argmax(1) - 1  # the state that predicts the answer's first token
                state = outputs.hidden_states[-1][torch.arange(len(labels)), before]
                tokens = head.tokens.reshape(len(labels), -1, head.tokens.shape[-1])
                point = head.loss(head(state, tokens), cells.to(logits.device))
                loss, terms["pointer_loss"] = loss + pointer_weight * point, float(point.detach())
            if mark_weight:
                if cells is None:
                    raise ValueError("mark_loss needs rows with target_mask (synthetic data)")
                head = model.lite_mark
                states = head.image_states(outputs.hidden_states, inputs["input_ids"], model.config.image_token_id)
                mark = PointerHead.loss(head(states), cells.to(logits.device))
                loss, terms["mark_loss"] = loss + mark_weight * mark, float(mark.detach())
            if read_weight:
                if cells is None:
                    raise ValueError("read_loss needs rows with target_mask (synthetic data)")
                read = sum(read_out_loss(outputs.attentions[layer - 1][:, head], labels, inputs["input_ids"],
                                         model.config.image_token_id, cells.to(logits.device))
                           for layer, head in read_at) / len(read_at)
                loss, terms["read_loss"] = loss + read_weight * read, float(read.detach())
            self._lite_terms = terms
            return (loss, outputs) if return_outputs else loss

        def log(self, logs, *args, **kwargs):
            if getattr(self, "_lite_terms", None) and "loss" in logs:
                logs = {**logs, **self._lite_terms}
            return super().log(logs, *args, **kwargs)

    return LiteLossTrainer


class NoisyPrefix:
    """Teacher forcing with noisy prefixes (``TrainConfig.prefix_noise``; scheduled sampling's cheap cousin).

    Why: the lite-sft writes each vertex from the vertices it has already written. Trained only on exact prefixes,
    it learns to continue the outline *relative to* them, so an early error of a pixel or two carries through the
    rest of the answer: on 300 validation scenes (seed 999), the polygon whose every coordinate is the median given
    the ground-truth prefix scores 0.784 gIoU, the free-running answer 0.648 (0.810 against 0.742 on the answers
    that outline the right object; ``headroom.exposure_gap``, papermill_runs/LOG.md session 33).

    Here, in a collated batch, each answer coordinate token (``labels`` ≠ −100) in ``input_ids`` is replaced, with
    probability ``rate``, by the coordinate ``k`` grid steps away (k uniform in ±1…±``steps``, clipped to [0, 1],
    written as the answer text writes it: ``model.CoordinateDecoding.canonical``); ``labels`` keep the exact answer. The model
    therefore learns the next coordinate from a prefix that is slightly off: it has to read the position from the
    image. Needs a ``coord_tokens`` tokenizer (a coordinate is one token)."""

    def __init__(self, tokenizer, rate: float, steps: int, seed: int = 0):
        from .model import CoordinateDecoding

        if not (0.0 <= rate <= 1.0 and steps >= 1):
            raise ValueError(f"prefix_noise is a share in [0, 1] and prefix_noise_steps ≥ 1, got {rate}, {steps}")
        try:
            grid = CoordinateDecoding(tokenizer)  # the coordinate tokens, and the one the answer writes per hundredth
        except ValueError as e:
            raise ValueError("prefix_noise needs a coord_tokens tokenizer (each coordinate one token)") from e
        self.canonical = grid.canonical
        self.step_of = torch.full((len(tokenizer),), -1, dtype=torch.long)  # any coordinate token → its hundredth
        self.step_of[grid.ids] = torch.round(grid.values.double() * 100).long()
        self.rate, self.steps = rate, steps
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """A noisy copy of ``input_ids`` (B, L); ``labels`` (B, L) mark the answer tokens."""
        k = self.step_of[input_ids.clamp(min=0, max=len(self.step_of) - 1)]
        coord = (labels != -100) & (k >= 0)
        hit = coord & (torch.rand(input_ids.shape, generator=self.generator) < self.rate)
        shift = torch.randint(1, self.steps + 1, input_ids.shape, generator=self.generator)
        shift = shift * (torch.randint(0, 2, input_ids.shape, generator=self.generator) * 2 - 1)
        moved = self.canonical[(k + shift).clamp(0, 100)]
        return torch.where(hit, moved, input_ids)


def collate_with_labels(examples: list[dict], processor, noise: NoisyPrefix | None = None) -> dict:
    """``model.collate_sft`` plus ``shape_labels`` / ``colour_labels`` (n, H, W) and ``box_maps`` (n, 4, H, W)
    when the rows carry them (``vision_aux`` / ``colour_aux`` / ``box_aux``); with ``noise``, the answers'
    coordinates in ``input_ids`` made noisy (``NoisyPrefix``; ``labels`` stay exact)."""
    from .model import collate_sft

    batch = collate_sft(examples, processor)
    if noise is not None:
        batch["input_ids"] = noise(batch["input_ids"], batch["labels"])
    for key in ("shape_labels", "colour_labels"):
        if key in examples[0]:
            batch[key] = torch.as_tensor(np.stack([np.asarray(ex[key]) for ex in examples]))
    if "box_maps" in examples[0]:
        rgba = np.stack([np.asarray(ex["box_maps"]) for ex in examples])  # (n, H, W, 4) uint8
        batch["box_maps"] = torch.as_tensor(rgba).permute(0, 3, 1, 2).float() / 255
    if "target_mask" in examples[0]:  # pointer_loss: the target's share of each image token the LM reads
        masks = torch.as_tensor(np.stack([np.asarray(ex["target_mask"]) for ex in examples]))
        grid = batch["image_grid_thw"][0]
        token_px = masks.shape[-1] // (int(grid[2]) // processor.image_processor.merge_size)
        batch["target_cells"] = target_cells(masks, token_px)
    return batch


def run_and_save(trainer, processor, out: Path, resume: bool, lora: bool, summary: dict) -> Path:
    """Train (from the last checkpoint in ``out/checkpoints`` when ``resume``), then save the final model —
    LoRA adapters folded into the weights, so the folder loads like any checkpoint — its processor, and
    ``summary.json`` (``summary`` plus wall time and whether it resumed). One process writes on several GPUs."""
    checkpoints = sorted((out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(checkpoints[-1]) if resume and checkpoints else None)
    wall = time.perf_counter() - start
    if not trainer.is_world_process_zero():
        return out
    final = trainer.model.merge_and_unload() if lora else trainer.model
    if hasattr(final, "lite_vision_aux"):  # a training-only head: the saved model is a plain one, and the head
        torch.save(final.lite_vision_aux.state_dict(), out / "vision_aux_head.pt")  # goes beside it for the next stage
        del final.lite_vision_aux
    for name, file in (("lite_pointer", "pointer_head.pt"), ("lite_colour_aux", "colour_aux_head.pt"),
                       ("lite_mark", "mark_head.pt"), ("lite_box_aux", BOX_HEAD_FILE)):
        if hasattr(final, name):  # the same for the other training-only heads
            torch.save(getattr(final, name).state_dict(), out / file)
            delattr(final, name)
    final.save_pretrained(out)
    processor.save_pretrained(out)
    summary = {**summary, "wall_seconds": round(wall, 1), "resumed": bool(resume and checkpoints),
               "device": "cuda" if torch.cuda.is_available() else "cpu"}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return out


def train(cfg: TrainConfig, resume: bool = False) -> Path:
    """Run one supervised stage; returns the folder holding the final model (``cfg.out``)."""
    from functools import partial

    from trl import SFTConfig, SFTTrainer

    from .model import LoraSettings, build_tiny_model, load_model
    from .muon import build_optimizer

    synthetic_only = {  # training-only switches that only the synthetic scenes give a meaning to
        "vision_aux": "its target is each pixel's shape class", "colour_aux": "its target is each pixel's colour",
        "box_aux": "its target is each object pixel's box",
        "pointer_loss": "the lite model's image tokens", "read_loss": "its target is the referred object's mask",
        "mark_loss": "its target is the referred object's mask",
        "scene_pool": "it makes the endless scene stream finite; RefCOCO is finite already"}
    for name, why in synthetic_only.items():
        if getattr(cfg, name) and cfg.data != "synthetic":
            raise ValueError(f"{name} needs synthetic data ({why}); set {name}=0 for RefCOCO")
    if cfg.scene_pool < 0:
        raise ValueError(f"scene_pool is a number of synthetic scenes ≥ 0 (0: a fresh scene every example), got "
                         f"{cfg.scene_pool}")
    if cfg.box_target not in data.BOX_TARGETS:
        raise ValueError(f"box_target must be one of {data.BOX_TARGETS} (what the box head is asked for), "
                         f"got {cfg.box_target!r}")
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)  # created below, once the model has loaded and every setting has been checked
    cuda = torch.cuda.is_available()
    if cfg.init:
        # a real Qwen2.5-VL (LoRA) on a GPU trains in bf16 at a pinned image size; the tiny model in fp32
        dtype = torch.bfloat16 if cuda and cfg.lora else torch.float32
        model, processor = load_model(cfg.init, lora=LoraSettings() if cfg.lora else None, dtype=dtype,
                                      image_size=cfg.image_size if cfg.lora else None)
    else:
        from .model import TinyConfig

        model, processor = build_tiny_model(TinyConfig(**{"image_size": cfg.image_size, **cfg.model}), seed=cfg.seed)
    if cfg.colour_skip and not getattr(model.config, "lite_colour_skip", 0):  # a checkpoint that had none
        from .model import add_colour_skip

        add_colour_skip(model, cfg.colour_skip, seed=cfg.seed)
    if getattr(model.config, "lite_object_gate", False) and not cfg.vision_aux:
        raise ValueError("a model with object_gate trains its gate on the shape maps: set vision_aux > 0 "
                         "(synthetic data)")
    if cfg.prompt_order:
        from .model import set_prompt_order

        set_prompt_order(processor, cfg.prompt_order)
    if cfg.mark_loss:
        from .model import prompt_order

        if prompt_order(processor) != "text_first":
            raise ValueError("mark_loss needs the prompt before the image (prompt_order='text_first'): with the "
                             f"image first ({prompt_order(processor)}), no image token can see the sentence")
    mix = cfg.task_mix or (PRETRAIN_MIX if cfg.stage == "pretrain" else data.SFT_TASK_MIX)
    n_rows = cfg.max_steps * cfg.batch_size
    stream = ReferStream(n_rows, cfg) if cfg.data == "refcoco" else SyntheticStream(n_rows, mix, cfg.seed, cfg)
    dataset = as_iterable(stream)
    args = SFTConfig(
        output_dir=str(out / "checkpoints"), max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr, lr_scheduler_type="cosine", warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay, adam_beta2=cfg.adam_beta2, max_grad_norm=1.0,
        logging_steps=10, save_steps=cfg.save_steps, save_total_limit=2, seed=cfg.seed, report_to=[],
        use_cpu=not cuda, bf16=cuda and torch.cuda.is_bf16_supported(), **checkpointing_arg(cuda and cfg.lora),
        remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True}, dataloader_num_workers=0,
    )
    history = out / "history.jsonl"
    if not resume and history.exists():
        history.unlink()
    if cfg.vision_aux:
        head = attach_vision_aux(model)  # before the optimizer, so the head is trained (and checkpointed) too
        saved = Path(cfg.init or "") / "vision_aux_head.pt"  # by vision.pretrain_vision or an earlier stage
        if cfg.init and saved.is_file():
            head.load_state_dict(torch.load(saved))
    for on, attach, file in ((cfg.pointer_loss, attach_pointer, "pointer_head.pt"),
                             (cfg.colour_aux, attach_colour_aux, "colour_aux_head.pt"),
                             (cfg.box_aux, attach_box_aux, BOX_HEAD_FILE)):
        saved = Path(cfg.init or "") / file  # an earlier stage trained with it
        if on:
            extra_head = attach(model)
            if cfg.init and saved.is_file():
                extra_head.load_state_dict(torch.load(saved))
    if cfg.mark_loss:
        mark = attach_mark(model, cfg.mark_layer)
        saved = Path(cfg.init or "") / "mark_head.pt"
        if cfg.init and saved.is_file():
            state = torch.load(saved)
            if mark.score.weight.shape == state["score.weight"].shape:
                mark.load_state_dict(state)
    read_at = ()
    if cfg.read_loss:
        layers, heads = model.config.text_config.num_hidden_layers, model.config.text_config.num_attention_heads
        first = cfg.read_layer or min(layers, layers // 2 + 1)
        if not (1 <= first and cfg.read_layers >= 1 and first + cfg.read_layers - 1 <= layers):
            raise ValueError(f"read_layer {first} and read_layers {cfg.read_layers} must name layers within "
                             f"1…{layers} of the language model")
        if not 1 <= cfg.read_heads <= heads:
            raise ValueError(f"read_heads must be 1…{heads} (the heads of a layer), got {cfg.read_heads}")
        read_at = tuple((layer, head) for layer in range(first, first + cfg.read_layers)
                        for head in range(cfg.read_heads))
        model.set_attn_implementation({"text_config": "eager"})  # sdpa returns no attention weights
    trainer_class = lite_loss_trainer(SFTTrainer, processor.tokenizer, cfg.digit_loss, cfg.vision_aux,
                                      cfg.pointer_loss, cfg.colour_aux, cfg.mark_loss, cfg.read_loss, read_at,
                                      cfg.box_aux) \
        if any((cfg.digit_loss, cfg.vision_aux, cfg.pointer_loss, cfg.colour_aux, cfg.mark_loss, cfg.read_loss,
                cfg.box_aux)) else SFTTrainer
    optimizer = build_optimizer(cfg.optimizer, model, cfg.lr, cfg.weight_decay, (0.9, cfg.adam_beta2))
    noise = NoisyPrefix(processor.tokenizer, cfg.prefix_noise, cfg.prefix_noise_steps, cfg.seed) \
        if cfg.prefix_noise else None
    out.mkdir(parents=True, exist_ok=True)
    trainer = trainer_class(model=model, args=args, train_dataset=dataset, processing_class=processor,
                            data_collator=partial(collate_with_labels, processor=processor, noise=noise),
                            optimizers=(optimizer, None))
    heldout = heldout_samples(cfg) if cfg.eval_steps else []
    trainer.add_callback(history_callback(lambda: trainer.model, processor, heldout, cfg.eval_steps, history))
    return run_and_save(trainer, processor, out, resume, cfg.lora,
                        {"config": asdict(cfg), "task_mix": mix, "steps": cfg.max_steps, "torch_threads": cfg.threads})


def write_model_card(folder: str | Path, name: str, command: str, metrics: dict, notes: str = "") -> Path:
    """``README.md`` next to a checkpoint: how to regenerate it and what it scores (from ``summary.json``)."""
    import platform

    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text())
    cfg = summary["config"]
    size_mb = sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 1e6
    rows = "\n".join(f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items())
    text = f"""# {name}

A tiny Qwen2.5-VL (`SimpleSegLiteForConditionalGeneration`, {size_mb:.1f} MB of safetensors) trained by
simpleseg-lite's own code. Stage: **{cfg['stage']}**; task mix: `{summary['task_mix']}`.

## Regenerate

```bash
{command}
```

Seed {cfg['seed']}, {cfg['max_steps']} steps × batch {cfg['batch_size']}, lr {cfg['lr']} (AdamW, cosine, warm-up
{cfg['warmup_steps']}), ε = {cfg['epsilon']} of the perimeter, {cfg['decimals']} decimals, {cfg['image_size']}-px
synthetic scenes of {cfg.get('min_objects', 1)}–{cfg.get('max_objects', 3)} objects (`data.SyntheticConfig` otherwise), ordering {cfg['ordering']}. Training samples come from seeds
≥ 10**7; evaluation uses seed 1000. Wall time {summary['wall_seconds'] / 60:.1f} min on {summary['device']}
({summary['torch_threads']} threads; {platform.processor() or platform.machine()}, the 2-core development machine,
shared with other work while it ran).

## Metrics

| metric | value |
|---|---|
{rows}

{notes}
"""
    path = folder / "README.md"
    path.write_text(text)
    return path
