"""Vision pre-training (vision.py): the dense shape loss, held-out shape accuracy, and a resumable run."""

import json
import math
from pathlib import Path

import pytest
import torch

from simpleseg_lite import data
from simpleseg_lite.vision import VisionPretrainConfig, dense_loss, pretrain_vision


def _labels():
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[0, :2, :2] = 3  # one 2×2 cell of class 3, the other three cells background
    return labels


@pytest.mark.parametrize("logits,fg_weight,expected", [
    ("perfect", 1.0, 0.0),
    ("uniform", 1.0, math.log(7)),  # every cell at chance over 7 classes
    ("uniform", 10.0, math.log(7)),  # weights do not change a loss that is equal everywhere
    ("background", 1.0, 25 / 4),  # the object cell alone is wrong (−log e^−25 ≈ 25), 1 of 4 cells
    ("background", 10.0, 25 * 10 / 13),  # …and it weighs 10 against three cells of weight 1
])
def test_dense_loss(logits, fg_weight, expected):
    truth = torch.zeros(1, 7, 2, 2)
    truth[0, 0] = 25.0
    truth[0, 0, 0, 0], truth[0, 3, 0, 0] = 0.0, 25.0
    table = {"perfect": truth, "uniform": torch.zeros(1, 7, 2, 2),
             "background": torch.zeros(1, 7, 2, 2).index_fill_(1, torch.tensor([0]), 25.0)}
    assert dense_loss(table[logits], _labels(), fg_weight).item() == pytest.approx(expected, abs=2e-3)


def test_pretrain_vision_resumes_and_saves_a_loadable_model(tmp_path):
    from simpleseg_lite.model import load_model

    cfg = VisionPretrainConfig(out=str(tmp_path / "v"), max_steps=2, batch_size=2, save_steps=1, eval_steps=1,
                               eval_n=4, threads=1, model={"coord_tokens": True})
    out = pretrain_vision(cfg)
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history if "shape_acc" in h] == [1, 2]
    assert all(0 <= h["shape_acc"] <= 1 for h in history if "shape_acc" in h)
    cfg.max_steps = 3
    pretrain_vision(cfg, resume=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] and summary["final"]["step"] == 3
    assert (out / "vision_aux_head.pt").is_file()  # train --vision-aux --init continues with the trained head
    model, processor = load_model(out, dtype=torch.float32)  # a whole tiny VLM: the next stage's --init
    assert processor.tokenizer.convert_tokens_to_ids("0.45") != processor.tokenizer.unk_token_id
    # the next stage starts from it, with the pre-trained head under its dense loss
    from safetensors.torch import load_file

    from simpleseg_lite.sft import TrainConfig, train

    run = train(TrainConfig(out=str(tmp_path / "a"), stage="pretrain", init=str(out), max_steps=1, batch_size=2,
                            save_steps=1, eval_steps=0, threads=1, max_objects=1, vision_aux=1.0,
                            task_mix={"polygon": 1.0}, lr=0.0, warmup_steps=0))
    head = torch.load(out / "vision_aux_head.pt")
    kept = load_file(str(run / "checkpoints" / "checkpoint-1" / "model.safetensors"))
    assert torch.equal(kept["lite_vision_aux.proj.weight"], head["proj.weight"])  # lr 0: loaded, not re-initialized


