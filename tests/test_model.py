"""Tiny-model tests: build, forward, generate, save/load, processor, label masking, load_model."""

import inspect

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLModel

from simpleseg_lite.model import (
    IM_END,
    VISION_TOKENS,
    LoraSettings,
    SimpleSegLiteForConditionalGeneration,
    SimpleSegLiteProcessor,
    TinyConfig,
    build_tiny_model,
    chat_text,
    collate_sft,
    deepen_language_model,
    generate,
    load_model,
)

SMALL = TinyConfig(hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=128,
                   vision_hidden_size=32, vision_depth=2, vision_heads=2, vision_intermediate_size=64,
                   vision_fullatt_blocks=(1,))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_tiny_model(SMALL, seed=0)


def square(x0=20, y0=30, side=20, size=112, colour=(255, 0, 0)):
    image = Image.new("RGB", (size, size))
    ImageDraw.Draw(image).rectangle([x0, y0, x0 + side - 1, y0 + side - 1], fill=colour)
    return image


EXAMPLES = [
    {"image": square(), "prompt": "Where is the square?", "answer": "[0.268, 0.357]"},
    {"image": square(60, 5, 40, size=300), "prompt": "Where?", "completion": "[0.5, 0.1]"},  # trl's column name
]


def test_forward_with_labels_gives_finite_loss(tiny):
    model, processor = tiny
    batch = collate_sft(EXAMPLES, processor)
    loss = model(**batch).loss
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()  # the position embedding is on the gradient path
    assert model.model.image_positions.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("image_size, tokens", [
    (112, 16),  # default: 8×8 patches of 14 px, merged 2×2
    (224, 64),
])
def test_processor_gives_fixed_number_of_image_tokens(image_size, tokens):
    _, processor = build_tiny_model(TinyConfig(**{**SMALL.__dict__, "image_size": image_size}))
    assert processor.num_image_tokens == tokens
    images = [square(size=112), square(size=500), Image.new("L", (90, 300))]  # any size/mode, even non-square
    batch = processor(text=[chat_text(processor, "hi")] * 3, images=images, padding=True, return_tensors="pt")
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert (batch["input_ids"] == image_id).sum(dim=1).tolist() == [tokens] * 3
    assert (batch["mm_token_type_ids"] == 1).sum(dim=1).tolist() == [tokens] * 3  # needed for 3D mRoPE


def test_labels_cover_only_answer_and_im_end(tiny):
    _, processor = tiny
    batch = collate_sft(EXAMPLES, processor)
    tok = processor.tokenizer
    for row, ex in enumerate(EXAMPLES):
        labels = batch["labels"][row]
        answer = ex.get("answer", ex.get("completion"))
        assert tok.decode(labels[labels != -100]) == answer + IM_END
        kept = labels != -100
        assert torch.equal(labels[kept], batch["input_ids"][row][kept])
        # Right padding: padded positions have no attention and no loss.
        pad = batch["attention_mask"][row] == 0
        assert (labels[pad] == -100).all()


def test_generate_returns_strings_without_vision_tokens(tiny):
    model, processor = tiny
    # Make the untrained model *prefer* vision tokens: generate must still never emit them.
    ids = processor.tokenizer.convert_tokens_to_ids(VISION_TOKENS)
    with torch.no_grad():
        model.lm_head.weight[ids] += 5.0
    try:
        for do_sample in (False, True):
            texts = generate(model, processor, [square(), square(size=200)], ["Where?", "Where is it?"],
                             max_new_tokens=12, do_sample=do_sample)
            assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
            raw = processor.tokenizer(texts, add_special_tokens=False)["input_ids"]
            assert not any(i in ids for row in raw for i in row)
    finally:
        with torch.no_grad():
            model.lm_head.weight[ids] -= 5.0


def test_save_load_round_trip_keeps_every_parameter(tiny, tmp_path):
    model, processor = tiny
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded, loaded_processor = load_model(tmp_path)
    assert isinstance(loaded, SimpleSegLiteForConditionalGeneration)
    before, after = model.state_dict(), loaded.state_dict()
    assert set(before) == set(after) and "model.image_positions.weight" in after
    for key in before:
        assert torch.equal(before[key], after[key]), key  # bit-exact
    assert isinstance(loaded_processor, SimpleSegLiteProcessor)
    assert loaded_processor.num_image_tokens == processor.num_image_tokens
    assert loaded_processor.chat_template == processor.chat_template
    # transformers ≥ 5.2x would swap layers for Hub kernels (downloaded code) on load unless told not to
    assert not loaded.use_kernels


