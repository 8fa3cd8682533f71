"""Pixel-SAIL-lite: one transformer for pixels and text, and a mask decoded from a ``[SEG]`` token.

SimpleSeg writes an outline as text. Pixel-SAIL ("Single Transformer For Pixel-Grounded Understanding")
keeps a single plain transformer — no vision encoder — and reads the mask off its hidden states:

1. **Patches straight into the language model.** The image (``image_size`` px square) is cut into
   ``patch_size`` px patches; one linear layer maps each (3·p·p values in [−1, 1]) to a token embedding.
   The sequence is ``[N vision tokens] <|im_start|>user\\n{prompt}<|im_end|>\\n<|im_start|>assistant\\n{answer}``.
   Vision tokens get 3-D rotary positions (t = 0, row, column), text tokens continue after them as in
   Qwen2.5-VL (mRoPE); attention is **bidirectional among vision tokens** and causal elsewhere.
2. **Visual-prompt injection.** Special tokens ``<Prompt0>`` … ``<Prompt3>``: every patch a region (a
   point, a box or a mask) touches gets ``W · embed(<PromptK>)`` added to its vision token before the
   first layer (early fusion, no extra tokens); the text names the region by ``<PromptK>``.
3. **The mask.** The last layer's hidden states at the vision positions, reshaped to (B, C, g, g) with
   g = image_size / patch_size, go through ``upsample_blocks`` learnable upsampling blocks (each: transposed
   conv k = 2 s = 2 → GELU → depthwise 3×3 → pointwise 1×1 → LayerNorm over channels), then a 1×1-conv MLP
   to ``mask_dim``; the hidden state *at the* ``[SEG]`` *token* goes through an MLP to ``mask_dim``; mask
   logits are their dot product per pixel, resized bilinearly to the image. ``upsample_blocks = 0`` is the
   paper's *plain* baseline (the dot product on the g × g token grid, upsampled bilinearly).
4. **Loss**: sigmoid cross-entropy × 2.0 + Dice × 0.5 on the mask, plus the language-model loss, scaled by
   0.1 on rows that carry a mask (the paper's weights).

Shapes (lite defaults): 112-px images, 14-px patches → g = 8, N = 64 vision tokens; hidden 256, 6 layers;
three blocks upsample 8 → 64, logits are resized to 112 × 112. Masks are (H, W) uint8, row = y, pixel-edge
convention of ``contours`` (pixel (r, c) spans [c, c + 1] × [r, r + 1]).

Departures from the paper, and why:

* **No distillation** from Mask2Former / SAM2 features: there is no teacher for synthetic shapes.
* **From scratch and tiny** (≈ 6M parameters, the character tokenizer of ``model``) instead of a
  pre-trained encoder-free MLLM (SOLO / EVEv2, 0.5B–7B).
* **The region of a visual prompt is the set of patches it touches** (a point: its patch; a box: every
  patch it overlaps; a mask: every patch with an object pixel), each with weight 1.
* Built from transformers' ``Qwen2_5_VLTextModel`` (the decoder with mRoPE) and a 4-D attention mask.
  The full path (``from_language_model``) puts a real Qwen2 / Qwen2.5 language model's weights into the same
  class (``PixelSailConfig.text_init`` records which) and trains on RefCOCO/+/g (``ReferPixelStream``); that
  model has never seen a patch, where the paper starts from an encoder-free MLLM pre-trained on images.
* **Switches that are not the paper's**, off by default, measured as ablations in notebook 08 §4:
  ``token_match`` (a full-rank ⟨M·h_[SEG], h_vision⟩ added to the head's logits on the token grid — the dot-
  product head trained from scratch collapses to "every object", see ``mask_logits``), ``word_tokens`` (the
  scenes' words as single tokens, as a BPE vocabulary has them), ``vision_position`` (an absolute 2-D position
  code added to every patch embedding, see below), ``select_loss`` (a per-image softmax over pixels beside BCE and
  Dice, see ``selection_loss``), ``mask_decoder = "mlp"``, ``text_first`` and ``patch_stem = "conv"`` (two 3×3
  convolutions over the whole image before a strided projection to the same 64 tokens, see ``vision_embed``).
* **Why an absolute position code** (``vision_position = "sincos"`` or ``"learned"``): the paper's vision tokens
  get only 3-D rotary positions, which act inside attention (on query–key scores) and never enter the hidden
  states themselves. Measured on the first lite checkpoint (ridge regression from the last-layer vision states,
  held out, ``scripts/pixelsail_probes.py --position``): the token's row is explained at R² 0.13, its column at
  0.02. The mask head reads those states, so it
  cannot pick "the shape at the top" or "the circle left of the star" (about 4 in 7 of the synthetic
  expressions) by where an object is; a pre-trained encoder-free MLLM may have learnt position from its patch
  content and data, a 6M-parameter model trained for minutes has not.

Taught in ``notebooks/08_pixel_sail.py``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

SEG_TOKEN = "[SEG]"
PROMPT_TOKENS = tuple(f"<Prompt{k}>" for k in range(4))
SEG_ANSWER = f"It is {SEG_TOKEN}."
MASK_LOSS_WEIGHTS = {"bce": 2.0, "dice": 0.5, "lm_with_mask": 0.1}  # the paper's


def scene_words() -> list[str]:
    """Every word the synthetic scenes' prompts and answers use: colours, shape names, the referring
    phrases' words and the task prompts' (``word_tokens``)."""
    import re

    from .data import COLOURS, SHAPES
    from .referring import PHRASES

    text = " ".join([*COLOURS, *SHAPES, "shape", "object", *(p for ps in PHRASES.values() for p in ps),
                     *TASK_PROMPTS.values(), SEG_ANSWER])
    text = re.sub(r"<[^>]*>|\[SEG\]|\{\w*\}", " ", text)  # the special tokens and the templates' slots
    return sorted(set(re.findall(r"[A-Za-z]+", text)))


def build_tokenizer(word_tokens: bool = False):
    """``model.build_tokenizer`` (characters + Qwen's special tokens) plus ``[SEG]`` and ``<Prompt0..3>``,
    each one token. ``word_tokens``: also each of ``scene_words()`` as one token when it stands as a whole
    word ("green" is one token, "greenish" stays characters) — what a real BPE vocabulary does for common
    words. Spelled out in characters, a colour word is 3–6 tokens that a 6-layer model trained from scratch
    must first assemble before it can match them to the image (see ``PixelSailConfig.word_tokens``)."""
    from tokenizers import AddedToken

    from .model import build_tokenizer as base

    tok = base()
    tok.add_tokens([SEG_TOKEN, *PROMPT_TOKENS], special_tokens=True)
    if word_tokens:
        tok.add_tokens([AddedToken(w, single_word=True, normalized=False) for w in scene_words()])
    return tok


MASK_DECODERS = ("dot", "mlp")
VISION_POSITIONS = ("none", "sincos", "learned")
PATCH_STEMS = ("linear", "conv")
ROPE_LAYOUTS = ("chunked", "interleaved")


@functools.lru_cache(maxsize=8)
def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """(grid², dim) fixed 2-D sinusoidal position code, row-major like the patches: the first half of the
    channels encodes the row, the second half the column, each as sin/cos pairs at ``dim / 4`` frequencies
    from 1 to 1/100 cycles per patch. Values in [−1, 1]. Cached (read-only: callers add it, never write it)."""
    if dim % 4:
        raise ValueError(f"a 2-D sinusoidal code needs a multiple of 4 channels, got {dim}")
    freq = 100.0 ** (-torch.arange(dim // 4, dtype=torch.float32) / max(dim // 4 - 1, 1))  # 1 … 1/100
    pos = torch.arange(grid, dtype=torch.float32)[:, None] * freq[None]  # grid, dim/4
    axis = torch.cat([pos.sin(), pos.cos()], 1)  # grid, dim/2
    rows = axis[:, None].expand(grid, grid, -1)
    cols = axis[None].expand(grid, grid, -1)
    return torch.cat([rows, cols], -1).reshape(grid * grid, dim)


class PixelSailConfig(PretrainedConfig):
    """Sizes of the single transformer and the mask head. ``upsample_blocks = 0``: the plain baseline;
    ``inject_prompts = False``: visual prompts are ignored (the injection ablation); ``mask_decoder``: "dot" (the
    paper's: mask logit = ⟨MLP(h_[SEG]), MLP(pixel)⟩) or "mlp" (a lite departure: the [SEG] vector is added to
    every pixel's features and a two-layer 1×1-conv MLP reads the logit — see ``mask_logits``); ``word_tokens``:
    the lite tokenizer also has the scenes' words as tokens (``build_tokenizer``; a real LM's BPE already
    does this, so ``from_language_model`` ignores it); ``text_first = True``:
    the prompt comes before the image, so the vision tokens — causal towards the text, bidirectional among
    themselves — also read the question (a departure from the paper's image-first layout, an ablation)."""

    model_type = "simpleseg_pixelsail_lite"

    def __init__(self, image_size=112, patch_size=14, hidden_size=256, num_layers=6, num_heads=4, num_kv_heads=2,
                 intermediate_size=768, vocab_size=120, upsample_blocks=3, upsample_channels=(128, 64, 32),
                 mask_dim=64, inject_prompts=True, seg_token_id=0, prompt_token_ids=(), image_token_id=0,
                 pad_token_id=0, eos_token_id=0, rope_theta=10000.0, rms_norm_eps=1e-6, mrope_section=None,
                 max_position_embeddings=1024, text_init=None, text_first=False, mask_decoder="dot", word_tokens=False,
                 token_match=False, vision_position="none", select_loss=0.0, patch_stem="linear", stem_channels=32,
                 stem_layers=1, rope_layout="chunked", vision_aux=0.0, aux_colours=False, aux_layer=0,
                 **kwargs):
        super().__init__(pad_token_id=pad_token_id, eos_token_id=eos_token_id, **kwargs)
        if image_size % patch_size:
            raise ValueError(f"image_size {image_size} must be a multiple of patch_size {patch_size}")
        self.image_size, self.patch_size = image_size, patch_size
        self.hidden_size, self.num_layers, self.num_heads, self.num_kv_heads = hidden_size, num_layers, num_heads, num_kv_heads
        self.intermediate_size, self.vocab_size, self.rope_theta = intermediate_size, vocab_size, rope_theta
        self.upsample_blocks, self.upsample_channels = upsample_blocks, list(upsample_channels)
        self.mask_dim, self.inject_prompts = mask_dim, inject_prompts
        self.seg_token_id, self.prompt_token_ids, self.image_token_id = seg_token_id, list(prompt_token_ids), image_token_id
        self.rms_norm_eps, self.max_position_embeddings = rms_norm_eps, max_position_embeddings
        self.mrope_section = list(mrope_section) if mrope_section else None
        self.text_init = text_init  # the language model the transformer started from (None: from scratch)
        self.text_first = text_first  # the user's prompt before the image tokens (see _prefix_ids)
        if mask_decoder not in MASK_DECODERS:
            raise ValueError(f"mask_decoder must be one of {MASK_DECODERS}, got {mask_decoder!r}")
        self.mask_decoder = mask_decoder
        self.word_tokens = word_tokens  # the tokenizer has the scenes' words as tokens (build_tokenizer)
        self.token_match = token_match  # + ⟨M·h_[SEG], h_vision⟩ on the token grid (mask_logits)
        if vision_position not in VISION_POSITIONS:
            raise ValueError(f"vision_position must be one of {VISION_POSITIONS}, got {vision_position!r}")
        self.vision_position = vision_position  # an absolute position code added to each patch (embed)
        if select_loss < 0:
            raise ValueError(f"select_loss is a loss weight and must be ≥ 0, got {select_loss}")
        self.select_loss = float(select_loss)  # weight of selection_loss beside BCE and Dice (0: the paper's loss)
        if patch_stem not in PATCH_STEMS:
            raise ValueError(f"patch_stem must be one of {PATCH_STEMS}, got {patch_stem!r}")
        if patch_stem == "conv" and patch_size % 2:
            raise ValueError(f"the conv stem halves the image first, so patch_size must be even, got {patch_size}")
        self.patch_stem, self.stem_channels = patch_stem, stem_channels  # see PixelSailLite.vision_embed
        self.stem_layers = stem_layers  # 3×3 convolutions of the conv stem after its first, strided one
        if rope_layout not in ROPE_LAYOUTS:
            raise ValueError(f"rope_layout must be one of {ROPE_LAYOUTS}, got {rope_layout!r}")
        if rope_layout == "interleaved" and mrope_section:
            raise ValueError("rope_layout='interleaved' sets the rotary sections itself; give no mrope_section")
        self.rope_layout = rope_layout  # see text_config
        if vision_aux < 0:
            raise ValueError(f"vision_aux is a loss weight and must be ≥ 0, got {vision_aux}")
        self.vision_aux = float(vision_aux)  # weight of the dense shape-map loss on the vision states (forward)
        self.aux_colours = bool(aux_colours)  # that loss names each pixel's shape *and* colour (data.shape_labels)
        if not 0 <= aux_layer < num_layers:
            raise ValueError(f"aux_layer is a layer index in [0, {num_layers}) (0: the last layer), got {aux_layer}")
        self.aux_layer = int(aux_layer)  # the dense loss reads the vision states after this layer (0: the last)

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    def text_config(self):
        from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLTextConfig

        half = self.hidden_size // self.num_heads // 2  # rotary frequencies split among (t, h, w)
        t = half // 4
        section = self.mrope_section or [t, (half - t) // 2, half - t - (half - t) // 2]  # 128-dim heads: [16, 24, 24]
        if self.rope_layout == "interleaved":  # frequency k → axis k mod 3: t, h, w, t, h, w, …
            section = [1] * half
        return Qwen2_5_VLTextConfig(
            vocab_size=self.vocab_size, hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers, num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_kv_heads, max_position_embeddings=self.max_position_embeddings,
            rms_norm_eps=self.rms_norm_eps,
            rope_parameters={"rope_type": "default", "mrope_section": section, "rope_theta": self.rope_theta},
            pad_token_id=self.pad_token_id, bos_token_id=self.pad_token_id, eos_token_id=self.eos_token_id)


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map, at each pixel on its own (so a pixel's features never
    depend on pixels outside its receptive field)."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class UpsampleBlock(nn.Module):
    """(B, C_in, h, w) → (B, C_out, 2h, 2w): transposed conv k2 s2 → GELU → depthwise 3×3 → pointwise 1×1
    → LayerNorm over channels."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_out, kernel_size=2, stride=2)
        self.depthwise = nn.Conv2d(c_out, c_out, 3, padding=1, groups=c_out)
        self.pointwise = nn.Conv2d(c_out, c_out, 1)
        self.norm = ChannelNorm(c_out)

    def forward(self, x):
        return self.norm(self.pointwise(self.depthwise(F.gelu(self.up(x)))))


def _mlp(c_in: int, c_out: int, conv: bool = False) -> nn.Module:
    if conv:
        return nn.Sequential(nn.Conv2d(c_in, c_in, 1), nn.GELU(), nn.Conv2d(c_in, c_out, 1))
    return nn.Sequential(nn.Linear(c_in, c_in), nn.GELU(), nn.Linear(c_in, c_out))


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Mean over masks of 1 − (2|P∩T| + eps) / (|P| + |T| + eps), P = sigmoid(logits); (B, H, W) each."""
    p = logits.sigmoid().flatten(1)
    t = target.flatten(1)
    return (1 - (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)).mean()


class PixelSailLite(PreTrainedModel):
    """The single transformer, the LM head and the mask head. ``forward`` takes ``pixel_values`` (B, 3, H, W)
    in [−1, 1], ``input_ids`` / ``attention_mask`` (B, L) whose image positions hold ``image_token_id``,
    optional ``prompt_regions`` (B, K, g, g) patch coverage of ``<Prompt0..K−1>``, ``labels`` (B, L) (−100:
    no loss) and ``masks`` (B, H, W) with ``has_mask`` (B,). Returns a dict with ``loss`` and its parts."""

    config_class = PixelSailConfig
    base_model_prefix = "pixelsail"
    _no_split_modules = []

    def __init__(self, config: PixelSailConfig):
        super().__init__(config)
        from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLTextModel

        c = config.hidden_size
        self.lm = Qwen2_5_VLTextModel(config.text_config())
        self.lm_head = nn.Linear(c, config.vocab_size, bias=False)
        if config.patch_stem == "conv":  # see vision_embed
            k = config.stem_channels
            layers = [nn.Conv2d(3, k, 3, stride=2, padding=1), ChannelNorm(k), nn.GELU()]
            for _ in range(config.stem_layers):  # each normalized: without it three layers did not train (LOG)
                layers += [nn.Conv2d(k, k, 3, padding=1), ChannelNorm(k), nn.GELU()]
            self.stem = nn.Sequential(*layers)
            self.patch_embed = nn.Conv2d(k, c, config.patch_size // 2, stride=config.patch_size // 2)
        else:
            self.patch_embed = nn.Linear(3 * config.patch_size**2, c)
        self.prompt_proj = nn.Linear(c, c, bias=False)  # W of the injection
        chans = [c, *config.upsample_channels[: config.upsample_blocks]]
        self.upsample = nn.Sequential(*[UpsampleBlock(a, b) for a, b in zip(chans, chans[1:])])
        self.pixel_mlp = _mlp(chans[-1], config.mask_dim, conv=True)
        self.seg_mlp = _mlp(c, config.mask_dim)
        if config.token_match:
            self.match = nn.Linear(c, c, bias=False)  # M of the token-grid match
        if config.vision_position == "sincos":  # fixed code, a learnable gain (starts at the patches' scale)
            self.pos_gain = nn.Parameter(torch.tensor(0.3))
        elif config.vision_position == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(config.grid**2, c))
        if config.vision_aux:  # a lite departure (see forward); ~88k weights, saved with the model
            from .sft import VisionAuxHead

            self.vision_aux_head = VisionAuxHead(c, config.patch_size, aux_classes(config))
        if getattr(config, "aux_layer", 0):  # keep that layer's output for vision_shape_logits

            def keep(module, args, output):
                self._aux_states = output[0] if isinstance(output, tuple) else output

            self.lm.layers[config.aux_layer - 1].register_forward_hook(keep)
        if config.mask_decoder == "mlp":
            self.mask_mlp = nn.Sequential(nn.GELU(), nn.Conv2d(config.mask_dim, config.mask_dim, 1), nn.GELU(),
                                          nn.Conv2d(config.mask_dim, 1, 1))
        self.post_init()

    # --- inputs ------------------------------------------------------------------------------------
    def patches(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) → (B, N, 3·p·p), row-major over the g × g grid."""
        p = self.config.patch_size
        x = pixel_values.unfold(2, p, p).unfold(3, p, p)  # B, 3, g, g, p, p
        return x.permute(0, 2, 3, 1, 4, 5).flatten(3).flatten(1, 2)

    def vision_embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) → (B, N, C) vision tokens, row-major over the g × g grid. ``patch_stem = "linear"`` (the
        paper's): one linear map of each patch's 3·p·p values. ``"conv"`` (a lite departure): two 3×3
        convolutions (the first with stride 2) over the whole image, then a (p/2)-strided (p/2)×(p/2) projection,
        so each token is still one p-px patch but its features come from overlapping windows that cross patch
        borders (``stem_layers`` of them after the first, each followed by a per-pixel LayerNorm). Measured
        (papermill_runs/LOG.md, session 10): on the prompt question alone, 300 steps, the linear embedding names the
        shape on 0.37 of held-out scenes, the conv stem on 0.37 (one layer, measured before the LayerNorms were
        added) and 0.36 (three layers, with them). It is no fix."""
        if self.config.patch_stem == "conv":
            return self.patch_embed(self.stem(pixel_values)).flatten(2).transpose(1, 2)
        return self.patch_embed(self.patches(pixel_values))

    def embed(self, pixel_values, input_ids, prompt_regions=None) -> torch.Tensor:
        """Token embeddings with the patch embeddings (plus injected prompts) at the image positions."""
        emb = self.lm.embed_tokens(input_ids)
        vision = self.vision_embed(pixel_values)  # B, N, C
        if self.config.vision_position == "sincos":
            # a cached tensor, not a non-persistent buffer: from_pretrained did not rebuild such a buffer's values
            code = sincos_2d(self.config.grid, vision.shape[-1]).to(vision.device, vision.dtype)
            vision = vision + self.pos_gain * code
        elif self.config.vision_position == "learned":
            vision = vision + self.pos_embed.to(vision.dtype)
        if prompt_regions is not None and self.config.inject_prompts and self.config.prompt_token_ids:
            k = prompt_regions.shape[1]
            ids = torch.tensor(self.config.prompt_token_ids[:k], device=input_ids.device)
            prompt = self.prompt_proj(self.lm.embed_tokens(ids))  # K, C
            vision = vision + torch.einsum("bkn,kc->bnc", prompt_regions.flatten(2).to(vision.dtype), prompt)
        is_image = input_ids == self.config.image_token_id
        emb = emb.clone()
        emb[is_image] = vision.reshape(-1, vision.shape[-1]).to(emb.dtype)
        return emb

    def positions(self, input_ids, attention_mask) -> torch.Tensor:
        """(3, B, L) mRoPE positions, Qwen2.5-VL's rule: a text token gets p on all three axes (+1 per token);
        the image block that starts at text position p gets (p, p + row, p + col), and the text after it
        continues at p + g. Image first: vision (0, row, col), text from g. Padding stays 0."""
        g = self.config.grid
        valid = attention_mask.bool()
        img = (input_ids == self.config.image_token_id) & valid
        text = valid & ~img
        text_before = text.long().cumsum(1) - text.long()  # valid text tokens strictly before each position
        img_before = img.long().cumsum(1) - img.long()  # vision tokens strictly before (row-major index)
        at_text = text_before + g * (img_before > 0)
        rows, cols = text_before + img_before // g, text_before + img_before % g
        pos = torch.stack([torch.where(img, text_before, at_text), torch.where(img, rows, at_text),
                           torch.where(img, cols, at_text)])
        return pos * valid[None]

    def attention(self, input_ids, attention_mask, dtype) -> torch.Tensor:
        """(B, 1, L, L) additive mask: causal, except that vision tokens see each other both ways;
        padding is never attended to (a padded query attends to itself, so no row is empty)."""
        length = input_ids.shape[1]
        valid = attention_mask.bool()
        img = (input_ids == self.config.image_token_id) & valid
        causal = torch.ones(length, length, dtype=torch.bool, device=input_ids.device).tril()
        allowed = (causal[None] | (img[:, :, None] & img[:, None, :])) & valid[:, None, :]
        allowed |= torch.eye(length, dtype=torch.bool, device=input_ids.device)[None]
        mask = torch.zeros(allowed.shape, dtype=dtype, device=input_ids.device)
        return mask.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]

    # --- the two heads --------------------------------------------------------------------------------
    def hidden(self, pixel_values, input_ids, attention_mask, prompt_regions=None) -> torch.Tensor:
        emb = self.embed(pixel_values, input_ids, prompt_regions)
        out = self.lm(inputs_embeds=emb, position_ids=self.positions(input_ids, attention_mask),
                      attention_mask={"full_attention": self.attention(input_ids, attention_mask, emb.dtype)},
                      use_cache=False)
        return out.last_hidden_state

    def mask_features(self, hidden, input_ids) -> torch.Tensor:
        """(B, mask_dim, h', w') per-pixel features from the vision positions (h' = g · 2^blocks)."""
        g, c = self.config.grid, hidden.shape[-1]
        img = input_ids == self.config.image_token_id
        vision = hidden[img].reshape(hidden.shape[0], g, g, c).permute(0, 3, 1, 2)
        return self.pixel_mlp(self.upsample(vision))

    def mask_logits(self, hidden, input_ids, seg_index) -> torch.Tensor:
        """(B, H, W) logits from the hidden state at ``seg_index`` (B,) and the pixel features.

        "dot" (the paper's): logit = ⟨s, f(x)⟩. Trained from scratch at lite scale it collapses: the gradient
        on f(x) is (σ − y)·s, so while s barely depends on the prompt every pixel feature is pushed along one
        direction, s gets gradients only along it too, and the head settles on "every object" (measured on the
        first lite checkpoint: the second singular value of the pixel features is 7% of the first, and on 2–3-object
        scenes 43% of the predicted pixels fall on the target — what segmenting all objects gives).
        "mlp": logit = MLP(s + f(x)), so which direction f(x) is pushed depends on s through the MLP's gates.
        ``token_match`` (a lite departure) adds ⟨M·h_[SEG], h_v⟩ / √C for every vision token v, resized to the
        head's map: the last-layer vision states keep each object's colour (a linear probe reads it on 100% of
        objects, while the collapsed head's pixel features give 30%, chance 23%), and the loss is convex in the
        full matrix M, so no factorization has to escape the "every object" saddle first."""
        at_seg = hidden[torch.arange(hidden.shape[0]), seg_index]  # B, C
        seg = self.seg_mlp(at_seg)  # B, D
        feats = self.mask_features(hidden, input_ids)  # B, D, h', w'
        if self.config.mask_decoder == "mlp":
            logits = self.mask_mlp(feats + seg[:, :, None, None])[:, 0]
        else:
            logits = torch.einsum("bd,bdhw->bhw", seg, feats)
        if self.config.token_match:  # which token: the [SEG] state against each vision state, full rank
            g = self.config.grid
            vision = hidden[input_ids == self.config.image_token_id].reshape(hidden.shape[0], g, g, -1)
            query = self.match(at_seg)  # B, C
            coarse = torch.einsum("bc,bhwc->bhw", query, vision) / vision.shape[-1] ** 0.5
            logits = logits + F.interpolate(coarse[:, None], size=logits.shape[-2:], mode="bilinear",
                                            align_corners=False)[:, 0]
        size = self.config.image_size
        return F.interpolate(logits[:, None], size=(size, size), mode="bilinear", align_corners=False)[:, 0]

    def vision_shape_logits(self, hidden, input_ids) -> torch.Tensor:
        """(B, classes, H/2, W/2) shape-class logits of each 2-px cell, read by ``vision_aux_head`` off the
        last-layer vision states (row-major g × g tokens of ``patch_size`` px) — or, with ``config.aux_layer`` = k
        (a lite departure), off the vision states after layer k of the last forward pass. Why a middle layer: in a
        causal transformer no text token ever reads the *last* layer's vision states (the text's last layer attends
        to the layer before), so shape taught there reaches the answer only through what earlier layers compute;
        taught after layer k it sits in states that the text's layers k+1… attend to."""
        if getattr(self.config, "aux_layer", 0):
            hidden = self._aux_states
        img = input_ids == self.config.image_token_id
        return self.vision_aux_head(hidden[img].reshape(hidden.shape[0], self.config.grid ** 2, -1))

    def forward(self, pixel_values, input_ids, attention_mask, labels=None, prompt_regions=None, masks=None,
                has_mask=None, shape_labels=None, **kwargs):
        """``shape_labels`` (B, H, W) joint (shape, colour) class indices, ``data.shape_labels(scene, colours=True)``
        as ``make_pixel_samples`` gives them (folded to shape classes here unless ``config.aux_colours``; plain
        shape classes would be misread): with ``config.vision_aux`` > 0 the loss gains ``vision_aux`` × ``sft.dense_loss`` (foreground weight 10) of ``vision_shape_logits``. A lite
        departure: the paper's transformer arrives pre-trained on images; this one starts from random weights and,
        measured (LOG, sessions 10–11), learnt to tell shapes apart far too slowly from the mask and text losses
        alone. ``vision.pretrain_vision(system="pixelsail")`` trains with this loss only, before everything else."""
        hidden = self.hidden(pixel_values, input_ids, attention_mask, prompt_regions)
        logits = self.lm_head(hidden)
        out = {"logits": logits}
        if labels is None:
            return out
        # language-model loss per row (mean over its answer tokens), weighted 0.1 on rows with a mask
        shift, target = logits[:, :-1], labels[:, 1:]
        tok = F.cross_entropy(shift.transpose(1, 2), target, ignore_index=-100, reduction="none")
        counted = (target != -100).float()
        per_row = (tok * counted).sum(1) / counted.sum(1).clamp(min=1)
        has_mask = has_mask if has_mask is not None else torch.zeros(len(labels), dtype=torch.bool, device=labels.device)
        w = torch.where(has_mask, MASK_LOSS_WEIGHTS["lm_with_mask"], 1.0)
        lm = (per_row * w).sum() / len(labels)
        out.update(lm_loss=per_row.mean().detach(), loss=lm)
        if has_mask.any():
            rows = has_mask.nonzero()[:, 0]
            seg_index = (input_ids[rows] == self.config.seg_token_id).float().argmax(1)  # first [SEG]
            m = self.mask_logits(hidden[rows], input_ids[rows], seg_index)
            target_m = masks[rows].float()
            bce = F.binary_cross_entropy_with_logits(m, target_m)
            dice = dice_loss(m, target_m)
            loss = lm + MASK_LOSS_WEIGHTS["bce"] * bce + MASK_LOSS_WEIGHTS["dice"] * dice
            out.update(bce=bce.detach(), dice=dice.detach())
            if self.config.select_loss:
                sel = selection_loss(m, target_m)
                loss = loss + self.config.select_loss * sel
                out.update(select=sel.detach())
            out.update(loss=loss)
        if self.config.vision_aux and shape_labels is not None:
            from .sft import dense_loss

            from .data import label_shapes  # the samples carry joint (shape, colour) labels; see make_pixel_samples

            aux = dense_loss(self.vision_shape_logits(hidden, input_ids),
                             label_shapes(shape_labels, colours=not self.config.aux_colours), 10.0)
            out.update(vision_aux=aux.detach(), loss=out["loss"] + self.config.vision_aux * aux)
        return out


def aux_classes(config) -> int:
    """Classes of the dense loss's head: shapes (+ background), or shape × colour with ``config.aux_colours``."""
    from .data import aux_classes as classes

    return classes(getattr(config, "aux_colours", False))


def selection_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Which object, as a softmax over each image's pixels (a lite departure): −Σ_x p(x) log softmax(logits)(x)
    with p uniform on the target's pixels, minus its floor log |target|, so a perfect choice costs 0.

    BCE and Dice score every pixel on its own: masking the target *and* a distractor costs them only the
    distractor's few hundred pixels out of 12,544, and objectness is learnt long before choice. Here the
    distractor takes softmax mass from the target whatever the scale of the logits, so masking two objects alike
    costs log 2 and three log 3. ``logits``, ``target``: (B, H, W); rows with an empty target are skipped."""
    flat, t = logits.flatten(1).float(), target.flatten(1).float()
    size = t.sum(1)
    keep = size > 0
    if not keep.any():
        return logits.sum() * 0.0
    flat, t, size = flat[keep], t[keep], size[keep]
    ce = -(t * flat.log_softmax(1)).sum(1) / size
    return (ce - size.log()).mean()


def build_model(cfg: dict | None = None, seed: int = 0) -> tuple[PixelSailLite, object]:
    """A fresh Pixel-SAIL-lite and its tokenizer: ``(model, tokenizer)``. ``cfg``: ``PixelSailConfig`` fields."""
    from .model import IMAGE_TOKEN

    tok = build_tokenizer(bool((cfg or {}).get("word_tokens")))
    torch.manual_seed(seed)
    config = PixelSailConfig(vocab_size=len(tok), seg_token_id=tok.convert_tokens_to_ids(SEG_TOKEN),
                             prompt_token_ids=tok.convert_tokens_to_ids(list(PROMPT_TOKENS)),
                             image_token_id=tok.convert_tokens_to_ids(IMAGE_TOKEN),
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, **(cfg or {}))
    return PixelSailLite(config), tok


# The full path: a real language model becomes the single transformer. Its Hugging Face model type and the
# class that holds its weights (no ``trust_remote_code``: both are transformers' own).
LANGUAGE_MODELS = {"qwen2": "Qwen2ForCausalLM", "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration"}


def from_language_model(path, image_size: int = 448, patch_size: int = 14, dtype=None, head: dict | None = None,
                        trust_remote_code: bool = False) -> tuple[PixelSailLite, object]:
    """The full path: ``(model, tokenizer)`` whose single transformer is a real Qwen2 / Qwen2.5 language model
    (``path``: a local folder or hub id of a ``qwen2`` or ``qwen2_5_vl`` checkpoint; of a Qwen2.5-VL only the
    language model is kept — its vision tower is exactly what Pixel-SAIL does without).

    What is carried over: every decoder layer, the final norm, the embeddings and the LM head (the rows of
    the added tokens ``[SEG]``, ``<Prompt0..3>`` — and ``<|image_pad|>`` if the tokenizer lacks it — start
    at the mean embedding). New and trained from scratch: the linear patch embedding, the prompt projection
    and the mask head (``head``: ``PixelSailConfig`` fields such as ``upsample_blocks``). The rotary sections
    are the checkpoint's own for Qwen2.5-VL and the lite rule otherwise ([16, 24, 24] for 128-dim heads, which
    is Qwen2.5-VL's). Text-only positions give all three mRoPE axes the same index, so on text the carried
    model computes what the original did (tested).

    Departure from the paper: Pixel-SAIL starts from an encoder-free MLLM already pre-trained on images
    (SOLO / EVEv2); here the language model has never seen a patch, so the patch embedding learns from the
    segmentation data alone. ``image_size`` must be a multiple of ``patch_size`` (448 / 14: 1,024 patches)."""
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    from .model import IMAGE_TOKEN

    try:
        source = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except OSError as e:  # neither a folder with a config.json nor a hub id that can be reached
        raise FileNotFoundError(f"--text-init {path}: not a local checkpoint folder with config.json, nor a hub "
                                f"id this machine can download ({str(e).splitlines()[0]})") from e
    if source.model_type not in LANGUAGE_MODELS:
        raise ValueError(f"{path}: model type {source.model_type!r}; the Pixel-SAIL full path takes "
                         f"{sorted(LANGUAGE_MODELS)} checkpoints (a Qwen2 / Qwen2.5 LM or a Qwen2.5-VL)")
    text = source.get_text_config()
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    known = len(tok)
    added = [t for t in (SEG_TOKEN, *PROMPT_TOKENS, IMAGE_TOKEN) if t not in tok.get_vocab()]
    tok.add_tokens(added, special_tokens=True)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    src = getattr(transformers, LANGUAGE_MODELS[source.model_type]).from_pretrained(
        path, dtype=dtype or torch.float32, trust_remote_code=trust_remote_code, use_kernels=False)  # no Hub kernels
    src_lm = src.model.language_model if source.model_type == "qwen2_5_vl" else src.model
    rope = dict(getattr(text, "rope_parameters", None) or {})
    config = PixelSailConfig(
        image_size=image_size, patch_size=patch_size, hidden_size=text.hidden_size,
        num_layers=text.num_hidden_layers, num_heads=text.num_attention_heads,
        num_kv_heads=text.num_key_value_heads, intermediate_size=text.intermediate_size, vocab_size=len(tok),
        rope_theta=rope.get("rope_theta", getattr(text, "rope_theta", 10000.0)), rms_norm_eps=text.rms_norm_eps,
        mrope_section=rope.get("mrope_section"), max_position_embeddings=text.max_position_embeddings,
        text_init=str(path), seg_token_id=tok.convert_tokens_to_ids(SEG_TOKEN),
        prompt_token_ids=tok.convert_tokens_to_ids(list(PROMPT_TOKENS)),
        image_token_id=tok.convert_tokens_to_ids(IMAGE_TOKEN), pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id, **{k: v for k, v in (head or {}).items() if k != "word_tokens"})  # its own BPE has words
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype or torch.float32)  # build in the target precision (a 3B model: 6 GB, not 12)
    try:
        model = PixelSailLite(config)
    finally:
        torch.set_default_dtype(default)
    state = {k: v for k, v in src_lm.state_dict().items() if k != "embed_tokens.weight"}
    missing, unexpected = model.lm.load_state_dict(state, strict=False)
    if unexpected or set(missing) != {"embed_tokens.weight"}:
        raise ValueError(f"{path}: its language model does not match Qwen2_5_VLTextModel "
                         f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})")
    new_ids = tok.convert_tokens_to_ids(added)
    with torch.no_grad():  # (a checkpoint's matrices may have spare rows past the tokenizer: dropped)
        pairs = ((model.lm.embed_tokens.weight, src_lm.embed_tokens.weight), (model.lm_head.weight, src.lm_head.weight))
        for dst, w in pairs:
            rows = min(len(dst), w.shape[0])
            dst[:rows] = w[:rows].to(dst.dtype)
            dst[new_ids] = w[:known].mean(0).to(dst.dtype)
    del src
    return model, tok


def load(path) -> tuple[PixelSailLite, object]:
    """``(model, tokenizer)`` from a folder written by ``save``."""
    from pathlib import Path

    from transformers import PreTrainedTokenizerFast

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path}: no Pixel-SAIL-lite checkpoint (config.json missing)")
    return (PixelSailLite.from_pretrained(path, dtype=torch.float32, use_kernels=False),  # no Hub kernels (model.load_model)
            PreTrainedTokenizerFast.from_pretrained(path))


def is_pixelsail(path) -> bool:
    """Whether ``path`` holds a Pixel-SAIL-lite checkpoint (so ``eval`` takes the mask route)."""
    import json
    from pathlib import Path

    cfg = Path(path) / "config.json"
    return cfg.is_file() and json.loads(cfg.read_text()).get("model_type") == PixelSailConfig.model_type


# --- samples ------------------------------------------------------------------------------------------
TASK_PROMPTS = {"mask": "Please segment {expr}.", "point_mask": "Please segment <Prompt0>.",
                "box_mask": "Please segment <Prompt0>.", "vp_question": "What is <Prompt0>?"}
TASK_MIX = {"mask": 0.5, "point_mask": 0.15, "box_mask": 0.15, "vp_question": 0.2}


@dataclass
class PixelSample:
    """One Pixel-SAIL example. ``mask``: target (H, W) uint8 or None (the question task); ``region``: the
    visual prompt's (H, W) uint8 region or None; ``objects``: how many objects the scene has."""

    image: np.ndarray
    prompt: str
    answer: str
    task: str
    mask: np.ndarray | None
    region: np.ndarray | None
    objects: int
    expression: str | None = None
    shape_labels: np.ndarray | None = None  # (H, W) uint8 (shape, colour) class of each pixel, on request


def make_pixel_samples(n: int, seed: int, scene_cfg=None, task_mix: dict | None = None, named: bool = False,
                       shape_free: float = 0.0, labels: bool = False):
    """Yield ``n`` examples on the synthetic scenes of ``data`` (sample ``i`` depends only on (seed, i)):
    text→mask, point→mask and box→mask through ``<Prompt0>``, and "What is <Prompt0>?" → "the red star"
    (the object's colour and shape: answerable only through the injected region). ``named`` (a lite
    departure): text→mask answers name the object before the token, "It is the red star [SEG]." — the
    language-model loss then has to resolve "the shape left of the circle" to one object, and ``[SEG]``'s
    state sits right after its name. ``shape_free`` (a lite departure): the share of text→mask samples whose
    expression names no shape ("the red shape", "the leftmost shape"; ``referring.valid_rules(use_shape=False)``)
    — a model trained from scratch learns to pick an object by its colour within ~100 steps, but names a shape
    barely above chance after 1,200 (LOG, session 10), so these are the expressions it can learn to ground first.
    ``labels``: also the scene's per-pixel (shape, colour) classes (``PixelSample.shape_labels``, joint classes of
    ``data.shape_labels(scene, colours=True)``, for ``config.vision_aux``; the model keeps the shape alone unless
    ``config.aux_colours``)."""
    from . import data

    if not 0.0 <= shape_free <= 1.0:
        raise ValueError(f"shape_free is a share of the text→mask samples, in [0, 1]; got {shape_free}")
    scene_cfg = scene_cfg or data.SyntheticConfig()
    _draw_task(np.random.default_rng(0), task_mix)  # an unknown task fails here, before any sample
    for i in range(n):
        rng = np.random.default_rng((seed, i))
        task = _draw_task(rng, task_mix)
        use_shape = not (task == "mask" and shape_free and rng.random() < shape_free)  # no draw at shape_free 0
        scene, t, ref = data._pick(rng, scene_cfg, needs_expression=task == "mask", use_shape=use_shape)
        obj = scene.objects[t]
        region = _region(task, obj.mask)
        answer = (f"the {obj.colour} {obj.name}" if task == "vp_question" else
                  f"It is the {obj.colour} {obj.name} {SEG_TOKEN}." if named and task == "mask" else SEG_ANSWER)
        yield PixelSample(scene.image, TASK_PROMPTS[task].format(expr=ref[0] if ref else None), answer, task,
                          None if task == "vp_question" else obj.mask, region, len(scene.objects),
                          ref[0] if ref else None, data.shape_labels(scene, colours=True) if labels else None)


def _draw_task(rng, task_mix: dict | None = None) -> str:
    """One task drawn from ``task_mix`` (weights; None: ``TASK_MIX``); unknown task names are refused."""
    mix = task_mix or TASK_MIX
    if set(mix) - set(TASK_MIX):
        raise ValueError(f"unknown Pixel-SAIL task(s) {sorted(set(mix) - set(TASK_MIX))}; known: {sorted(TASK_MIX)}")
    tasks = list(mix)
    p = np.array([mix[t] for t in tasks], float)
    return tasks[rng.choice(len(tasks), p=p / p.sum())]


def _region(task: str, mask: np.ndarray) -> np.ndarray | None:
    """The ``<Prompt0>`` region of a task on target ``mask`` (H, W): its interior point (one pixel), its tight
    box, the mask itself (the question), or None (text→mask)."""
    from .metrics import interior_point, mask_box

    if task == "point_mask":
        x, y = interior_point(mask)
        region = np.zeros_like(mask)
        region[min(int(y), mask.shape[0] - 1), min(int(x), mask.shape[1] - 1)] = 1
        return region
    if task == "box_mask":
        x0, y0, x1, y1 = (int(round(v)) for v in mask_box(mask))
        region = np.zeros_like(mask)
        region[y0:y1, x0:x1] = 1
        return region
    return mask if task == "vp_question" else None


def patch_coverage(region: np.ndarray | None, grid: int) -> np.ndarray:
    """(grid, grid) float: 1 where a patch holds at least one region pixel (all zeros for no region).
    ``region`` is (H, W) at the image's own size; the image is resized to a square before patching, so
    patch (i, j) covers rows [i·H/grid, (i+1)·H/grid) and columns [j·W/grid, (j+1)·W/grid)."""
    if region is None:
        return np.zeros((grid, grid), np.float32)
    h, w = region.shape
    if h < grid or w < grid:
        raise ValueError(f"a {h}×{w} region is smaller than the {grid}×{grid} patch grid")
    rows = np.linspace(0, h, grid + 1).astype(int)[:-1]
    cols = np.linspace(0, w, grid + 1).astype(int)[:-1]
    cells = np.maximum.reduceat(np.maximum.reduceat(np.asarray(region, np.uint8), rows, axis=0), cols, axis=1)
    return (cells > 0).astype(np.float32)


def pixel_values(images, size: int) -> torch.Tensor:
    """PIL images or (H, W, 3) uint8 arrays → (B, 3, size, size) float in [−1, 1]."""
    out = []
    for im in images:
        im = im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im, np.uint8))
        im = im.convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BICUBIC)
        out.append(torch.from_numpy(np.asarray(im, np.float32) / 127.5 - 1).permute(2, 0, 1))
    return torch.stack(out)


