#!/usr/bin/env bash
# GPU check (bench/gpu_check.py): real digits trials through a real daemon on a CUDA machine.
#
#   bash bench/gpu_check.sh [--dry-run] [gpu_check.py options]
#
# Without CUDA (no nvidia-smi, or torch.cuda.is_available() false for $PYTHON) it prints one
# "skipped" line and exits 0, so `make bench` runs it anywhere; --dry-run goes ahead anyway (fake
# nvidia-smi, trials on the CPU). Where nasctl or its dependencies do not import (a GPU machine
# with its own torch and no network), it installs the wheels of .whl/ (`make gpu-wheels`, made
# beforehand on a machine with network) into a temporary folder put first on PYTHONPATH: nothing
# from the network, and the machine's torch stays the one used. Exit status of gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
dry_run=0
for arg in "$@"; do [ "$arg" = --dry-run ] && dry_run=1; done

skip() { echo "gpu_check: skipped: no CUDA GPU ($1)"; exit 0; }
if [ "$dry_run" = 0 ]; then
  command -v nvidia-smi >/dev/null 2>&1 || skip "no nvidia-smi"
  nvidia-smi -L >/dev/null 2>&1 || skip "nvidia-smi -L failed"
  cuda=$("$PY" -c "import torch; print(torch.cuda.is_available())" 2>/dev/null) || cuda="no torch"
  [ "$cuda" = True ] || skip "torch.cuda.is_available() is $cuda for $PY"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nasctl-gpu-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
imports="import nasctl, fastapi, sqlalchemy, uvicorn"
# from a neutral folder, so that the repo's own sources do not pass for an installed nasctl
if (cd "$tmp" && "$PY" -c "$imports") 2>/dev/null; then
  echo "gpu_check: nasctl and its dependencies import already; nothing installed"
else
  if ! ls .whl/*.whl >/dev/null 2>&1; then
    echo "gpu_check: FAILED: nasctl does not import with $PY and .whl/ holds no wheels;" \
      "run 'make gpu-wheels' on a machine with network first" >&2
    exit 1
  fi
  "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile \
    --target "$tmp/site" .whl/*.whl
  export PYTHONPATH="$tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  (cd "$tmp" && "$PY" -c "$imports; import torch
print('gpu_check: installed', len(__import__('os').listdir('$tmp/site')), 'entries of .whl/ into a temporary',
      'folder; torch', torch.__version__, 'from', torch.__file__.rsplit('/', 2)[0])")
fi
status=0
"$PY" bench/gpu_check.py "$@" || status=$?
exit "$status"