def test_load_model_with_lora_trains_only_the_language_model(tiny, tmp_path):
    model, processor = tiny
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    peft_model, _ = load_model(tmp_path, lora=LoraSettings(r=4))
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and "language_model" in n for n in trainable)
    assert any("q_proj" in n for n in trainable) and any("down_proj" in n for n in trainable)
    assert len(generate(peft_model, processor, [square()], ["Where?"], max_new_tokens=3)) == 1


def test_load_model_detects_a_stock_qwen_checkpoint(tmp_path):
    model, processor = build_tiny_model(TinyConfig(**{**SMALL.__dict__, "position_fix": False}))
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded, _ = load_model(tmp_path)
    assert type(loaded) is Qwen2_5_VLForConditionalGeneration  # no position embedding to expect
    before, after = model.state_dict(), loaded.state_dict()
    assert set(before) == set(after) and all(torch.equal(before[k], after[k]) for k in before)
    from simpleseg_lite.bench import bench_group_step

    result = bench_group_step(str(tmp_path), prompts=2, generations=3, repeats=1)  # the stock class shares too
    assert result["rows"] == 6 and result["loss_diff"] < 1e-5
    assert result["grad_max_abs_diff"] <= 1e-4 * result["grad_max_abs"]


def test_sft_trainer_runs_with_collate_sft(tiny, tmp_path):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from simpleseg_lite.sft import checkpointing_arg

    model, processor = tiny
    dataset = Dataset.from_list([{"image": square(10 * i, 5 * i), "prompt": "Where?", "answer": f"[0.{i}, 0.5]"}
                                 for i in range(4)])
    args = SFTConfig(
        output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=2, logging_steps=1, report_to="none",
        save_strategy="no",
        remove_unused_columns=False,  # else trl drops the "answer" column before the collator sees it
        dataset_kwargs={"skip_prepare_dataset": True},  # collate_sft tokenizes; trl must not
        use_cpu=True, bf16=False,  # trl defaults to bf16, which errors without a GPU (and is slow on AVX2 CPUs)
        **checkpointing_arg(False),  # trl's default; needless for a tiny model
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor,
                         data_collator=lambda examples: collate_sft(examples, processor))
    trainer.train()
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert trainer.state.global_step == 2 and len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))


@pytest.mark.parametrize("make_path, message", [
    (lambda tmp: tmp / "does-not-exist", "No model folder"),  # missing folder
    (lambda tmp: tmp, "has no config.json"),  # folder without a model
])
def test_load_model_errors_clearly_on_bad_path(tmp_path, make_path, message):
    with pytest.raises(FileNotFoundError, match=message):
        load_model(make_path(tmp_path))


def test_trust_remote_code_defaults_false():
    assert inspect.signature(load_model).parameters["trust_remote_code"].default is False


@pytest.mark.parametrize("switches, tokens, patch_embed", [
    ({}, 16, "Qwen2_5_VisionPatchEmbed"),  # the committed design
    ({"merge_size": 1}, 64, "Qwen2_5_VisionPatchEmbed"),  # one 14-px patch per image token
    ({"patch_positions": True}, 16, "LitePatchEmbed"),  # a learned vector per patch before the ViT
    ({"patch_stem": "conv"}, 16, "LitePatchEmbed"),  # 3×3 convs inside each patch
    ({"rope_layout": "interleaved"}, 16, "Qwen2_5_VisionPatchEmbed"),  # mRoPE frequencies dealt to t, h, w in turn
    ({"image_centre": "learned", "vision_window": 28, "vision_fullatt_blocks": ()}, 16,
     "Qwen2_5_VisionPatchEmbed"),  # local image tokens (session 22): the centre vector travels with the checkpoint
    ({"object_gate": True}, 16, "Qwen2_5_VisionPatchEmbed"),  # background tokens as their position only (session 23)
    ({"attn_scale": 4.0}, 16, "Qwen2_5_VisionPatchEmbed"),  # sharper language-model attention (session 24)
    ({"query_vision": True}, 16, "Qwen2_5_VisionPatchEmbed"),  # the tower reads the question (session 24)
    ({"colour_skip": 8}, 16, "Qwen2_5_VisionPatchEmbed"),  # colour detectors past the tower (session 28)
])
def test_localization_switches_train_save_and_load(switches, tokens, patch_embed, tmp_path):
    from dataclasses import replace

    model, processor = build_tiny_model(replace(SMALL, **switches), seed=0)
    assert processor.num_image_tokens == tokens
    assert type(model.model.visual.patch_embed).__name__ == patch_embed
    batch = collate_sft(EXAMPLES[:1], processor)
    loss = model(**batch).loss
    loss.backward()
    assert torch.isfinite(loss)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    again, again_processor = load_model(tmp_path, dtype=torch.float32)
    model.eval(), again.eval()
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, again(**batch).logits)
    assert again_processor.num_image_tokens == tokens


