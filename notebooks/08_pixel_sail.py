# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · Pixel-SAIL-lite: a mask head instead of points as text
#
# SimpleSeg writes an object's outline as text. The second paper in this project, **Pixel-SAIL** ("Single
# Transformer For Pixel-Grounded Understanding"), reaches masks another way: *one* plain transformer reads
# image patches and text together (no vision encoder), answers "It is [SEG].", and a small learnable
# upsampling head turns the `[SEG]` token's hidden state and the image tokens' hidden states into a mask.
# Here we build it at lite scale (`simpleseg_lite/pixelsail.py`), on the same synthetic scenes, and put the
# two systems side by side on identical samples.
#
# **What you will learn**
# - the single-transformer layout: patches as tokens, 3-D rotary positions, bidirectional attention among
#   vision tokens, and the shapes at every stage;
# - how a mask is decoded from `[SEG]`: learnable upsampling, two MLPs and a dot product per pixel, and what
#   the features look like before and after upsampling;
# - visual-prompt injection: how `<Prompt0>` learns *which region* it is;
# - the comparison students ask for — points as text or a mask head? — with gIoU, cIoU, Prec@0.5, boundary F,
#   tokens per answer, latency on this CPU and scores by object size, on the same samples.

# %% tags=["parameters"]
SMOKE = False  # True: the quick CI run (a tiny model trained for a few steps, a handful of samples)
CHECKPOINT = "../data/checkpoints/lite-pixelsail"  # the committed Pixel-SAIL-lite (relative to notebooks/)
POLYGON = "../data/checkpoints/lite-sft"  # the SimpleSeg model it is compared with
ABLATIONS = "../data/pixelsail/ablations.json"  # committed results of scripts/pixelsail_ablations.py
STAGE_ARMS = "../data/pixelsail/stage_arms.json"  # committed results of scripts/pixelsail_stage_arms.py (session 19)
TRAIN_STEPS = 0  # >0: train a fresh model for this many steps here instead of loading CHECKPOINT
N = 100  # test samples (unseen seed) for the side-by-side table
SEED = 1000  # the seed `simpleseg-lite eval` uses; training never sees seeds < 10**7
LATENCY_N = 8  # samples timed one at a time
THREADS = 2
RUN_DIR = None  # the run folder (reproduce injects it)
CHECKPOINTS_DIR = "../data/checkpoints"  # where the committed chains' histories are (the budget curves)
FULL = False  # True: also train and evaluate the full path (a real language model, RefCOCO) — section 7
TEXT_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"  # full path: a qwen2 / qwen2_5_vl checkpoint, local folder or hub id
REFER_ROOT = None  # full path: the REFER layout (<root>/refcoco/refs(unc).p, instances.json, images)
FULL_STEPS = 2000  # full path: training steps (batch FULL_BATCH, 448-px images)
FULL_BATCH = 8
FULL_OUT = "runs/full-pixelsail"  # relative to notebooks/ (the full preset puts it in the run folder)
REFER_SPLITS = [["refcoco", "val"], ["refcoco", "testA"], ["refcoco", "testB"]]  # full path: evaluated after training

# %%
import json
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from simpleseg_lite import pixelsail as ps
from simpleseg_lite.bench import answer_latency
from simpleseg_lite.evaluate import eval_samples, evaluate, sample_scores
from simpleseg_lite.metrics import boundary_f_score, paired_difference
from simpleseg_lite.model import load_model
from simpleseg_lite.parse import parse_polygons
from simpleseg_lite.report import cost_to_reach, save_notebook_metrics, training_curve
from simpleseg_lite.viz import overlay, pca_rgb

if SMOKE:
    N, LATENCY_N, TRAIN_STEPS = 4, 1, max(TRAIN_STEPS, 2)
torch.set_num_threads(THREADS)
run_dir = Path(RUN_DIR or tempfile.mkdtemp(prefix="pixelsail-"))
if not (SMOKE or TRAIN_STEPS or Path(CHECKPOINT).is_dir()):
    raise FileNotFoundError(f"{CHECKPOINT}: no Pixel-SAIL-lite checkpoint; train one with `simpleseg-lite train "
                            "--stage pixelsail --out runs/lite-pixelsail` or set TRAIN_STEPS > 0")
