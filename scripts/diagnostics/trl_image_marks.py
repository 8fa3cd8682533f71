"""How far trl's scoring of sampled answers moves when its image marks are misaligned (a tokenizer that pads right),
for a trained checkpoint. Batches of 2 prompts x 8 answers (small pad differences: the silent case; a larger pad
than the image's offset in the prompt crashes instead). Session 38.
Run: python scripts/diagnostics/trl_image_marks.py [CHECKPOINT] [BATCHES]"""
import sys
import tempfile
from pathlib import Path

import torch

from simpleseg_lite.rl import GSPOConfig, build_trainer

init = sys.argv[1] if len(sys.argv) > 1 else "data/checkpoints/lite-sft"
batches = int(sys.argv[2]) if len(sys.argv) > 2 else 24
cfg = GSPOConfig(out=str(Path(tempfile.mkdtemp()) / "run"), init=init, max_steps=batches // 4 + 1,
                 prompts_per_step=16, num_generations=8, threads=2, eval_steps=0)
trainer, _ = build_trainer(cfg)
trainer.processing_class.tokenizer.padding_side = "right"  # undo build_trainer's fix: the state before session 38
image_id = trainer.model.config.image_token_id
batches = min(batches, len(trainer.train_dataset) // 2)
tokens, answers, crashed, silent = [], [], 0, 0
for b in range(batches):
    rows = [trainer.train_dataset[i] for i in (2 * b, 2 * b + 1) for _ in range(8)]
    torch.manual_seed(b)
    try:
        out = trainer._generate_and_score_completions(rows)
    except RuntimeError as error:  # the image block cut short: get_rope_index's shape check
        if "shape mismatch" not in str(error):
            raise
        crashed += 1
        continue
    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], 1)
    mask = torch.cat([out["prompt_mask"], out["completion_mask"]], 1)
    k = out["completion_ids"].shape[1]
    mm = out["mm_token_type_ids"]
    bad = ((mm == 1) != (ids[:, :mm.shape[1]] == image_id)).any(1)  # image marks not on the image tokens
    if not bad.any():
        continue
    silent += 1
    images = {key: out[key] for key in ("pixel_values", "image_grid_thw")}
    with torch.no_grad():
        wrong = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, k, num_images=out["num_images"],
                                                           mm_token_type_ids=mm, **images)[0]
        marks = (ids == image_id).to(mm.dtype)  # what the marks should be
        right = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, k, num_images=out["num_images"],
                                                           mm_token_type_ids=marks, **images)[0]
    keep = out["completion_mask"].bool() & bad[:, None]
    tokens.append((wrong - right)[keep].abs())
    answers.append(((wrong - right) * keep).sum(1)[bad].abs())
t, a = torch.cat(tokens), torch.cat(answers)
print(f"{init}: {batches} batches of 2 prompts x 8; crashed {crashed}, misaligned without a crash {silent}; on the "
      f"{len(a)} misaligned answers: per-token |dlogp| mean {t.mean():.3f}, median {t.median():.3f}, "
      f"max {t.max():.2f}; "
      f"per-answer |sum dlogp| mean {a.mean():.2f}, median {a.median():.2f}, max {a.max():.2f} nats")