@pytest.mark.parametrize("layout, width_turn", [("chunked", (0.0, 0.05)), ("interleaved", (0.5, 10.0))])
def test_rope_layout_decides_how_far_the_width_axis_turns(layout, width_turn):
    """Across the image-token grid, how far the fastest width frequency turns a key (radians): the stock chunked
    layout gives the width axis only the slowest frequencies."""
    from dataclasses import replace

    model, _ = build_tiny_model(replace(SMALL, rope_layout=layout), seed=0)
    rotary = model.model.language_model.rotary_emb
    axis = [k % 3 for k, n in enumerate(rotary.mrope_section) for _ in range(n)]  # axis of each frequency
    fastest_width = max(float(f) for f, a in zip(rotary.inv_freq, axis) if a == 2)
    assert width_turn[0] <= fastest_width * 3 <= width_turn[1]  # 4 columns of image tokens: positions 0..3
    with pytest.raises(ValueError, match="rope_layout"):
        build_tiny_model(replace(SMALL, rope_layout="spiral"))


def test_conv_stem_without_position_fix_is_refused():
    from dataclasses import replace

    with pytest.raises(ValueError, match="position_fix"):
        build_tiny_model(replace(SMALL, position_fix=False, patch_stem="conv"))


@pytest.mark.parametrize("layers, copies", [(2, 0), (3, 1), (4, 2)])
def test_deepen_language_model_keeps_the_function_and_round_trips(tiny, layers, copies, tmp_path):
    model, processor = tiny
    grown = deepen_language_model(model, layers)
    assert len(grown.model.language_model.layers) == grown.config.text_config.num_hidden_layers == layers
    zeroed = [i for i, layer in enumerate(grown.model.language_model.layers)
              if not layer.mlp.down_proj.weight.any() and not layer.self_attn.o_proj.weight.any()]
    assert len(zeroed) == copies  # the new layers start as identities, the old ones keep their weights
    batch = collate_sft(EXAMPLES, processor)
    with torch.no_grad():
        torch.testing.assert_close(grown(**batch).logits, model(**batch).logits, rtol=1e-5, atol=1e-5)
    grown.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded, _ = load_model(tmp_path)
    assert len(loaded.model.language_model.layers) == layers


def test_deepen_language_model_refuses_to_shrink(tiny):
    with pytest.raises(ValueError, match="grows a model"):
        deepen_language_model(tiny[0], 1)


@pytest.mark.parametrize("order, first, second", [("image_first", "<|image_pad|>", "Where is the square?"),
                                                  ("text_first", "Where is the square?", "<|image_pad|>")])
def test_prompt_order_lays_out_the_prompt_and_survives_save_and_load(order, first, second, tmp_path):
    """set_prompt_order changes only the chat template; the image tokens still expand, labels still cover the answer."""
    from simpleseg_lite.model import prompt_order, set_prompt_order

    _, processor = build_tiny_model(SMALL, seed=0)
    set_prompt_order(processor, order)
    text = chat_text(processor, "Where is the square?")
    assert text.index(first) < text.index(second) and text.endswith("<|im_start|>assistant\n")
    batch = collate_sft(EXAMPLES[:1], processor)
    image_tokens = (batch["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")).sum()
    assert image_tokens == processor.num_image_tokens
    answer = processor.tokenizer(EXAMPLES[0]["answer"], add_special_tokens=False)["input_ids"]
    assert (batch["labels"] != -100).sum() == len(answer) + 1  # the answer and <|im_end|>, whatever the order
    processor.save_pretrained(tmp_path)
    assert prompt_order(SimpleSegLiteProcessor.from_pretrained(tmp_path)) == order
    with pytest.raises(ValueError, match="prompt order"):
        set_prompt_order(processor, "sideways")


