"""Pictures: masks and polygons drawn over images, and the interactive polygon explorer.

Every notebook draws through these helpers (no plotting code lives only in a notebook). Polygons are
normalized (x, y) in [0, 1], y down; they are drawn in **pixel-edge** coordinates, so matplotlib's
``imshow`` extent is set to ``(0, W, H, 0)`` — pixel (r, c) covers [c, c+1] × [r, r+1] on screen, the
same convention as the rasterizer. (matplotlib's default extent puts pixel *centres* on integers,
which would shift every outline by half a pixel.)

Both explorers also display as a still picture of their current state (``StaticSnapshot``), which is
what an executed notebook keeps once its kernel is gone (``book``).

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


def overlay(image, mask=None, polygons_norm=(), title: str | None = None, ax=None, mask_color=(0.1, 0.6, 1.0),
            **kw):
    """One panel: image, optional ground-truth mask (``mask_color``), optional polygons (``show_polygons``
    keywords, e.g. ``color``). Returns the axis."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    image = np.asarray(image)
    show_image(ax, image, title)
    if mask is not None:
        show_mask(ax, mask, color=mask_color)
    if len(polygons_norm):
        show_polygons(ax, polygons_norm, image.shape[1], image.shape[0], **kw)
    return ax


def compare_outlines(image, mask, outlines: dict, ax=None, title: str | None = None, margin: int = 6,
                     colors=("tab:red", "tab:green", "tab:orange", "tab:purple"), legend: bool = True):
    """One panel zoomed on the target and the answers: the image, its ground-truth ``mask`` (H, W) in blue, and
    several answers' normalized polygons ``{label: polygons}`` in ``colors`` (``legend`` names them), cropped to the
    box around the mask and every drawn vertex plus ``margin`` pixels — so an answer on the wrong object stays in
    view. Pixel-edge coordinates as everywhere here, so a one-pixel difference between two outlines is visible.
    With nothing to zoom on (empty mask, no polygons) it shows the whole image."""
    image, mask = np.asarray(image), np.asarray(mask) != 0
    if mask.shape != image.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match image {image.shape[:2]}: pass the sample's own mask")
    if len(outlines) > len(colors):
        raise ValueError(f"{len(outlines)} outlines but {len(colors)} colours: pass more colors")
    ax = overlay(image, mask, ax=ax, title=title)
    h, w = mask.shape
    rows, cols = np.nonzero(mask)
    xs, ys = [cols.min(), cols.max() + 1] if mask.any() else [], [rows.min(), rows.max() + 1] if mask.any() else []
    for (label, polygons), color in zip(outlines.items(), colors):
        show_polygons(ax, polygons, w, h, color=color, order=False, lw=1.2, label=label)
        for p in polygons:
            q = np.asarray(p, dtype=np.float64).reshape(-1, 2) * (w, h)
            xs, ys = [*xs, *q[:, 0]], [*ys, *q[:, 1]]
    if xs:
        ax.set_xlim(max(min(xs) - margin, 0), min(max(xs) + margin, w))
        ax.set_ylim(min(max(ys) + margin, h), max(min(ys) - margin, 0))
    if legend and any(len(p) for p in outlines.values()):
        ax.legend(fontsize=7, loc="lower right")
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


def plot_coordinate_histograms(pred_xy, gt_xy, ax=None, title: str | None = None, decimals: int = 2,
                               lattice=None):
    """The lattice picture: share of answers' coordinates at each value 0, 0.01, …, 1 (x and y pooled),
    predicted (bars) against the ground truth (line); ``lattice`` values marked below the axis.
    ``pred_xy`` / ``gt_xy``: 1-D arrays of normalized coordinates (``localization.lattice_report``)."""
    from .localization import LATTICE_12, histogram, tv_distance

    lattice = LATTICE_12 if lattice is None else lattice
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.6))
    grid = np.arange(10**decimals + 1) / 10**decimals
    ax.bar(grid, histogram(pred_xy, decimals), width=0.8 / 10**decimals, color="tab:purple", label="predicted")
    ax.plot(grid, histogram(gt_xy, decimals), color="black", lw=1, label="ground truth")
    ax.plot(lattice, np.zeros(len(lattice)), "v", color="tab:red", ms=6, clip_on=False, label="12-value lattice")
    ax.set_xlabel("normalized coordinate (x and y pooled)")
    ax.set_ylabel("share of values")
    ax.set_xlim(0, 1)
    tv = tv_distance(pred_xy, gt_xy, decimals)
    ax.set_title(f"{title + ' — ' if title else ''}TV distance to the truth {tv:.2f}", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    return ax


def paired_forest(rows, ax=None, xlabel: str = "b − a per sample, mean and 95% interval", title: str | None = None):
    """Forest plot of paired differences: ``rows`` = [(label, mean, ci95 low, ci95 high)], one line per row from the
    top (green: the interval is above 0; red: below; grey: it holds 0), a black line at 0. Returns the axes."""
    rows = list(rows)
    ax = ax or plt.subplots(figsize=(7, 0.32 * len(rows) + 1.2), constrained_layout=True)[1]
    for y, (_, mean, lo, hi) in enumerate(rows):
        colour = "tab:green" if lo > 0 else "tab:red" if hi < 0 else "grey"
        ax.plot([lo, hi], [y, y], color=colour, lw=2)
        ax.plot(mean, y, "o", color=colour)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(rows)), [label for label, *_ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel=xlabel, title=title)
    ax.tick_params(axis="x", labelsize=8)
    return ax


