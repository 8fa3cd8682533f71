"""The RL stage: GSPO with rule rewards through trl's ``GRPOTrainer``.

``gspo.py`` writes the objective out to read; here the same objective runs at scale. trl's
``GRPOTrainer`` becomes GSPO with ``importance_sampling_level="sequence"`` (one length-normalized
importance ratio per answer), ``loss_type="grpo"``, ``beta=0`` (no reference model, no KL) and the
paper's tiny clip range ε = 3e-4 / 4e-4. ``num_iterations=2`` reuses each batch of answers for a second
optimizer step, the only place where the ratio leaves 1 and clipping can act. With ``num_iterations=1``
every ratio is 1: the gradient of s_i = exp(mean_t log π_θ/π_old) is then the per-sequence mean of
∇log π_θ, exactly token-level GRPO's (with ``loss_type="grpo"``), so GSPO and GRPO differ only from the
second pass on. ``level="token"`` with
ε = 0.2 is the token-level GRPO twin (the notebook's comparison).

Each step: ``prompts_per_step`` referring prompts (text→polygon on synthetic scenes, fresh seeds), ``G`` =
``num_generations`` sampled answers each; every answer is scored by ``rewards`` (mask IoU, centroid,
format, optional length penalty — malformed answers score 0 and never stop the step), trl standardizes
the weighted sum within each group and takes the clipped step. Answers are sampled with vision tokens
suppressed (trl does it for processors), so an ``<|image_pad|>`` can never be re-scored.

``baseline="greedy"`` (``greedy_baseline_trainer``) measures each answer against the reward of the policy's greedy
answer to the same prompt instead of its group's mean (ReMax's baseline; a lite arm, not the paper's). Why: RL can
mostly only move the greedy answer towards the best of the group, and the samples' mean is below the greedy answer
(notebook 06's headroom), so a group-mean baseline pushes up samples that are worse than what evaluation writes.

``build_trainer`` makes the trainer (fp32 on a CPU: see its docstring); ``best_sft`` adds the SFT loss on each
group's best answer beside (or, with ``policy_loss=0``, instead of) the GSPO term — rejection-sampling fine-tuning,
an arm that lost (papermill_runs/LOG.md, session 17). ``quantile_rl.py`` is the same objective over another
sampler (coordinates drawn around the median).

Progress bar, ``history.jsonl`` (trl's logs: ``reward``, ``rewards/<name>/mean``, ``clip_ratio/*`` …,
plus held-out greedy gIoU every ``eval_steps``), ``checkpoints/`` and ``resume`` as in ``sft.py``.

Taught in ``notebooks/06_gspo_iou_rewards.py``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import data
from .rewards import REWARD_FUNCS, REWARD_WEIGHTS, gt_centroid_of, length_penalty

# Clip ranges per importance-sampling level: the GSPO paper's for sequences, the usual PPO/GRPO 0.2 for tokens.
CLIP = {"sequence": (3e-4, 4e-4), "token": (0.2, 0.2)}
SCALE_REWARDS = ("group", "batch", "none")  # GSPOConfig.scale_rewards, passed to trl as is


@dataclass
class GSPOConfig:
    """One RL run. Defaults: the lite GSPO stage on this CPU, from the committed SFT checkpoint."""

    out: str = "runs/lite-gspo"  # run folder: final model, checkpoints/, history.jsonl, summary.json
    init: str = "data/checkpoints/lite-sft"  # the policy to start from (and π_old at step 0)
    max_steps: int = 80  # optimizer steps; each batch of answers serves num_iterations of them
    prompts_per_step: int = 16
    num_generations: int = 8  # G, answers per prompt (the group)
    lr: float = 4e-5
    schedule: str = "cosine"  # lr decay to 0 (the tiny model is best at the end of a decay); "constant" too
    warmup_steps: int = 4
    temperature: float = 0.3  # low: samples stay near the greedy answer, where rewards differ most (see LOG)
    max_completion_length: int = 160  # tokens (= characters for the tiny model)
    level: str = "sequence"  # "sequence" = GSPO, "token" = GRPO
    clip: tuple | None = None  # (ε_low, ε_high); None → CLIP[level]
    num_iterations: int = 2
    # how each group's rewards become advantages, trl's ``scale_rewards``: "group" (the paper's GRPO/GSPO default:
    # divide by the group's std), "batch" (divide by the whole batch's std, so a group whose answers differ only by
    # a little outline jitter gets small advantages instead of ±1), "none" (raw differences, Dr. GRPO)
    scale_rewards: str = "group"
    # what each answer's reward is measured against: "group" (trl's: the mean reward of its group, GRPO/GSPO) or
    # "greedy" (the reward of the policy's greedy answer to the same prompt, as evaluated: ReMax's baseline,
    # ``greedy_baseline_advantages``; one extra greedy generation per prompt and batch)
    baseline: str = "group"
    reward_weights: dict = field(default_factory=lambda: dict(REWARD_WEIGHTS))
    length_budget: int = 256  # tokens before the length penalty starts (only when its weight ≠ 0)
    seed: int = 5  # training scenes use seeds seed·10**7 + i (disjoint from evaluation seeds < 10**7)
    threads: int = 2
    save_steps: int = 20
    eval_steps: int = 20  # held-out greedy gIoU every this many steps (0: never)
    eval_n: int = 48
    eval_seed: int = 999
    max_objects: int = 3
    min_objects: int = 1  # 2: every prompt has a distractor, so groups differ by *which* object (session 31 arm)
    expression_mix: dict | None = None  # weights over referring.EXPRESSION_KINDS for the prompts; None: the default mix
    # > 0: a positive control, not a way to train. Every reward is scored against the target mask moved this many
    # pixels to the right (``planted_target``), a consistent signal no SFT target carries: a working RL loop learns to
    # move its outlines there (``scripts/diagnostics/planted_shift.py`` measures how far), a stalled one does not
    plant_shift: int = 0
    # with plant_shift: "FIELD=V1,V2" (FIELD "name" or "colour" of the target object): those targets move right, every
    # other one as far left — a signal the policy can only follow where it sees the field (``plant_direction``)
    plant_split: str | None = None
    lora: bool = False  # LoRA adapters (full path, real Qwen2.5-VL)
    freeze_vision: bool = False  # keep the vision tower (``model.visual``) fixed; only the rest learns (session 16)
    best_sft: float = 0.0  # weight of the SFT loss on each group's best answer (``group_best``; 0: plain GSPO)
    policy_loss: float = 1.0  # weight of the GSPO term (0 with best_sft > 0: best-of-group SFT alone, an ablation)
    beta: float = 0.0  # weight of the per-token KL to the start policy (trl's k3 estimator; 0: GSPO's default, none)
    data: str = "synthetic"  # "refcoco": the REFER train splits under refer_root (full path)
    refer_root: str | None = None
    use_vllm: bool = False  # full path: vLLM generation (GPU, vllm installed)


def rl_prompt(prompt: str) -> list[dict]:
    """trl's conversational prompt: one user turn, an image placeholder then the text (filled from the
    row's ``image`` column by trl)."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]


