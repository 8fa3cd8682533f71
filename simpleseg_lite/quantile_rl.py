"""GSPO for the policy the lite model is judged by: the median coordinate rule, made stochastic.

The lite model answers greedily with ``model.CoordinateDecoding``: where the top token is a coordinate, it
writes the coordinate at the *median* of the distribution over coordinate values (the quantile q = 0.5 of
their CDF, values in increasing order). Plain GSPO samples every token from softmax(logits / T) instead, and
what it improves is that sampler's expected reward — measured on the lite policy (papermill_runs/LOG.md,
session 17), the sampled answers get better while the median answer gets worse (outlines inflate, the median
rule's own gain erodes).

Here the group is sampled from the median rule's stochastic twin, the *quantile window*: at a coordinate, draw
q ~ U(½ − δ, ½ + δ) and write the coordinate at quantile q (text tokens stay greedy). δ = ½ is temperature-1
sampling of coordinates; δ → 0 is the median rule itself. A coordinate token k, whose CDF interval is
[F_{k−1}, F_k], is drawn with probability

    π(k) = |[F_{k−1}, F_k] ∩ [½ − δ, ½ + δ]| / (2δ)

— differentiable in the logits through F. Its gradient moves the CDF's boundaries near the median, i.e. it
moves the median: exactly the number greedy decoding writes. Where one token's interval covers the whole
window the choice is certain (π = 1) and carries no gradient. The sequence log-probability sums log π over
the coordinate positions; GSPO (``gspo.gspo_loss``, the length-normalized sequence ratio, the paper's tiny
clip) and the group advantages (``gspo.group_advantages``) are the project's own, unchanged.

*Sparse exploration* (``rate`` < 1, session 31): each coordinate position is stochastic only with probability
``rate`` (drawn independently of the policy); the others take the median (q = ½), exactly the greedy answer's rule.
Only the stochastic positions enter the sequence log-probability, so an answer differs from the greedy one in a few
coordinates, and its reward difference — the advantage — is credited to those few tokens instead of being spread
over every coordinate of the outline.
With ``baseline="greedy"`` each answer is measured against the greedy answer to the same prompt (written with the
median everywhere): a draw is pushed up only if it beats what evaluation would write. Measured against the group's
mean instead, a draw that moves a vertex outwards beats one that moves it inwards even where both are worse than
not moving it, and the outlines inflate (LOG session 31). ``baseline="greedy+"`` keeps only the positive part of
those advantages: a draw that is worse than the median is not pushed down either (pushing the worse side down harder
moves the median towards the other side), so the median moves only towards draws that beat it.

*Choice exploration* (``first`` = k > 0, session 32): only each answer's first k coordinate positions are drawn from the
window (k = 2: the first vertex, which says *which object* the outline is of); every later coordinate takes the median,
so the rest of the outline follows the drawn start the way greedy decoding would. Only those k positions enter the
sequence log-probability. On 2–3-object validation scenes the lite-sft's greedy answer outlines the wrong object in
about one in five, and among those groups three in four hold an answer on the right one (LOG session 32): the reward
difference is large (≈ 0 against ≈ 0.75) and lands on the tokens that made the choice. Measured: it changes no
choice in 96 steps and costs the outlines (−0.015 gIoU; ``data/arms/rl_arms.json``); nor on prompts whose sentence
names the target by colour, shape or size only (``expression_mix``, where the wrong object is chosen and 97% of groups
split; LOG session 33).

*An SFT anchor* (``gt_sft`` > 0, session 32): beside GSPO, the SFT stage's loss (cross-entropy + the ordinal
coordinate term) on the same prompts' ground-truth answers; ``policy_loss = 0`` keeps the loop and drops RL, the
control that says what the RL term adds on top of the anchor.

A lite departure (the paper samples tokens at T = 1): it needs a ``coord_tokens`` tokenizer, so the full path
does not use it. Outputs like ``rl.train_gspo``: the policy, ``history.jsonl``, ``summary.json``, checkpoints.

Measured in papermill_runs/LOG.md (session 17); summarized in ``notebooks/06_gspo_iou_rewards.py``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.std import tqdm

from .gspo import ADV_EPS, clip_fraction, group_advantages, gspo_loss
from .rewards import REWARD_WEIGHTS, combined_reward, gt_centroid_of, mask_iou_reward
from .rl import SCALE_REWARDS, rl_scenes


BASELINES = ("group", "greedy", "greedy+")  # QuantileGSPOConfig.baseline


@dataclass
class QuantileGSPOConfig:
    """One run. Defaults as ``rl.GSPOConfig`` where they overlap."""

    out: str = "runs/lite-gspo-quantile"
    init: str = "data/checkpoints/lite-sft"
    max_steps: int = 120  # optimizer steps; each batch of answers serves num_iterations of them
    prompts_per_step: int = 16
    num_generations: int = 8
    lr: float = 1.4e-4
    warmup_steps: int = 4  # then cosine decay to 0
    delta: float = 0.25  # half-width of the quantile window around the median (0.5: T-1 sampling)
    rate: float = 1.0  # share of coordinate positions sampled from the window; the rest take the median (sparse exploration)
    # "greedy": advantages against each prompt's greedy (all-median) answer (rl.greedy_baseline_advantages);
    # "greedy+": only the draws that beat it, A = max(A, 0) — nothing moves where no draw beats the median
    baseline: str = "group"
    first: int = 0  # > 0: only each answer's first ``first`` coordinates are drawn, the rest take the median (choice exploration)
    scale_rewards: str = "group"  # group: Â by each group's std (the paper's); batch: by the batch's std; none: unscaled (any baseline)
    # loss = policy_loss · GSPO + gt_sft · SFT(the prompts' ground-truth answers): an SFT anchor on exact targets beside
    # RL (PPO-ptx's idea; not the paper's). policy_loss 0 with gt_sft > 0 is the control: the same loop without RL.
    gt_sft: float = 0.0
    policy_loss: float = 1.0
    num_iterations: int = 2
    clip: tuple = (3e-4, 4e-4)
    reward_weights: dict = field(default_factory=lambda: {**REWARD_WEIGHTS, "size_reward": 0.5})
    max_completion_length: int = 160
    max_objects: int = 3
    min_objects: int = 1
    expression_mix: dict | None = None  # weights over referring.EXPRESSION_KINDS for the prompts; None: the default mix
    seed: int = 5  # training scenes: seeds seed·10**7 + i, as rl.training_rows
    threads: int = 2
    eval_steps: int = 40
    eval_n: int = 48
    eval_seed: int = 999
    save_steps: int = 20


class QuantileWindow:
    """Logits processor: where the top token is a coordinate, keep only the coordinate at a random quantile
    q ~ U(½ − δ, ½ + δ) of the coordinate distribution (so greedy decoding writes it); other rows untouched.
    With ``rate`` < 1 each such position is stochastic with probability ``rate`` and takes the median (q = ½)
    otherwise; with ``first`` = k > 0 only each row's first k coordinate positions are stochastic (``rate`` is then
    not used). ``stochastic_mask()`` returns which (row, step) positions were drawn, as a (B, steps) tensor."""

    def __init__(self, coord_ids: torch.Tensor, coord_values: torch.Tensor, delta: float, generator=None,
                 rate: float = 1.0, first: int = 0):
        order = coord_values.argsort()
        self.ids, self.delta, self.generator, self.rate, self.first = coord_ids[order], delta, generator, rate, first
        self.steps: list[torch.Tensor] = []
        self.seen: torch.Tensor | None = None  # coordinates written so far, per row (for ``first``)

    def __call__(self, input_ids, scores):
        ids = self.ids.to(scores.device)
        drawn = torch.zeros(scores.shape[0], dtype=torch.bool)
        rows = (scores.argmax(-1, keepdim=True) == ids).any(-1).nonzero()[:, 0]
        if len(rows) == 0:
            self.steps.append(drawn)
            return scores
        cdf = torch.softmax(scores[rows][:, ids].float(), -1).cumsum(-1)
        if self.first > 0:
            if self.seen is None:
                self.seen = torch.zeros(scores.shape[0], dtype=torch.long)
            q = 0.5 + self.delta * (2 * torch.rand(len(rows), generator=self.generator) - 1)
            explore = self.seen[rows.cpu()] < self.first
            self.seen[rows.cpu()] += 1
            q = torch.where(explore, q, torch.full_like(q, 0.5))
            drawn[rows.cpu()] = explore
        elif self.rate <= 0.0:  # the median everywhere (the greedy answer); draws nothing from any generator
            q = torch.full((len(rows),), 0.5)
        else:
            q = 0.5 + self.delta * (2 * torch.rand(len(rows), generator=self.generator) - 1)
            explore = (torch.rand(len(rows), generator=self.generator) < self.rate if self.rate < 1.0
                       else torch.ones(len(rows), dtype=torch.bool))
            q = torch.where(explore, q, torch.full_like(q, 0.5))
            drawn[rows.cpu()] = explore
        self.steps.append(drawn)
        pick = (cdf < q.to(cdf.device).unsqueeze(-1)).sum(-1).clamp(max=len(ids) - 1)
        out = scores.clone()
        out[rows] = torch.finfo(scores.dtype).min
        out[rows, ids[pick]] = 0.0
        return out

    def stochastic_mask(self, length: int) -> torch.Tensor:
        """(B, length) float mask of the positions drawn from the window (generation steps, zero-padded)."""
        m = torch.stack(self.steps, 1).float() if self.steps else torch.zeros(0, 0)
        return torch.nn.functional.pad(m, (0, max(0, length - m.shape[1])))[:, :length]


def scaled_advantages(rewards, group_size: int, scale: str = "group") -> torch.Tensor:
    """Group-centred advantages r_i − mean_group, divided by each group's std (``"group"``, the paper's), by the whole
    batch's std (``"batch"``: a group whose answers differ only by jitter gets small advantages, one that split
    between objects large ones), or not at all (``"none"``) → (B,)."""
    if scale == "group":
        return group_advantages(rewards, group_size)
    adv = group_advantages(rewards, group_size, scale=False)
    if scale == "batch":
        return adv / (torch.as_tensor(rewards, dtype=torch.float32).std() + ADV_EPS)
    if scale == "none":
        return adv
    raise ValueError(f"scale_rewards must be one of {SCALE_REWARDS}, got {scale!r}")


def window_logprobs(logits: torch.Tensor, tokens: torch.Tensor, coord_ids: torch.Tensor,
                    coord_values: torch.Tensor, delta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """log π(k) of each token under the quantile window, and the mask of coordinate positions.

    logits (B, T, V) predict tokens (B, T) (already shifted); π(k) = |[F_{k−1}, F_k] ∩ [½ − δ, ½ + δ]| / 2δ with
    F the CDF over coordinate tokens in value order. Non-coordinate tokens get 0 (greedy, not sampled) and mask 0.
    π is floored at 1e-6 (a window the token no longer meets after an update)."""
    order = coord_values.argsort()
    ids = coord_ids[order].to(logits.device)
    match = tokens.unsqueeze(-1) == ids  # (B, T, K)
    is_coord = match.any(-1)
    cdf = torch.softmax(logits[..., ids].float(), -1).cumsum(-1)  # (B, T, K)
    upper = (cdf * match).sum(-1)  # F_k
    lower = upper - (torch.softmax(logits[..., ids].float(), -1) * match).sum(-1)  # F_{k−1}
    lo, hi = 0.5 - delta, 0.5 + delta
    overlap = (torch.minimum(upper, torch.full_like(upper, hi)) - torch.maximum(lower, torch.full_like(lower, lo)))
    logp = torch.log(overlap.clamp(min=0.0) / (hi - lo) + 1e-6).clamp(max=0.0)
    return torch.where(is_coord, logp, torch.zeros_like(logp)), is_coord.to(logits.dtype)


def window_generate(model, tokenizer, enc, window: QuantileWindow, max_new_tokens: int) -> torch.Tensor:
    """Prompt + completion ids (B, T) written under ``window`` (``model.eval()``, no gradient; vision tokens
    suppressed): the group's draws, or with ``rate=0`` the greedy answer evaluation writes. ``enc``: ``_batch``."""
    from transformers import LogitsProcessorList

    from .model import vision_token_ids

    model.eval()
    with torch.no_grad():
        return model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                              logits_processor=LogitsProcessorList([window]), suppress_tokens=vision_token_ids(tokenizer),
                              pad_token_id=tokenizer.pad_token_id, repetition_penalty=1.0)