@pytest.mark.parametrize("window, fullatt, local", [
    (28, (), True),  # every block sees one 28-px square: a token's features come from its own pixels only
    (112, (), False),  # the default window is the whole 112-px image
    (28, (1,), False),  # one full-attention block mixes the squares again
])
def test_vision_window_keeps_image_tokens_local(window, fullatt, local):
    from dataclasses import replace

    model, processor = build_tiny_model(replace(SMALL, vision_window=window, vision_fullatt_blocks=fullatt), seed=0)
    model.eval()
    image = np.zeros((112, 112, 3), np.uint8)
    changed = image.copy()
    changed[70:100, 70:100] = 255  # pixels of tokens 10, 11, 14, 15 only (rows/columns 2–3 of the 4×4 grid)

    def tokens(img):
        pv = processor.image_processor(images=[Image.fromarray(img)], return_tensors="pt")
        with torch.no_grad():
            # the merger's output, before the position fix (whose centring is global by design)
            return model.model.visual(pv["pixel_values"], grid_thw=pv["image_grid_thw"]).pooler_output

    before, after = tokens(image), tokens(changed)
    untouched = [t for t in range(16) if t not in (10, 11, 14, 15)]
    assert not torch.allclose(before[10], after[10])
    assert torch.allclose(before[untouched], after[untouched], atol=1e-6) == local


@pytest.mark.parametrize("centre, local", [("learned", True), ("image", False)])
def test_learned_centre_keeps_the_language_models_image_tokens_local(centre, local):
    """With 28-px windows the tower is local; the position fix's image-mean centring would mix the tokens again."""
    from dataclasses import replace

    model, processor = build_tiny_model(replace(SMALL, vision_window=28, vision_fullatt_blocks=(), image_centre=centre))
    model.eval()
    image = np.zeros((112, 112, 3), np.uint8)
    changed = image.copy()
    changed[70:100, 70:100] = 255

    def tokens(img):
        pv = processor.image_processor(images=[Image.fromarray(img)], return_tensors="pt")
        with torch.no_grad():
            return model.model.get_image_features(pv["pixel_values"], pv["image_grid_thw"]).pooler_output[0]

    before, after = tokens(image), tokens(changed)
    untouched = [t for t in range(16) if t not in (10, 11, 14, 15)]
    assert torch.allclose(before[untouched], after[untouched], atol=1e-5) == local


@pytest.mark.parametrize("bias, kept", [(-50.0, 0), (50.0, 16)])
def test_object_gate_leaves_closed_tokens_as_their_position(bias, kept):
    """A closed gate (score ≤ 0) hands the language model p_i alone; an open one the normalized features + p_i."""
    from dataclasses import replace

    model, processor = build_tiny_model(replace(SMALL, object_gate=True))
    model.eval()
    fix = model.model.image_positions
    torch.nn.init.zeros_(fix.gate.weight)
    torch.nn.init.constant_(fix.gate.bias, bias)
    pv = processor.image_processor(images=[Image.fromarray(np.full((112, 112, 3), 90, np.uint8))], return_tensors="pt")
    with torch.no_grad():
        out = model.model.get_image_features(pv["pixel_values"], pv["image_grid_thw"]).pooler_output[0]
    same = torch.isclose(out, fix.weight).all(1)
    assert int((~same).sum()) == kept and fix.gate_logits.shape == (1, 16)
    with pytest.raises(ValueError, match="object_gate needs position_fix"):
        build_tiny_model(replace(SMALL, object_gate=True, position_fix=False))


@pytest.mark.parametrize("covered, target", [((0, 0, 1, 1), [1, 0, 0, 0]), ((27, 27, 29, 29), [1, 1, 1, 1]),
                                             (None, [0, 0, 0, 0])])
def test_gate_loss_asks_whether_any_object_pixel_is_in_the_token(covered, target):
    from simpleseg_lite.sft import gate_loss

    labels = torch.zeros(1, 56, 56, dtype=torch.uint8)  # 2 × 2 tokens of 28 px
    if covered:
        x0, y0, x1, y1 = covered
        labels[0, y0:y1, x0:x1] = 3
    want = torch.tensor([target], dtype=torch.float32)
    right, wrong = 20 * (2 * want - 1), -20 * (2 * want - 1)
    assert float(gate_loss(right, labels)) < 1e-6 < 1.0 < float(gate_loss(wrong, labels))