if TRAIN_STEPS or not Path(CHECKPOINT).is_dir():
    small = {"hidden_size": 64, "num_layers": 2, "intermediate_size": 128, "mask_dim": 16} if SMOKE else {}
    cfg = ps.PixelSailTrainConfig(out=str(run_dir / "pixelsail"), max_steps=TRAIN_STEPS or 2,
                                  batch_size=4 if SMOKE else 32, eval_steps=0, save_steps=TRAIN_STEPS or 2,
                                  threads=THREADS, model=small)
    CHECKPOINT = str(ps.train_pixelsail(cfg))
model, tok = ps.load(CHECKPOINT)
print(f"Pixel-SAIL-lite from {CHECKPOINT}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")

# %% [markdown]
# ## 1. One transformer, every shape
# The image is cut into 14-px patches; **one linear layer** maps each patch's 3 × 14 × 14 values to a token.
# Those tokens come first in the sequence, then the chat text. Vision tokens get rotary positions
# (t = 0, row, column) and see each other in both directions; text is causal and sees every vision token.

# %%
example = next(ps.make_pixel_samples(1, 7, task_mix={"mask": 1.0}))
batch = ps.collate([example], tok, model.config)
c = model.config
with torch.no_grad():
    hidden = model.hidden(batch["pixel_values"], batch["input_ids"], batch["attention_mask"], batch["prompt_regions"])
    vision = hidden[batch["input_ids"] == c.image_token_id].reshape(1, c.grid, c.grid, -1).permute(0, 3, 1, 2)
    stages = [("image", batch["pixel_values"].shape), ("patches", model.patches(batch["pixel_values"]).shape),
              ("sequence (vision + text tokens)", batch["input_ids"].shape), ("last hidden states", hidden.shape),
              ("vision tokens as a map", vision.shape)]
    x = vision
    for i, block in enumerate(model.upsample):
        x = block(x)
        stages.append((f"upsampling block {i + 1}", x.shape))
    stages.append(("pixel features (MLP)", model.pixel_mlp(x).shape))
    stages.append(("mask logits, resized to the image", (1, c.image_size, c.image_size)))
for name, shape in stages:
    print(f"{name:36} {tuple(shape)}")
parts = {"patch embedding": model.patch_embed, "transformer": model.lm, "LM head": model.lm_head,
         "prompt injection W": model.prompt_proj, "upsampling": model.upsample, "pixel MLP": model.pixel_mlp,
         "[SEG] MLP": model.seg_mlp, **({"token match M": model.match} if c.token_match else {})}
print({k: f"{sum(p.numel() for p in m.parameters()) / 1e6:.3f}M" for k, m in parts.items()})

# %%
allowed = model.attention(batch["input_ids"], batch["attention_mask"], torch.float32)[0, 0] == 0
fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.imshow(allowed.numpy(), cmap="Greys", interpolation="nearest")
ax.axhline(c.grid**2 - 0.5, color="tab:orange", lw=1)
ax.axvline(c.grid**2 - 0.5, color="tab:orange", lw=1)
ax.set(title="who attends to whom (black: allowed)", xlabel="key position", ylabel="query position")
plt.show()

# %% [markdown]
# The top-left square is full: the 64 vision tokens attend to each other both ways, like a ViT. Below it
# the usual causal triangle: every text token sees all vision tokens and the text before it.

# %% [markdown]
# ## 2. The four tasks, and what `<Prompt0>` points at
# Text→mask ("Please segment the red star." → "It is [SEG]."), point→mask and box→mask (the region is
# given by `<Prompt0>`), and a question only the injected region can answer: "What is <Prompt0>?" → "the red
# star". The shaded patches are the ones whose tokens get `W · embed(<Prompt0>)` added.

# %%
shown = [next(ps.make_pixel_samples(1, 11 + k, task_mix={t: 1.0})) for k, t in enumerate(ps.TASK_MIX)]
fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown), 3.4))
for ax, ex in zip(axes, shown):
    ax.imshow(ex.image)
    cover = ps.patch_coverage(ex.region, c.grid)
    if cover.any():
        ax.imshow(np.kron(cover, np.ones((c.patch_size, c.patch_size))), cmap="Oranges", alpha=0.35,
                  extent=(0, c.image_size, c.image_size, 0))
    if ex.mask is not None:
        ax.contour(ex.mask, levels=[0.5], colors="cyan", linewidths=1)
    ax.set_title(f"{ex.task}\n{ex.prompt}\n→ {ex.answer}", fontsize=8)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 3. From `[SEG]` to a mask: the features before and after upsampling
