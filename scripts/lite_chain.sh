#!/usr/bin/env bash
# The lite chain with the coordinate-token design (docs/lite_model.md §3): three stages, each resumable.
#   A. single-object localization (the arms' recipe, longer): coord_tokens + median decoding + ordinal loss
#   B. pre-training curriculum on 1–3-object scenes (sft.PRETRAIN_MIX)          → the lite-pretrain candidate
#   C. SFT on 1–3-object referring scenes, polygon-heavy mix                     → the lite-sft candidate
#   D. (STEPS_D > 0) C continued at peak lr 3e-4, seed 3, mix MIX_D (default: C's) → then the lite-sft candidate
#   E. (STEPS_E > 0, needs D) D continued, a fresh cosine at peak lr 3e-4, seed 4, mix MIX_D → then the lite-sft candidate
#   F, G, H. (STEPS_F/G/H > 0, each needs the one before) the same again, seeds 6, 7 and 8
# Re-running the script after an interruption resumes the stage it was in and skips the stages that finished: stages
# B–H checkpoint every 50 steps, stage 0 every 250; stage A only at half its steps (the step its judge reads), so
# an interruption before then restarts it (~6 min at 800 steps; LOG session 30).
# Usage: bash scripts/lite_chain.sh [OUT_DIR]   (default runs/chain)
# Step counts can be overridden: STEPS_A=800 STEPS_B=500 STEPS_C=1000 bash scripts/lite_chain.sh
# Stage A's design is an arm of scripts/localization_arms.py (ARM=coord_tokens+median_decoding+word_tokens+vision_aux);
# VISION_AUX=1 keeps the dense shape-map loss (sft.VisionAuxHead) on in stages B and C too.
# BOX_AUX=1 adds the dense instance-box loss (sft.BoxAuxHead) to stage 0, B, C and D–H; ARM must then include box_aux.
# BOX_TARGET=pose asks that head for each object's turn instead (data.pose_maps); ARM then includes pose_aux.
# COLOUR_AUX=1 does the same with the dense colour loss (sft.attach_colour_aux); ARM must then include colour_aux.
# READ_LOSS=1 adds the read term (sft.read_out_loss: one attention head of the answer must look at the target's image
# tokens) to stages B–H; ARM must then include read_loss (stage A's switch).
# VISION_STEPS=3000 adds stage 0, `simpleseg-lite pretrain-vision` (vision.py), and starts stage A from it; ARM must
# then include vision_pretrain (e.g. ARM=coord_tokens+median_decoding+word_tokens+vision_pretrain+vision_aux).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
out="${1:-runs/chain}"
STEPS_A="${STEPS_A:-800}" STEPS_B="${STEPS_B:-500}" STEPS_C="${STEPS_C:-1000}" THREADS="${THREADS:-2}"
MIX_C='{"polygon": 6, "point_polygon": 1, "box_polygon": 1, "point": 1, "box": 1}'
STEPS_D="${STEPS_D:-0}" MIX_D="${MIX_D:-$MIX_C}" STEPS_E="${STEPS_E:-0}" STEPS_F="${STEPS_F:-0}" STEPS_G="${STEPS_G:-0}" STEPS_H="${STEPS_H:-0}"
ARM="${ARM:-coord_tokens+median_decoding}" VISION_AUX="${VISION_AUX:-0}" VISION_STEPS="${VISION_STEPS:-0}"
BOX_AUX="${BOX_AUX:-0}" BOX_TARGET="${BOX_TARGET:-box}" COLOUR_AUX="${COLOUR_AUX:-0}" READ_LOSS="${READ_LOSS:-0}" COLOUR_SKIP="${COLOUR_SKIP:-0}"
mkdir -p "$out"
resume() { [ -d "$1/checkpoints" ] && echo --resume || true; }
done_() { [ -f "$1/summary.json" ]; }