@pytest.mark.parametrize("scale", [1.0, 2.0, 4.0])
def test_attn_scale_multiplies_the_language_models_attention_logits(scale):
    """The same weights at scale k give attention rows whose log-weights are k times the stock logits (softmax with
    temperature 1/k): every row gets sharper as k grows, and the stock model is untouched at k = 1."""
    from dataclasses import replace

    from simpleseg_lite.model import scale_attention

    model, processor = build_tiny_model(replace(SMALL, attn_scale=scale), seed=0)
    stock, _ = build_tiny_model(SMALL, seed=0)
    stock.load_state_dict(model.state_dict())
    assert model.config.to_dict().get("lite_attn_scale", 1.0) == scale
    batch = collate_sft(EXAMPLES[:1], processor)
    for m in (model, stock):
        m.eval()
        m.config.text_config._attn_implementation = "eager"  # eager returns the attention weights
    with torch.no_grad():
        att = model(**batch, output_attentions=True).attentions[0][0, 0, -1]
        base = stock(**batch, output_attentions=True).attentions[0][0, 0, -1]
    want = torch.softmax(scale * torch.log(base.clamp_min(1e-30)), dim=-1)  # log base = stock logits + a constant
    assert torch.allclose(att, want, atol=1e-5)
    entropy = lambda a: float(-(a * a.clamp_min(1e-30).log()).sum())
    assert entropy(att) <= entropy(base) + 1e-6
    with pytest.raises(ValueError, match="attn_scale"):
        scale_attention(model.model.language_model, 0.0)
    with pytest.raises(ValueError, match="attn_scale"):
        build_tiny_model(replace(SMALL, attn_scale=-1.0))


def _image_tokens(model, processor, examples):
    """The language model's input vectors at the image tokens, (n, 16, width)."""
    batch = collate_sft(examples, processor)
    with torch.no_grad():
        first = model(**batch, output_hidden_states=True).hidden_states[0]
    return first[batch["input_ids"] == model.config.image_token_id].view(len(examples), -1, first.shape[-1])


@pytest.mark.parametrize("query_vision", [False, True])
def test_query_vision_lets_the_prompt_and_only_the_prompt_reach_the_image_tokens(query_vision):
    from dataclasses import replace

    model, processor = build_tiny_model(replace(SMALL, query_vision=query_vision), seed=0)
    model.eval()
    if query_vision:
        assert float(model.model.query_proj.weight.detach().abs().sum()) == 0.0  # starts as the stock tower
        torch.nn.init.normal_(model.model.query_proj.weight)
    image = square()
    base = _image_tokens(model, processor, [{"image": image, "prompt": "Where is the square?", "answer": "[0.1, 0.2]"}])
    other_answer = _image_tokens(model, processor, [{"image": image, "prompt": "Where is the square?",
                                                     "answer": "[0.9, 0.8]"}])
    other_prompt = _image_tokens(model, processor, [{"image": image, "prompt": "Where is the red star?",
                                                     "answer": "[0.1, 0.2]"}])
    assert torch.equal(base, other_answer)  # teacher forcing never shows the answer to the tower
    assert torch.equal(base, other_prompt) != query_vision  # the question reaches the tower only when asked to
    if query_vision:
        with pytest.raises(ValueError, match="input_ids"):
            batch = collate_sft(EXAMPLES[:1], processor)
            model.model(pixel_values=batch["pixel_values"], image_grid_thw=batch["image_grid_thw"],
                        inputs_embeds=model.model.get_input_embeddings()(batch["input_ids"]))


def test_image_centre_is_checked():
    from dataclasses import replace

    with pytest.raises(ValueError, match="image_centre"):
        build_tiny_model(replace(SMALL, image_centre="batch"))


@pytest.mark.parametrize("window", [0, 42, -28])
def test_vision_window_must_be_whole_tokens(window):
    from dataclasses import replace

    with pytest.raises(ValueError, match="vision_window"):
        build_tiny_model(replace(SMALL, vision_window=window))