# Each map below is the first three principal components of a feature map shown as RGB: the vision tokens
# straight from the transformer (8 × 8), the upsampled pixel features (64 × 64), then the mask logits and
# the thresholded mask.

# %%
samples = eval_samples("synthetic", N, SEED)
s0 = samples[0]
prompt, region = ps.pixel_prompt(s0)
(text, mask), = ps.predict(model, tok, [s0.load_image()], [prompt], [region])
ids, att = ps._left_pad([ps._prefix_ids(tok, c, prompt) + tok(text, add_special_tokens=False)["input_ids"]],
                        tok.pad_token_id)
with torch.no_grad():
    pv = ps.pixel_values([s0.load_image()], c.image_size)
    h = model.hidden(pv, ids, att)
    tokens_map = h[ids == c.image_token_id].reshape(c.grid, c.grid, -1).permute(2, 0, 1)
    pixel_map = model.mask_features(h, ids)[0]
    seg_at = (ids[0] == c.seg_token_id).nonzero()
    logits = model.mask_logits(h, ids, seg_at[0] if len(seg_at) else torch.tensor([ids.shape[1] - 1]))[0]
fig, axes = plt.subplots(1, 5, figsize=(16, 3.4))
axes[0].imshow(s0.load_image())
axes[0].set_title(f"{prompt}\n→ {text[:40]}".replace("$", r"\$"), fontsize=8)  # no mathtext
axes[1].imshow(pca_rgb(tokens_map), interpolation="nearest")
axes[1].set_title(f"vision tokens {c.grid}×{c.grid} (PCA)", fontsize=8)
axes[2].imshow(pca_rgb(pixel_map), interpolation="nearest")
axes[2].set_title(f"after upsampling {pixel_map.shape[1]}×{pixel_map.shape[2]} (PCA)", fontsize=8)
axes[3].imshow(logits.numpy(), cmap="magma")
axes[3].set_title("mask logits (112×112)", fontsize=8)
overlay(s0.load_image(), mask if mask is not None else np.zeros((c.image_size,) * 2, np.uint8), [], ax=axes[4],
        title="predicted mask")
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# ## 4. The paper's ablations at lite scale: plain vs learnable upsampling, with and without injection
# Each variant trained from scratch at equal cost (same data stream, seed, steps, threads) by
# `python scripts/pixelsail_ablations.py` and judged on validation seed 2000; the table is read from its
# committed results, with paired differences on the same samples (bootstrap 95% intervals). The paper's
# direction: learnable upsampling beats the plain baseline (its Table 8: 64.5 → 76.2 cIoU on RefCOCO), and
# injection is what makes visual prompts work. The other rows are ours, not the paper's, and all are about
# grounding (next subsection):
# - `text_first`: the prompt before the image, so the vision tokens (and the mask features) read the question;
# - `mlp_decoder`: an MLP instead of the dot product;
# - `multi_only`: a distractor in every training scene;
# - `word_tokens`: the scenes' words as single tokens;
# - `token_match`: a full-rank match of `[SEG]` against each vision state;
# - `sincos_pos`: a 2-D sinusoidal position code added to every patch (rotary positions never enter the states);
# - `select`: a per-image softmax over pixels beside BCE and Dice, so masking two objects alike costs log 2;
# - `attribute_*`: trained on attribute expressions only ("the red star"), the simplest choice;
# - `named_*`: text→mask answers that name the object first, "It is the red star [SEG].";
# - and their combinations.

# %%
if Path(ABLATIONS).is_file():
    abl = json.loads(Path(ABLATIONS).read_text())
    display(Markdown(abl["table"]))
    print(abl.get("reading", ""))
else:
    abl = None
    print(f"{ABLATIONS} not found: run `python scripts/pixelsail_ablations.py` to train and judge the variants")

