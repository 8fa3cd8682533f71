"""The full preset end to end, with tiny stand-ins: notebooks 05-08 with FULL=True, as `reproduce --preset full`
runs them on a GPU, but with a tiny stock Qwen2.5-VL for FULL_MODEL, a tiny Qwen2 language model for Pixel-SAIL's
TEXT_MODEL and the REFER-layout fixture for REFER_ROOT (smoke sizes for everything else). It checks the wiring
no unit test sees: each notebook's FULL cell, and the checkpoints handed from one notebook to the next through
the run folder."""

import json
from pathlib import Path

import pytest
import torch

from simpleseg_lite.reproduce import reproduce

REFER = Path(__file__).parent / "fixtures" / "refer"
SPLITS = [["refcoco", "val"], ["refcoco", "testA"]]  # the fixture has no testB


def _stand_ins(folder: Path) -> tuple[Path, Path]:
    """A stock-class tiny Qwen2.5-VL (what `load_model` gets for a real checkpoint) and a tiny Qwen2 LM."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from simpleseg_lite.model import TinyConfig, build_tiny_model, build_tokenizer

    torch.manual_seed(0)
    vlm, processor = build_tiny_model(TinyConfig(hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1,
                                                 intermediate_size=128, vision_hidden_size=32, vision_depth=2,
                                                 vision_heads=2, vision_intermediate_size=64,
                                                 position_fix=False), seed=0)
    vlm.save_pretrained(folder / "vlm")
    processor.save_pretrained(folder / "vlm")
    tok = build_tokenizer()
    lm = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok) + 7, tie_word_embeddings=True, hidden_size=64,
                                      intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, max_position_embeddings=2048, rms_norm_eps=1e-5))
    lm.save_pretrained(folder / "lm")
    tok.save_pretrained(folder / "lm")
    return folder / "vlm", folder / "lm"


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("full")
    vlm, lm = _stand_ins(folder)
    refer = str(REFER)
    overrides = {
        "05_sft": {"SMOKE": True, "FULL_MODEL": str(vlm), "REFER_ROOT": refer},
        "06_gspo_iou_rewards": {"SMOKE": True, "REFER_ROOT": refer},
        "07_evaluation": {"SMOKE": True, "REFER_ROOT": refer, "REFER_SPLITS": SPLITS},
        "08_pixel_sail": {"SMOKE": True, "TEXT_MODEL": str(lm), "REFER_ROOT": refer, "FULL_STEPS": 2,
                          "FULL_BATCH": 2, "REFER_SPLITS": SPLITS},
    }
    return reproduce("full", out=folder / "run", overrides=overrides, only=list(overrides))


@pytest.mark.slow
def test_full_preset_runs_every_full_cell(full_run):
    for stem in ("05_sft", "06_gspo_iou_rewards", "07_evaluation", "08_pixel_sail"):
        nb = json.loads((full_run / f"{stem}.ipynb").read_text())
        text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
        assert "FULL=False" not in text, f"{stem} skipped its full path"
        assert not any(o.get("output_type") == "error" for c in nb["cells"] for o in c.get("outputs", []))
    # the checkpoints each notebook hands to the next, inside the run folder
    assert (full_run / "full-sft" / "config.json").is_file() and (full_run / "full-gspo" / "config.json").is_file()
    evaluated = json.loads((full_run / "metrics" / "07_evaluation.json").read_text())["eval"]
    assert {"SFT (full)", "SFT+GSPO (full)"} <= set(evaluated)
    assert {"refcoco val", "refcoco testA"} <= set(evaluated["SFT+GSPO (full)"])
    gains = json.loads((full_run / "metrics" / "07_evaluation.json").read_text())["stage_gains (paired, RefCOCO)"]
    assert set(gains) == {"SFT+GSPO (full) − SFT (full), refcoco val", "SFT+GSPO (full) − SFT (full), refcoco testA"}
    for g in gains.values():  # every expression of the split, paired
        assert g["n"] > 0 and g["ci95 low"] <= g["mean"] <= g["ci95 high"] and g["better"] + g["worse"] <= g["n"]
    pixelsail = json.loads((full_run / "metrics" / "08_pixel_sail_full.json").read_text())["eval"]
    assert [set(v) for v in pixelsail.values()] == [{"refcoco val", "refcoco testA"}]
    assert (full_run / "full-pixelsail").is_dir()