def _prefix_ids(tok, config, prompt: str) -> list[int]:
    """The tokens before the answer: ``[N image tokens] <|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>
    assistant\n``, or with ``config.text_first`` the image tokens after the prompt, before ``<|im_end|>``."""
    from .model import IM_END, IM_START

    image = [config.image_token_id] * config.grid**2
    if getattr(config, "text_first", False):
        return (tok(f"{IM_START}user\n{prompt}", add_special_tokens=False)["input_ids"] + image
                + tok(f"{IM_END}\n{IM_START}assistant\n", add_special_tokens=False)["input_ids"])
    text = f"{IM_START}user\n{prompt}{IM_END}\n{IM_START}assistant\n"
    return image + tok(text, add_special_tokens=False)["input_ids"]


def collate(examples: list[PixelSample], tok, config) -> dict:
    """Right-padded training batch: labels only on the answer and its ``<|im_end|>``."""
    from .model import IM_END

    end = tok.convert_tokens_to_ids(IM_END)
    rows, labels = [], []
    for ex in examples:
        prefix = _prefix_ids(tok, config, ex.prompt)
        answer = tok(ex.answer, add_special_tokens=False)["input_ids"] + [end]
        rows.append(prefix + answer)
        labels.append([-100] * len(prefix) + answer)
    length = max(map(len, rows))
    ids = torch.full((len(rows), length), tok.pad_token_id, dtype=torch.long)
    lab = torch.full((len(rows), length), -100, dtype=torch.long)
    att = torch.zeros((len(rows), length), dtype=torch.long)
    for i, (r, lb) in enumerate(zip(rows, labels)):
        ids[i, : len(r)], lab[i, : len(r)], att[i, : len(r)] = torch.tensor(r), torch.tensor(lb), 1
    size = config.image_size
    masks = torch.stack([torch.from_numpy(ex.mask.astype(np.float32)) if ex.mask is not None
                         else torch.zeros(size, size) for ex in examples])
    regions = torch.from_numpy(np.stack([patch_coverage(ex.region, config.grid) for ex in examples]))[:, None]
    batch = {"pixel_values": pixel_values([ex.image for ex in examples], size), "input_ids": ids,
             "attention_mask": att, "labels": lab, "masks": masks, "prompt_regions": regions,
             "has_mask": torch.tensor([ex.mask is not None for ex in examples])}
    if all(ex.shape_labels is not None for ex in examples):  # the dense loss's targets (config.vision_aux)
        batch["shape_labels"] = torch.from_numpy(np.stack([ex.shape_labels for ex in examples])).long()
    return batch