# %% [markdown]
# ### Does the mask follow the words? Grounding, and the head that collapsed
# On a single object a mask head only has to find *the* object. With two or three it has to pick the one
# the sentence names. `ps.grounding` asks text→mask on 2–3-object scenes and measures the share of the
# mask's object pixels that fall on the referred object. If the head masks every object alike, that share
# is about 1 / objects (the "chance" column above). It also measures how spread the head's per-pixel
# features are: singular values 2 and 3 of the feature matrix, over the first.
#
# Measured on validation seed 2000 (the table's last-but-one column; LOG "Grounding"). After 300 steps
# **every variant sits at chance**, including the first committed checkpoint (800 steps): its masks cover
# the target *and* a distractor in 99% of 2–3-object scenes. Linear probes on that checkpoint show where
# the information is lost:
# - the `[SEG]` state names the colour asked for on 94% of prompts;
# - the last-layer vision states give each object's colour on 100%;
# - the head's upsampled pixel features give it on only 30% (chance 23%).
#
# The dot product is the trap. The gradient on a pixel feature is (σ − y)·s, so while the `[SEG]` vector s
# barely varies with the prompt, every feature is pushed along one direction and the head learns
# "objectness". Two variants leave the head's factorized form and match `[SEG]` against the vision states
# themselves:
# - `token_match`: a full-rank ⟨M·h_[SEG], h_v⟩ per vision token;
# - `word_tokens`: colour, shape and position words as single tokens.
#
# Together they gain beyond the interval on all three tasks (the table). But text→mask grounding stays at
# chance at 300 steps. Three more reasons were tested (LOG "Session 9"), and none grounds at 300 steps:
# - a position code (the vision states explain a token's row at R² 0.13 and its column at 0.02);
# - a loss that charges for every object masked alike;
# - training on attribute expressions alone.
#
# One arm changes the masks' behaviour: answers that *name* the object. Its masks cover a single object far
# more often (target + distractor in 0.47 of scenes, against 0.70–0.84 for the others), and they follow the
# name written: 0.75 of the mask lies on the object named. But the name is the right one only 16% of the
# time. What the lite model lacks is resolving the sentence to the right colour and shape, not drawing the
# mask.
#
# **Colour is learnt, shape is not.** Trained on "Please segment the {colour} shape." alone, a fresh model puts
# 0.995 of its mask on the target after 100 steps (chance 0.45). Shape is the hard word: on the question alone
# the single transformer names the shape on 0.33–0.46 of held-out scenes (300–1,200 steps; linear or
# convolutional patch embedding, chunked or interleaved rotary layout), while a 4-layer CNN with the region as
# a fourth channel gets 0.95 in 200 steps. Even told directly — a linear shape classifier on the region's
# last-layer vision states, no text at all — the transformer reaches 0.39 after 150 steps (linear patches;
# stopped there), 0.65 after 300 with the conv stem, and 0.40 with the CNN's own trunk as its patch embedding.
# So the bottleneck is the transformer layers learning to *see* a shape from scratch, not the patch features and
# not reading the shape out as words (LOG, sessions 10–11). The paper's model starts from an
# encoder-free MLLM pre-trained on images; the lite one has no such start.
#
# **A vision-only start helps the shape word, not the masks.** `simpleseg-lite pretrain-vision --system pixelsail`
# trains the single transformer on the image alone to name the shape under every 2-px cell (2,000 steps, 21 min
# on one core: held-out shape accuracy 0.29 → 0.70 → 0.88 at steps 250 / 1,000 / 2,000). Pixel-SAIL training then
# continues from it with that loss kept on (`train --stage pixelsail --init ... --vision-aux 1`, 800 steps,
# 17 min). On the unseen seed 7000 the question's shape word is right twice as often (0.35 → 0.70), but the
# colour word slips (1.00 → 0.76), so exact answers reach 0.59, still at chance (0.61); text→mask gIoU is
# 0.03 lower (−0.028 [−0.051, −0.006], paired, 200 samples). So it was not committed (LOG, sessions 14–15).
#
# **The same loss three layers down answers the question.** In a causal transformer no text token ever reads the
# *last* layer's vision states: the text's last layer attends to the layer before. So a dense head on the last layer
# teaches shape where the answer cannot look. With the head on the states after layer 3 of 6 (`aux_layer=3`) the
# vision stage learns shape faster (held-out 0.73 at step 500 and 0.96 at 2,000, against 0.48 and 0.88), and after
# the same 800 Pixel-SAIL steps "What is <Prompt0>?" is answered exactly on **0.985** of the unseen seed 9100's
# scenes (colour 0.995, shape 0.99), 0.10 with the injection switched off; text→mask gIoU is level with the
# previous checkpoint (−0.002 [−0.019, +0.014], paired). Naming shape × colour in the last-layer loss instead
# lost on every count (0.27, and 0.26 without the injection). That was session 18's checkpoint (46 min of training
# on one thread). Its masks still did not choose: 0.39 of each mask on the target, chance 0.42.
#
# **A colour stage makes the masks choose.** Session 19 changed one thing at a time in the Pixel-SAIL stage, every arm
# from the same vision stage with the same seed and stream, 20 arms on a borrowed GPU at equal steps (the table below,
# validation seed 999). Named answers, the selection loss, more steps, a higher learning rate, a distractor in every
# scene, attribute sentences three times as often: each alone stays at chance on target (0.39–0.46). One combination
# chose:
# 1. a **colour stage**: text→mask alone, on 2–3 objects, each named only by its colour ("the red shape");
# 2. then the usual mix, but every scene with a distractor (`--min-objects 2`) and attribute sentences three times
#    as frequent (`--expression-mix`).
#
# A 100-step colour stage leaves the "every object" plateau in some sample orders and not in others (seed 2 yes,
# seed 3 no; `scripts/diagnostics/colour_stage.py`). With 300 steps the colour probe reads 0.99–1.00 for every seed
# tried. The committed checkpoint is that recipe (300 + 700 steps) with the seed that scored best of three on the
# validation seed (0.633 / 0.620 / 0.642 for seeds 2 / 3 / 4; 0.575 before). On the unseen seed 9100 it scores gIoU
# **0.619** (paired +0.061 [+0.029, +0.094] against session 18's), with 0.53 of each mask on the target (chance 0.42);
# the prompt question stays exact on 1.00. The gain is all on 2–3-object scenes; single objects, which the last stage
# never shows, lose about 0.04 (LOG, session 19). Training: 20.8 + 7.8 + 15.0 = 43.6 min on one thread.
#
# Below: one scene, each object's colour asked in turn. A grounded model moves its mask; a collapsed one does not.

