"""Pictures: masks and polygons drawn over images, and the interactive polygon explorer.

Every notebook draws through these helpers (no plotting code lives only in a notebook). Polygons are
normalized (x, y) in [0, 1], y down; they are drawn in **pixel-edge** coordinates, so matplotlib's
``imshow`` extent is set to ``(0, W, H, 0)`` — pixel (r, c) covers [c, c+1] × [r, r+1] on screen, the
same convention as the rasterizer. (matplotlib's default extent puts pixel *centres* on integers,
which would shift every outline by half a pixel.)

Taught in ``notebooks/01_contour_serialization.py`` (explorer: ``notebooks/02_epsilon_tradeoffs.py``).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .contours import EPSILON_MODES, mask_to_polygons
from .metrics import mask_to_rle, polygons_iou
from .ordering import ORDERINGS, reorder_all
from .serialize import estimate_tokens, normalize, polygons_to_text


def show_image(ax, image, title: str | None = None):
    """Show an image (H, W[, 3]) with pixel-edge extent and no axes clutter."""
    image = np.asarray(image)
    h, w = image.shape[:2]
    ax.imshow(image, extent=(0, w, h, 0), cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def show_mask(ax, mask, color=(0.1, 0.6, 1.0), alpha: float = 0.45):
    """Overlay a binary mask (H, W) in a translucent colour."""
    mask = np.asarray(mask) != 0
    h, w = mask.shape
    rgba = np.zeros((h, w, 4))
    rgba[mask] = (*color, alpha)
    ax.imshow(rgba, extent=(0, w, h, 0), interpolation="nearest")
    return ax


def show_polygons(ax, polygons_norm, width: int, height: int, color="tab:red", order: bool = True,
                  lw: float = 1.5, label: str | None = None):
    """Draw normalized polygons over an image of ``width × height``: outline, vertices, and — with
    ``order=True`` — the start vertex (big dot) and an arrow showing the writing direction."""
    scale = np.array([width, height])
    for i, p in enumerate(polygons_norm):
        q = np.asarray(p, dtype=np.float64).reshape(-1, 2) * scale
        if len(q) == 0:
            continue
        closed = np.vstack([q, q[:1]])
        ax.plot(closed[:, 0], closed[:, 1], "-", color=color, lw=lw, label=label if i == 0 else None)
        ax.plot(q[:, 0], q[:, 1], ".", color=color, ms=3)
        if order and len(q) >= 2:
            ax.plot(*q[0], "o", color=color, ms=6, mec="white")
            ax.annotate("", xy=q[1], xytext=q[0],
                        arrowprops=dict(arrowstyle="->", color=color, lw=lw + 0.5))
    return ax


def overlay(image, mask=None, polygons_norm=(), title: str | None = None, ax=None, **kw):
    """One panel: image, optional ground-truth mask, optional polygons. Returns the axis."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    image = np.asarray(image)
    show_image(ax, image, title)
    if mask is not None:
        show_mask(ax, mask)
    if len(polygons_norm):
        show_polygons(ax, polygons_norm, image.shape[1], image.shape[0], **kw)
    return ax


def answer_stats(mask, epsilon: float, epsilon_mode: str = "perimeter", ordering: str = "clockwise",
                 decimals: int = 3, seed: int = 0) -> dict:
    """Everything the explorer shows for one setting: polygons, text, vertices, characters,
    estimated tokens and the round-trip IoU against the mask."""
    mask = np.asarray(mask)
    h, w = mask.shape
    polys = normalize(mask_to_polygons(mask, epsilon, epsilon_mode), w, h, decimals)
    polys = reorder_all(polys, ordering, seed)
    text = polygons_to_text(polys, decimals)
    return {
        "polygons": polys,
        "text": text,
        "vertices": int(sum(len(p) for p in polys)),
        "chars": len(text),
        "tokens_est": estimate_tokens(text),
        "iou": polygons_iou(polys, mask_to_rle(mask)),
    }