def test_pretrain_vision_continues_a_checkpoint_and_names_colours(tmp_path):
    """--init keeps the language model and the shape head; --colour-aux adds a colour head, scored as colour_acc."""
    from safetensors.torch import load_file

    from simpleseg_lite.evaluate import checkpoint_settings

    first = pretrain_vision(VisionPretrainConfig(out=str(tmp_path / "v"), max_steps=1, batch_size=2, eval_n=4,
                                                 threads=1, model={"coord_tokens": True}))
    summary = json.loads((first / "summary.json").read_text())  # as if an SFT stage had trained it: ε 0.02, 2 decimals
    summary["config"].update(epsilon=0.02, decimals=2)
    (first / "summary.json").write_text(json.dumps(summary))
    cfg = VisionPretrainConfig(out=str(tmp_path / "c"), init=str(first), colour_aux=1.0, max_steps=2, batch_size=2,
                               save_steps=1, eval_steps=1, eval_n=4, threads=1)
    out = pretrain_vision(cfg)
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert all(0 <= h["colour_acc"] <= 1 and 0 <= h["shape_acc"] <= 1 for h in history if "shape_acc" in h)
    assert (out / "colour_aux_head.pt").is_file() and (out / "vision_aux_head.pt").is_file()
    assert checkpoint_settings(out) == checkpoint_settings(first) == {"epsilon": 0.02, "decimals": 2, "image_size": 112}
    before, after = load_file(str(first / "model.safetensors")), load_file(str(out / "model.safetensors"))
    lm = [k for k in before if ".language_model." in k or k.startswith("lm_head")]
    assert lm and all(torch.equal(before[k], after[k]) for k in lm)  # the language model is carried, untouched
    assert any(not torch.equal(before[k], after[k]) for k in before if ".visual." in k)
    with pytest.raises(ValueError, match="no model config"):
        pretrain_vision(VisionPretrainConfig(out=str(tmp_path / "x"), init=str(first), model={"coord_tokens": True}))


