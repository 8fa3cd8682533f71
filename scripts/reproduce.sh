#!/usr/bin/env bash
# The main job: set up .venv if needed, then run the reproduction (default: the lite preset on a CPU).
#   scripts/reproduce.sh [smoke|lite|full] [--resume] [--out DIR]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
preset="${1:-lite}"
shift || true
export TOKENIZERS_PARALLELISM=false  # notebook kernels draw inline whatever MPLBACKEND says (reproduce.KERNEL_ENV)
exec simpleseg-lite reproduce --preset "$preset" "$@"