# %%
g = ps.grounding(model, tok, n=8 if SMOKE else 100, seed=2000)
print(f"text→mask on 2–3 objects: {g['share_on_target']:.2f} of the mask on the target (chance {g['chance_share']:.2f}); "
      f"target holds most of it {g['target_is_largest']:.2f}; covers target and a distractor {g['covers_several']:.2f}; "
      f"pixel-feature spectrum σ2/σ1 = {g['feature_rank'][0]:.3f}, σ3/σ1 = {g['feature_rank'][1]:.3f}")
from simpleseg_lite import data as scenes_data

scene_cfg = scenes_data.SyntheticConfig(min_objects=3, max_objects=3)
for i in range(200):  # a scene of three differently coloured objects
    scene, _, _ = scenes_data._pick(np.random.default_rng((31, i)), scene_cfg)
    if len({o.colour for o in scene.objects}) == 3:
        break
asked = [f"Please segment the {o.colour} shape." for o in scene.objects]
answers = ps.predict(model, tok, [scene.image] * len(asked), asked)
fig, axes = plt.subplots(1, len(asked), figsize=(3.2 * len(asked), 3.4))
for ax, o, q, (_, m) in zip(axes, scene.objects, asked, answers):
    overlay(scene.image, o.mask, [], ax=ax, title=q)
    if m is not None:
        ax.contour(m, levels=[0.5], colors="magenta", linewidths=1.2)
    ax.axis("off")
plt.suptitle("cyan: the object asked for · magenta: the predicted mask", y=1.02)
plt.show()

# %% [markdown]
# The arms of session 19 (read from `STAGE_ARMS`; GPU rows first, then the same recipes again on this CPU). Paired
# differences are against `base`, the committed recipe of session 18, on the same 200 validation samples.

# %%
if Path(STAGE_ARMS).is_file():
    display(Markdown(json.loads(Path(STAGE_ARMS).read_text())["table"]))
else:
    print(f"{STAGE_ARMS} not found: run `python scripts/pixelsail_stage_arms.py` to train and judge the arms")

# %% [markdown]
# ## 5. Side by side: points as text or a mask head?
# The same test samples (seed 1000) for both systems. SimpleSeg answers the polygon prompt; Pixel-SAIL-lite
# is asked "Please segment {expression}." Both are scored by the same functions (`evaluate`): gIoU, cIoU,
# Prec@0.5 (the tight box of the predicted mask or polygons), valid rate (an answer without `[SEG]`, or an
# unparseable polygon, is an empty mask, counted), image dependence, and boundary F (DAVIS, 2-px tolerance).

# %%
from pycocotools import mask as mask_utils

from simpleseg_lite.metrics import rasterize

