"""Where RL's headroom is, measured on the SFT policy before any RL (the pass@k view).

GSPO can mostly only move the greedy answer towards the best of the answers the policy already samples:
it raises the probability of answers whose reward beat their group's mean. So before tuning a run, for a
fixed set of prompts we measure

* **greedy IoU** — what evaluation scores today (mask IoU of the greedy answer),
* **mean and best of G** sampled answers at each temperature — best-of-G minus greedy is the gain RL could
  reach by sharpening alone; mean-of-G below greedy says hot samples are mostly worse,
* **flat groups** — the share of groups whose G rewards are all equal: their standardized advantage is 0,
  so they give no gradient at all (wasted generation),
* **reward spread** — the mean within-group standard deviation of the summed reward (what trl divides by).

Rewards are ``rewards.combined_reward`` with the run's weights; IoU is ``rewards.mask_iou_reward``.
Coordinates and masks follow ``metrics`` (normalized (x, y), pixel-edge, y down).

Taught in ``notebooks/06_gspo_iou_rewards.py``.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.std import tqdm

from .rewards import REWARD_WEIGHTS, combined_reward, gt_centroid_of, mask_iou_reward

FLAT = 1e-6  # a group whose reward std is below this gives trl's standardized advantage 0


def _generate(model, processor, samples, batch_size, max_new_tokens, do_sample=False, temperature=1.0):
    from .model import generate

    out = []
    for k in range(0, len(samples), batch_size):
        chunk = samples[k : k + batch_size]
        out += generate(model, processor, [s.load_image() for s in chunk], [s.prompt for s in chunk],
                        max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature)
    return out


def headroom(model, processor, samples, temperatures=(0.3, 0.7, 1.0), group_size: int = 8,
             weights: dict | None = None, batch_size: int = 32, max_new_tokens: int = 160, seed: int = 0) -> dict:
    """Greedy vs sampled answers of one policy on ``samples`` (text→polygon ``data.Sample``s).

    Returns ``{"greedy_iou", "n", "group_size", "rows": [{"temperature", "mean_iou", "best_iou",
    "flat_groups", "reward_std", "best_minus_greedy"}], "per_sample": {...}}``; per-sample arrays
    (greedy IoU, best-of-G IoU per temperature) let a notebook pair them.
    """
    samples = list(samples)
    weights = dict(REWARD_WEIGHTS) if weights is None else weights
    rles = [s.gt_rle for s in samples]
    greedy = np.asarray(mask_iou_reward(_generate(model, processor, samples, batch_size, max_new_tokens), rles))
    rows, per_sample = [], {"greedy_iou": greedy.tolist()}
    grouped = [s for s in samples for _ in range(group_size)]
    for t in tqdm(temperatures, desc="temperatures", unit="T"):
        torch.manual_seed(seed)
        answers = _generate(model, processor, grouped, batch_size, max_new_tokens, do_sample=True, temperature=t)
        g_rles = [s.gt_rle for s in grouped]
        iou = np.asarray(mask_iou_reward(answers, g_rles)).reshape(len(samples), group_size)
        reward = np.asarray(combined_reward(answers, weights, gt_rle=g_rles,
                                            gt_centroid=[gt_centroid_of(r) for r in g_rles]))
        reward = reward.reshape(len(samples), group_size)
        spread = reward.std(axis=1)
        rows.append({"temperature": float(t), "mean_iou": float(iou.mean()), "best_iou": float(iou.max(1).mean()),
                     "flat_groups": float((spread < FLAT).mean()), "reward_std": float(spread.mean()),
                     "best_minus_greedy": float(iou.max(1).mean() - greedy.mean())})
        per_sample[f"best_iou_T{t:g}"] = iou.max(1).tolist()
    return {"greedy_iou": float(greedy.mean()), "n": len(samples), "group_size": group_size, "rows": rows,
            "per_sample": per_sample}


def choice_headroom(model, processor, samples, first: int = 2, group_size: int = 8, delta: float = 0.5,
                    batch_size: int = 4, max_new_tokens: int = 160, seed: int = 0, rate: float = 1.0) -> dict:
    """Which-object headroom of a ``coord_tokens`` policy: per prompt, the greedy (all-median) answer and
    ``group_size`` answers whose first ``first`` coordinates are drawn from the quantile window (δ ½: the model's
    own distribution) while every later coordinate takes the median — the groups ``gspo --quantile-window 0.5
    --explore-first K`` learns from (``quantile_rl.QuantileWindow(first=K)``). An answer is on the wrong object
    when its centroid is nearer another object of the scene (``evaluate.failure_kind``; synthetic scenes).
    ``first = 0`` draws every coordinate (each with probability ``rate``): the median sampler's headroom over the whole
    outline (``scripts/diagnostics/outline_headroom.py``).

    Returns greedy / mean / best-of-G IoU, ``greedy_wrong`` (share of prompts whose greedy answer is on the wrong
    object), ``mixed_groups`` (groups holding both right- and wrong-object answers), ``right_found`` and
    ``right_share`` where the greedy answer is wrong (a right answer in the group; the share of right answers),
    ``wrong_share`` where it is right, ``n``, and the per-sample greedy / mean / best IoUs (``per_sample``)."""
    from .evaluate import failure_kind
    from .model import coordinate_values
    from .quantile_rl import QuantileWindow, _batch, window_generate

    tok = processor.tokenizer
    ids, values = (torch.tensor(x) for x in coordinate_values(tok))
    if len(ids) == 0:
        raise ValueError("choice_headroom needs a coord_tokens policy (the quantile window draws coordinate tokens)")
    samples = list(samples)
    if not samples or any("objects" not in s.metadata or "target" not in s.metadata for s in samples):
        raise ValueError("choice_headroom needs synthetic scenes (data.make_samples: metadata with the scene's objects "
                         "and the target), at least one")
    generator = torch.Generator().manual_seed(seed)

    def complete(chunk, repeat, window):
        enc = _batch(processor, [{"prompt": s.prompt, "image": s.load_image()} for s in chunk for _ in range(repeat)])
        seqs = window_generate(model, tok, enc, window, max_new_tokens)
        return tok.batch_decode(seqs[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    model_was_training = model.training
    greedy, mean, best, greedy_wrong, wrong = [], [], [], [], []
    for k in tqdm(range(0, len(samples), batch_size), desc="choice headroom", unit="batch", leave=False):
        chunk = samples[k : k + batch_size]
        g = complete(chunk, 1, QuantileWindow(ids, values, 0.5, rate=0.0))
        t = complete(chunk, group_size, QuantileWindow(ids, values, delta, generator, rate=rate, first=first))
        for i, s in enumerate(chunk):
            group = t[i * group_size : (i + 1) * group_size]
            iou = mask_iou_reward(group, [s.gt_rle] * group_size)
            greedy.append(mask_iou_reward([g[i]], [s.gt_rle])[0])
            mean.append(float(np.mean(iou)))
            best.append(float(max(iou)))
            greedy_wrong.append(failure_kind(s, g[i]) == "wrong object")
            wrong.append(float(np.mean([failure_kind(s, x) == "wrong object" for x in group])))
    model.train(model_was_training)
    gw, ws = np.asarray(greedy_wrong, bool), np.asarray(wrong)
    nan = float("nan")
    return {"n": len(samples), "first": first, "group_size": group_size, "greedy_iou": float(np.mean(greedy)),
            "per_sample": {"greedy": greedy, "mean": mean, "best": best},
            "mean_iou": float(np.mean(mean)), "best_iou": float(np.mean(best)), "greedy_wrong": float(gw.mean()),
            "mixed_groups": float(((ws > 0) & (ws < 1)).mean()),
            "right_found": float((ws[gw] < 1).mean()) if gw.any() else nan,
            "right_share": float(1 - ws[gw].mean()) if gw.any() else nan,
            "wrong_share": float(ws[~gw].mean()) if (~gw).any() else nan}


def plot_headroom(report: dict, ax=None):
    """Greedy IoU (a line) against the mean and the best of G sampled answers per temperature, and the
    share of flat groups (right axis)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 3.6))[1]
    t = [r["temperature"] for r in report["rows"]]
    ax.axhline(report["greedy_iou"], color="black", ls="--", label="greedy")
    ax.plot(t, [r["mean_iou"] for r in report["rows"]], "o-", label=f"mean of G={report['group_size']}")
    ax.plot(t, [r["best_iou"] for r in report["rows"]], "s-", label=f"best of G={report['group_size']}")
    ax.set(xlabel="sampling temperature", ylabel="mask IoU (mean over prompts)",
           title=f"RL's headroom on {report['n']} prompts")
    right = ax.twinx()
    right.bar(t, [r["flat_groups"] for r in report["rows"]], width=0.08, alpha=0.25, color="grey")
    right.set(ylabel="share of flat groups (grey)", ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    return ax


def _interval(d: dict | None) -> str:
    if not d:
        return "–"
    lo, hi = d["ci95"]
    sign = " **(excludes 0)**" if lo > 0 or hi < 0 else ""
    return f"{d['mean']:+.3f} [{lo:+.3f}, {hi:+.3f}]{sign}"


GROUPS = ("start", "the paper's recipe", "the paper's ablations", "control: more SFT at equal cost")  # table order


def _ordered(arms: list[dict]) -> list[dict]:
    rank = {g: i for i, g in enumerate(GROUPS)}
    return sorted(arms, key=lambda a: rank.get(a.get("group"), len(GROUPS)))  # stable: the record's order within


def rl_arms_table(table: dict, split: str = "validation") -> str:
    """Markdown table of an RL arms record (``data/arms/rl_arms.json``, written by ``scripts/rl_arms.py``): per
    arm, gIoU (1 / 2 / 3 objects), the paired difference with the SFT start and its 95% interval, the median area
    ratio (answer / target; > 1: too big), and the same on the unseen split where measured. Rows: the start, the
    committed recipe, the paper's ablations, the SFT control, then every other arm in the record's order."""
    other = "unseen" if split == "validation" else "validation"
    head = (f"| arm | group | {split}: gIoU (1 / 2 / 3 objects) | vs SFT, 95% interval | area ratio | "
            f"{other} ({table[other]['seed']}): vs SFT | wall |")
    lines = [head, "|" + "---|" * 7]
    arms = _ordered([a for a in table["arms"] if split in a])
    for a in arms:
        r = a[split]
        by = " / ".join(f"{r['gIoU_by_objects'][k]:.3f}" for k in sorted(r["gIoU_by_objects"]))
        o = a.get(other, {})
        wall = f"{a['wall_min']:.1f} min" if a.get("wall_min") is not None else "–"
        lines.append(f"| {a.get('label', a['name'])} | {a.get('group', '')} | {r['gIoU']:.3f} ({by}) | {_interval(r.get('vs_sft'))} | "
                     f"{r['area_ratio']:.3f} | {_interval(o.get('vs_sft'))} | {wall} |")
    return "\n".join(lines)


def plot_rl_arms(table: dict, split: str = "validation", ax=None):
    """Forest plot: each arm's paired gIoU difference with the SFT start and its 95% interval (grey: the interval
    holds 0; red: below; green: above), one row per arm; the dashed line is the issue's +0.05 target."""
    from .viz import paired_forest

    arms = _ordered([a for a in table["arms"] if split in a and "vs_sft" in a[split]])
    rows = [(a.get("label", a["name"]), a[split]["vs_sft"]["mean"], *a[split]["vs_sft"]["ci95"]) for a in arms]
    ax = paired_forest(rows, ax, xlabel=f"gIoU − SFT's, same {table[split]['n']} scenes (seed {table[split]['seed']}), "
                                        "95% interval", title="RL arms and SFT controls from the lite-sft, paired with it\n")
    ax.axvline(0.05, color="tab:green", ls="--", lw=0.8)
    ax.text(0.05, 1.0, "target +0.05", color="tab:green", fontsize=8, ha="center", va="bottom",
            transform=ax.get_xaxis_transform())  # above the top row, clear of every interval
    return ax


def planted_table(record: dict) -> str:
    """Markdown table of the planted-reward controls (``data/arms/planted_shift.json``; ``gspo --plant-shift``,
    read out by ``scripts/diagnostics/planted_shift.py``): per run and group of targets, the right-object answers'
    mean horizontal offset from the true target (px, + = right) before → after with the paired 95% interval, and
    mean IoU with the planted and with the true target before → after."""
    lines = ["| run | targets (planted shift) | x offset, px: SFT → run (paired, 95%) | IoU with the planted target | "
             "IoU with the true target | wall |", "|" + "---|" * 6]
    for a in record["arms"]:
        for group, g in a["groups"].items():
            s0, d = a["start_groups"][group], g["offset_vs_first"]
            lines.append(f"| {a['label']} | {group} | {s0['x_offset_px']:+.2f} → {g['x_offset_px']:+.2f} "
                         f"({d['mean']:+.2f} [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}]) | "
                         f"{s0['iou_planted']:.3f} → {g['iou_planted']:.3f} | {s0['iou_true']:.3f} → {g['iou_true']:.3f} "
                         f"| {a['wall_min']:.1f} min |")
    return "\n".join(lines)


def plot_planted(record: dict, axes=None):
    """One panel per planted-reward run: histograms of the right-object answers' horizontal offsets from the true
    target (px) for the SFT start (grey) and the run (one colour per group of targets), with a dashed line at
    each group's planted shift. Returns the axes."""
    import matplotlib.pyplot as plt

    arms = record["arms"]
    if axes is None:
        axes = plt.subplots(1, len(arms), figsize=(3.4 * len(arms), 2.8), sharey=True, constrained_layout=True)[1]
    axes = np.atleast_1d(axes)
    bins = np.arange(-9, 9.5, 0.75)
    start = np.array([np.nan if v is None else v for v in record["start"]["per_sample_x_offset_px"]], dtype=float)
    for ax, a in zip(axes, arms):
        x = np.array([np.nan if v is None else v for v in a["per_sample_x_offset_px"]], dtype=float)
        ax.hist(start[~np.isnan(start)], bins=bins, color="grey", alpha=0.45, label="SFT")
        for (group, g), colour in zip(a["groups"].items(), ("tab:blue", "tab:orange")):
            m = np.array(a["group_of_sample"]) == group if len(a["groups"]) > 1 else np.ones(len(x), bool)
            ax.hist(x[m & ~np.isnan(x)], bins=bins, histtype="step", lw=2, color=colour,
                    label=group if len(a["groups"]) > 1 else "after RL")
            ax.axvline(g["planted_px"], color=colour, ls="--", lw=1)
        ax.set(title=a["label"], xlabel="answer centroid − target's, px (+ right)")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("answers")
    return axes


def offset_outlines(polygons, d_px: float, width: int, height: int) -> list[np.ndarray]:
    """``polygons`` (normalized (N, 2) arrays, x right, y down) moved outwards by ``d_px`` pixels of a
    ``width`` × ``height`` image (shapely ``buffer`` with mitred corners; d < 0 shrinks). Parts that vanish are
    dropped; a part that splits becomes several polygons. Returns normalized arrays clipped to [0, 1].

    The fixed rule an RL gain is measured against: Douglas–Peucker keeps vertices *on* the contour, so polygons
    learned from sparsified targets cut inside every convex run, and pushing every edge out by a constant repairs
    part of that without any training."""
    from shapely.geometry import Polygon
    from shapely.validation import make_valid

    if not np.isfinite(d_px) or abs(d_px) > max(width, height):
        raise ValueError(f"offset {d_px!r} px is not a finite number within the {width}×{height} image; "
                         "use a few pixels, e.g. 0.5 or -1")
    polygons = [np.asarray(p, dtype=float) for p in polygons if len(p) >= 3]
    if not d_px:  # unchanged, so scored exactly as evaluation scores them
        return polygons
    out = []
    for p in polygons:
        # make_valid keeps both lobes of a self-crossing outline (buffer(0) would drop one)
        shape = make_valid(Polygon(p * (width, height))).buffer(d_px, join_style="mitre", mitre_limit=3.0)
        for part in getattr(shape, "geoms", [shape]):
            if not part.is_empty and part.area > 0:
                out.append(np.clip(np.asarray(part.exterior.coords)[:-1] / (width, height), 0.0, 1.0))
    return out


def offset_scores(samples, answers, offsets=(0.0, 0.5, 1.0)) -> dict[float, np.ndarray]:
    """Per offset ``d`` (pixels), the per-sample IoU of each answer's outlines moved out by ``d``
    (``offset_outlines``) against its sample's mask. An invalid answer, or outlines shrunk away, is scored as no
    polygon at all — exactly as evaluation scores it (``metrics.answer_iou``: 0, or 1 against an empty mask).
    ``scripts/diagnostics/outline_offset.py`` runs it over checkpoints (LOG, session 35)."""
    from .metrics import parsed_iou
    from .parse import parse_polygons

    if len(answers) != len(samples):
        raise ValueError(f"{len(answers)} answers for {len(samples)} samples: pass one answer per sample")
    parsed = [parse_polygons(a) for a in answers]
    out = {}
    for d in offsets:
        out[float(d)] = np.array([
            parsed_iou(offset_outlines(q.polygons, d, s.width, s.height) if q.valid else [], s.gt_rle)
            for q, s in zip(parsed, samples)])
    return out


def _edge_map(gt_rle: dict):
    """Per pixel, the distance (px) from the nearest boundary pixel of the target mask (0 on them); None for an empty
    mask."""
    import cv2
    from pycocotools import mask as mask_utils

    m = mask_utils.decode(gt_rle).astype(np.uint8)
    if not m.any():
        return None
    boundary = m - cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.distanceTransform((boundary == 0).astype(np.uint8), cv2.DIST_L2, 5)


def _edge_distances(answer: str, gt_rle: dict, dist=None) -> list[float]:
    """Distance (px) of each vertex of the answer's first polygon from the nearest boundary pixel of the target mask
    (normalized pixel-edge (x, y) → px); [] for an unparseable answer or an empty mask. ``dist``: ``_edge_map(gt_rle)``
    when the caller already has it."""
    from .parse import parse_polygons

    r = parse_polygons(answer)
    dist = _edge_map(gt_rle) if dist is None else dist
    if not r.valid or dist is None:
        return []
    h, w = dist.shape
    out = []
    for x, y in np.asarray(r.polygons[0], float) * [w, h]:
        # a vertex sits on pixel corners: through the nearest of the 4 pixel centres around it (≥ 0.7 px on the edge)
        cols = np.clip([int(np.floor(x - 0.5)), int(np.ceil(x - 0.5))], 0, w - 1)
        rows = np.clip([int(np.floor(y - 0.5)), int(np.ceil(y - 0.5))], 0, h - 1)
        out.append(float(min(dist[j, i] + np.hypot(x - i - 0.5, y - j - 0.5) for i in cols for j in rows)))
    return out


def exposure_gap(model, processor, samples, batch_size: int = 8, max_new_tokens: int = 160) -> dict:
    """How much the greedy answer loses by writing each coordinate after its *own* earlier ones (exposure bias).

    Per sample, two polygons scored by mask IoU against the target: the free-running greedy answer (``evaluate``,
    what every table reports) and the *teacher-forced* one — the ground-truth answer fed in, and every coordinate
    replaced by what the model's decoding rule (``model.CoordinateDecoding``) writes at that position given the
    exact prefix. Both come from the same weights and rule; they differ only in the prefix each coordinate is
    written after. The gap is what errors carried from earlier vertices cost: what SFT on exact prefixes never sees
    and on-policy training could (LOG session 33). Also split by whether the free answer outlines the right object
    (``evaluate.failure_kind`` on synthetic scenes; elsewhere every valid answer). Needs a ``coord_tokens`` policy.

    Whether the errors *compound* is read from ``edge_px_by_vertex``: for the right-object answers, the mean distance
    (px) of the k-th vertex from the target's edge, k = 0 … 11 (later vertices pooled into 11), free-running and
    teacher-forced. Errors carried along the answer grow with k; a flat row says each vertex is as good as the model's
    eye, whatever came before. (The edge is the centres of the mask's boundary pixels, reached through the pixel
    centres around the vertex, which lies on pixel corners: a vertex exactly on the mask's outline reads ~0.7 px.)

    Returns ``teacher_forced_iou``, ``free_iou``, ``gap`` (their difference), the same on ``right_object`` answers,
    ``edge_px_by_vertex``, ``n`` / ``n_right`` and the per-sample lists ``teacher_forced`` / ``free``."""
    from .evaluate import evaluate, failure_kind
    from .model import CoordinateDecoding, collate_sft

    samples = list(samples)
    if not samples:
        raise ValueError("exposure_gap needs at least one sample")
    rule = getattr(model.config, "lite_coord_decoding", "median")
    try:
        rule_of = CoordinateDecoding(processor.tokenizer, "median" if rule == "argmax" else rule,
                                     getattr(model.config, "lite_coord_window", 0.05))
    except ValueError as e:
        raise ValueError("exposure_gap needs a coord_tokens policy (one token per coordinate)") from e
    coord_ids = rule_of.ids

    def decode(scores):  # the token the checkpoint's greedy rule writes after each row's prefix
        return (scores if rule == "argmax" else rule_of(None, scores)).argmax(-1)

    was_training = model.training
    model.eval()
    free_rows = evaluate(model, processor, samples, dependence=False, max_new_tokens=max_new_tokens)["rows"]
    forced = []
    with torch.no_grad():
        for k in tqdm(range(0, len(samples), batch_size), desc="teacher forced", unit="batch", leave=False):
            chunk = samples[k : k + batch_size]
            batch = collate_sft([{"image": s.load_image(), "prompt": s.prompt, "answer": s.answer} for s in chunk],
                                processor)
            labels = batch.pop("labels")
            logits = model(**batch).logits[:, :-1]
            target = labels[:, 1:]
            for r in range(len(chunk)):
                at = (target[r] != -100).nonzero()[:, 0]
                tokens = target[r, at]
                written = decode(logits[r, at].float())
                is_coord = (tokens.unsqueeze(-1) == coord_ids).any(-1)  # where the answer has a coordinate
                forced.append(processor.tokenizer.decode(torch.where(is_coord, written, tokens),
                                                         skip_special_tokens=True))
    model.train(was_training)
    tf = np.asarray(mask_iou_reward(forced, [s.gt_rle for s in samples]))
    fr = np.asarray([r["iou"] for r in free_rows])
    right = np.asarray([failure_kind(s, r["answer"]) == "shape" if "objects" in s.metadata else r["valid"]
                        for s, r in zip(samples, free_rows)])
    edge = {"free": [[] for _ in range(12)], "teacher_forced": [[] for _ in range(12)]}
    for s, f, t, ok in zip(samples, free_rows, forced, right):
        if ok:
            dist = _edge_map(s.gt_rle)  # once per target, for both answers
            for key, text in (("free", f["answer"]), ("teacher_forced", t)):
                for k, d in enumerate(_edge_distances(text, s.gt_rle, dist)):
                    edge[key][min(k, 11)].append(d)
    return {"n": len(samples), "teacher_forced_iou": float(tf.mean()), "free_iou": float(fr.mean()),
            "edge_px_by_vertex": {key: [float(np.mean(v)) if v else float("nan") for v in rows]
                                  for key, rows in edge.items()},
            "gap": float(tf.mean() - fr.mean()), "n_right": int(right.sum()),
            "right_object": {"teacher_forced_iou": float(tf[right].mean()) if right.any() else float("nan"),
                             "free_iou": float(fr[right].mean()) if right.any() else float("nan")},
            "teacher_forced": tf.tolist(), "free": fr.tolist()}