def rl_row(sample) -> dict:
    """A ``data.Sample`` → a GRPO dataset row. Only the mask matters: rewards compare answers with
    ``gt_rle`` (counts as text, so 🤗 datasets stores it) and ``gt_centroid`` (normalized (x, y))."""
    rle = {"size": [int(v) for v in sample.gt_rle["size"]], "counts": _as_text(sample.gt_rle["counts"])}
    centroid = gt_centroid_of(rle)
    return {"prompt": rl_prompt(sample.prompt), "image": sample.load_image(), "gt_rle": rle,
            "gt_centroid": list(centroid) if centroid is not None else None}


def _as_text(counts):
    return counts.decode() if isinstance(counts, bytes) else counts


def rl_scenes(cfg, image_size: int):
    """The synthetic scenes of an RL run's prompts (``GSPOConfig`` or ``quantile_rl.QuantileGSPOConfig``): its object
    counts and, when set, its mix of referring-expression kinds."""
    extra = {"expression_mix": dict(cfg.expression_mix)} if cfg.expression_mix else {}
    return data.SyntheticConfig(image_size=image_size, max_objects=cfg.max_objects, min_objects=cfg.min_objects,
                                **extra)


def planted_target(sample, shift_px: int):
    """``sample`` with its target mask (``gt_rle``) moved ``shift_px`` pixels to the right (left when negative) —
    columns pushed past the edge are dropped, the freed ones are empty — and nothing else changed (prompt, image,
    answer; ``gt_box`` too is left as it was: the RL rows read only the mask and its centroid). The planted-reward
    control of ``GSPOConfig.plant_shift``: rewards scored against it favour answers drawn beside the object by that
    much, on every prompt alike."""
    from dataclasses import replace

    from pycocotools import mask as mask_utils

    from .metrics import mask_to_rle

    mask = mask_utils.decode(sample.gt_rle)
    w = mask.shape[1]
    if abs(shift_px) >= w:
        raise ValueError(f"a planted shift of {shift_px} px would move the target off a {w}-px-wide image")
    moved = np.zeros_like(mask)
    if shift_px >= 0:
        moved[:, shift_px:] = mask[:, : w - shift_px]
    else:
        moved[:, :shift_px] = mask[:, -shift_px:]
    return replace(sample, gt_rle=mask_to_rle(moved))


