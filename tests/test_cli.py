"""The CLI contract: names, JSON keys, exit codes and messages."""

import json
from pathlib import Path

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
        (None, ["reproduce", "--preset", "full", "--set", "05.NOT_A_PARAMETER=1"], "no parameter NOT_A_PARAMETER"),
        (None, ["reproduce", "--preset", "full", "--set", "REFER_ROOT"], "NOTEBOOK.NAME=VALUE"),
        (None, ["reproduce", "--preset", "smoke", "--only", "42"], "no notebook '42'"),
        (None, ["reproduce", "--preset", "nope"], "known presets"),
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


def test_bench_group_step_on_the_lite_sft(capsys):
    """An RL-shaped batch (2 scenes × 3 rows) on the committed lite-sft: the two ways of encoding agree."""
    import torch

    threads = torch.get_num_threads()
    try:
        assert main(["bench", "group-step", "--json", "--init", str(Path(__file__).parents[1] / "data" / "checkpoints"
                     / "lite-sft"), "--prompts", "2", "--generations", "3", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = json.loads(capsys.readouterr().out)
    assert out["rows"] == 6 and out["images"] == 2 and out["shared_s"] > 0 and out["each_row_s"] > 0
    assert out["loss_diff"] < 1e-5 and out["grad_max_abs_diff"] <= 1e-4 * out["grad_max_abs"]


def test_bench_group_step_with_a_missing_checkpoint_is_clear(tmp_path, capsys):
    import torch

    threads = torch.get_num_threads()
    try:
        assert main(["bench", "group-step", "--init", str(tmp_path / "nope"), "--threads", "1"]) == 2
    finally:
        torch.set_num_threads(threads)
    assert "nope" in capsys.readouterr().err


def test_train_with_missing_init_is_clear(tmp_path, capsys):
    assert main(["train", "--stage", "sft", "--init", str(tmp_path / "nope"), "--out", str(tmp_path / "o"),
                 "--steps", "1"]) == 2
    assert "nope" in capsys.readouterr().err


def test_segment_with_a_checkpoint_folder(tmp_path, capsys):
    from PIL import Image

    from test_released import save_tiny_checkpoint, scene

    model_dir = save_tiny_checkpoint(tmp_path / "model")
    Image.fromarray(scene()).save(tmp_path / "scene.png")
    args = ["segment", "--model", str(model_dir), "--image", str(tmp_path / "scene.png"),
            "--expression", "the red square", "--max-new-tokens", "8", "--out", str(tmp_path / "overlay.png"), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"answer", "valid", "error", "polygons", "mask_area", "width", "height", "overlay"} <= set(out)
    assert (out["width"], out["height"]) == (90, 60) and (tmp_path / "overlay.png").stat().st_size > 0
    assert out["valid"] or out["mask_area"] == 0  # junk from an untrained model: an empty mask


@pytest.mark.parametrize(
    "model,image,message",
    [
        ("{d}/no-model", "{d}/scene.png", "no checkpoint folder"),  # a bad model path
        ("{d}", "{d}/scene.png", "no config.json"),  # a folder that is not a checkpoint
        ("{d}", "{d}/missing.png", "no such image"),  # a bad image path (checked before loading the model)
    ],
)
def test_segment_errors_are_clear(tmp_path, capsys, model, image, message):
    cv2.imwrite(str(tmp_path / "scene.png"), np.zeros((8, 8, 3), np.uint8))
    args = ["segment", "--model", model.format(d=tmp_path), "--image", image.format(d=tmp_path), "--expression", "x"]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_train_takes_the_full_path_settings():
    from simpleseg_lite.cli import build_parser

    args = build_parser().parse_args(["train", "--stage", "sft", "--out", "o", "--data", "refcoco",
                                      "--refer-root", "/r", "--image-size", "448", "--epsilon", "0.005",
                                      "--decimals", "3", "--lora"])
    settings = (args.data, args.refer_root, args.image_size, args.epsilon, args.decimals)
    assert settings == ("refcoco", "/r", 448, 0.005, 3)


@pytest.mark.parametrize("model_config, message", [
    ("{merge_size: 1}", "not JSON"),  # unquoted key
    ('{"merge_sise": 1}', "unknown field"),  # a typo is caught before any training
    ("[1, 2]", "unknown field"),  # not an object
])
def test_train_rejects_a_bad_model_config(model_config, message, tmp_path, capsys):
    assert main(["train", "--stage", "pretrain", "--out", str(tmp_path / "run"), "--model-config", model_config]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing written


@pytest.mark.parametrize("args, message", [
    (["--stage", "sft", "--named-answers"], "is for --stage pixelsail"),  # polygon answers are coordinates
    (["--stage", "pixelsail", "--named-answers", "--data", "refcoco", "--refer-root", "/nowhere"],
     "needs --data synthetic"),  # RefCOCO objects have no colour-and-shape name
    (["--stage", "pixelsail", "--pointer-loss", "1"], "for the polygon models"),
    (["--stage", "pixelsail", "--mark-loss", "1"], "for the polygon models"),
    (["--stage", "pixelsail", "--read-loss", "1"], "for the polygon models"),
    (["--stage", "pixelsail", "--box-aux", "1"], "for the polygon models"),
    (["--stage", "sft", "--box-aux", "-1"], "is a loss weight"),
    (["--stage", "sft", "--box-aux", "1", "--data", "refcoco", "--refer-root", "/nowhere"], "on --data synthetic"),
    (["--stage", "sft", "--read-loss", "-1"], "is a loss weight"),
    (["--stage", "sft", "--read-loss", "1", "--data", "refcoco", "--refer-root", "/nowhere"], "needs --data synthetic"),
    (["--stage", "sft", "--mark-loss", "1"], "needs --prompt-order text_first"),
    (["--stage", "sft", "--mark-loss", "-1", "--prompt-order", "text_first"], "is a loss weight"),
    (["--stage", "sft", "--mark-loss", "1", "--prompt-order", "text_first", "--data", "refcoco", "--refer-root",
      "/nowhere"], "needs --data synthetic"),
    (["--stage", "sft", "--pointer-loss", "1", "--data", "refcoco", "--refer-root", "/nowhere"],
     "needs --data synthetic"),
    (["--stage", "sft", "--min-objects", "4"], "must be between 1 and --max-objects 3"),
    (["--stage", "sft", "--min-objects", "0"], "must be between 1"),
    (["--stage", "sft", "--prefix-noise", "1.5"], "is a share in [0, 1]"),
    (["--stage", "sft", "--prefix-noise", "0.5", "--prefix-noise-steps", "0"], "--prefix-noise-steps ≥ 1"),
    (["--stage", "pixelsail", "--prefix-noise", "0.5"], "for the polygon models"),
    (["--stage", "sft", "--prefix-noise", "0.5"], "needs a coord_tokens tokenizer"),  # a fresh model writes digits
])
def test_named_answers_are_refused_where_they_mean_nothing(args, message, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_deepen_writes_a_deeper_checkpoint_that_loads(tmp_path, capsys):
    from test_released import save_tiny_checkpoint

    from simpleseg_lite.model import load_model

    model_dir = save_tiny_checkpoint(tmp_path / "model")
    layers = len(load_model(model_dir)[0].model.language_model.layers)
    assert main(["deepen", "--init", str(model_dir), "--out", str(tmp_path / "deep"), "--layers", str(layers + 2)]) == 0
    assert f"→ {layers + 2} language-model layers" in capsys.readouterr().out
    assert len(load_model(tmp_path / "deep")[0].model.language_model.layers) == layers + 2
    assert main(["deepen", "--init", str(tmp_path / "nope"), "--out", str(tmp_path / "x"), "--layers", "9"]) == 2
    assert "not a lite checkpoint folder" in capsys.readouterr().err
    before = (model_dir / "model.safetensors").read_bytes()  # --out onto a checkpoint: refused, nothing lost
    assert main(["deepen", "--init", str(model_dir), "--out", str(model_dir), "--layers", str(layers + 2)]) == 2
    assert "already holds a checkpoint" in capsys.readouterr().err
    assert (model_dir / "model.safetensors").read_bytes() == before