def polygon_explorer(image, mask, epsilon: float = 0.005, epsilon_mode: str = "perimeter",
                     ordering: str = "clockwise", decimals: int = 3):
    """An ipywidgets panel: ε slider (log scale), ε mode, ordering and decimals; vertices, characters,
    tokens and IoU update live under a picture of the polygon over the image.

    Returns the widget (display it in Jupyter). ``widget.update()`` redraws with the current values,
    which is also how tests drive it without a browser.
    """
    import ipywidgets as W

    image, mask = np.asarray(image), np.asarray(mask)
    eps = W.FloatLogSlider(value=max(epsilon, 1e-4), base=10, min=-4, max=-1, step=0.05,
                           description="ε", readout_format=".4f")
    mode = W.Dropdown(options=EPSILON_MODES, value=epsilon_mode, description="ε mode")
    order = W.Dropdown(options=ORDERINGS, value=ordering, description="ordering")
    dec = W.IntSlider(value=decimals, min=1, max=4, description="decimals")
    stats = W.HTML()
    # the picture is a PNG in an Image widget, not an Output widget: Output widgets capture
    # display() through the kernel and hang headless executors (papermill/nbclient) here
    picture = W.Image(format="png")

    def update(*_):
        s = answer_stats(mask, eps.value, mode.value, order.value, dec.value)
        stats.value = (f"<b>{s['vertices']}</b> vertices · <b>{s['chars']}</b> characters · "
                       f"~<b>{s['tokens_est']}</b> tokens · IoU <b>{s['iou']:.4f}</b>"
                       f"<br><code>{s['text'][:160]}{'…' if len(s['text']) > 160 else ''}</code>")
        fig, ax = plt.subplots(figsize=(5, 5))
        overlay(image, mask, s["polygons"], ax=ax)
        picture.value = _png(fig)
        return s

    for w in (eps, mode, order, dec):
        w.observe(update, names="value")
    box = W.VBox([W.HBox([eps, mode]), W.HBox([order, dec]), stats, picture])
    box.update = update
    update()
    return box


def _png(fig) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def prediction_explorer(samples, answers: dict):
    """An ipywidgets panel to browse predictions against ground truth: a sample slider and a model
    dropdown; the picture shows the target mask (blue) and the model's polygons (red, vertex 0 marked),
    with the expression, the answer text and its IoU.

    ``samples``: ``data.Sample`` objects; ``answers``: model name → one answer text per sample (as
    evaluation produced them). Returns the widget; ``widget.update()`` redraws (how tests drive it).
    """
    import ipywidgets as W
    from pycocotools import mask as mask_utils

    from .metrics import answer_iou
    from .parse import parse_polygons

    if not samples or not answers:
        raise ValueError("prediction_explorer needs at least one sample and one model's answers")
    for name, texts in answers.items():
        if len(texts) != len(samples):
            raise ValueError(f"{name}: {len(texts)} answers for {len(samples)} samples")
    index = W.IntSlider(value=0, min=0, max=len(samples) - 1, description="sample")
    model = W.Dropdown(options=list(answers), description="model")
    stats = W.HTML()
    picture = W.Image(format="png")  # an Image widget, not Output: see polygon_explorer

    def update(*_):
        s, text = samples[index.value], answers[model.value][index.value]
        r = parse_polygons(text)
        iou = answer_iou(text, s.gt_rle)
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        overlay(s.load_image(), mask_utils.decode(s.gt_rle), r.polygons if r.valid else [], ax=ax)
        picture.value = _png(fig)
        status = "valid" if r.valid else f"invalid: {r.error}"
        stats.value = (f"<b>{s.expression or s.prompt}</b> · IoU <b>{iou:.3f}</b> · {status}"
                       f"<br><code>{text[:200]}{'…' if len(text) > 200 else ''}</code>")
        return iou

    for w in (index, model):
        w.observe(update, names="value")
    box = W.VBox([W.HBox([index, model]), stats, picture])
    box.update = update
    update()
    return box