@torch.no_grad()
def predict(model, tok, images, prompts, regions=None, max_new_tokens: int = 32, threshold: float = 0.0):
    """Greedy answers and masks: ``[(text, mask (H, W) uint8 or None)]``. The mask is decoded at the first
    generated ``[SEG]`` (logit > ``threshold``); an answer without ``[SEG]`` has no mask (scored as empty).
    ``regions``: one (H, W) region or None per image (the ``<Prompt0>`` of that prompt). Masks come back at
    each image's own (H, W): the logits at ``image_size`` are resized bilinearly before the threshold."""
    from .model import IM_END

    cfg, end = model.config, tok.convert_tokens_to_ids(IM_END)
    was_training = model.training
    model.eval()
    prefixes = [_prefix_ids(tok, cfg, p) for p in prompts]
    sizes = [(im.height, im.width) if isinstance(im, Image.Image) else np.asarray(im).shape[:2] for im in images]
    dev, dtype = model.patch_embed.weight.device, model.patch_embed.weight.dtype
    pv = pixel_values(images, cfg.image_size).to(dev, dtype)
    reg = torch.from_numpy(np.stack([patch_coverage(r, cfg.grid) for r in (regions or [None] * len(prompts))]))[:, None]
    reg = reg.to(dev, dtype)
    generated = [[] for _ in prompts]
    done = [False] * len(prompts)
    for _ in range(max_new_tokens):
        rows = [p + g for p, g in zip(prefixes, generated)]
        ids, att = (t.to(dev) for t in _left_pad(rows, tok.pad_token_id))
        logits = model.lm_head(model.hidden(pv, ids, att, reg)[:, -1]).float()
        logits[:, [cfg.image_token_id, tok.pad_token_id]] = float("-inf")  # never an image token or padding
        nxt = logits.argmax(-1).tolist()
        for i, t in enumerate(nxt):
            if not done[i]:
                generated[i].append(t)
                done[i] = t == end
        if all(done):
            break
    rows = [p + g for p, g in zip(prefixes, generated)]
    ids, att = (t.to(dev) for t in _left_pad(rows, tok.pad_token_id))
    hidden = model.hidden(pv, ids, att, reg)
    out = []
    has_seg = (ids == cfg.seg_token_id) & att.bool()  # prompts never hold [SEG]: these are generated
    found = has_seg.any(1)
    masks = None
    if found.any():
        idx = found.nonzero()[:, 0]
        logits = model.mask_logits(hidden[idx], ids[idx], has_seg[idx].float().argmax(1))
        masks = {}
        for i, m in zip(idx.tolist(), logits):  # back to the image's own size (a no-op on the lite scenes)
            if tuple(m.shape) != tuple(sizes[i]):
                m = F.interpolate(m[None, None], size=tuple(sizes[i]), mode="bilinear", align_corners=False)[0, 0]
            masks[i] = (m.float() > threshold).to(torch.uint8).cpu().numpy()
    for i, g in enumerate(generated):
        text = tok.decode([t for t in g if t != end], skip_special_tokens=False)
        out.append((text, masks.get(i) if masks is not None else None))
    model.train(was_training)
    return out


