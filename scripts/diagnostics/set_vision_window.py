"""Copy a lite checkpoint with its vision tower's attention made local: every block attends within WINDOW-px squares
(`TinyConfig.vision_window`, `vision_fullatt_blocks=()`); the weights are unchanged (window attention only masks), so
the copy is a starting point for training on, not a finished model (LOG session 22). With --learned-centre the position
fix subtracts a learned vector instead of each image's token mean (`TinyConfig.image_centre="learned"`), set to the
average of those means over 512 training scenes, so no token depends on another image token at all.
Run: python scripts/diagnostics/set_vision_window.py SRC DST WINDOW [--learned-centre]
     e.g. data/checkpoints/lite-sft runs/sft_w28c 28 --learned-centre"""
import json
import shutil
import sys
from pathlib import Path

src, dst, window = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
if not (src / "config.json").is_file():
    sys.exit(f"{src}: not a lite checkpoint folder (no config.json)")
if dst.exists():
    sys.exit(f"{dst} exists; choose a new folder")
config = json.loads((src / "config.json").read_text())
vision = config["vision_config"]
token = vision["patch_size"] * vision["spatial_merge_size"]
if window <= 0 or window % token:
    sys.exit(f"WINDOW must be a positive multiple of {token} px (one image token), got {window}")
shutil.copytree(src, dst)
vision["window_size"], vision["fullatt_block_indexes"] = window, []
learned = "--learned-centre" in sys.argv[4:]
if learned:
    config["lite_image_centre"] = "learned"
(dst / "config.json").write_text(json.dumps(config, indent=2))
if learned:
    import torch

    from simpleseg_lite import data
    from simpleseg_lite.model import load_model

    model, processor = load_model(dst, dtype=torch.float32)
    scenes = [data.make_scene(seed, data.SyntheticConfig(image_size=processor.image_size))
              for seed in range(10**7 + 22, 10**7 + 22 + 512)]
    means = []
    with torch.no_grad():
        for k in range(0, len(scenes), 64):
            pv = processor.image_processor(images=[s.image for s in scenes[k:k + 64]], return_tensors="pt")
            out = model.model.visual(pv["pixel_values"], grid_thw=pv["image_grid_thw"]).pooler_output
            means.append(out.view(len(scenes[k:k + 64]), -1, out.shape[-1]).mean(1))
        model.model.image_positions.centre.copy_(torch.cat(means).mean(0))
    model.save_pretrained(dst)
print(f"{dst}: vision attention within {window}-px windows in all {vision['depth']} blocks"
      + (", learned centre" if learned else "") + f" (was {src})")