def test_colour_skip_reads_colour_per_token_past_the_tower():
    """``colour_skip``: recolouring an object changes the skip's output only at the image token whose 28-px square
    the object lies in (the tower's own mixing aside); a bad count is refused."""
    from dataclasses import replace

    from PIL import ImageDraw

    def scene(colour):
        image = Image.new("RGB", (112, 112), (20, 20, 20))
        ImageDraw.Draw(image).rectangle([4, 4, 20, 20], fill=colour)  # inside token (0, 0) only
        return {"image": image, "prompt": "Where is the square?", "answer": "[0.1, 0.2]"}

    model, processor = build_tiny_model(replace(SMALL, colour_skip=8), seed=0)
    skip = model.model.colour_skip
    assert float(skip.proj.weight.detach().abs().sum()) > 0  # a small random map (model docstring: why not zero)
    with torch.no_grad():
        red = skip(collate_sft([scene((220, 45, 45))], processor)["pixel_values"])
        blue = skip(collate_sft([scene((55, 95, 235))], processor)["pixel_values"])
    assert red.shape == (16, SMALL.hidden_size)
    assert ((red - blue).abs().amax(-1) > 1e-6).tolist() == [True] + [False] * 15
    with pytest.raises(ValueError, match="colour_skip"):
        build_tiny_model(replace(SMALL, colour_skip=-1))


def test_add_colour_skip_to_a_trained_model_is_seeded_and_saves(tmp_path):
    from simpleseg_lite.model import add_colour_skip

    models = [add_colour_skip(build_tiny_model(SMALL, seed=0)[0], 4, seed=s) for s in (3, 3, 4)]
    weights = [m.model.colour_skip.proj.weight for m in models]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])
    model, processor = models[0], build_tiny_model(SMALL, seed=0)[1]
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    again, _ = load_model(tmp_path, dtype=torch.float32)
    batch = collate_sft(EXAMPLES[:1], processor)
    model.eval(), again.eval()
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, again(**batch).logits)
    with pytest.raises(ValueError, match="already"):
        add_colour_skip(again, 4)
    with pytest.raises(ValueError, match="detectors"):
        add_colour_skip(build_tiny_model(SMALL, seed=0)[0], 0)


@pytest.mark.parametrize("images, first, inverse", [
    ("ab", None, None),  # every image distinct: nothing to share
    ("a", None, None),
    ("aab", [0, 2], [0, 0, 1]),
    ("baab", [0, 1], [0, 1, 1, 0]),  # first occurrences in batch order, whatever the pixel values sort to
    ("aaaa", [0], [0, 0, 0, 0]),
])
def test_repeated_images_finds_the_copies_in_batch_order(tiny, images, first, inverse):
    from simpleseg_lite.model import repeated_images

    _, processor = tiny
    pictures = {"a": square(), "b": square(60, 5, 30, colour=(0, 0, 255))}
    enc = processor.image_processor(images=[pictures[c] for c in images], return_tensors="pt")
    got = repeated_images(enc["pixel_values"], enc["image_grid_thw"])
    if first is None:
        assert got is None
    else:
        assert got[0].tolist() == first and got[1].tolist() == inverse


