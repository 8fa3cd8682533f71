#!/usr/bin/env bash
# Judge a lite chain (scripts/lite_chain.sh) against the committed checkpoints on an unseen seed, the way the
# issues' "done when" lines ask: paired `compare` and `eval --json` on 1–3 objects, single objects, and text→point.
# Usage: bash scripts/eval_chain.sh runs/chain14 6000 [THREADS]  → runs/chain14/eval_6000/*.json, *.txt
# The lite-sft candidate is the last of CHAIN/sft_d … sft_h that ran, else CHAIN/sft. lite-pretrain is compared only
# when CHAIN/pre exists.
# (N_EVAL=200 and N_COMPARE=500 set the sample counts; lite-pretrain is compared on N_EVAL.)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
chain="$1" seed="$2" threads="${3:-1}"
out="$chain/eval_$seed"
sft="$chain/sft"
for stage in d e f g h; do  # the last of the stages D–H that ran (lite_chain.sh runs them in order)
  [ -f "$chain/sft_$stage/summary.json" ] && sft="$chain/sft_$stage"
done
mkdir -p "$out"
run() {  # a finished check (non-empty output) is not run again
  local name="$1"; shift
  [ -s "$out/$name" ] || { simpleseg-lite "$@" --threads "$threads" > "$out/$name.part" && mv "$out/$name.part" "$out/$name"; }
  echo "== $name"
  case "$name" in
    *.json) python -c "import json, sys; r = json.load(open(sys.argv[1])); print({k: v for k, v in r.items() if not isinstance(v, (list, dict))})" "$out/$name" ;;
    *) cat "$out/$name" ;;
  esac
}
run sft.json eval --model "$sft" --data synthetic --n "${N_EVAL:-200}" --seed "$seed" --json
run sft_single.json eval --model "$sft" --data synthetic --n "${N_EVAL:-200}" --seed "$seed" --max-objects 1 --json
run sft_point.json eval --model "$sft" --data synthetic --n "${N_EVAL:-200}" --seed "$seed" --task point --max-objects 1 --json
run compare_sft.txt compare --a data/checkpoints/lite-sft --b "$sft" --data synthetic --n "${N_COMPARE:-500}" --seed "$seed"
if [ -d "$chain/pre" ]; then
  run compare_pre.txt compare --a data/checkpoints/lite-pretrain --b "$chain/pre" --data synthetic --n "${N_EVAL:-200}" --seed "$seed"
fi