def _left_pad(rows, pad_id):
    length = max(map(len, rows))
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    att = torch.zeros((len(rows), length), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, length - len(r):], att[i, length - len(r):] = torch.tensor(r), 1
    return ids, att


# --- the same samples as the polygon models ------------------------------------------------------
def pixel_prompt(sample) -> tuple[str, np.ndarray | None]:
    """A ``data.Sample`` (any task) as Pixel-SAIL is asked it: ``(prompt, region)``. Text tasks ask
    "Please segment {expression}."; point→polygon and box→polygon give the same point (the mask's
    interior point) or box (its tight box) as ``<Prompt0>``."""
    from pycocotools import mask as mask_utils

    from .metrics import interior_point

    if sample.task in ("polygon", "box", "point"):
        return TASK_PROMPTS["mask"].format(expr=sample.expression), None
    h, w = sample.height, sample.width
    region = np.zeros((h, w), np.uint8)
    if sample.task == "point_polygon":
        x, y = interior_point(mask_utils.decode(sample.gt_rle))
        region[min(int(y), h - 1), min(int(x), w - 1)] = 1
        return TASK_PROMPTS["point_mask"], region
    if sample.task == "box_polygon":
        x0, y0, x1, y1 = np.asarray(sample.gt_box) * (w, h, w, h)
        region[int(round(y0)):int(round(y1)), int(round(x0)):int(round(x1))] = 1
        return TASK_PROMPTS["box_mask"], region
    raise ValueError(f"Pixel-SAIL-lite has no prompt for task {sample.task!r}")


