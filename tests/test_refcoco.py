"""The REFER-layout loader (simpleseg_lite.refcoco) on the tiny fixture in tests/fixtures/refer.

The fixture (tests/fixtures/make_refer_fixture.py): 3 images, 5 refs, 6 sentences —
train: ref 0 (2 sentences, image 1), ref 2 and ref 4 (image 2); val: ref 1 (two polygons, image 1,
shared with train ref 0); testA: ref 3 (a crowd RLE, image 3).
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from simpleseg_lite import refcoco
from simpleseg_lite.metrics import answer_iou
from simpleseg_lite.parse import parse_polygons

ROOT = Path(__file__).parent / "fixtures" / "refer"
IMAGES = ROOT / "images/mscoco/images/train2014"


@pytest.mark.parametrize("split, drop, expected", [
    ("train", False, 4),  # refs 0 (two sentences), 2 and 4
    ("train", True, 2),  # ref 0's image also appears in val: dropped
    ("val", False, 1),  # ref 1
    ("val", True, 1),  # the option only ever drops train samples
    ("testA", False, 1),  # ref 3
    (None, False, 6),  # every split: one sample per sentence
])
def test_sample_counts(split, drop, expected):
    assert len(refcoco.refer_samples(ROOT, split=split, drop_eval_image_overlap=drop)) == expected


def test_one_sample_per_sentence_same_target():
    first, second = [s for s in refcoco.refer_samples(ROOT) if s.metadata["ref_id"] == 0]
    assert (first.expression, second.expression) == ("the triangle on the left", "top left triangle")
    assert first.metadata["sent_id"] != second.metadata["sent_id"]
    assert first.answer == second.answer and first.gt_rle == second.gt_rle
    assert first.prompt == "Output the polygon coordinates of the triangle on the left in the image."


@pytest.mark.parametrize("split, area, parts", [
    ("val", 600, 2),  # two 20×15 polygons of one annotation, merged into one mask → two answer polygons
    ("testA", 400, 1),  # an uncompressed crowd RLE, 20×20
])
def test_segments_merged_into_one_mask(split, area, parts):
    (s,) = refcoco.refer_samples(ROOT, split=split)
    assert mask_utils.area(s.gt_rle) == area
    assert len(parse_polygons(s.answer).polygons) == parts
    assert answer_iou(s.answer, s.gt_rle) == 1.0  # axis-aligned rectangles are lossless


def test_degenerate_polygon_skipped_and_metadata():
    (s,) = [s for s in refcoco.refer_samples(ROOT) if s.metadata["ref_id"] == 4]
    assert mask_utils.area(s.gt_rle) == 400  # the 2-point "polygon" is not read as a box
    assert s.metadata == {**s.metadata, "source": "refcoco", "split": "train", "image_id": 2, "ann_ids": [105]}
    assert (s.width, s.height) == (48, 64) and np.allclose(s.gt_box, (10 / 48, 40 / 64, 30 / 48, 60 / 64))


def test_images_load_lazily():
    s = refcoco.refer_samples(ROOT, split="val")[0]
    assert isinstance(s.image, Path)
    image = s.load_image()
    assert image.size == (64, 48) and image.mode == "RGB"
    assert s.to_dict()["image"].size == (64, 48)


def _copy(tmp_path) -> Path:
    root = tmp_path / "refer"
    shutil.copytree(ROOT, root)
    return root


def test_refcocog_reads_its_umd_split_and_image_dir_argument(tmp_path):
    root = _copy(tmp_path)
    (root / "refcoco").rename(root / "refcocog")
    (root / "refcocog/refs(unc).p").rename(root / "refcocog/refs(umd).p")
    moved = tmp_path / "elsewhere"
    shutil.move(str(root / "images"), moved)
    assert len(refcoco.refer_samples(root, "refcocog", split=None, image_dir=moved / "mscoco/images/train2014")) == 6
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        refcoco.refer_samples(root, "refcocog")


@pytest.mark.parametrize("breakage, error, message", [
    ("no_root", FileNotFoundError, "REFER root not found"),  # the root folder does not exist
    ("no_dataset", FileNotFoundError, "refcoco folder not found"),  # the root lacks the dataset folder
    ("no_pickle", FileNotFoundError, r"refs pickle not found.*refs\(unc\)\.p"),  # the refs pickle is missing
    ("no_json", FileNotFoundError, "instances.json not found"),  # the COCO annotations are missing
    ("no_image", FileNotFoundError, "COCO_train2014_000000000002.jpg"),  # an image file is missing
])
def test_clear_errors_for_a_bad_layout(tmp_path, breakage, error, message):
    root = _copy(tmp_path)
    if breakage == "no_root":
        root = tmp_path / "nowhere"
    elif breakage == "no_dataset":
        shutil.rmtree(root / "refcoco")
    elif breakage == "no_pickle":
        (root / "refcoco/refs(unc).p").unlink()
    elif breakage == "no_json":
        (root / "refcoco/instances.json").unlink()
    else:
        (root / "images/mscoco/images/train2014/COCO_train2014_000000000002.jpg").unlink()
    with pytest.raises(error, match=message) as info:
        refcoco.refer_samples(root)
    assert "expected the REFER-API layout" in str(info.value)


@pytest.mark.parametrize("dataset, split, message", [
    ("refcocoz", "train", "unknown dataset"),  # a typo in the dataset name
    ("refcoco", "test", "no refs in split 'test'"),  # refcoco (unc) has testA/testB, not test
])
def test_bad_arguments(dataset, split, message):
    with pytest.raises(ValueError, match=message):
        refcoco.refer_samples(ROOT, dataset, split=split)


def test_corrupt_image_names_the_file(tmp_path):
    root = _copy(tmp_path)
    (root / "images/mscoco/images/train2014/COCO_train2014_000000000001.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    (s,) = refcoco.refer_samples(root, split="val")  # loading is lazy: the error comes on first use
    with pytest.raises(OSError, match="COCO_train2014_000000000001.jpg"):
        s.load_image()
