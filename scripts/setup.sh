#!/usr/bin/env bash
# Create .venv in the repo root (once) and install the project into it. Idempotent: re-running it
# reinstalls only when pyproject.toml changed. Sourced by scripts/reproduce.sh and scripts/test.sh.
#
# torch: a machine that already has a CUDA torch in .venv keeps it. Otherwise, with no NVIDIA GPU we
# install the CPU wheel torch==2.13.0 (found on local disk on the development machines) and never
# torchvision: its registry build is CUDA-only and breaks every Qwen2.5-VL import beside CPU torch.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
VPY="$ROOT/.venv/bin/python"
stamp=".venv/.simpleseg-installed"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)-${SIMPLESEG_UNPINNED:-0}"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$VPY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
    if command -v nvidia-smi >/dev/null 2>&1; then
      echo "[setup] NVIDIA GPU found: installing torch from the default index (CUDA build)"
      "$VPY" -m pip install -q torch
    else
      echo "[setup] no GPU: installing the CPU build torch==2.13.0 (no torchvision)"
      "$VPY" -m pip install -q torch==2.13.0
    fi
  fi
  # constraints.txt: the versions the tests last passed with (see its header); SIMPLESEG_UNPINNED=1 skips it.
  if [ "${SIMPLESEG_UNPINNED:-0}" = 1 ]; then
    echo "[setup] installing simpleseg-lite and the newest dependencies pyproject.toml allows (SIMPLESEG_UNPINNED=1;"
    echo "[setup] packages already in .venv keep their versions: remove .venv first for all-new ones)"
    "$VPY" -m pip install -q -e ".[test]"
  else
    echo "[setup] installing simpleseg-lite and its dependencies at the tested versions (constraints.txt) into .venv"
    if ! "$VPY" -m pip install -q -e ".[test]" -c constraints.txt; then
      echo "[setup] WARNING: the tested versions in constraints.txt cannot be installed with $("$VPY" --version);"
      echo "[setup]          installing the newest versions pyproject.toml allows instead (numbers may differ slightly)"
      "$VPY" -m pip install -q -e ".[test]"
    fi
  fi
  if "$VPY" -c "import torchvision" >/dev/null 2>&1 && ! "$VPY" -c "import torchvision.ops" >/dev/null 2>&1; then
    echo "[setup] WARNING: a broken torchvision is installed (see README, 'torchvision trap'); removing it"
    "$VPY" -m pip uninstall -y -q torchvision
  fi
  echo "$want" > "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