def _patches(spec: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat patches and grids for images named by letters: a/b are 4×4-patch images (different pixels), w a 4×8 one
    and t a 8×4 one holding w's very patches (same numbers, another grid)."""
    g = torch.Generator().manual_seed(0)
    a, b, w = torch.rand(16, 6, generator=g), torch.rand(16, 6, generator=g), torch.rand(32, 6, generator=g)
    table = {"a": (a, [1, 4, 4]), "b": (b, [1, 4, 4]), "w": (w, [1, 4, 8]), "t": (w, [1, 8, 4])}
    return torch.cat([table[c][0] for c in spec]), torch.tensor([table[c][1] for c in spec])


@pytest.mark.parametrize("spec, first, inverse", [
    ("aw", None, None),  # sizes differ, nothing repeats
    ("wt", None, None),  # the same numbers on another grid are another image
    ("awaw", [0, 1], [0, 1, 0, 1]),  # a native-resolution batch: copies found among images of other sizes
    ("wabwa", [0, 1, 2], [0, 1, 2, 0, 1]),
    ("tww", [0, 1], [0, 1, 1]),
])
def test_repeated_images_compares_images_of_any_size(spec, first, inverse):
    from simpleseg_lite.model import repeated_images

    got = repeated_images(*_patches(spec))
    if first is None:
        assert got is None
    else:
        assert got[0].tolist() == first and got[1].tolist() == inverse


@pytest.mark.parametrize("pixels, grid", [
    (torch.zeros(32, 6), None),  # no grid: nothing to compare
    (torch.zeros(16, 6), [[1, 4, 4]]),  # one image
    (torch.zeros(40, 6), [[1, 4, 4], [1, 4, 4]]),  # patch count does not match the grids
])
def test_repeated_images_leaves_what_it_cannot_split_alone(pixels, grid):
    from simpleseg_lite.model import repeated_images

    assert repeated_images(pixels, None if grid is None else torch.tensor(grid)) is None


@pytest.mark.parametrize("sizes, inverse", [
    ([3, 3], [0, 1, 0, 0, 1]),  # equal sizes: one stacked index_select
    ([2, 5, 1], [2, 0, 1, 1, 0, 2]),  # mixed sizes: a per-token index
    ([4], [0, 0, 0]),
])
def test_gather_rows_is_indexing_with_summed_gradients(sizes, inverse):
    from simpleseg_lite.model import gather_rows

    g = torch.Generator().manual_seed(0)
    pieces = [torch.randn(n, 3, generator=g, requires_grad=True) for n in sizes]
    out = gather_rows(pieces, torch.tensor(inverse))
    assert len(out) == len(inverse) and all(torch.equal(o, pieces[j]) for o, j in zip(out, inverse))
    weights = [torch.randn(o.shape, generator=g) for o in out]
    sum((o * w).sum() for o, w in zip(out, weights)).backward()
    for j, piece in enumerate(pieces):  # each piece's gradient: the sum of its copies' upstream gradients
        want = sum((w for w, k in zip(weights, inverse) if k == j), torch.zeros_like(piece))
        torch.testing.assert_close(piece.grad, want)


def _shared_and_per_row(model, forward):
    """Run ``forward()`` (→ (loss, extras)) and its backward with the tower's image sharing on, then off. Returns the
    patch count of every tower call and, per setting, (loss, extras, gradients)."""
    seen, results = [], {}
    hook = model.model.visual.register_forward_hook(lambda _m, args, _out: seen.append(args[0].shape[0]))
    try:
        for share in (True, False):
            model.model.share_repeated_images = share
            model.zero_grad(set_to_none=True)
            loss, extras = forward()
            loss.backward()
            results[share] = (float(loss.detach()), extras, {n: q.grad.clone() for n, q in model.named_parameters()
                                                             if q.grad is not None})
    finally:
        hook.remove()
        model.model.share_repeated_images = True
    return seen, results


def test_a_stock_tower_shares_images_of_different_sizes():
    """The full path's stock Qwen2.5-VL at native resolution: images of two sizes, each repeated; the tower
    encodes the two distinct ones, and the tokens, their order and every gradient equal encoding each copy."""
    from simpleseg_lite.model import share_image_encoding

    model, _ = build_tiny_model(TinyConfig(**{**SMALL.__dict__, "position_fix": False}), seed=0)
    assert type(model.model) is Qwen2_5_VLModel and "get_image_features" in vars(model.model)  # built sharing
    assert share_image_encoding(model)  # and binding it again is harmless
    p = model.config.vision_config.patch_size
    width = 3 * p * p * model.config.vision_config.temporal_patch_size
    g = torch.Generator().manual_seed(1)
    small, wide = torch.randn(16, width, generator=g), torch.randn(32, width, generator=g)
    pixels = torch.cat([small, wide, wide, small, wide])
    grid = torch.tensor([[1, 4, 4], [1, 4, 8], [1, 4, 8], [1, 4, 4], [1, 4, 8]])
    weights = torch.randn(int(grid.prod(-1).sum()) // 4, model.config.vision_config.out_hidden_size, generator=g)

    def forward():
        out = model.model.get_image_features(pixels, grid)
        return (torch.cat(out.pooler_output) * weights).sum(), ([t.detach() for t in out.pooler_output],
                                                               out.last_hidden_state.detach())

    seen, results = _shared_and_per_row(model, forward)
    assert seen == [48, 128]  # the two distinct images, then all five
    (_, (tok_s, hid_s), grad_s), (_, (tok_e, hid_e), grad_e) = results[True], results[False]
    assert [t.shape[0] for t in tok_s] == [4, 8, 8, 4, 8]
    for a, b in zip(tok_s, tok_e):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(hid_s, hid_e)
    for name, grad in grad_e.items():
        torch.testing.assert_close(grad_s[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_bench_group_step_refuses_a_model_without_a_qwen_inside(tmp_path, monkeypatch):
    """Nothing to share: the benchmark would time one path twice, so it says so instead."""
    import simpleseg_lite.model as model_module
    from simpleseg_lite.bench import bench_group_step
    from simpleseg_lite.model import share_image_encoding

    assert not share_image_encoding(torch.nn.Linear(2, 2))
    _, processor = build_tiny_model(SMALL)
    monkeypatch.setattr(model_module, "load_model", lambda *_a, **_k: (torch.nn.Linear(2, 2), processor))
    with pytest.raises(ValueError, match="no Qwen2.5-VL inside"):
        bench_group_step(str(tmp_path), prompts=1, generations=2)


def test_a_stock_model_loads_with_sharing_and_saves_stock(tmp_path):
    """`load_model` binds the sharing to the loaded instance only: the class and the checkpoint it writes stay
    stock, and a deep copy (a trainer's reference model) encodes with its own tower."""
    import copy

    model, processor = build_tiny_model(TinyConfig(**{**SMALL.__dict__, "position_fix": False}))
    model.save_pretrained(tmp_path / "a")
    processor.save_pretrained(tmp_path / "a")
    loaded, _ = load_model(tmp_path / "a")
    assert loaded.model.share_repeated_images and "get_image_features" in vars(loaded.model)
    assert "get_image_features" not in vars(Qwen2_5_VLModel(loaded.config))  # the class is untouched
    twin = copy.deepcopy(loaded)
    assert twin.model.get_image_features.__self__ is twin.model
    loaded.save_pretrained(tmp_path / "b")
    processor.save_pretrained(tmp_path / "b")
    again, _ = load_model(tmp_path / "b")
    assert type(again) is Qwen2_5_VLForConditionalGeneration
    before, after = model.state_dict(), again.state_dict()
    assert set(before) == set(after) and all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("colour_skip, position_fix", [(0, True), (8, True), (0, False)])  # False: stock class
def test_sharing_a_groups_image_keeps_loss_and_gradients(colour_skip, position_fix):
    """A GRPO batch repeats each prompt G times: the tower encodes each distinct image once, and the loss and
    every gradient equal those of encoding each row's copy (up to float summation order)."""
    from dataclasses import replace

    from simpleseg_lite.model import share_image_encoding

    model, processor = build_tiny_model(replace(SMALL, colour_skip=colour_skip, position_fix=position_fix), seed=0)
    assert share_image_encoding(model)
    rows = [{"image": square(), "prompt": "Where is the square?", "answer": "[0.27, 0.36]"},
            {"image": square(50, 10, 30, colour=(0, 200, 0)), "prompt": "Where is the green square?",
             "answer": "[0.58, 0.22]"}]
    batch = collate_sft([rows[i] for i in (0, 1, 0, 0, 1, 1)], processor)
    seen, results = _shared_and_per_row(model, lambda: (model(**batch).loss, None))
    patches = batch["image_grid_thw"].prod(-1)
    assert seen == [int(patches[:2].sum()), int(patches.sum())]  # 2 images encoded, then all 6
    assert results[True][0] == pytest.approx(results[False][0], rel=1e-6)
    shared, each = results[True][2], results[False][2]
    assert shared.keys() == each.keys() and any(n.startswith("model.visual") for n in each)
    for name, grad in each.items():
        torch.testing.assert_close(shared[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_sharing_a_groups_image_is_deterministic(tiny):
    """Two backward passes over the same RL-shaped batch give bit-identical gradients (a plain `[inverse]` gather
    would not: its CPU backward adds repeated rows with parallel atomics)."""
    model, processor = tiny
    images = [square(5 + 20 * i, 10 + 15 * i, 20 + 5 * i) for i in range(4)]
    order = torch.randperm(64, generator=torch.Generator().manual_seed(0)) % 4  # 16 answers per image, shuffled
    batch = collate_sft([{"image": images[int(k)], "prompt": "Where is the square?",
                          "answer": f"[0.{10 + j}, 0.{50 - j}]"} for j, k in enumerate(order)], processor)
    assert model.model.share_repeated_images
    grads = []
    for _ in range(3):
        model.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
        grads.append(model.model.visual.patch_embed.proj.weight.grad.clone())
    assert all(torch.equal(grads[0], g) for g in grads[1:])
