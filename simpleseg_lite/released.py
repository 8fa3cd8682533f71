"""Released SimpleSeg weights: load a published checkpoint, segment what an expression refers to, draw it.

The public release (docs/conventions.md, "The answer text") has a Qwen2.5-VL-7B variant and a Kimi-VL variant. The Qwen one is a
stock ``Qwen2_5_VLForConditionalGeneration`` in the Hugging Face layout (``config.json``,
``*.safetensors``, tokenizer and ``preprocessor_config.json``), so it loads through
``model.load_model`` without running any code from the checkpoint. A checkpoint that is not Qwen2.5-VL
ships its own modelling code (the model card loads the release with ``AutoModelForCausalLM`` and
``trust_remote_code=True``); ``load_released`` refuses it unless ``trust_remote_code=True`` is passed —
read that code first.

Inference follows the model card: the released prompt ("Output the polygon coordinates of {expression}
in the image."), greedy decoding, ``max_new_tokens=512``. Where it departs, and why: the answer is
decoded by ``parse.parse_polygons`` (it accepts prose around the list, and drops 1- and 2-point
polygons, on which the released decoder crashes) and the union of the polygons is rasterized with the
project's one rasterizer (``metrics``, pixel-centre rule) at the image's own size.

Used by ``simpleseg-lite segment``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from .data import PROMPTS
from .metrics import rasterize
from .model import generate, load_model
from .parse import parse_polygons

PROMPT = PROMPTS["polygon"][0]  # the released template: "Output the polygon coordinates of {expr} in the image."


def _config(name: str) -> tuple[str, dict]:
    """``(source, config.json as a dict)`` of a checkpoint folder, or of a Hub id (needs network)."""
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} has no config.json: not a checkpoint folder in the Hugging Face "
                                    "layout (config.json, *.safetensors, tokenizer, preprocessor_config.json)")
        if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
            raise FileNotFoundError(f"{path} has a config.json but no weights (*.safetensors): an incomplete download?")
        return str(path), json.loads((path / "config.json").read_text())
    if name.count("/") != 1 or name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"no checkpoint folder at {name!r}, and it is not a Hub id 'owner/name'")
    from huggingface_hub import hf_hub_download

    try:
        return name, json.loads(Path(hf_hub_download(name, "config.json")).read_text())
    except Exception as e:  # offline, unknown or gated repository: the hub client raises several kinds
        raise FileNotFoundError(f"could not fetch {name!r} from the Hugging Face Hub ({type(e).__name__}); "
                                f"without network, download it elsewhere (`hf download {name} --local-dir DIR`) "
                                "and pass DIR") from e


def load_released(path, dtype="auto", trust_remote_code: bool = False, device: str | None = None):
    """Load ``(model, processor)`` of a published SimpleSeg checkpoint (a local folder or a Hub id).

    A Qwen2.5-VL checkpoint (``model_type: qwen2_5_vl``; also our own tiny ones) loads with the stock
    classes via ``model.load_model``, never running checkpoint code. Anything else needs
    ``trust_remote_code=True`` and loads with ``AutoModelForCausalLM`` / ``AutoProcessor``.
    ``dtype="auto"`` keeps the checkpoint's (bf16 for the release: ~16 GB for 7B parameters).
    ``device``: default ``"cuda"`` when there is a GPU, else ``"cpu"``. Raises ``FileNotFoundError`` for
    a missing or incomplete checkpoint, ``ValueError`` for one that needs remote code.
    """
    import torch

    source, config = _config(str(path))
    model_type = config.get("model_type")
    if model_type == "qwen2_5_vl":
        model, processor = load_model(source, dtype=dtype, trust_remote_code=trust_remote_code)
    elif not trust_remote_code:
        raise ValueError(f"{source} is a {config.get('architectures') or model_type} checkpoint, not Qwen2.5-VL; "
                         "its modelling code ships with it. Read that code, then pass trust_remote_code=True "
                         "(CLI: --trust-remote-code)")
    else:
        from transformers import AutoModelForCausalLM, AutoProcessor

        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, trust_remote_code=True)
        processor = AutoProcessor.from_pretrained(source, trust_remote_code=True)
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return model.eval(), processor


def load_image(image) -> Image.Image:
    """An RGB PIL image from a path, a PIL image or an (H, W, 3) uint8 array; clear errors for bad files."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such image file")
        try:
            with Image.open(path) as im:
                return im.convert("RGB")
        except (OSError, SyntaxError, ValueError) as e:
            raise ValueError(f"{path}: not a readable image (corrupt or not PNG/JPEG/...): {e}") from e
    return Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")


def segment(model, processor, image, expression: str, max_new_tokens: int = 512) -> dict:
    """Segment what ``expression`` refers to in ``image`` (path, PIL or (H, W, 3) uint8 array).

    Returns ``answer`` (the model's text), ``polygons`` (list of (k, 2) arrays, normalized (x, y), y down),
    ``mask`` ((H, W) bool at the image's own size: the union of the polygons, pixel-centre rule),
    ``valid`` (usable polygons came out; if not, the mask is empty) and ``error`` (the parser's reason).
    """
    image = load_image(image)
    width, height = image.size
    answer = generate(model, processor, [image], [PROMPT.format(expr=expression)], max_new_tokens=max_new_tokens)[0]
    result = parse_polygons(answer)
    polygons = result.polygons if result.valid else []
    mask = rasterize(polygons, height, width).astype(bool)
    return {"answer": answer, "polygons": polygons, "mask": mask, "valid": result.valid, "error": result.error}


def draw(image, result: dict, title: str | None = None, ax=None):
    """The image with ``segment``'s mask and polygons (start vertex and direction marked); returns the axis."""
    from .viz import overlay

    return overlay(np.asarray(load_image(image)), mask=result["mask"], polygons_norm=result["polygons"],
                   title=title, ax=ax)