# Colours of the explorers: no synthetic object is magenta or cyan (data.COLOURS: red, green, blue,
# yellow, white), so the outline never disappears into the object it traces.
ANSWER_COLOUR = "#ff00ff"  # magenta: the polygon written as text (the answer)
TRUTH_COLOUR = (0.0, 0.9, 0.9)  # cyan: the ground-truth mask
FIGURE_INCHES, FIGURE_DPI = 5.0, 100  # the explorer's picture: 500 px wide, shown at that width


def _figure(image):
    """A figure exactly ``FIGURE_INCHES`` wide with the image's aspect and no margins, so its PNG is
    ``FIGURE_INCHES × FIGURE_DPI`` px wide and shown 1:1."""
    h, w = np.asarray(image).shape[:2]
    fig = plt.figure(figsize=(FIGURE_INCHES, FIGURE_INCHES * h / w))
    return fig, fig.add_axes((0, 0, 1, 1))


def _legend_html() -> str:
    swatch = '<span style="display:inline-block;width:12px;height:12px;background:{};margin:0 4px 0 10px"></span>'
    cyan = "rgb(0,230,230)"
    return (f"<span style='font-size:90%'>{swatch.format(cyan)}ground-truth mask"
            f"{swatch.format(ANSWER_COLOUR)}polygon (big dot: vertex 0, arrow: writing direction)</span>")


def collapse_note(mask, decimals: int) -> str:
    """Why an answer has no polygon: rounding to ``decimals`` merged its vertices (or the mask is empty)."""
    mask = np.asarray(mask)
    if not mask.any():
        return "the mask is empty: nothing to outline"
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    step = max(w, h) / 10**decimals
    return (f"no polygon left: at {decimals} decimal(s) coordinates move in steps of {step:.0f} px, and this "
            f"object is only {xs.max() - xs.min() + 1}×{ys.max() - ys.min() + 1} px, so rounding merges its "
            f"vertices into fewer than 3 distinct points — use more decimals")


class StaticSnapshot:
    """Mixin for an ipywidgets container: besides the live widget, its display carries ``text/html``
    with the picture and numbers it shows *now*. JupyterLab with a kernel shows the live widget; an
    executed notebook whose widget state is gone (``book.clean_executed`` drops the widget view), and
    its HTML page, show the snapshot instead of a widget repr or an error."""

    snapshot_html = ""

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if self.snapshot_html:
            bundle = {**bundle, "text/html": self.snapshot_html}
        return bundle


def _snapshot(stats_html: str, png: bytes, width_px: int) -> str:
    import base64

    return (f"<div class='simpleseg-snapshot'><p><i>Static picture of the explorer's initial state (run the "
            f"notebook to move the controls).</i></p>{stats_html}<br><img width='{width_px}' "
            f"src='data:image/png;base64,{base64.b64encode(png).decode()}'></div>")


def _panel(children, update):
    """A VBox of ``children`` that also displays as its static snapshot; ``.update()`` redraws it."""
    import ipywidgets as W

    class Explorer(StaticSnapshot, W.VBox):
        pass

    box = Explorer(children)
    box.update = update
    return box


