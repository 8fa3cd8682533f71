#!/usr/bin/env bash
# The test command: set up .venv if needed, then run every test, the notebooks included (smoke scale).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" MPLBACKEND=Agg TOKENIZERS_PARALLELISM=false
exec python -m pytest -q "$@"