def predict_samples(model, tok, samples, batch_size: int = 32, images=None, desc: str = "eval") -> list:
    """``predict`` over ``data.Sample``s (``images`` overrides their images: the image-dependence check)."""
    from tqdm.std import tqdm

    samples = list(samples)
    images = images or [s.load_image() for s in samples]
    asked = [pixel_prompt(s) for s in samples]
    out = []
    for k in tqdm(range(0, len(samples), batch_size), desc=desc, unit="batch", leave=False):
        chunk = asked[k : k + batch_size]
        out += predict(model, tok, images[k : k + batch_size], [a[0] for a in chunk], [a[1] for a in chunk])
    return out


# --- training (transformers' Trainer) ----------------------------------------------------------------
@dataclass
class PixelSailTrainConfig:
    """One Pixel-SAIL-lite run on the synthetic stream. Defaults: the lite run on this CPU."""

    out: str = "runs/lite-pixelsail"
    init: str | None = None  # a Pixel-SAIL-lite checkpoint to continue from; None: a fresh model
    max_steps: int = 600
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 20
    weight_decay: float = 0.01
    seed: int = 2
    threads: int = 2
    save_steps: int = 100
    eval_steps: int = 100  # held-out gIoU every this many steps (0: never)
    eval_n: int = 48
    eval_seed: int = 999
    image_size: int = 112
    max_objects: int = 3
    min_objects: int = 1  # 2: every training scene has a distractor (evaluation keeps 1–3)
    task_mix: dict | None = None  # None: TASK_MIX
    named_answers: bool = False  # text→mask answers "It is the red star [SEG]." (make_pixel_samples' named)
    shape_free: float = 0.0  # share of text→mask expressions that name no shape (make_pixel_samples' shape_free)
    expression_mix: dict | None = None  # weights over referring.EXPRESSION_KINDS; None: the default mix
    model: dict | None = None  # PixelSailConfig fields of a fresh model, e.g. {"upsample_blocks": 0}; with init,
    # only INIT_OVERRIDES (loss weights) may be given
    vision_aux: float = 0.0  # weight of the dense shape-map loss (PixelSailLite.forward; synthetic data only)
    # the full path: a real language model as the transformer, trained on RefCOCO-family data
    text_init: str | None = None  # local folder or hub id of a qwen2 / qwen2_5_vl checkpoint (from_language_model)
    # the encoder-free arm of the localization study: SimpleSeg's own tasks answered as text (no mask), e.g.
    # {"polygon": 2, "box": 1, "point": 1} (data.make_samples tasks, ε and decimals below); None: the mask tasks
    text_tasks: dict | None = None
    epsilon: float = 0.02
    decimals: int = 2
    data: str = "synthetic"  # "refcoco": the train splits of refer_datasets under refer_root
    refer_root: str | None = None
    refer_datasets: tuple = ("refcoco", "refcoco+", "refcocog")


