#!/usr/bin/env bash
# Issue 14 (LOG session 22): does more compute close the 1–3-object gap, and which direction scales?
# Long continuations of the committed lite-sft, run side by side on one GPU machine (the device tool), one process
# per arm. A 30-step calibration of every arm (all at once, as in the real run) sizes each arm's steps so that all
# of them end inside TRAIN_S seconds; then every final model and the start are judged on the same 500 samples of
# the validation seed (scripts/diagnostics/paired_arms.py, one process per model, paired afterwards).
#
# Run from the repo root on the GPU machine:  bash scripts/diagnostics/gpu_scaling.sh WORKDIR RESULTS_DIR [TRAIN_S]
# The machine's own python3 (CUDA torch) is used; our pinned transformers / trl / datasets / shapely / pycocotools
# come as wheels in .gpuwheels/ (pip download --no-deps --only-binary=:all: --python-version 3.12 ..., see LOG).
# Dry run on a CPU: STEPS=4 N_EVAL=8 bash scripts/diagnostics/gpu_scaling.sh /tmp/g /tmp/g/res 30
set -uo pipefail
work=${1:?work dir}; res=${2:?results dir}; train_s=${3:-330}
n_eval=${N_EVAL:-500}
mkdir -p "$work" "$res"
py=${PYTHON:-python3}
if [ -d .gpuwheels ]; then
  $py -m pip install -q --no-deps --no-index --target /tmp/site .gpuwheels/*.whl 2>&1 | tail -2
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 USE_HUB_KERNELS=NO HF_HUB_OFFLINE=1
dev=$($py -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
$py -c "import torch, transformers, trl; print('torch', torch.__version__, 'transformers', transformers.__version__, \
'trl', trl.__version__, 'device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
start=data/checkpoints/lite-sft
MIX='{"polygon": 6, "point_polygon": 1, "box_polygon": 1, "point": 1, "box": 1}'
common=(--stage sft --seed 3 --threads 1 --digit-loss 1 --vision-aux 1 --task-mix "$MIX" --save-steps 1000000)
$py -m simpleseg_lite.cli deepen --init "$start" --out "$work/deep8_init" --layers 8 | tail -1
declare -A arm=(
  [same32]="--init $start --lr 3e-4 --batch-size 32"
  [same128]="--init $start --lr 6e-4 --batch-size 128"
  [deep8]="--init $work/deep8_init --lr 3e-4 --batch-size 32"
  [tf32]="--init $start --lr 3e-4 --batch-size 32 --prompt-order text_first"
  [tf_mark_read32]="--init $start --lr 3e-4 --batch-size 32 --prompt-order text_first --mark-loss 1 --read-loss 1"
)
names=(same32 same128 deep8 tf32 tf_mark_read32)

steps_for() {  # calibrated steps for arm $1 (multiple of 100, at least 100)
  $py - "$1" "$train_s" "$work" <<'EOF'
import json, sys
name, budget, work = sys.argv[1], float(sys.argv[2]), sys.argv[3]
s = json.load(open(f"{work}/cal_{name}/summary.json"))
per_step = s["wall_seconds"] / s["steps"]
print(max(100, int(0.85 * (budget - 25) / per_step) // 100 * 100))
EOF
}

if [ -z "${STEPS:-}" ]; then
  echo "[calibration] 30 steps of every arm, side by side"
  for n in "${names[@]}"; do
    # shellcheck disable=SC2086
    timeout 150 $py -m simpleseg_lite.cli train "${common[@]}" ${arm[$n]} --out "$work/cal_$n" --steps 30 \
      --eval-steps 0 > "$work/cal_$n.log" 2>&1 &
  done
  wait
  for n in "${names[@]}"; do
    grep -h '"wall_seconds"' "$work/cal_$n/summary.json" | tr -d ' ,' | sed "s/^/[calibration] $n /"
  done
fi

echo "[train] $(date +%T)"
for n in "${names[@]}"; do
  steps=${STEPS:-$(steps_for "$n" || echo 0)}
  [ "$steps" -gt 0 ] || { echo "[train] $n: calibration failed, see $work/cal_$n.log"; tail -5 "$work/cal_$n.log"; continue; }
  echo "[train] $n: $steps steps"
  # shellcheck disable=SC2086
  timeout $((train_s + 90)) $py -m simpleseg_lite.cli train "${common[@]}" ${arm[$n]} --out "$work/$n" \
    --steps "$steps" --eval-steps $((steps / 4)) > "$work/$n.log" 2>&1 &
done
wait
echo "[eval] $(date +%T)"
models=(start="$start")
for n in "${names[@]}"; do
  if [ -f "$work/$n/summary.json" ]; then models+=("$n=$work/$n"); else echo "[eval] $n did not finish:"; tail -3 "$work/$n.log"; fi
done
for m in "${models[@]}"; do
  timeout 240 $py scripts/diagnostics/paired_arms.py --n "$n_eval" --seed 999 --device "$dev" --json "$work/eval_${m%%=*}.json" \
    "$m" > "$work/eval_${m%%=*}.log" 2>&1 &
done
wait
$py - "$work" "${names[@]}" <<'EOF'
import json, sys
import numpy as np
from simpleseg_lite.metrics import paired_difference
work, names = sys.argv[1], sys.argv[2:]
runs = {}
for name in ["start", *names]:
    try:
        runs[name] = json.load(open(f"{work}/eval_{name}.json"))
    except FileNotFoundError:
        print(f"{name}: no evaluation")
objects = np.array(next(iter(runs.values()))["objects"])
for name, r in runs.items():
    s = np.array(next(iter(r["scores"].values())))
    steps = json.load(open(f"{work}/{name}/summary.json"))["steps"] if name != "start" else 0
    by = " / ".join(f"{s[objects == k].mean():.3f}" for k in (1, 2, 3))
    line = f"{name} ({steps} steps): gIoU {s.mean():.3f} (1/2/3 objects {by})"
    for ref in ("start", "same32"):
        if ref in runs and ref != name:
            d = paired_difference(np.array(next(iter(runs[ref]["scores"].values()))), s)
            line += f"; vs {ref} {d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
    print(line)
EOF
cp "$work"/eval_*.json "$work"/*.log "$res"/ 2>/dev/null
for n in "${names[@]}"; do
  cp "$work/$n/history.jsonl" "$res/history_$n.jsonl" 2>/dev/null
  cp "$work/$n/summary.json" "$res/summary_$n.json" 2>/dev/null
done
echo "[done] $(date +%T)"