def _batch(processor, rows):
    """Left-padded prompts with their images, as ``model.generate`` reads them."""
    from .model import chat_text

    texts = [chat_text(processor, r["prompt"]) for r in rows]
    enc = processor(text=texts, images=[r["image"] for r in rows], padding=True, padding_side="left",
                    return_tensors="pt")
    return enc


def train_quantile_gspo(cfg: QuantileGSPOConfig, resume: bool = False) -> Path:
    """Run; returns ``cfg.out`` holding the final policy. Resumes from ``out/checkpoint`` when ``resume``."""
    from . import data
    from .evaluate import checkpoint_settings, eval_samples, evaluate
    from .model import coordinate_values, load_model

    if cfg.baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, got {cfg.baseline!r}")
    if cfg.scale_rewards not in SCALE_REWARDS:
        raise ValueError(f"scale_rewards must be one of {SCALE_REWARDS}, got {cfg.scale_rewards!r}")
    if cfg.first < 0:
        raise ValueError(f"first must be ≥ 0 (0: every coordinate may be drawn), got {cfg.first}")
    if cfg.gt_sft < 0 or cfg.policy_loss < 0 or not (cfg.gt_sft or cfg.policy_loss):
        raise ValueError(f"gt_sft and policy_loss must be ≥ 0 and not both 0, got {cfg.gt_sft}, {cfg.policy_loss}")
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    st = checkpoint_settings(cfg.init)
    start = out / "checkpoint"
    model, processor = load_model(start if resume and start.is_dir() else cfg.init, dtype=torch.float32)
    tok = processor.tokenizer
    coord_ids, coord_values = (torch.tensor(x) for x in coordinate_values(tok))
    if len(coord_ids) == 0:
        raise ValueError(f"{cfg.init}: the quantile window needs a coord_tokens tokenizer")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / cfg.warmup_steps) * 0.5 *
                                              (1 + math.cos(math.pi * min(s, cfg.max_steps) / cfg.max_steps)))
    step0, history = 0, out / "history.jsonl"
    if resume and (start / "trainer_state.pt").is_file():
        state = torch.load(start / "trainer_state.pt", weights_only=False)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        step0 = state["step"]
    elif history.exists():
        history.unlink()
    heldout = list(eval_samples("synthetic", cfg.eval_n, cfg.eval_seed, epsilon=st["epsilon"], decimals=st["decimals"],
                                image_size=st["image_size"])) if cfg.eval_steps else []
    scene = rl_scenes(cfg, st["image_size"])
    end_id = tok.convert_tokens_to_ids("<|im_end|>")

    def complete(enc, window):  # generate under ``window``; (sequences, completions, their mask, texts)
        seqs = window_generate(model, tok, enc, window, cfg.max_completion_length)
        model.train()
        completion = seqs[:, enc["input_ids"].shape[1]:]
        # the completion mask: up to and including the first <|im_end|>
        ended = (completion == end_id).int().cumsum(-1)
        mask = ((ended == 0) | ((ended == 1) & (completion == end_id))).long()
        texts = tok.batch_decode(completion * mask + tok.pad_token_id * (1 - mask), skip_special_tokens=True)
        return seqs, completion, mask, texts

    def log(row):
        with history.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def held_out(step):
        r = evaluate(model, processor, heldout, dependence=False, max_new_tokens=cfg.max_completion_length)
        log({"step": step, "eval_gIoU": r["gIoU"], "eval_valid_rate": r["valid_rate"],
             "eval_area_ratio_median": r.get("area_ratio_median")})

    if step0 == 0 and heldout:
        held_out(0)
    t0, step, bar = time.perf_counter(), step0, tqdm(total=cfg.max_steps, initial=step0, desc="quantile GSPO")
    while step < cfg.max_steps:
        batch_index = step // cfg.num_iterations
        samples = [next(data.make_samples(1, cfg.seed * 10**7 + batch_index * cfg.prompts_per_step + i, scene,
                                          {"polygon": 1.0}, st["epsilon"], decimals=st["decimals"]))
                   for i in range(cfg.prompts_per_step)]
        rows = [{"prompt": s.prompt, "image": s.load_image()} for s in samples for _ in range(cfg.num_generations)]
        enc = _batch(processor, rows)
        gen = torch.Generator().manual_seed(cfg.seed * 10**6 + batch_index)
        window = QuantileWindow(coord_ids, coord_values, cfg.delta, gen, rate=cfg.rate, first=cfg.first)
        seqs, completion, comp_mask, texts = complete(enc, window)
        prompt_len = enc["input_ids"].shape[1]
        gts = [s.gt_rle for s in samples for _ in range(cfg.num_generations)]
        rewards = combined_reward(texts, cfg.reward_weights, gt_rle=gts, gt_centroid=[gt_centroid_of(g) for g in gts])
        iou = mask_iou_reward(texts, gts)
        if cfg.baseline == "group":
            adv = scaled_advantages(rewards, cfg.num_generations, cfg.scale_rewards)
        else:  # the all-median answer to each prompt, scored by the same rewards
            from .rl import greedy_baseline_advantages

            g_enc = _batch(processor, [{"prompt": s.prompt, "image": s.load_image()} for s in samples])
            g_texts = complete(g_enc, QuantileWindow(coord_ids, coord_values, cfg.delta, rate=0.0))[3]
            g_gts = [s.gt_rle for s in samples]
            greedy = combined_reward(g_texts, cfg.reward_weights, gt_rle=g_gts,
                                     gt_centroid=[gt_centroid_of(g) for g in g_gts])
            adv = greedy_baseline_advantages(torch.as_tensor(rewards, dtype=torch.float32),
                                             torch.as_tensor(greedy, dtype=torch.float32), cfg.num_generations,
                                             cfg.scale_rewards)
            if cfg.baseline == "greedy+":
                adv = adv.clamp(min=0.0)
        inputs = {"pixel_values": enc["pixel_values"], "image_grid_thw": enc["image_grid_thw"],
                  "mm_token_type_ids": torch.cat([enc["mm_token_type_ids"], torch.zeros_like(completion)], 1),
                  "attention_mask": torch.cat([enc["attention_mask"], comp_mask], 1)}

        def logprobs():  # log π of every completion token under the window, (B, T), and its mask
            logits = model(input_ids=seqs, **inputs).logits[:, prompt_len - 1:-1]
            lp, mask = window_logprobs(logits, completion, coord_ids, coord_values, cfg.delta)
            if cfg.rate < 1.0 or cfg.first > 0:  # the median positions were not sampled: no log π, no gradient
                mask = mask * window.stochastic_mask(completion.shape[1]).to(mask.dtype)
            return lp, mask * comp_mask

        if cfg.gt_sft:  # the same prompts with their ground-truth answers, as the SFT stage batches them
            from .model import collate_sft
            from .sft import answer_loss, ordinal_loss_for

            ordinal = ordinal_loss_for(tok)
            gt_batch = collate_sft([{"image": s.load_image(), "prompt": s.prompt, "answer": s.answer} for s in samples],
                                   processor)
            gt_labels = gt_batch.pop("labels")

        with torch.no_grad():
            old, mask = logprobs()
        flat = float((torch.as_tensor(rewards).view(-1, cfg.num_generations).std(1) < 1e-6).float().mean())
        for _ in range(cfg.num_iterations):
            if step >= cfg.max_steps:
                break
            new, _ = logprobs()
            rl_loss = gspo_loss(new, old, adv, mask, *cfg.clip)
            loss = cfg.policy_loss * rl_loss
            extra = {}
            if cfg.gt_sft:
                sft = answer_loss(model, gt_batch, gt_labels, ordinal)
                loss = loss + cfg.gt_sft * sft
                extra = {"gt_sft_loss": float(sft.detach()), "policy_loss": float(rl_loss.detach())}
            opt.zero_grad()
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, 1.0))
            opt.step()
            sched.step()
            step += 1
            bar.update(1)
            log({"step": step, "loss": float(loss.detach()), "reward": float(np.mean(rewards)),
                 "rewards/mask_iou_reward/mean": float(np.mean(iou)), "frac_reward_zero_std": flat,
                 "clip_ratio/region_mean": clip_fraction(new.detach(), old, adv, mask, *cfg.clip),
                 "stochastic_coordinates": float((old[mask.bool()] < -1e-4).float().mean()) if mask.any() else 0.0,
                 "grad_norm": grad_norm, "learning_rate": sched.get_last_lr()[0],
                 "completions/mean_length": float(comp_mask.sum(-1).float().mean()), **extra})
            if cfg.eval_steps and heldout and step % cfg.eval_steps == 0:
                held_out(step)
            if cfg.save_steps and step % cfg.save_steps == 0:
                model.save_pretrained(start)
                processor.save_pretrained(start)
                torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step},
                           start / "trainer_state.pt")
    bar.close()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    summary = {"config": {**asdict(cfg), "stage": "gspo_quantile", **st, "batch_size": len(rows)},
               "steps": cfg.max_steps, "wall_seconds": round(time.perf_counter() - t0, 1), "resumed": resume,
               "torch_threads": cfg.threads}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return out
