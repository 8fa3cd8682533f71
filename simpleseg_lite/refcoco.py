"""RefCOCO, RefCOCO+, RefCOCOg and refCLEF in the REFER-API layout → polygon ``Sample``s.

The layout (the one the REFER API, Text4Seg and SimpleSeg read)::

    <root>/<dataset>/refs(<split_by>).p    pickle: list of refs {ref_id, ann_id, image_id, split,
                                           sentences: [{sent, raw, tokens, sent_id}], category_id, file_name}
    <root>/<dataset>/instances.json        COCO: images, annotations (polygons or RLE), categories
    <root>/images/mscoco/images/train2014/ images of refcoco, refcoco+ and refcocog
    <root>/images/saiapr_tc-12/            images of refclef

The Text4Seg protocol (docs/conventions.md): **one sample per sentence**; the target of a ref is the union of
all segments of its annotation(s) — polygons and crowd RLEs alike — as one mask at the image's size.
The image file is named by ``instances.json`` (the ref's own ``file_name`` carries an annotation suffix).

Departures from Text4Seg/SimpleSeg, and why:

* ``drop_eval_image_overlap=True`` drops train samples whose image also appears in that dataset's
  val/test splits — a known leakage Text4Seg and SimpleSeg keep. Off by default, to match them.
* Polygons with fewer than 3 vertices are skipped (pycocotools reads a 2-point polygon as a box).
* Refs whose merged mask is empty are skipped, with a warning saying how many.

Images load lazily (``Sample.image`` is a path; ``Sample.load_image`` opens it). The pickle is trusted
code: load only files you downloaded from the dataset's source.

Taught in notebooks/04_data.py
"""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from .data import build_sample

SPLIT_BY = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd", "refclef": "unc"}

LAYOUT = """expected the REFER-API layout:
  <root>/<dataset>/refs(<split_by>).p      e.g. refcoco/refs(unc).p, refcocog/refs(umd).p
  <root>/<dataset>/instances.json
  <root>/images/mscoco/images/train2014/   (refcoco, refcoco+, refcocog)
  <root>/images/saiapr_tc-12/              (refclef)
(see https://github.com/lichengunc/refer for the download links)"""


def default_image_dir(root, dataset: str) -> Path:
    """Where the REFER API looks for ``dataset``'s images under ``root``."""
    root = Path(root)
    return root / "images" / "saiapr_tc-12" if dataset == "refclef" else root / "images/mscoco/images/train2014"


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{what} not found: {path}\n{LAYOUT}")
    return path


def load_refer(root, dataset: str = "refcoco", split_by: str | None = None) -> tuple[list, dict]:
    """(refs, instances) of one dataset: the pickle's list of ref dicts and the parsed instances.json."""
    if dataset not in SPLIT_BY:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {list(SPLIT_BY)}")
    folder = _require(_require(Path(root), "REFER root") / dataset, f"{dataset} folder")
    refs_path = _require(folder / f"refs({split_by or SPLIT_BY[dataset]}).p", "refs pickle")
    with open(refs_path, "rb") as f:
        try:
            refs = pickle.load(f)
        except UnicodeDecodeError:  # pickles written by Python 2 (the original downloads)
            f.seek(0)
            refs = pickle.load(f, encoding="latin1")
    with open(_require(folder / "instances.json", "instances.json")) as f:
        instances = json.load(f)
    missing = {"images", "annotations"} - set(instances)
    if not isinstance(refs, list) or missing:
        raise ValueError(f"{refs_path} must hold a list of refs and instances.json the keys images and "
                         f"annotations (missing {sorted(missing)})\n{LAYOUT}")
    return refs, instances


def segmentation_rles(segmentation, height: int, width: int) -> list:
    """A COCO ``segmentation`` (list of flat polygons, or an RLE dict, compressed or not) → list of RLEs."""
    if isinstance(segmentation, dict):
        counts = segmentation["counts"]
        if isinstance(counts, list):  # uncompressed RLE (iscrowd=1)
            return [mask_utils.frPyObjects(segmentation, height, width)]
        return [{"size": list(segmentation["size"]), "counts": counts.encode() if isinstance(counts, str) else counts}]
    polygons = [[float(v) for v in p] for p in segmentation if len(p) >= 6]
    return mask_utils.frPyObjects(polygons, height, width) if polygons else []