@pytest.mark.parametrize("target, key", [("box", "box_l1_px"), ("pose", "pose_l1")])
def test_pretrain_vision_with_box_aux_learns_boxes_and_keeps_its_head(tmp_path, target, key):
    """--box-aux: a third head gives each object pixel its object's box (or, --box-target pose, its turn); its
    held-out error falls, and its weights go beside the model for train --box-aux."""
    cfg = VisionPretrainConfig(out=str(tmp_path / "v"), max_steps=30, batch_size=4, lr=3e-3, save_steps=30,
                               eval_steps=10, eval_n=8, threads=1, box_aux=1.0, box_target=target,
                               model={"coord_tokens": True})
    out = pretrain_vision(cfg)
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    errors = [h[key] for h in history if key in h]
    assert len(errors) == 3 and errors[-1] < errors[0]
    assert all("box_loss" in h for h in history if "loss" in h)
    head = torch.load(out / "box_aux_head.pt")
    assert head["proj.weight"].shape[0] == (28 // 2) ** 2 * 4  # four box sides per 2-px cell of a 28-px token


def test_pretrain_vision_trains_the_object_gate_and_scores_it(tmp_path):
    cfg = VisionPretrainConfig(out=str(tmp_path / "v"), max_steps=40, batch_size=4, lr=3e-3, save_steps=40,
                               eval_steps=20, eval_n=8, threads=1, model={"coord_tokens": True, "object_gate": True})
    out = pretrain_vision(cfg)
    scores = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    scores = [h for h in scores if "gate_open_on_objects" in h]
    assert len(scores) == 2  # step 20 and the end
    last = scores[-1]
    assert 0 <= last["gate_open_on_objects"] <= 1 and 0 <= last["gate_closed_on_background"] <= 1
    assert last["gate_open_on_objects"] + last["gate_closed_on_background"] > 1.2  # better than a fixed gate (1.0)


@pytest.mark.parametrize("a, b, joint", [((0, 0), (0, 0), 0), ((1, 0), (0, 1), 1), ((3, 0), (0, 5), 15),
                                         ((5, 0), (0, 2), 22)])
def test_joint_logits_number_classes_as_shape_labels(a, b, joint):
    """(shape s, colour c) → class 1 + (s − 1)·|COLOURS| + (c − 1), background 0, as data.shape_labels(colours=True)."""
    from simpleseg_lite import data
    from simpleseg_lite.vision import joint_logits

    shape = torch.full((1, len(data.SHAPE_CLASSES), 1, 1), -9.0)
    colour = torch.full((1, 1 + len(data.COLOURS), 1, 1), -9.0)
    shape[0, a[0]], colour[0, b[1]] = 9.0, 9.0
    out = joint_logits(shape, colour)
    assert out.shape[1] == data.aux_classes(True) and int(out.argmax(1)) == joint


def test_pretrain_vision_needs_the_lite_model(tmp_path):
    with pytest.raises(ValueError, match="position_fix"):
        pretrain_vision(VisionPretrainConfig(out=str(tmp_path / "v"), max_steps=1, threads=1,
                                             model={"position_fix": False}))


def test_shape_classes_cover_the_synthetic_shapes():
    assert data.SHAPE_CLASSES[0] == "background" and set(data.SHAPE_CLASSES[1:]) == set(data.SHAPES)


@pytest.mark.parametrize("argv,code", [
    (["--steps", "0"], 2),  # refused with a message, nothing trained
    (["--max-objects", "0"], 2),
    (["--model-config", "{not json"], 2),
    (["--model-config", '{"no_such_field": 1}'], 2),
    (["--system", "pixelsail", "--model-config", '{"coord_tokens": true}'], 2),  # a SimpleSeg field
    (["--system", "pixelsail", "--colour-aux", "1"], 2),
    (["--colour-aux", "-1"], 2),
    (["--box-aux", "-1"], 2),
    (["--system", "pixelsail", "--box-aux", "1"], 2),
    (["--init", "no/such/folder"], 2),
    (["--init", str(Path(__file__).parents[1] / "data" / "checkpoints" / "lite-pixelsail")], 2),  # was an "unknown model type"
])
def test_pretrain_vision_cli_refuses_bad_arguments(tmp_path, argv, code, capsys):
    from simpleseg_lite.cli import main

    assert main(["pretrain-vision", "--out", str(tmp_path / "v"), *argv]) == code
    assert not (tmp_path / "v" / "model.safetensors").exists()
    assert capsys.readouterr().err


def test_box_target_takes_box_or_pose_only(tmp_path, capsys):
    from simpleseg_lite.cli import main

    with pytest.raises(SystemExit) as e:
        main(["pretrain-vision", "--out", str(tmp_path / "v"), "--box-aux", "1", "--box-target", "turn"])
    assert e.value.code == 2 and "invalid choice: 'turn'" in capsys.readouterr().err
    assert not (tmp_path / "v").exists()


SMALL_PIXELSAIL = {"hidden_size": 64, "num_layers": 2, "intermediate_size": 128, "mask_dim": 16}


def test_pixelsail_vision_stage_resumes_and_the_mask_stage_continues_its_head(tmp_path):
    from simpleseg_lite import pixelsail as ps

    cfg = VisionPretrainConfig(out=str(tmp_path / "v"), max_steps=2, batch_size=2, save_steps=1, eval_steps=1,
                               eval_n=4, threads=1, system="pixelsail", model=SMALL_PIXELSAIL)
    out = pretrain_vision(cfg)
    before = ps.load(out)[0].state_dict()
    cfg.max_steps = 3
    pretrain_vision(cfg, resume=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed"] and summary["final"]["step"] == 3 and 0 <= summary["final"]["shape_acc"] <= 1
    model, _ = ps.load(out)
    after = model.state_dict()
    assert model.config.vision_aux == 1.0 and hasattr(model, "vision_aux_head")  # the head is saved inside
    changed = {k.split(".")[0] for k in after if not torch.equal(after[k], before[k])}
    assert {"patch_embed", "lm", "vision_aux_head"} <= changed  # the stage trains the vision path and its head
    assert not changed & {"lm_head", "upsample", "seg_mlp", "pixel_mlp", "prompt_proj"}  # and nothing it cannot reach
    # the mask stage starts from it: with vision_aux on the head is the pre-trained one (lr 0: loaded, unchanged)
    run = ps.train_pixelsail(ps.PixelSailTrainConfig(out=str(tmp_path / "m"), init=str(out), max_steps=1,
                                                     batch_size=2, threads=1, save_steps=1, eval_steps=0, lr=0.0,
                                                     warmup_steps=0, vision_aux=1.0))
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    kept = ps.load(run)[0]
    assert torch.equal(kept.vision_aux_head.proj.weight, after["vision_aux_head.proj.weight"])
    # off: the saved model is a plain one (no head, no weight)
    plain = ps.train_pixelsail(ps.PixelSailTrainConfig(out=str(tmp_path / "p"), init=str(out), max_steps=1,
                                                       batch_size=2, threads=1, save_steps=1, eval_steps=0))
    model, _ = ps.load(plain)
    assert model.config.vision_aux == 0.0 and not hasattr(model, "vision_aux_head")
    assert history  # the trainer logged


def test_pixelsail_dense_loss_can_name_colours_too(tmp_path):
    """``aux_colours``: the head has shape × colour classes, the samples' joint labels are used as they are, and
    the vision stage reports colour accuracy; without it the same labels are folded to shapes."""
    from simpleseg_lite import data
    from simpleseg_lite import pixelsail as ps

    samples = list(ps.make_pixel_samples(2, 3, labels=True))
    for colours, classes in ((True, data.aux_classes(True)), (False, len(data.SHAPE_CLASSES))):
        model, tok = ps.build_model({**SMALL_PIXELSAIL, "vision_aux": 1.0, "aux_colours": colours}, seed=0)
        assert model.vision_aux_head.classes == classes
        out = model(**ps.collate(samples, tok, model.config))
        assert torch.isfinite(out["vision_aux"])
    cfg = VisionPretrainConfig(out=str(tmp_path / "v"), max_steps=1, batch_size=2, save_steps=1, eval_steps=0,
                               eval_n=4, threads=1, system="pixelsail", model={**SMALL_PIXELSAIL, "aux_colours": True})
    summary = json.loads((pretrain_vision(cfg) / "summary.json").read_text())
    assert 0 <= summary["final"]["colour_acc"] <= 1 and ps.load(tmp_path / "v")[0].config.aux_colours


def test_pixelsail_dense_loss_can_read_a_middle_layer():
    """``aux_layer`` = k: the head reads the vision states after layer k (what later text layers attend to)."""
    from simpleseg_lite import pixelsail as ps

    model, tok = ps.build_model({**SMALL_PIXELSAIL, "vision_aux": 1.0, "aux_layer": 1}, seed=0)
    batch = ps.collate(list(ps.make_pixel_samples(2, 3, labels=True)), tok, model.config)
    with torch.no_grad():
        last = model.hidden(batch["pixel_values"], batch["input_ids"], batch["attention_mask"], batch["prompt_regions"])
        emb = model.embed(batch["pixel_values"], batch["input_ids"], batch["prompt_regions"])
        states = model.lm(inputs_embeds=emb, position_ids=model.positions(batch["input_ids"], batch["attention_mask"]),
                          attention_mask={"full_attention": model.attention(batch["input_ids"], batch["attention_mask"],
                                                                            emb.dtype)},
                          use_cache=False, output_hidden_states=True).hidden_states
        read = model.vision_shape_logits(last, batch["input_ids"])
        img = batch["input_ids"] == model.config.image_token_id
        g = model.config.grid
        after_1 = model.vision_aux_head(states[1][img].reshape(2, g * g, -1))
        after_2 = model.vision_aux_head(last[img].reshape(2, g * g, -1))
    assert torch.allclose(read, after_1, atol=1e-5) and not torch.allclose(read, after_2, atol=1e-3)
    with pytest.raises(ValueError, match="aux_layer"):
        ps.PixelSailConfig(num_layers=2, aux_layer=2)


def test_pretrain_vision_cli_says_which_model_config_value_is_refused(tmp_path, capsys):
    from simpleseg_lite.cli import main

    assert main(["pretrain-vision", "--system", "pixelsail", "--out", str(tmp_path / "v"), "--steps", "1",
                 "--model-config", '{"aux_layer": 9}']) == 2
    err = capsys.readouterr().err
    assert "aux_layer" in err and "Traceback" not in err
    assert not (tmp_path / "v" / "model.safetensors").exists()


def test_pixelsail_dense_loss_is_added_only_with_labels_and_a_weight():
    from simpleseg_lite import pixelsail as ps

    model, tok = ps.build_model({**SMALL_PIXELSAIL, "vision_aux": 0.5}, seed=0)
    samples = list(ps.make_pixel_samples(2, 3, labels=True))
    batch = ps.collate(samples, tok, model.config)
    assert batch["shape_labels"].shape == (2, 112, 112)
    with_aux = model(**batch)
    without = model(**{k: v for k, v in batch.items() if k != "shape_labels"})
    assert with_aux["loss"].item() == pytest.approx(without["loss"].item() + 0.5 * with_aux["vision_aux"].item(), rel=1e-5)
    assert "shape_labels" not in ps.collate(list(ps.make_pixel_samples(2, 3)), tok, model.config)
    with pytest.raises(ValueError, match="vision_aux"):
        ps.PixelSailConfig(vision_aux=-1.0)
    with pytest.raises(ValueError, match="synthetic"):
        ps.train_pixelsail(ps.PixelSailTrainConfig(out="unused", data="refcoco", vision_aux=1.0))
