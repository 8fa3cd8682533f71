"""The CLI contract: names, JSON keys, exit codes and messages."""

import json

import cv2
import numpy as np
import pytest

from simpleseg_lite.cli import main


@pytest.fixture
def mask_png(tmp_path):
    m = np.zeros((40, 60), np.uint8)
    cv2.circle(m, (30, 20), 12, 255, -1)
    path = tmp_path / "mask.png"
    cv2.imwrite(str(path), m)
    return path


def test_mask2poly_then_score(mask_png, tmp_path, capsys):
    assert main(["mask2poly", str(mask_png), "--epsilon", "0"]) == 0
    text = capsys.readouterr().out.strip()
    assert text.startswith("[[[") and text.endswith("]]]")
    (tmp_path / "a.txt").write_text(text)
    assert main(["score", "--pred", str(tmp_path / "a.txt"), "--gt", str(mask_png)]) == 0
    assert json.loads(capsys.readouterr().out) == {"iou": 1.0, "valid": True}


def test_parse_stdin(monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("Sure: [[[0.1, 0.1], [0.9, 0.1], [0.5, 0.9]]]"))
    assert main(["parse", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"polygons", "valid", "error"} and out["valid"] and len(out["polygons"][0]) == 3


def test_fidelity_json(mask_png, capsys):
    assert main(["fidelity", str(mask_png), "--epsilon", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mean_iou"] == 1.0 and {"vertices", "chars", "iou"} <= set(out["masks"][0])


@pytest.mark.parametrize(
    "setup,args,message",
    [
        (None, ["mask2poly", "{d}/missing.png"], "no such file"),  # a bad path
        ("corrupt", ["mask2poly", "{d}/x.png"], "not a readable image"),  # a corrupt image
        ("empty", ["mask2poly", "{d}/x.png"], "empty"),  # an empty mask
        (None, ["parse", "{d}/missing.txt"], "no such file"),  # a missing answer file
    ],
)
def test_errors_are_clear(tmp_path, capsys, setup, args, message):
    if setup == "corrupt":
        (tmp_path / "x.png").write_bytes(b"\x89PNG not really")
    elif setup == "empty":
        cv2.imwrite(str(tmp_path / "x.png"), np.zeros((5, 5), np.uint8))
    assert main([a.format(d=tmp_path) for a in args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_bench_geometry_keys(capsys):
    assert main(["bench", "geometry", "--json", "--seconds", "0.05"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"mask2poly_per_s", "reward_per_s", "parse_per_s", "masks"} <= set(out)
    assert out["iou_mean"] > 0.9


def test_train_with_missing_init_is_clear(tmp_path, capsys):
    assert main(["train", "--stage", "sft", "--init", str(tmp_path / "nope"), "--out", str(tmp_path / "o"),
                 "--steps", "1"]) == 2
    assert "nope" in capsys.readouterr().err