PLANT_FIELDS = ("name", "colour")


def plant_direction(sample, split: str | None) -> int:
    """+1 or −1: which way ``GSPOConfig.plant_split`` ("FIELD=V1,V2", FIELD one of ``PLANT_FIELDS``) moves this
    sample's planted target — right where the target object's FIELD is one of the values, left otherwise; +1 for
    every sample when ``split`` is None. Needs a synthetic sample (``metadata["objects"]`` and ``["target"]``)."""
    if split is None:
        return 1
    field_name, _, values = split.partition("=")
    wanted = {v.strip() for v in values.split(",") if v.strip()}
    if field_name not in PLANT_FIELDS or not wanted:
        raise ValueError(f"plant_split must read FIELD=V1,V2 with FIELD one of {PLANT_FIELDS}, got {split!r}")
    known = data.SHAPES if field_name == "name" else data.COLOURS
    if wanted - set(known):
        raise ValueError(f"plant_split {split!r}: unknown {field_name}(s) {sorted(wanted - set(known))}; "
                         f"known: {sorted(known)}")
    target = sample.metadata["objects"][sample.metadata["target"]]
    return 1 if target[field_name] in wanted else -1


def training_samples(cfg: GSPOConfig, image_size: int, epsilon: float, decimals: int) -> list:
    """The synthetic text→polygon samples one run consumes (max_steps / num_iterations batches of
    prompts_per_step), each a pure function of (seed, i), with min_objects..max_objects objects per scene; with
    ``plant_shift`` their targets moved (``planted_target``; right, or by ``plant_split`` right or left)."""
    if cfg.plant_shift < 0:
        raise ValueError(f"plant_shift is a distance in pixels, ≥ 0, got {cfg.plant_shift}")
    if cfg.plant_split and not cfg.plant_shift:
        raise ValueError("plant_split says which way the planted shift goes; it needs plant_shift > 0")
    n = -(-cfg.max_steps // cfg.num_iterations) * cfg.prompts_per_step
    scene = rl_scenes(cfg, image_size)
    samples = [next(data.make_samples(1, cfg.seed * 10**7 + i, scene, {"polygon": 1.0}, epsilon, decimals=decimals))
               for i in range(n)]
    if not cfg.plant_shift:
        return samples
    return [planted_target(s, cfg.plant_shift * plant_direction(s, cfg.plant_split)) for s in samples]


def training_rows(cfg: GSPOConfig, image_size: int, epsilon: float, decimals: int) -> list:
    """The prompts one run consumes as GRPO dataset rows (``training_samples``). The RefCOCO route reads the
    REFER train splits instead."""
    if cfg.data == "refcoco":
        from .refcoco import refer_samples

        if cfg.plant_shift:
            raise ValueError("plant_shift is a control on the synthetic scenes; leave it at 0 for --data refcoco")
        n = -(-cfg.max_steps // cfg.num_iterations) * cfg.prompts_per_step
        samples = refer_samples(Path(cfg.refer_root or ""), "refcoco", "train", epsilon=epsilon)
        return [rl_row(samples[i % len(samples)]) for i in range(n)]
    return [rl_row(s) for s in training_samples(cfg, image_size, epsilon, decimals)]


def reward_functions(cfg: GSPOConfig) -> tuple[list, list[float]]:
    """``(reward_funcs, weights)`` for trl; terms of weight 0 are left out. The length penalty gets the
    run's budget (the lite model's answers are ~100 characters, far below the paper's 256 tokens)."""

    def length_penalty_budget(completions, **kw):
        return length_penalty(completions, max_tokens=cfg.length_budget, **kw)

    length_penalty_budget.__name__ = "length_penalty"  # trl logs rewards under the function's name
    funcs = {**REWARD_FUNCS, "length_penalty": length_penalty_budget}
    kept = [(funcs[name], float(w)) for name, w in cfg.reward_weights.items() if w]
    return [f for f, _ in kept], [w for _, w in kept]


def group_best(advantages: torch.Tensor, group_size: int) -> torch.Tensor:
    """(B,) float mask of the best answer of each group of ``group_size`` consecutive rows (trl's layout before
    it shuffles a batch): the row with the largest advantage — the largest reward, since advantages are
    rewards standardized within the group. A group whose rewards are all equal has no best (all 0)."""
    if advantages.numel() % group_size:
        raise ValueError(f"{advantages.numel()} answers do not split into groups of {group_size}")
    a = advantages.view(-1, group_size)
    best = torch.zeros_like(a)
    best[torch.arange(len(a)), a.argmax(1)] = 1.0
    flat = (a.max(1).values - a.min(1).values) <= 1e-6
    best[flat] = 0.0
    return best.view(-1)


BASELINES = ("group", "greedy")  # GSPOConfig.baseline


def greedy_baseline_advantages(rewards: torch.Tensor, greedy: torch.Tensor, group_size: int,
                               scale: str = "group") -> torch.Tensor:
    """Advantages against the greedy answer (ReMax): ``A_i = (r_i − r_greedy(prompt of i)) / s``.

    ``rewards`` (B,) of B = n · ``group_size`` sampled answers, each group's consecutive (trl's layout); ``greedy``
    (n,) the reward of each prompt's greedy answer. ``scale``: "group" divides by the group's std of the rewards,
    "batch" by the batch's (each std + 1e-4, as trl does), "none" leaves the raw difference. With the group mean as the
    baseline every group's advantages sum to 0, so a group whose answers are all worse than the greedy one still
    pushes half of them up; here a sample is pushed up only if it beats what evaluation would have written. NaN
    rewards (unscorable answers) get advantage 0."""
    from trl.trainer.utils import nanstd

    if scale not in SCALE_REWARDS:
        raise ValueError(f"scale must be one of {SCALE_REWARDS}, got {scale!r}")
    if rewards.numel() != greedy.numel() * group_size:
        raise ValueError(f"{rewards.numel()} rewards do not match {greedy.numel()} prompts × {group_size} answers")
    grouped = rewards.view(-1, group_size)
    advantages = grouped - greedy.to(rewards).view(-1, 1)
    if scale == "group":
        advantages = advantages / (nanstd(grouped, dim=1, keepdim=True) + 1e-4)
    elif scale == "batch":
        advantages = advantages / (nanstd(rewards) + 1e-4)
    return torch.nan_to_num(advantages.reshape(-1), nan=0.0)


def greedy_baseline_trainer(cfg: GSPOConfig, base):
    """``base`` (trl's ``GRPOTrainer`` or a subclass) with advantages against each prompt's greedy answer
    (``greedy_baseline_advantages``). The greedy answers are written by ``model.generate`` — the same decoding rule
    as evaluation — once per generated batch, and scored by the run's own weighted rewards. Logged:
    ``greedy_reward`` (mean over prompts) and ``beats_greedy`` (share of sampled answers with a higher reward)."""
    from .model import generate

    class GreedyBaselineTrainer(base):
        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            g = self.num_generations
            firsts = inputs[::g]
            texts = [_prompt_text(row["prompt"]) for row in firsts]
            answers = generate(self.accelerator.unwrap_model(self.model), self.processing_class,
                               [row["image"] for row in firsts], texts, max_new_tokens=self.max_completion_length)
            columns = {k: [row[k] for row in firsts] for k in firsts[0] if k not in ("prompt", "image")}
            greedy = torch.zeros(len(firsts), len(self.reward_funcs), device=per_func.device)
            for j, func in enumerate(self.reward_funcs):
                greedy[:, j] = torch.tensor([float("nan") if v is None else v for v in func(answers, **columns)])
            weights = self.reward_weights.to(per_func.device)
            self._lite_greedy = (greedy * weights).nansum(1)
            self._lite_sampled = (per_func * weights).nansum(1)
            self._lite_sampled[torch.isnan(per_func).all(1)] = float("nan")
            return per_func

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            adv = greedy_baseline_advantages(self._lite_sampled, self._lite_greedy, self.num_generations,
                                             self.scale_rewards)
            out["advantages"] = adv.to(out["advantages"])
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["greedy_reward"].append(float(self._lite_greedy.mean()))
            beats = self._lite_sampled.view(-1, self.num_generations) > self._lite_greedy.view(-1, 1)
            self._metrics[mode]["beats_greedy"].append(float(beats.float().mean()))
            return out

    return GreedyBaselineTrainer


def _prompt_text(prompt) -> str:
    """The text of a trl conversational prompt (``rl_prompt``), or the prompt itself when it is a string."""
    if isinstance(prompt, str):
        return prompt
    return "".join(part.get("text", "") for message in prompt for part in message["content"]
                   if isinstance(part, dict) and part.get("type") == "text")


def rows_of(inputs: dict, rows: torch.Tensor) -> dict:
    """The model inputs (prompt + completion, image tensors) of the selected ``rows`` of a trl batch; one
    image per row, its patches the ``image_grid_thw`` product of that row."""
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)[rows]
    mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)[rows]
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, : inputs["prompt_ids"].shape[1]] = -100  # the answer only, as in SFT
    patches = inputs["image_grid_thw"].prod(-1).tolist()
    pixels = torch.split(inputs["pixel_values"], patches)
    keep = rows.nonzero()[:, 0].tolist()
    return {"input_ids": ids, "attention_mask": mask, "labels": labels,
            "mm_token_type_ids": inputs["mm_token_type_ids"][rows],
            "pixel_values": torch.cat([pixels[i] for i in keep]), "image_grid_thw": inputs["image_grid_thw"][rows]}