# PixelSailConfig fields a run may change on a model it continues (--init): loss weights, not weights' shapes
INIT_OVERRIDES = ("select_loss",)


class PixelStream(torch.utils.data.Dataset):
    """Example ``i`` = ``make_pixel_samples`` at seed ``seed · 10**7 + i`` (disjoint from evaluation seeds)."""

    def __init__(self, length: int, cfg: PixelSailTrainConfig):
        from . import data

        self.length, self.cfg = length, cfg
        extra = {"expression_mix": dict(cfg.expression_mix)} if cfg.expression_mix else {}
        self.scene = data.SyntheticConfig(image_size=cfg.image_size, min_objects=cfg.min_objects,
                                          max_objects=cfg.max_objects, **extra)

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        if self.cfg.text_tasks:
            return next(text_pixel_samples(1, self.cfg.seed * 10**7 + i, self.scene, self.cfg.text_tasks,
                                           self.cfg.epsilon, self.cfg.decimals))
        return next(make_pixel_samples(1, self.cfg.seed * 10**7 + i, self.scene, self.cfg.task_mix,
                                       self.cfg.named_answers, self.cfg.shape_free, labels=self.cfg.vision_aux > 0))


def text_pixel_samples(n: int, seed: int, scene_cfg=None, task_mix: dict | None = None, epsilon: float = 0.02,
                       decimals: int = 2):
    """SimpleSeg's own samples (``data.make_samples``: the same prompts and text answers — polygons, boxes,
    points) as Pixel-SAIL examples without a mask: the single transformer trained to *write* coordinates,
    with the language-model loss alone. The encoder-free arm of ``scripts/localization_arms.py``."""
    from . import data

    for s in data.make_samples(n, seed, scene_cfg, task_mix, epsilon, decimals=decimals):
        yield PixelSample(np.asarray(s.load_image()), s.prompt, s.answer, s.task, None, None,
                          len(s.metadata.get("objects", [])) or 1, s.expression)