init=()
if [ "$VISION_STEPS" -gt 0 ]; then  # stage 0: the vision tower alone, with the arm's model switches
  config=$(python -c "import json, sys; sys.path.insert(0, 'scripts'); from localization_arms import combined; \
print(json.dumps(combined(sys.argv[1].split('+'))[0]))" "$ARM")
  if ! done_ "$out/v"; then
    simpleseg-lite pretrain-vision --out "$out/v" --steps "$VISION_STEPS" --threads "$THREADS" --model-config "$config" \
      --box-aux "$BOX_AUX" --colour-aux "$COLOUR_AUX" \
      --box-target "$BOX_TARGET" \
      $([ -f "$out/v/checkpoint.pt" ] && echo --resume || true)
  fi
  init=(--init "$out/v")
fi
a="$out/a/$ARM"
if [ ! -f "$a/arm.json" ]; then  # trains (or resumes) and judges at steps/2 and the end, validation seed 2000
  python scripts/localization_arms.py --arm "$ARM" --steps "$STEPS_A" --out "$out/a" \
    --threads "$THREADS" "${init[@]}"
fi
if ! done_ "$out/pre"; then
  simpleseg-lite train --stage pretrain --init "$a" --out "$out/pre" --steps "$STEPS_B" --lr 1.5e-3 --seed 3 \
    --threads "$THREADS" --digit-loss 1 --vision-aux "$VISION_AUX" --box-aux "$BOX_AUX" --colour-aux "$COLOUR_AUX" \
    --box-target "$BOX_TARGET" --read-loss "$READ_LOSS" --eval-steps 250 --save-steps 50 $(resume "$out/pre")
fi
if ! done_ "$out/sft"; then
  simpleseg-lite train --stage sft --init "$out/pre" --out "$out/sft" --steps "$STEPS_C" --lr 5e-4 --seed 2 \
    --threads "$THREADS" --digit-loss 1 --vision-aux "$VISION_AUX" --box-aux "$BOX_AUX" --colour-aux "$COLOUR_AUX" \
    --box-target "$BOX_TARGET" --read-loss "$READ_LOSS" --eval-steps 250 --save-steps 50 \
    --task-mix "$MIX_C" $(resume "$out/sft")
fi
# Stages D–H: the previous stage's model, more SFT on the same mix with a fresh cosine at peak lr 3e-4 and a
# seed of its own (new scenes). D (session 16) followed C at a lower peak lr; E (session 26) because D's held-out curve
# was still rising at its end; F, G and H (session 28) because a fresh cosine still paid after E (LOG session 28).
# COLOUR_SKIP=16 gives the model colour detectors read past the tower (model.ColourSkip) at the start of stage F.
more_sft() {  # FROM TO STEPS SEED EVAL_STEPS COLOUR_SKIP
  if ! done_ "$2"; then
    simpleseg-lite train --stage sft --init "$1" --out "$2" --steps "$3" --lr 3e-4 --seed "$4" \
      --threads "$THREADS" --digit-loss 1 --vision-aux "$VISION_AUX" --box-aux "$BOX_AUX" --colour-aux "$COLOUR_AUX" \
      --box-target "$BOX_TARGET" --read-loss "$READ_LOSS" --eval-steps "$5" --save-steps 50 --task-mix "$MIX_D" \
      --colour-skip "$6" $(resume "$2")
  fi
}
last="$out/sft"
for stage in "d $STEPS_D 3 500 0" "e $STEPS_E 4 500 0" "f $STEPS_F 6 400 $COLOUR_SKIP" "g $STEPS_G 7 400 0" "h $STEPS_H 8 400 0"; do
  read -r name steps seed every skip <<< "$stage"
  [ "$steps" -gt 0 ] || break  # each stage needs the one before it
  more_sft "$last" "$out/sft_$name" "$steps" "$seed" "$every" "$skip"
  last="$out/sft_$name"
done
echo "[chain] done: $out/pre (lite-pretrain candidate), $last (lite-sft candidate)"