def polygon_explorer(image, mask, epsilon: float = 0.005, epsilon_mode: str = "perimeter",
                     ordering: str = "clockwise", decimals: int = 3):
    """An ipywidgets panel: ε slider (log scale), what ε is relative to, ordering and decimals; vertices,
    characters, tokens and IoU update live under a picture of the polygon (magenta) over the image and
    the ground-truth mask (cyan). IoU is against the mask with holes filled (the answer drops holes by
    design), with the IoU against the mask as given beside it.

    Returns the widget (display it in Jupyter). ``widget.update()`` redraws with the current values,
    which is also how tests drive it without a browser; ``widget.last`` holds the last ``answer_stats``.
    """
    import ipywidgets as W

    from .contours import fill_holes

    image, mask = np.asarray(image), np.asarray(mask)
    filled_rle, given_rle = mask_to_rle(fill_holes(mask)), mask_to_rle(mask)
    style = {"description_width": "initial"}
    eps = W.FloatLogSlider(value=max(epsilon, 1e-4), base=10, min=-4, max=-1, step=0.05,
                           description="ε (tolerance)", readout_format=".4f", style=style,
                           tooltip="Douglas–Peucker tolerance: a vertex is dropped when the outline moves less "
                                   "than ε × (the length chosen on the right)")
    mode = W.Dropdown(options=[("of each contour's perimeter", "perimeter"), ("of the longer image side", "side")],
                      value=epsilon_mode, description="ε is a fraction", style=style,
                      tooltip="perimeter: the paper's token counts; side: a fixed number of pixels")
    order = W.Dropdown(options=ORDERINGS, value=ordering, description="vertex order", style=style,
                       tooltip="clockwise is the paper's; the others are the ordering ablation")
    dec = W.IntSlider(value=decimals, min=1, max=4, description="decimals", style=style,
                      tooltip="decimal places of the normalized coordinates (3 in the paper)")
    stats = W.HTML()
    width_px = int(FIGURE_INCHES * FIGURE_DPI)
    # the picture is a PNG in an Image widget, not an Output widget: Output widgets capture
    # display() through the kernel and hang headless executors (papermill/nbclient) here
    picture = W.Image(format="png", width=width_px)  # shown at the size it is rendered: not blurry
    holder = {}

    def update(*_):
        s = answer_stats(mask, eps.value, mode.value, order.value, dec.value)
        s["iou_with_holes"] = polygons_iou(s["polygons"], given_rle)
        s["iou"] = polygons_iou(s["polygons"], filled_rle)
        text = s["text"] if s["polygons"] else f"[] — {collapse_note(mask, dec.value)}"
        stats.value = (f"<b>{s['vertices']}</b> vertices · <b>{s['chars']}</b> characters · "
                       f"~<b>{s['tokens_est']}</b> tokens · IoU <b>{s['iou']:.4f}</b> against the mask with "
                       f"holes filled ({s['iou_with_holes']:.4f} against the mask as given)"
                       f"<br><code>{text[:240]}{'…' if len(text) > 240 else ''}</code><br>{_legend_html()}")
        fig, ax = _figure(image)
        overlay(image, mask, s["polygons"], ax=ax, mask_color=TRUTH_COLOUR, color=ANSWER_COLOUR)
        png = _png(fig)
        picture.value = png
        holder["box"].last = s
        holder["box"].snapshot_html = _snapshot(stats.value, png, width_px)
        return s

    for w in (eps, mode, order, dec):
        w.observe(update, names="value")
    box = _panel([W.HBox([eps, mode]), W.HBox([order, dec]), stats, picture], update)
    holder["box"] = box
    update()
    return box


def _png(fig, dpi: int = FIGURE_DPI) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def prediction_explorer(samples, answers: dict):
    """An ipywidgets panel to browse predictions against ground truth: a sample slider and a model
    dropdown; the picture shows the target mask (cyan) and the model's polygons (magenta, vertex 0
    marked), with the expression, the answer text and its IoU.

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
    style = {"description_width": "initial"}
    index = W.IntSlider(value=0, min=0, max=len(samples) - 1, description="sample", style=style,
                        tooltip="which held-out sample")
    model = W.Dropdown(options=list(answers), description="model", style=style, tooltip="whose answers")
    stats = W.HTML()
    width_px = int(FIGURE_INCHES * FIGURE_DPI)
    picture = W.Image(format="png", width=width_px)  # an Image widget, not Output: see polygon_explorer
    holder = {}

    def update(*_):
        s, text = samples[index.value], answers[model.value][index.value]
        r = parse_polygons(text)
        iou = answer_iou(text, s.gt_rle)
        fig, ax = _figure(np.asarray(s.load_image()))
        overlay(s.load_image(), mask_utils.decode(s.gt_rle), r.polygons if r.valid else [], ax=ax,
                mask_color=TRUTH_COLOUR, color=ANSWER_COLOUR)
        png = _png(fig)
        picture.value = png
        status = "valid" if r.valid else f"invalid: {r.error}"
        stats.value = (f"<b>{s.expression or s.prompt}</b> · IoU <b>{iou:.3f}</b> against the target mask · "
                       f"{status}<br><code>{text[:200]}{'…' if len(text) > 200 else ''}</code><br>{_legend_html()}")
        holder["box"].snapshot_html = _snapshot(stats.value, png, width_px)
        return iou

    for w in (index, model):
        w.observe(update, names="value")
    box = _panel([W.HBox([index, model]), stats, picture], update)
    holder["box"] = box
    update()
    return box


def pca_rgb(features) -> np.ndarray:
    """A (C, h, w) feature map (tensor or array) → (h, w, 3) in [0, 1]: its first three principal components
    as RGB, the way Pixel-SAIL's paper pictures features (notebook 08)."""
    f = np.asarray(features, dtype=np.float64).reshape(len(features), -1).T
    f = f - f.mean(0)
    _, _, vt = np.linalg.svd(f, full_matrices=False)
    rgb = f @ vt[:3].T
    rgb = (rgb - rgb.min(0)) / (np.ptp(rgb, 0) + 1e-8)
    return rgb.reshape(*np.shape(features)[1:], 3)