def ref_rle(anns: list, height: int, width: int) -> dict:
    """One RLE: the union of every segment of every annotation of a ref."""
    rles = [r for a in anns for r in segmentation_rles(a["segmentation"], height, width)]
    if not rles:
        return mask_utils.encode(np.zeros((height, width), dtype=np.uint8, order="F"))
    return rles[0] if len(rles) == 1 else mask_utils.merge(rles)


def eval_image_ids(refs: list) -> set:
    """Images that appear in any split other than train (val, test, testA, testB, …)."""
    return {r["image_id"] for r in refs if r["split"] != "train"}


def refer_samples(root, dataset: str = "refcoco", split: str | None = "train", *, split_by: str | None = None,
                  image_dir=None, epsilon: float = 0.005, epsilon_mode: str = "perimeter",
                  drop_eval_image_overlap: bool = False, paraphrase: bool = False, seed: int = 0,
                  max_refs: int | None = None, check_images: bool = True) -> list:
    """Polygon-task ``Sample``s of one split (``None`` = all), one per sentence.

    ``image_dir`` defaults to ``default_image_dir(root, dataset)``. ``check_images`` verifies up front
    that every needed image file exists (a stat per image). ``paraphrase=False`` keeps the released
    prompt template ("Output the polygon coordinates of {sentence} in the image."). Each sample's
    ``metadata`` holds dataset, split, ref_id, ann_ids, image_id, sent_id and category_id.
    """
    refs, instances = load_refer(root, dataset, split_by)
    image_dir = Path(image_dir) if image_dir is not None else default_image_dir(root, dataset)
    images = {im["id"]: im for im in instances["images"]}
    anns = {a["id"]: a for a in instances["annotations"]}
    chosen = [r for r in refs if split is None or r["split"] == split]
    if not chosen:
        raise ValueError(f"no refs in split {split!r} of {dataset}; splits: {sorted({r['split'] for r in refs})}")
    if drop_eval_image_overlap:
        leaked = eval_image_ids(refs)
        chosen = [r for r in chosen if r["split"] != "train" or r["image_id"] not in leaked]
    chosen = chosen[:max_refs]
    if check_images:
        _check_images(chosen, images, image_dir)
    rng, samples, empty = np.random.default_rng(seed), [], 0
    for ref in chosen:
        image = images[ref["image_id"]]
        h, w = int(image["height"]), int(image["width"])
        ann_ids = ref["ann_id"] if isinstance(ref["ann_id"], (list, tuple)) else [ref["ann_id"]]
        rle = ref_rle([anns[a] for a in ann_ids], h, w)
        if mask_utils.area(rle) == 0:
            empty += 1
            continue
        mask = mask_utils.decode(rle)
        path = image_dir / image["file_name"]
        polygon = None  # the answer is the same for every sentence of a ref: compute it once
        for sent in ref["sentences"]:
            meta = {"source": dataset, "split": ref["split"], "ref_id": ref["ref_id"], "ann_ids": ann_ids,
                    "image_id": ref["image_id"], "sent_id": sent.get("sent_id"), "category_id": ref.get("category_id")}
            sample = build_sample(path, mask, "polygon", sent["sent"], rng, epsilon, epsilon_mode,
                                  paraphrase=paraphrase, gt_rle=rle, answer=polygon, metadata=meta)
            polygon = sample.answer
            samples.append(sample)
    if empty:
        warnings.warn(f"{dataset}: skipped {empty} refs whose merged mask is empty", stacklevel=2)
    return samples


def _check_images(refs: list, images: dict, image_dir: Path) -> None:
    unknown = sorted({r["image_id"] for r in refs} - set(images))
    if unknown:
        raise ValueError(f"refs name image ids missing from instances.json: {unknown[:5]}\n{LAYOUT}")
    if not image_dir.is_dir():
        raise FileNotFoundError(f"image folder not found: {image_dir}\n{LAYOUT}")
    names = {images[r["image_id"]]["file_name"] for r in refs}
    missing = sorted(n for n in names if not (image_dir / n).is_file())
    if missing:
        raise FileNotFoundError(f"{len(missing)} image(s) missing from {image_dir}, e.g. {missing[:3]}\n{LAYOUT}")