systems = {"Pixel-SAIL-lite": (model, tok)}
if Path(POLYGON).is_dir():
    systems["SimpleSeg lite (SFT)"] = load_model(POLYGON, dtype=torch.float32)
results, masks = {}, {}
for name, (m, p) in systems.items():
    r = evaluate(m, p, samples, max_new_tokens=200)
    if name == "Pixel-SAIL-lite":  # greedy, so the same masks evaluate scored
        pred = [x if x is not None else np.zeros((s.height, s.width), np.uint8)
                for (_, x), s in zip(ps.predict_samples(m, p, samples), samples)]
    else:
        pred = []
        for row, s in zip(r["rows"], samples):
            q = parse_polygons(row["answer"])
            pred.append(rasterize(q.polygons if q.valid else [], s.height, s.width))
    truth = [mask_utils.decode(s.gt_rle) for s in samples]
    r["boundary_F"] = float(np.mean([boundary_f_score(a, b) for a, b in zip(pred, truth)]))
    tokenizer = p if name == "Pixel-SAIL-lite" else p.tokenizer  # + 1: the <|im_end|> that stops the answer
    r["tokens_per_answer"] = float(np.mean([len(tokenizer(x["answer"], add_special_tokens=False)["input_ids"]) + 1
                                            for x in r["rows"]]))
    results[name], masks[name] = r, pred
keys = ["gIoU", "cIoU", "prec_at_0.5", "valid_rate", "image_dependence", "boundary_F", "tokens_per_answer"]
print(f"{'':22}" + "".join(f"{k:>18}" for k in keys))
for name, r in results.items():
    print(f"{name:22}" + "".join(f"{r[k]:18.3f}" for k in keys))
if len(results) == 2:
    a, b = (sample_scores(r["rows"]) for r in results.values())
    d = paired_difference(b, a)
    print(f"paired IoU, Pixel-SAIL-lite − SimpleSeg: {d['mean']:+.3f} [95% CI {d['ci95'][0]:+.3f}, "
          f"{d['ci95'][1]:+.3f}], better on {d['better']}, worse on {d['worse']} of {d['n']}")

# %% [markdown]
# ### Latency on this CPU, and scores by object size
# One sample at a time (median of three passes): **prefill** (image and prompt, up to the first token),
# **decode** (the rest of the answer), and for Pixel-SAIL-lite the **mask head**. SimpleSeg's answer is a
# polygon of ~100 characters; Pixel-SAIL's is "It is [SEG]." — the cost moves from decoding to the head.

# %%
latency = {name: answer_latency(m, p, samples[:LATENCY_N], repeats=1 if SMOKE else 3) for name, (m, p) in systems.items()}
for name, lat in latency.items():
    print(f"{name:22} prefill {lat['prefill_s'] * 1e3:7.1f} ms · decode {lat['decode_s'] * 1e3:7.1f} ms · "
          f"mask head {lat['mask_head_s'] * 1e3:5.1f} ms · {lat['tokens_per_answer']:.0f} tokens "
          f"({lat['threads']} threads)")
area = np.array([s.gt_rle.get("area", 0) for s in samples], float)
edges = np.quantile(area, [0, 1 / 3, 2 / 3, 1])
bins = np.digitize(area, edges[1:-1])
fig, ax = plt.subplots(figsize=(6, 3.4))
for k, (name, r) in enumerate(results.items()):
    ious = sample_scores(r["rows"])
    ax.bar(np.arange(3) + 0.38 * k, [ious[bins == j].mean() if (bins == j).any() else 0 for j in range(3)],
           width=0.38, label=name)
