#!/usr/bin/env bash
# Copy a finished lite chain (scripts/lite_chain.sh) into data/checkpoints/lite-pretrain and lite-sft, the layout the
# cards describe: each model folder as the trainer saved it (weights, config, tokenizer, aux heads, its own
# history.jsonl / summary.json) plus the earlier stages' histories and summaries under a stage prefix (vision_,
# stage_a_ …), which notebook 08 draws the training curves from. Checkpoint folders are not copied; README.md (the
# card) is left as it is — rewrite it with the new numbers.
# Usage: bash scripts/promote_chain.sh runs/chain_pose [DEST=data/checkpoints]
set -euo pipefail
chain="${1:?usage: bash scripts/promote_chain.sh CHAIN_DIR [DEST]}" dest="${2:-data/checkpoints}"
for need in "$chain/v/summary.json" "$chain/pre/summary.json" "$chain/sft/summary.json"; do
  [ -f "$need" ] || { echo "promote_chain: $need is missing — finish the chain first (bash scripts/lite_chain.sh $chain)" >&2; exit 1; }
done
arm=$(find "$chain/a" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort | head -n 1 || true)
[ -n "$arm" ] && [ -f "$arm/arm.json" ] || { echo "promote_chain: no finished stage A under $chain/a — finish the chain first" >&2; exit 1; }
last="$chain/sft"
for stage in d e f g h; do if [ -f "$chain/sft_$stage/summary.json" ]; then last="$chain/sft_$stage"; fi; done
model_files() {  # FROM TO: the model folder's own files
  mkdir -p "$2"
  find "$2" -maxdepth 1 -type f ! -name README.md -delete
  for f in "$1"/*; do
    if [ -f "$f" ] && [ "$(basename "$f")" != checkpoint.pt ]; then cp "$f" "$2/"; fi
  done
}
history() {  # FROM PREFIX TO: a stage's history and summary under a prefix
  cp "$1/history.jsonl" "$3/${2}history.jsonl"; cp "$1/summary.json" "$3/${2}summary.json"
}
model_files "$chain/pre" "$dest/lite-pretrain"
history "$chain/v" vision_ "$dest/lite-pretrain"; history "$arm" stage_a_ "$dest/lite-pretrain"
cp "$arm/arm.json" "$dest/lite-pretrain/stage_a_arm.json"
model_files "$last" "$dest/lite-sft"
history "$chain/v" vision_ "$dest/lite-sft"; history "$arm" stage_a_ "$dest/lite-sft"
history "$chain/pre" stage_b_ "$dest/lite-sft"
if [ "$last" != "$chain/sft" ]; then history "$chain/sft" stage_c_ "$dest/lite-sft"; fi
for stage in d e f g h; do
  if [ -f "$chain/sft_$stage/summary.json" ] && [ "$chain/sft_$stage" != "$last" ]; then
    history "$chain/sft_$stage" "stage_${stage}_" "$dest/lite-sft"
  fi
done
du -sh "$dest/lite-pretrain" "$dest/lite-sft"
echo "lite-pretrain ← $chain/pre, lite-sft ← $last; rewrite both README.md cards"