def best_sft_trainer(cfg: GSPOConfig, tokenizer):
    """``GRPOTrainer`` with ``loss = policy_loss · GSPO + best_sft · SFT(best answer of each group)``.

    The SFT term is the SFT stage's own loss (cross-entropy at temperature 1 plus the ordinal coordinate term,
    ``sft.ordinal_loss_for``) on the highest-reward sampled answer of every group that is not flat: the policy
    imitates its own best outline (rejection-sampling fine-tuning, or expert iteration), beside the policy
    gradient. A lite departure from the paper, which trains with GSPO alone (papermill_runs/LOG.md, session
    17: why). Logged as ``best_sft_loss``."""
    from trl import GRPOTrainer

    from .sft import answer_loss, ordinal_loss_for

    ordinal = ordinal_loss_for(tokenizer)

    class BestSFTTrainer(GRPOTrainer):
        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            out["lite_best"] = group_best(out["advantages"], self.num_generations)
            return out

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = 0.0
            if cfg.policy_loss:
                loss = cfg.policy_loss * super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            rows = inputs["lite_best"].bool()
            if rows.any():
                batch = rows_of(inputs, rows)
                labels = batch.pop("labels")
                sft = answer_loss(model, batch, labels, ordinal)
                self._metrics["train"]["best_sft_loss"].append(float(sft.detach()))
                loss = loss + cfg.best_sft * sft
            return loss

    return BestSFTTrainer