ax.set_xticks(np.arange(3) + 0.19, [f"small\n≤{edges[1]:.0f} px", f"medium\n≤{edges[2]:.0f} px", "large"])
ax.set(ylabel="gIoU", title="gIoU by object size (terciles of the test masks' area)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ### What each one cost to train
# Held-out gIoU (48 polygon-task samples of seed 999, evaluated during training) against CPU-minutes and
# training samples, along each committed chain's stages (read from the checkpoints' `history.jsonl` and
# `summary.json`; a stage's wall time includes its held-out evaluations). This is the equal-budget view: at
# any number of minutes, how far each design had got. The minutes are wall minutes as each chain was run:
# Pixel-SAIL-lite on one thread, the committed polygon chain on two (its stage A ran 66 steps a minute on two threads;
# session 24's ran 50 a minute on one, beside a second job), so the polygon curve is flattered by up to ~1.3×.

# %%
curves = {"Pixel-SAIL-lite": training_curve("lite-pixelsail", CHECKPOINTS_DIR),
          "SimpleSeg lite (pre-train → SFT)": training_curve("lite-sft", CHECKPOINTS_DIR)}
budget = {name: cost_to_reach(curve, 0.5) for name, curve in curves.items() if curve}
fig, ax = plt.subplots(figsize=(6.5, 3.4))
for name, curve in curves.items():
    if curve:
        ax.plot([r["minutes"] for r in curve], [r["eval_gIoU"] for r in curve], "o-", ms=3, label=name)
ax.axhline(0.5, color="grey", lw=0.8, ls="--")
ax.set(xscale="log", xlabel="wall minutes of training (log scale)", ylabel="held-out gIoU",
       title="the same held-out samples, along each training chain")
ax.legend(fontsize=8)
plt.show()
for name, b in budget.items():
    if b["reached"]:
        print(f"{name:34} gIoU 0.5 after {b['minutes']:6.1f} CPU-minutes, {b['samples']:>7,} training samples")
    else:
        print(f"{name:34} gIoU 0.5 not reached in {b['minutes']:.1f} CPU-minutes, {b['samples']:,} samples "
              f"(best {b['best']:.3f})")

# %% [markdown]
# ### Where each one wins
# The samples with the largest IoU difference each way (magenta: the prediction; cyan: the truth).

# %%
if len(results) == 2:
    names = list(results)
    diff = sample_scores(results[names[0]]["rows"]) - sample_scores(results[names[1]]["rows"])
    order = np.argsort(diff)
    picks = [("SimpleSeg wins", i) for i in order[:3]] + [("Pixel-SAIL wins", i) for i in order[::-1][:3]]
    fig, axes = plt.subplots(2, len(picks), figsize=(2.6 * len(picks), 5.6), squeeze=False)
    for j, (label, i) in enumerate(picks):
        for row, name in enumerate(names):
            overlay(samples[i].load_image(), mask_utils.decode(samples[i].gt_rle), [], ax=axes[row, j])
            axes[row, j].contour(masks[name][i], levels=[0.5], colors="magenta", linewidths=1.2)
            axes[row, j].set_title(f"{label if row == 0 else ''}\n{name}: IoU {sample_scores(results[name]['rows'])[i]:.2f}",
                                   fontsize=7)
    plt.suptitle("top: Pixel-SAIL-lite · bottom: SimpleSeg lite — the same test scenes", y=1.02)
    plt.tight_layout()
    plt.show()

# %%
save_notebook_metrics(RUN_DIR, "08_pixel_sail", {
    "eval": {f"08: {name}": {"synthetic": r} for name, r in results.items()},
    "latency": latency, "ablations": abl["rows"] if abl else None, "budget_to_gIoU_0.5": budget})

# %% [markdown]
# ## 6. The full path: a real language model as the single transformer
# `ps.from_language_model(TEXT_MODEL)` sizes `PixelSailConfig` like the checkpoint (a Qwen2 / Qwen2.5 LM, or
# the language half of a Qwen2.5-VL), copies its decoder, norm, embeddings and LM head into the same
# `PixelSailLite` class, and extends the vocabulary by `[SEG]` and `<Prompt0..3>`; the patch embedding and
# the mask head start fresh. On text alone the carried model computes exactly what the original did (tested
# in `tests/test_pixelsail.py` on tiny checkpoints). `train_pixelsail` then trains it on RefCOCO/+/g with the
# same tasks (the visual-prompt question's answer is the referring sentence) in bf16 on a GPU, and `eval`
# scores it on RefCOCO val with the same metrics. The same command from a shell:
#
# ```bash
# simpleseg-lite train --stage pixelsail --text-init Qwen/Qwen2.5-0.5B-Instruct --data refcoco \
#     --refer-root /data/refer --image-size 448 --batch-size 8 --steps 2000 --out runs/full-pixelsail
# simpleseg-lite eval --model runs/full-pixelsail --data refcoco --root /data/refer --split val --json
# ```
#
# Departures from the paper: it starts from an encoder-free MLLM already pre-trained on images (SOLO,
# EVEv2) and distills Mask2Former / SAM2 features into the head; here the language model has never seen a
# patch and there is no teacher, so expect far lower scores than its table at equal steps.

# %%
if FULL:
    if not REFER_ROOT:
        raise FileNotFoundError("FULL=True needs REFER_ROOT (the REFER layout, see simpleseg_lite/refcoco.py)")
    from simpleseg_lite.evaluate import evaluate_checkpoint

    full_cfg = ps.PixelSailTrainConfig(out=FULL_OUT, text_init=TEXT_MODEL, data="refcoco", refer_root=REFER_ROOT,
                                       image_size=448, max_steps=FULL_STEPS, batch_size=FULL_BATCH, lr=1e-4,
                                       eval_steps=max(FULL_STEPS // 4, 1), save_steps=max(FULL_STEPS // 10, 1),
                                       threads=THREADS)
    full_path = ps.train_pixelsail(full_cfg, resume=(Path(FULL_OUT) / "checkpoints").is_dir())
    full = {f"{dataset} {split}": evaluate_checkpoint(full_path, "refcoco", 10**9, SEED, root=REFER_ROOT,
                                                       dataset=dataset, split=split)
            for dataset, split in REFER_SPLITS}
    for name, r in full.items():
        print(f"full Pixel-SAIL, {name}: gIoU {r['gIoU']:.3f}, cIoU {r['cIoU']:.3f}, "
              f"Prec@0.5 {r['prec_at_0.5']:.3f} (n {r['n']})")
    save_notebook_metrics(RUN_DIR, "08_pixel_sail_full", {"eval": {f"08 full: Pixel-SAIL ({TEXT_MODEL})": {
        name: {m: v for m, v in r.items() if m != "rows"} for name, r in full.items()}}})
else:
    print("FULL=False: the full path trains where a GPU, a language model and RefCOCO are (presets/full.yaml)")

# %% [markdown]
# ## Summary
# - One transformer can segment without a vision encoder: its vision tokens *are* the patches, and the
#   mask is a dot product between the `[SEG]` state and upsampled token features.
# - The mask head reads position from where each feature sits in the map; SimpleSeg must *write* position
#   as digits — which is exactly what the tiny polygon model finds hard (notebook 05 §6).
# - The side-by-side numbers above are measured on the same samples; the two checkpoints had different
#   budgets (the committed Pixel-SAIL-lite 44 min on one thread, the polygon chain ~2 h 20 min on two), so the
#   equal-budget view is the training-curve plot: at every number of CPU-minutes, where each design had got
#   on the same held-out samples. At lite scale the mask head learns far faster (gIoU 0.5 after 37 minutes on one
#   thread; the polygon chain after 57 on two). On gIoU the two are level (0.640 vs 0.664 on seed 1000, −0.024
#   [−0.078, +0.033] for Pixel-SAIL-lite); the polygon lite-sft wins on Prec@0.5 (0.86 vs 0.47) and cIoU (0.65 vs
#   0.53): its outlines land on the right object more often, Pixel-SAIL's masks fit better where they land.
# - What limits Pixel-SAIL-lite here is choosing the object, not drawing it. On single-object scenes its masks
#   are nearly exact. On 2–3 objects the first checkpoint masks *every* object: its dot-product head collapsed to
#   "objectness", though the `[SEG]` state and the vision states both hold the colour (linear probes, §4).
#   A full-rank token match and word tokens gain on every task, but text grounding had not appeared at 300 steps.
#   What made the masks choose is a curriculum, not a new layer: 300 steps where colour alone names the object, then
#   scenes that always hold a distractor and sentences the model can resolve (0.53 of the mask on the target, chance
#   0.42; gIoU 0.558 → 0.619 on an unseen seed). With 100 colour steps it worked for one seed in two.
# - The question "What is <Prompt0>?" needs the shape under the region, which a single transformer trained from
#   scratch learns slowly even under a direct loss (0.65 after 300 steps, where a small CNN gets 0.95 after 200).
#   A vision-only stage on a dense shape loss fixes it — once the loss sits on a middle layer, whose states the
#   text can attend to: 0.985 exact on an unseen seed, 0.10 with the injection off (on the last layer: 0.59).
#
# ## Exercises
# 1. *(easy)* Set `upsample_blocks = 0` in a fresh `PixelSailConfig` and look at section 3's maps: what does
#    the plain baseline's mask look like at 8 × 8?
# 2. *(medium)* Ask "What is <Prompt0>?" with the region of another object. Does the answer follow the region?
# 3. *(hard)* Both systems scored by object size: why would a mask head help most on small objects, and a
#    polygon on large ones? Check it with more test samples.
