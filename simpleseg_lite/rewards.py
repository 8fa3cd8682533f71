"""Rule rewards for the RL stage: mask IoU, centroid distance, format, and an optional length penalty.

Every function has TRL's reward signature ``fn(completions, **columns) -> list[float]``: ``completions`` are
strings or TRL's conversational form (a list of message dicts; the last assistant message is scored), and
dataset columns arrive as keyword lists — ``gt_rle`` (pycocotools RLE of the target mask, image
``height × width``), optionally ``gt_centroid``. Unknown keywords (``prompts``, ``completion_ids``,
``trainer_state``, …) are ignored. A completion that is not usable text — garbage, NaN, pixel coordinates,
``<|image_pad|>``, ``None``, a dict — scores 0 and never raises (``parse.parse_polygons`` guarantees it).
Coordinates are normalized (x, y), y down, pixel-edge: pixel column ``c`` spans ``[c/W, (c+1)/W]``.

Departures from the paper (§3.3 names the three rewards but gives no formulas or weights):

* ``mask_iou_reward`` is ``metrics.answer_iou`` — the evaluation IoU — except that an unparseable answer
  scores 0 even against an empty ground truth (evaluation scores that case 1); otherwise garbage could
  earn reward on a no-target sample.
* The paper's "MSE distance IoU reward" penalizes centroid misalignment. We use a bounded version that is
  *linear* in the distance, ``1 − min(1, ‖c_pred − c_gt‖₂ / CENTROID_SCALE)``, so it lies in [0, 1] like
  IoU and still pays where IoU is 0 (a prediction beside the object). GSPO standardizes the summed reward
  within each group, so only the ordering and relative spacing of rewards matter; a squared distance would
  be flat near the target, where IoU already gives the signal.
* ``size_reward`` (area match, off by default) is ours, not the paper's; see its docstring.
* The weights in ``REWARD_WEIGHTS`` are ours. The length penalty is off by default: the paper's ablation
  found it hurts. It is the one term that charges long garbage (down to −1) instead of scoring it 0.

Taught in ``notebooks/06_gspo_iou_rewards.py``.
"""

from __future__ import annotations

import time
from functools import lru_cache

import numpy as np

from .metrics import parsed_areas, parsed_iou, polygons_centroid
from .parse import parse_polygons

# Centroid distance (normalized units) at which the centroid reward reaches 0: half the image side.
CENTROID_SCALE = 0.5
# Token budget of the length penalty: the paper's best ε = 0.005 averages ~221 tokens per answer.
MAX_TOKENS = 256

# Our defaults (the paper publishes none); a weight of 0 leaves a term out.
REWARD_WEIGHTS = {"mask_iou_reward": 1.0, "centroid_reward": 0.5, "format_reward": 0.25, "length_penalty": 0.0,
                  "size_reward": 0.0}


def completion_text(completion) -> str | None:
    """A completion as text: a string as it is; TRL's conversational form ``[{"role", "content"}, ...]`` →
    the last assistant message, whose content may be a string or a list of ``{"type": "text", "text"}``
    parts. Anything else → ``None``."""
    if isinstance(completion, str):
        return completion
    if not isinstance(completion, list):
        return None
    for message in reversed(completion):
        if isinstance(message, dict) and message.get("role", "assistant") == "assistant":
            content = message.get("content")
            if isinstance(content, list):  # multimodal message: keep its text parts
                texts = [p.get("text") for p in content if isinstance(p, dict)]
                content = "".join(t for t in texts if isinstance(t, str))
            return content if isinstance(content, str) else None
    return None


# TRL calls each reward function on the same batch, so one parse serves all of them.
_parse_text = lru_cache(maxsize=2048)(parse_polygons)


def _parse(completion):
    text = completion_text(completion)
    return _parse_text(text) if text is not None else parse_polygons(None)  # None → invalid result


def mask_iou_reward(completions, gt_rle, **kwargs) -> list[float]:
    """IoU of each answer's polygons with ``gt_rle``, in [0, 1]; unparseable → 0.

    For every parseable answer this is exactly ``metrics.answer_iou`` (same parse, same ``parsed_iou``)."""
    parsed = [_parse(c) for c in completions]
    return [parsed_iou(r.polygons, gt) if r.valid else 0.0 for r, gt in zip(parsed, gt_rle, strict=True)]