class ReferPixelStream(torch.utils.data.Dataset):
    """RefCOCO-family referring expressions (one per sentence) as Pixel-SAIL examples, cycled to ``length``:
    example ``i`` is ``refer_pixel_sample`` of sample ``i mod n`` with its task drawn at ``(seed, i)``."""

    def __init__(self, length: int, cfg: PixelSailTrainConfig):
        from pathlib import Path

        from .refcoco import refer_samples

        root = Path(cfg.refer_root or "")
        found = [d for d in cfg.refer_datasets if (root / d).is_dir()]
        if not found:
            raise FileNotFoundError(f"no REFER datasets {tuple(cfg.refer_datasets)} under {root!s}: expected "
                                    "<root>/<dataset>/refs(<split_by>).p and instances.json (see refcoco.py)")
        self.samples = [s for d in found for s in refer_samples(root, d, "train")]
        self.length, self.cfg = length, cfg

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        rng = np.random.default_rng((self.cfg.seed, i))
        return refer_pixel_sample(self.samples[i % len(self.samples)], self.cfg.image_size, rng, self.cfg.task_mix)


def refer_pixel_sample(sample, image_size: int, rng=None, task_mix: dict | None = None) -> PixelSample:
    """One ``data.Sample`` with a real image and mask (RefCOCO) as a Pixel-SAIL example at ``image_size``²:
    the image is resized to the square (as the model sees it), the mask with it (nearest). Tasks as on the
    lite scenes; the visual-prompt question's answer is the referring sentence itself."""
    import cv2
    from pycocotools import mask as mask_utils

    rng = rng if rng is not None else np.random.default_rng(0)
    task = _draw_task(rng, task_mix)
    image = np.asarray(sample.load_image().resize((image_size, image_size), Image.BICUBIC))
    mask = cv2.resize(mask_utils.decode(sample.gt_rle), (image_size, image_size), interpolation=cv2.INTER_NEAREST)
    if not mask.any():  # a sliver lost in the resize: keep its nearest pixel
        mask = np.zeros_like(mask)
        ys, xs = np.nonzero(mask_utils.decode(sample.gt_rle))
        mask[int(ys.mean() * image_size / sample.height), int(xs.mean() * image_size / sample.width)] = 1
    region = _region(task, mask)
    answer = sample.expression if task == "vp_question" else SEG_ANSWER
    return PixelSample(image, TASK_PROMPTS[task].format(expr=sample.expression), answer, task,
                       None if task == "vp_question" else mask, region, 1, sample.expression)


def _trainer_class():
    from transformers import Trainer

    class PixelSailTrainer(Trainer):
        """``Trainer`` whose logs carry the parts of the loss: ``lm_loss``, ``bce``, ``dice`` (and ``select``,
        ``vision_aux``)."""

        parts: dict = {}

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = model(**inputs)
            for k in ("lm_loss", "bce", "dice", "select", "vision_aux"):
                if k in out:
                    s, n = self.parts.get(k, (0.0, 0))
                    self.parts[k] = (s + float(out[k]), n + 1)
            return (out["loss"], out) if return_outputs else out["loss"]

        def log(self, logs, *args, **kwargs):
            logs = {**logs, **{k: round(s / n, 4) for k, (s, n) in self.parts.items() if n}}
            self.parts = {}
            super().log(logs, *args, **kwargs)

    return PixelSailTrainer


