"""Released checkpoints: load from a Hugging Face folder, segment, draw; clear errors for bad paths."""

import json

import numpy as np
import pytest

from simpleseg_lite import released
from simpleseg_lite.model import TinyConfig, build_tiny_model
from simpleseg_lite.released import draw, load_released, segment

SMALL = TinyConfig(hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=128,
                   vision_hidden_size=32, vision_depth=2, vision_heads=2, vision_intermediate_size=64,
                   vision_fullatt_blocks=(1,))


def save_tiny_checkpoint(folder, position_fix=True):
    """A tiny Qwen2.5-VL in the release's layout: config.json, model.safetensors, tokenizer, preprocessor."""
    model, processor = build_tiny_model(TinyConfig(**{**SMALL.__dict__, "position_fix": position_fix}), seed=0)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("released"))


def scene(width=90, height=60):
    image = np.zeros((height, width, 3), np.uint8)
    image[10:40, 20:50] = (220, 45, 45)
    return image


@pytest.mark.parametrize("position_fix", [True, False])  # ours, and a stock Qwen2_5_VLForConditionalGeneration
def test_load_and_segment_returns_the_documented_types(tmp_path, position_fix):
    model, processor = load_released(save_tiny_checkpoint(tmp_path, position_fix), device="cpu")
    assert (model.config.architectures[0].endswith("ForConditionalGeneration") and not model.training)
    result = segment(model, processor, scene(), "the red square", max_new_tokens=12)
    assert set(result) == {"answer", "polygons", "mask", "valid", "error"}
    assert isinstance(result["answer"], str) and isinstance(result["valid"], bool)
    assert result["mask"].shape == (60, 90) and result["mask"].dtype == bool  # the image's own size
    assert all(p.ndim == 2 and p.shape[1] == 2 for p in result["polygons"])
    if not result["valid"]:  # an untrained model writes junk: an empty mask, never an exception
        assert not result["mask"].any() and result["polygons"] == []


@pytest.mark.parametrize(
    "answer,valid,area",
    [
        ("[[[0.2, 0.2], [0.5, 0.2], [0.5, 0.5], [0.2, 0.5]]]", True, 27 * 18),  # the released format
        ("Sure, it is at [[[0.2, 0.2], [0.5, 0.2], [0.5, 0.5], [0.2, 0.5]]].", True, 27 * 18),  # wrapped in prose
        ("[[[0.2, 0.2], [0.5, 0.2], [0.5, 0.5], [0.2, 0.5", True, 27 * 18 // 2),  # truncated: a triangle is left
        ("[[[0.2, 0.2], [0.5, 0.2]]]", False, 0),  # 2 points: the released decoder crashes here
        ("I cannot see it.", False, 0),  # no polygon at all
        ("", False, 0),  # nothing generated
    ],
)
def test_segment_decodes_answers(monkeypatch, answer, valid, area):
    monkeypatch.setattr(released, "generate", lambda *a, **k: [answer])
    result = segment(None, None, scene(), "the red square")
    assert result["valid"] is valid and int(result["mask"].sum()) == area  # x 18..45, y 12..30 at 90 × 60
    assert result["answer"] == answer and (result["error"] is None) == valid


def test_segment_uses_the_released_prompt(monkeypatch):
    seen = []
    monkeypatch.setattr(released, "generate", lambda model, proc, images, prompts, **k: seen.extend(prompts) or [""])
    segment(None, None, scene(), "the red square")
    assert seen == ["Output the polygon coordinates of the red square in the image."]


def test_draw_returns_an_axis(monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setattr(released, "generate", lambda *a, **k: ["[[[0.2, 0.2], [0.5, 0.2], [0.5, 0.5]]]"])
    ax = draw(scene(), segment(None, None, scene(), "x"), title="x")
    assert ax.get_title() == "x" and len(ax.lines) > 0
    plt.close(ax.figure)


def _remote_code_checkpoint(folder):
    config = {"model_type": "kimi_vl", "architectures": ["KimiVLForConditionalGeneration"],
              "auto_map": {"AutoModelForCausalLM": "modeling_kimi_vl.KimiVL"}}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(b"")
    return folder


@pytest.mark.parametrize(
    "make,error,message",
    [
        (lambda tmp: tmp / "missing", FileNotFoundError, "no checkpoint folder"),  # a path that does not exist
        (lambda tmp: tmp, FileNotFoundError, "no config.json"),  # an empty folder
        (lambda tmp: (tmp / "config.json").write_text("{}") and tmp, FileNotFoundError, "no weights"),  # no weights
        (_remote_code_checkpoint, ValueError, "trust_remote_code=True"),  # code ships with it: refused by default
        (lambda tmp: "not/a/hub/id", FileNotFoundError, "not a Hub id"),  # neither a folder nor owner/name
    ],
)
def test_bad_paths_fail_clearly(tmp_path, make, error, message):
    with pytest.raises(error, match=message):
        load_released(make(tmp_path))


def test_bad_image_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such image"):
        released.load_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match="not a readable image"):
        released.load_image(tmp_path / "bad.png")


def test_trust_remote_code_defaults_false():
    import inspect

    assert inspect.signature(load_released).parameters["trust_remote_code"].default is False