def _rle_counts(counts) -> list[int]:
    """pycocotools' compressed RLE string → run lengths (its ``rleFrString``: 5 bits per character,
    continuation bit 0x20, sign bit 0x10, runs from the third on stored as a difference to the run two back)."""
    if not isinstance(counts, (str, bytes)):
        return [int(c) for c in counts]  # already uncompressed
    data = counts.encode() if isinstance(counts, str) else counts
    runs, p = [], 0
    while p < len(data):
        x = k = 0
        more = True
        while more:
            c = data[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        runs.append(x + runs[-2] if len(runs) > 2 else x)
    return runs


@lru_cache(maxsize=4096)
def _rle_centroid(height: int, width: int, counts) -> tuple[float, float] | None:
    """Centroid (x, y) of an RLE mask in normalized coordinates, from its runs (no decode).

    Runs are column-major: linear pixel index i sits at column i // H, row i % H, centre (+0.5, +0.5).
    Sums over a run [s, e) come from the prefix sums F(n) = Σ_{i<n} i//H and G(n) = Σ_{i<n} i%H,
    closed form with q, r = divmod(n, H): F = H·q(q−1)/2 + r·q, G = q·H(H−1)/2 + r(r−1)/2."""
    ends = np.cumsum(np.asarray(_rle_counts(counts), dtype=np.int64))
    stops = ends[1::2]  # runs alternate 0s, 1s, 0s, …: the ones are [ends[2j], ends[2j+1])
    starts = ends[0::2][: len(stops)]
    area = int((stops - starts).sum())
    if area == 0:
        return None
    h = np.int64(height)

    def prefix(n):
        q, r = np.divmod(n, h)
        return h * q * (q - 1) // 2 + r * q, q * h * (h - 1) // 2 + r * (r - 1) // 2

    (fe, ge), (fs, gs) = prefix(stops), prefix(starts)
    cx = (float((fe - fs).sum()) / area + 0.5) / width  # mean column centre → normalized x
    cy = (float((ge - gs).sum()) / area + 0.5) / height
    return cx, cy


def gt_centroid_of(gt_rle: dict) -> tuple[float, float] | None:
    """Normalized (x, y) centroid of a ground-truth RLE (cached per mask), ``None`` for an empty mask."""
    (h, w), counts = gt_rle["size"], gt_rle["counts"]
    return _rle_centroid(int(h), int(w), tuple(counts) if isinstance(counts, list) else counts)


def _area(polygons) -> float:
    """Σ_k |A_k|, each polygon's shoelace area |½ Σ_i (x_i y_{i+1} − x_{i+1} y_i)|, normalized units."""
    return sum(abs(float(np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(np.roll(p[:, 0], -1), p[:, 1]))) / 2
               for p in polygons)


def centroid_reward(completions, gt_rle, gt_centroid=None, scale: float = CENTROID_SCALE, **kwargs) -> list[float]:
    """``1 − min(1, ‖c_pred − c_gt‖₂ / scale)`` in [0, 1], both centroids normalized (x, y).

    ``c_pred``: area-weighted centroid of the answer's polygons (``metrics.polygons_centroid``); ``c_gt``:
    the ``gt_centroid`` column when present, else the mask's pixel centroid from ``gt_rle``. With the
    default ``scale`` = 0.5 a prediction half an image side away scores 0. Invalid or zero-area answer,
    empty ground truth, or a non-finite distance → 0."""
    out = []
    for i, (completion, gt) in enumerate(zip(completions, gt_rle, strict=True)):
        result = _parse(completion)
        c_gt = gt_centroid[i] if gt_centroid is not None else gt_centroid_of(gt)
        # a zero-area answer (one point repeated, a line) draws no mask, so it has no centroid to reward
        c_pred = polygons_centroid(result.polygons) if result.valid and _area(result.polygons) > 1e-9 else None
        d = np.inf if c_pred is None or c_gt is None else float(np.hypot(*np.subtract(c_pred, c_gt)))  # ‖·‖₂
        out.append(1.0 - min(1.0, d / scale) if np.isfinite(d) else 0.0)  # 1 − min(1, d / scale)
    return out


def size_reward(completions, gt_rle, **kwargs) -> list[float]:
    """``min(A_pred, A_gt) / max(A_pred, A_gt)`` in [0, 1]: how well the answer's area matches the target's,
    wherever it lies (pixel areas from the same rasterization as ``mask_iou_reward``). Not one of the paper's
    rewards (a lite addition, off by default): a zeroth-moment twin of the centroid term. RL on IoU alone
    taught the lite policy to *inflate* its outlines (median area 0.89× the target's after SFT, 1.05–1.30× after
    120 GSPO steps, up to 1.56× with distractors; papermill_runs/LOG.md session 17): where the position is uncertain, a bigger polygon earns
    more expected IoU, and the greedy answer, which is not uncertain in that way, pays for it. This term
    charges the inflation directly. Invalid answer or empty ground truth → 0."""
    out = []
    for completion, gt in zip(completions, gt_rle, strict=True):
        result = _parse(completion)
        if not result.valid:
            out.append(0.0)
            continue
        _, pred_area, gt_area = parsed_areas(result.polygons, gt)
        out.append(min(pred_area, gt_area) / max(pred_area, gt_area) if gt_area > 0 and pred_area > 0 else 0.0)
    return out


def format_reward(completions, **kwargs) -> list[float]:
    """1 for a well-formed answer (``[[[x, y], ...], ...]``, brackets closed, ≥ 3 vertices per polygon,
    nothing truncated, clipped or dropped); 0.5 for a usable but not well-formed one (truncated, a bare
    ``[[x, y], ...]`` polygon, coordinates clipped into [0, 1], a short polygon dropped); 0 otherwise."""
    parsed = [_parse(c) for c in completions]
    return [1.0 if r.well_formed else 0.5 if r.valid else 0.0 for r in parsed]


def length_penalty(completions, max_tokens: int = MAX_TOKENS, completion_ids=None, **kwargs) -> list[float]:
    """``−min(1, max(0, n − max_tokens) / max_tokens)`` in [−1, 0]: zero within the budget, −1 at twice it.

    ``n`` is the token count from TRL's ``completion_ids`` when given, else the character count (the
    tiny model's tokenizer is character-level). A completion that is not text costs nothing here."""
    out = []
    for i, completion in enumerate(completions):
        text = completion_text(completion)
        n = len(completion_ids[i]) if completion_ids is not None else len(text) if text is not None else 0
        out.append(-min(1.0, max(0, n - max_tokens) / max_tokens))
    return out


REWARD_FUNCS = {f.__name__: f for f in (mask_iou_reward, centroid_reward, format_reward, length_penalty, size_reward)}


def reward_funcs_and_weights(weights: dict | None = None) -> tuple[list, list[float]]:
    """``(reward_funcs, reward_weights)`` for ``GRPOTrainer(reward_funcs=...)`` and
    ``GRPOConfig(reward_weights=...)``; terms with weight 0 are left out."""
    weights = REWARD_WEIGHTS if weights is None else weights
    kept = [(REWARD_FUNCS[name], float(w)) for name, w in weights.items() if w != 0]
    return [f for f, _ in kept], [w for _, w in kept]


def combined_reward(completions, weights: dict | None = None, **columns) -> list[float]:
    """Σ_k w_k · reward_k — what TRL sums before the group standardization (its default aggregation)."""
    total = np.zeros(len(completions))
    for fn, w in zip(*reward_funcs_and_weights(weights)):
        total += w * np.asarray(fn(completions, **columns), dtype=np.float64)
    return total.tolist()


def bench_rewards(n_groups: int = 64, group_size: int = 8, seed: int = 0) -> dict[str, float]:
    """Completions scored per second, one thread, printed and returned. A group shares one ground truth
    (a 640×480 ``bench.wobbly_blob``); its answers outline that blob shifted by up to ±20 px (ε = 0.005,
    ~25 vertices). Caches are cleared before each function, so each pays its own parse."""
    from .bench import wobbly_blob
    from .metrics import mask_to_rle
    from .serialize import mask_to_answer

    rng = np.random.default_rng(seed)
    texts, gts = [], []
    for _ in range(n_groups):
        mask = wobbly_blob(rng)
        gts += [mask_to_rle(mask)] * group_size
        texts += [mask_to_answer(np.roll(mask, rng.integers(-20, 21, 2), (0, 1))) for _ in range(group_size)]
    rates = {}
    for fn in (*REWARD_FUNCS.values(), combined_reward):
        _parse_text.cache_clear()
        _rle_centroid.cache_clear()
        start = time.perf_counter()
        fn(texts, gt_rle=gts)
        rates[fn.__name__] = len(texts) / (time.perf_counter() - start)
        print(f"{fn.__name__:>16}: {rates[fn.__name__]:>9,.0f} completions/s")
    return rates