def train_pixelsail(cfg: PixelSailTrainConfig, resume: bool = False):
    """Train; returns the folder with the final model, its tokenizer, ``summary.json`` and ``history.jsonl``
    (the trainer's logs with the loss parts, plus held-out gIoU and visual-prompt accuracy every ``eval_steps``)."""
    import json
    import time
    from dataclasses import asdict
    from functools import partial
    from pathlib import Path

    from transformers import TrainerCallback, TrainingArguments

    from . import data

    if cfg.data not in ("synthetic", "refcoco"):
        raise ValueError(f"unknown data {cfg.data!r}: synthetic | refcoco")
    if cfg.vision_aux and (cfg.data != "synthetic" or cfg.text_tasks):
        raise ValueError("vision_aux needs the synthetic mask tasks (its target is each pixel's shape class); "
                         "set vision_aux=0 for RefCOCO or text_tasks")
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    if cfg.init:
        model, tok = load(cfg.init)
        for k, v in (cfg.model or {}).items():  # a loaded model keeps its architecture; a loss weight may change
            if k not in INIT_OVERRIDES:
                raise ValueError(f"model field {k!r} cannot change on a model loaded from --init (its weights fix it); "
                                 f"only {INIT_OVERRIDES} can")
            setattr(model.config, k, type(getattr(model.config, k))(v))
    elif cfg.text_init:  # the full path: a real language model as the single transformer
        torch.manual_seed(cfg.seed)
        model, tok = from_language_model(cfg.text_init, cfg.image_size, head=cfg.model)
    else:
        model, tok = build_model({"image_size": cfg.image_size, **(cfg.model or {})}, seed=cfg.seed)
    if cfg.vision_aux and not hasattr(model, "vision_aux_head"):  # a head of its own; from a pre-trained
        from .sft import VisionAuxHead  # vision stage (vision.pretrain_vision) the model brings its trained one

        model.vision_aux_head = VisionAuxHead(model.config.hidden_size, model.config.patch_size,
                                              aux_classes(model.config)).to(
            model.patch_embed.weight.device)
    elif not cfg.vision_aux and hasattr(model, "vision_aux_head"):  # switched off: the saved model is a plain one
        del model.vision_aux_head
    model.config.vision_aux = float(cfg.vision_aux)
    args = TrainingArguments(
        output_dir=str(out / "checkpoints"), max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr, lr_scheduler_type="cosine", warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay, adam_beta2=0.98, max_grad_norm=1.0, logging_steps=10,
        save_steps=cfg.save_steps, save_total_limit=2, seed=cfg.seed, report_to=[], use_cpu=not cuda,
        remove_unused_columns=False, dataloader_num_workers=0, bf16=cuda and cfg.text_init is not None)
    history = out / "history.jsonl"
    if not resume and history.exists():
        history.unlink()
    synthetic = cfg.data == "synthetic"
    if not cfg.eval_steps:
        heldout = []
    elif synthetic:
        heldout = list(data.make_samples(cfg.eval_n, cfg.eval_seed, data.SyntheticConfig(image_size=cfg.image_size),
                                         {"polygon": 1.0}, 0.02, decimals=2))
    else:  # the first sentences of RefCOCO val
        from .refcoco import refer_samples

        heldout = refer_samples(cfg.refer_root, cfg.refer_datasets[0], "val", max_refs=cfg.eval_n)[: cfg.eval_n]

    def write(row):
        with history.open("a") as f:
            f.write(json.dumps(row) + "\n")

    class History(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            write({"step": state.global_step, **(logs or {})})

        def on_step_end(self, args, state, control, **kw):
            if cfg.eval_steps and heldout and state.global_step % cfg.eval_steps == 0:
                from .evaluate import score_masks

                r = score_masks(heldout, predict_samples(trainer.model, tok, heldout, desc="held-out"))
                row = {"step": state.global_step, "eval_gIoU": r["gIoU"], "eval_valid_rate": r["valid_rate"]}
                if synthetic:
                    row["eval_vp_accuracy"] = vp_accuracy(trainer.model, tok, cfg.eval_n, cfg.eval_seed,
                                                          cfg.max_objects)["accuracy"]
                write(row)

    stream = (PixelStream if synthetic else ReferPixelStream)(cfg.max_steps * cfg.batch_size, cfg)
    trainer = _trainer_class()(model=model, args=args, train_dataset=stream,
                               data_collator=partial(collate, tok=tok, config=model.config))
    trainer.add_callback(History())
    checkpoints = sorted((out / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(checkpoints[-1]) if resume and checkpoints else None)
    wall = time.perf_counter() - start
    trainer.model.save_pretrained(out)
    tok.save_pretrained(out)
    summary = {"config": {**asdict(cfg), "stage": "pixelsail"}, "steps": cfg.max_steps, "wall_seconds": round(wall, 1),
               "resumed": bool(resume and checkpoints), "torch_threads": cfg.threads,
               "params_M": round(sum(p.numel() for p in trainer.model.parameters()) / 1e6, 2)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return out


# --- judging (validation seed) ---------------------------------------------------------------------------
def vp_accuracy(model, tok, n: int = 100, seed: int = 2000, max_objects: int = 3) -> dict:
    """The visual-prompt question on ``n`` held-out scenes: "What is <Prompt0>?" answered exactly ("the red
    star"). ``chance`` is the accuracy of naming a random object of the scene (mean 1 / objects): what a
    model that cannot see the region, but knows the scene, would get. Returns accuracy, chance, the share of
    answers whose colour word / shape word is right (``colour_accuracy``, ``shape_accuracy``), per-sample."""
    from . import data

    scene = data.SyntheticConfig(max_objects=max_objects)
    exs = list(make_pixel_samples(n, seed, scene, {"vp_question": 1.0}))
    right, words = [], []
    for k in range(0, n, 32):
        chunk = exs[k : k + 32]
        out = predict(model, tok, [e.image for e in chunk], [e.prompt for e in chunk], [e.region for e in chunk])
        right += [float(text.strip() == e.answer) for (text, _), e in zip(out, chunk)]
        words += [(text.strip().split() + ["", "", ""])[1:3] for text, _ in out]
    truth = [e.answer.split()[1:3] for e in exs]
    return {"accuracy": float(np.mean(right)), "chance": float(np.mean([1 / e.objects for e in exs])),
            "colour_accuracy": float(np.mean([w[0] == t[0] for w, t in zip(words, truth)])),
            "shape_accuracy": float(np.mean([w[1] == t[1] for w, t in zip(words, truth)])),
            "per_sample": right, "n": n}


def grounding(model, tok, n: int = 100, seed: int = 2000, batch_size: int = 32) -> dict:
    """Does text→mask pick the referred object, or every object? On ``n`` scenes of 2–3 objects, the share of
    the predicted mask's object pixels that lie on the target (``share_on_target``: 1 = only the target;
    about 1 / objects = all of them alike), how often the target holds the most (``target_is_largest``), how
    often the mask covers ≥ half of the target *and* ≥ half of a distractor (``covers_several``), and the
    pixel features' spectrum (``feature_rank``: singular values 2 and 3 over the first, of the head's
    per-pixel features pooled over the scenes; near 0 = the head has collapsed to one direction), and the share
    on target for each kind of expression (``share_by_kind``: attribute, position, size, relation; ``kinds``: how
    many of each)."""
    from . import data

    cfg = data.SyntheticConfig(image_size=model.config.image_size, min_objects=2, max_objects=3)
    scenes, prompts, kinds = [], [], []
    for i in range(n):
        scene, t, ref = data._pick(np.random.default_rng((seed, i)), cfg)
        scenes.append((scene, t))
        prompts.append(TASK_PROMPTS["mask"].format(expr=ref[0]))
        kinds.append(ref[1][0])
    share, largest, several = [], [], []
    for k in range(0, n, batch_size):
        chunk, texts = scenes[k : k + batch_size], prompts[k : k + batch_size]
        for (scene, t), (_, mask) in zip(chunk, predict(model, tok, [sc.image for sc, _ in chunk], texts)):
            mask = np.zeros_like(scene.objects[t].mask) if mask is None else mask
            on = np.array([(mask.astype(bool) & o.mask.astype(bool)).sum() for o in scene.objects], float)
            cover = on / np.array([max(o.mask.sum(), 1) for o in scene.objects])
            share.append(on[t] / on.sum() if on.sum() else 0.0)
            largest.append(float(on.sum() > 0 and on.argmax() == t))
            several.append(float(cover[t] >= 0.5 and np.delete(cover, t).max() >= 0.5))
    exs = [PixelSample(sc.image, p, SEG_ANSWER, "mask", sc.objects[t].mask, None, len(sc.objects))
           for (sc, t), p in zip(scenes[:batch_size], prompts[:batch_size])]
    batch = collate(exs, tok, model.config)
    dev = model.patch_embed.weight.device
    batch = {k: v.to(dev) for k, v in batch.items()}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        h = model.hidden(batch["pixel_values"], batch["input_ids"], batch["attention_mask"], batch["prompt_regions"])
        f = model.mask_features(h, batch["input_ids"]).float()
    model.train(was_training)
    f = f.permute(0, 2, 3, 1).reshape(-1, f.shape[1])
    sv = torch.linalg.svdvals(f - f.mean(0)).cpu().numpy()
    return {"share_on_target": float(np.mean(share)), "target_is_largest": float(np.mean(largest)),
            "covers_several": float(np.mean(several)), "chance_share": float(np.mean([1 / len(sc.objects)
                                                                                  for sc, _ in scenes])),
            "feature_rank": [float(sv[1] / sv[0]), float(sv[2] / sv[0])], "n": n,
            "share_by_kind": {k: float(np.mean([v for v, kk in zip(share, kinds) if kk == k])) for k in sorted(set(kinds))},
            "kinds": {k: kinds.count(k) for k in sorted(set(kinds))}}


def judge(model, tok, n: int = 100, seed: int = 2000) -> dict:
    """Validation scores of one Pixel-SAIL-lite: gIoU on text→mask, point→mask and box→mask (the polygon
    models' samples of those tasks, 1–3 objects) and the visual-prompt question's accuracy, per sample too."""
    from .evaluate import eval_samples, score_masks

    out = {}
    for task in ("polygon", "point_polygon", "box_polygon"):
        samples = eval_samples("synthetic", n, seed, task)
        r = score_masks(samples, predict_samples(model, tok, samples, desc=task))
        out[task] = {"gIoU": r["gIoU"], "cIoU": r["cIoU"], "valid_rate": r["valid_rate"],
                     "per_sample": [row["iou"] for row in r["rows"]]}
    out["vp_question"] = vp_accuracy(model, tok, n, seed)
    out["grounding"] = grounding(model, tok, n, seed)
    return out


def write_model_card(folder, command: str, metrics: dict, notes: str = ""):
    """``README.md`` next to a Pixel-SAIL-lite checkpoint: how to regenerate it and what it scores."""
    import json
    import platform
    from pathlib import Path

    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text())
    cfg, model_cfg = summary["config"], json.loads((folder / "config.json").read_text())
    size_mb = sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 1e6
    rows = "\n".join(f"| {k} | {v:.3f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items())
    lite = {"token_match": False, "word_tokens": False, "mask_decoder": "dot", "text_first": False,
            "vision_position": "none", "select_loss": 0.0, "patch_stem": "linear", "rope_layout": "chunked",
            "vision_aux": 0.0, "aux_colours": False, "aux_layer": 0}
    switches = ", ".join(f"`{k}={model_cfg[k]}`" for k, v in lite.items() if model_cfg.get(k, v) != v)
    text = f"""# lite-pixelsail — Pixel-SAIL-lite ({summary['params_M']}M parameters, {size_mb:.1f} MB of safetensors)

One transformer (`Qwen2_5_VLTextModel`, hidden {model_cfg['hidden_size']}, {model_cfg['num_layers']} layers) over
{model_cfg['patch_size']}-px patches and text, a `[SEG]` token decoded by {model_cfg['upsample_blocks']} learnable
upsampling blocks, `<Prompt0..3>` injection {'on' if model_cfg['inject_prompts'] else 'off'}
(`simpleseg_lite/pixelsail.py`). Switches that are not the paper's: {switches or 'none'}. Trained
{f"from `{cfg['init']}`" if cfg.get('init') else 'from scratch'} by simpleseg-lite's own code on synthetic scenes with {cfg.get('min_objects', 1)}–{cfg['max_objects']} objects; task mix
`{cfg['task_mix'] or dict(TASK_MIX)}`.

## Regenerate

```bash
{command}
```

Seed {cfg['seed']}, {cfg['max_steps']} steps × batch {cfg['batch_size']}, lr {cfg['lr']} (AdamW, cosine, warm-up
{cfg['warmup_steps']}), {cfg['image_size']}-px scenes. Training samples come from seeds ≥ 10**7; evaluation seeds
are below that (the metrics say which). Wall time of this stage {summary['wall_seconds'] / 60:.1f} min on
{platform.processor() or platform.machine()} ({summary['torch_threads']} thread{'s' if summary['torch_threads'] != 1 else ''}).

## Metrics

| metric | value |
|---|---|
{rows}

{notes}
"""
    path = folder / "README.md"
    path.write_text(text)
    return path