def attach_reference(trainer, cfg: GSPOConfig, dtype) -> None:
    """Give ``trainer`` a frozen copy of the start policy as its KL reference, with weight ``cfg.beta``.

    trl builds its reference itself only by re-loading ``config._name_or_path`` through the Auto classes, which
    would give the stock Qwen2.5-VL class without the lite model's changes; so the trainer is built with
    ``beta=0`` and the reference is loaded here by ``model.load_model`` (the policy's own class), with the same
    fused log-probability head trl puts on the policy. (With LoRA, trl's own way is used: the adapters off.)"""
    from trl.trainer.utils import add_fused_lm_head

    from .model import load_model

    ref, _ = load_model(cfg.init, dtype=dtype)
    add_fused_lm_head(ref, temperature=trainer.temperature, cast_lm_head_to_fp32=trainer.args.cast_lm_head_to_fp32)
    ref.eval().requires_grad_(False)
    trainer.ref_model = trainer.accelerator.prepare_model(ref, evaluation_mode=True)
    trainer.beta = cfg.beta


def build_trainer(cfg: GSPOConfig):
    """trl's ``GRPOTrainer`` for ``cfg`` (GSPO or its GRPO twin) and the policy's processor.

    On a CPU the trainer computes in fp32: ``bf16`` is passed as False explicitly, because ``GRPOConfig``
    turns bf16 on when it is left unset, and on a CPU that means bf16 *autocast* in every scoring forward.
    Measured on the lite policy: trl's per-token log-probabilities then differ from the fp32 policy that
    sampled the answers by up to 0.2 nats (``tests/test_rl.py`` checks that they agree to 1e-4)."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from .evaluate import checkpoint_settings
    from .model import LoraSettings, load_model, quiet_checkpointing_rename
    from .sft import checkpointing_arg

    if cfg.best_sft < 0 or cfg.policy_loss < 0 or not (cfg.best_sft or cfg.policy_loss):
        raise ValueError(f"best_sft and policy_loss must be ≥ 0 and not both 0, got {cfg.best_sft}, {cfg.policy_loss}")
    if cfg.level not in CLIP:
        raise ValueError(f"level must be one of {sorted(CLIP)}, got {cfg.level!r}")
    if cfg.beta < 0:
        raise ValueError(f"beta is a KL weight and must be ≥ 0, got {cfg.beta}")
    if cfg.scale_rewards not in SCALE_REWARDS:
        raise ValueError(f"scale_rewards must be one of {SCALE_REWARDS}, got {cfg.scale_rewards!r}")
    if cfg.baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {cfg.baseline!r}")
    if cfg.baseline == "greedy" and cfg.data != "synthetic":
        raise ValueError("baseline='greedy' is built for the synthetic data (one image per prompt); use 'group'")
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and cfg.lora else torch.float32
    settings = checkpoint_settings(cfg.init)  # the SFT run's answer format (the paper's for a real model)
    image_size, epsilon, decimals = settings["image_size"], settings["epsilon"], settings["decimals"]
    rows = training_rows(cfg, image_size, epsilon, decimals)  # before the model: a bad data path fails fast
    model, processor = load_model(cfg.init, lora=LoraSettings() if cfg.lora else None, dtype=dtype)
    # trl pads the prompts left when it generates, then calls the processor again, with the tokenizer's own padding
    # side, for the image inputs of its scoring forwards, whose `mm_token_type_ids` must line up with those prompt ids.
    # With a tokenizer that pads right (a fresh tiny model, notebook 05's SFT; the committed lite checkpoints happen to
    # pad left) every shorter prompt of a batch had its image marked k tokens early: the policy was scored and trained
    # with other 3D (mRoPE) positions than it sampled with, and a batch mixing image sizes crashed (LOG session 38)
    processor.tokenizer.padding_side = "left"
    if cfg.freeze_vision and not cfg.lora:  # (LoRA trains only language-model adapters: the tower is fixed anyway)
        for p in model.model.visual.parameters():
            p.requires_grad_(False)
    dataset = Dataset.from_list(rows)
    eps_low, eps_high = cfg.clip or CLIP[cfg.level]
    funcs, weights = reward_functions(cfg)
    batch = cfg.prompts_per_step * cfg.num_generations  # completions per optimizer step
    # completions per forward: ≤ 16 on a GPU; on a CPU ≤ 128 (one 16 × 8 batch; a batch of 1,024 in one forward took
    # > 14 GB and was killed, LOG session 17); the largest divisor of the batch under that, the rest by accumulation
    limit = 16 if cuda else 128
    chunk = max(d for d in range(1, min(batch, limit) + 1) if batch % d == 0)
    args = GRPOConfig(
        output_dir=str(out / "checkpoints"), max_steps=cfg.max_steps, learning_rate=cfg.lr,
        lr_scheduler_type="constant_with_warmup" if cfg.schedule == "constant" else cfg.schedule,
        warmup_steps=cfg.warmup_steps, weight_decay=0.0,
        per_device_train_batch_size=min(batch, chunk), gradient_accumulation_steps=max(1, batch // chunk),
        num_generations=cfg.num_generations, max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature, top_p=1.0, top_k=0, repetition_penalty=1.0,
        importance_sampling_level=cfg.level, loss_type="grpo", beta=cfg.beta if cfg.lora else 0.0,
        epsilon=eps_low, epsilon_high=eps_high, num_iterations=cfg.num_iterations,
        reward_weights=weights, scale_rewards=cfg.scale_rewards, mask_truncated_completions=False,
        logging_steps=1, save_steps=cfg.save_steps, save_total_limit=2, seed=cfg.seed, report_to=[],
        use_cpu=not cuda, bf16=bool(cuda and torch.cuda.is_bf16_supported()), **checkpointing_arg(cuda and cfg.lora),
        use_vllm=cfg.use_vllm, shuffle_dataset=False, dataloader_num_workers=0, remove_unused_columns=False,
    )
    with quiet_checkpointing_rename():
        trainer_class = best_sft_trainer(cfg, processor.tokenizer) if cfg.best_sft else GRPOTrainer
        if cfg.baseline == "greedy":
            trainer_class = greedy_baseline_trainer(cfg, trainer_class)
        trainer = trainer_class(model=model, reward_funcs=funcs, args=args, train_dataset=dataset,
                                processing_class=processor)
    if cfg.beta and not cfg.lora:
        attach_reference(trainer, cfg, dtype)
    trainer.lite_settings = {"image_size": image_size, "epsilon": epsilon, "decimals": decimals,
                             "clip": [eps_low, eps_high], "batch_size": batch}
    return trainer, processor


def train_gspo(cfg: GSPOConfig, resume: bool = False) -> Path:
    """Run the RL stage; returns the folder holding the final policy (``cfg.out``)."""
    from .evaluate import eval_samples
    from .model import quiet_checkpointing_rename
    from .sft import history_callback, run_and_save

    trainer, processor = build_trainer(cfg)
    st = trainer.lite_settings
    out = Path(cfg.out)
    history = out / "history.jsonl"
    if not resume and history.exists():
        history.unlink()
    heldout = (list(eval_samples("synthetic", cfg.eval_n, cfg.eval_seed, epsilon=st["epsilon"],
                                 decimals=st["decimals"], image_size=st["image_size"]))
               if cfg.eval_steps and cfg.data == "synthetic" else [])
    trainer.add_callback(history_callback(lambda: trainer.model, processor, heldout, cfg.eval_steps, history,
                                          at_start=True))
    with quiet_checkpointing_rename():  # trl reads it once per batch
        return run_and_save(trainer, processor, out, resume, cfg.lora, {
            "config": {**asdict(cfg), "stage": "gspo", **st, "ordering": "clockwise"},
            "task_mix": {"polygon": 1.0}, "steps": cfg.max_steps, "torch_threads": cfg.threads})


def read_history(path: str | Path) -> dict[str, np.ndarray]:
    """``history.jsonl`` → {key: (steps, values)} arrays for plotting (the last value logged per step)."""
    series: dict[str, dict[int, float]] = {}
    for line in Path(path).read_text().splitlines():
        row = json.loads(line)
        for k, v in row.items():
            if k != "step" and isinstance(v, (int, float)):
                series.setdefault(k, {})[row["step"]] = float(v)
    return {k: (np.array(list(d)), np.array(list(d.values()))) for k, d in series.items()}
