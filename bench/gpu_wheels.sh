#!/usr/bin/env bash
# Prepare, on a machine with network, the wheels that bench/gpu_check.sh installs on a GPU machine
# without network (Python 3.12, manylinux x86_64, torch with CUDA already there): nasctl's runtime
# dependencies that such a machine lacks, pinned to the versions of .venv (bench/_gpu_wheels.py),
# plus a wheel of nasctl itself built from this working tree. Writes .whl/ (git-ignored), emptied
# first, then checks that every wheel's requirements are met by the others or by the machine.
#
#   bash bench/gpu_wheels.sh        # or: make gpu-wheels
set -euo pipefail
cd "$(dirname "$0")/.."
VENV_PY=${VENV_PY:-.venv/bin/python}   # whose installed versions are pinned; builds nasctl's wheel
PIP_PY=${PIP_PY:-python3}              # whose pip downloads (any pip: it only fetches files)
OUT=.whl
MAX_MB=30

[ -x "$VENV_PY" ] || { echo "gpu_wheels: $VENV_PY is missing; run 'make setup' first" >&2; exit 1; }
pins=$("$VENV_PY" bench/_gpu_wheels.py)
rm -rf "$OUT"
mkdir -p "$OUT"
for pin in $pins; do
  "$PIP_PY" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    --no-deps -d "$OUT" "$pin"
done

# nasctl from a copy of the tracked and not-ignored files: a stale build/ never leaks into it
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
  done | xargs -0 cp --parents -t "$src"
else
  cp -r pyproject.toml README.md manager nasctl trials "$src"
fi
if ! "$VENV_PY" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$OUT" "$src" \
  >"$src/.build.log" 2>&1; then
  cat "$src/.build.log" >&2
  echo "gpu_wheels: FAILED: building nasctl's wheel" >&2
  exit 1
fi

count=$(find "$OUT" -name '*.whl' | wc -l)
kib=$(du -sk "$OUT" | cut -f1)
echo "gpu_wheels: $count wheels in $OUT/, $((kib / 1024)) MiB ($(echo "$pins" | wc -l) pinned dependencies + nasctl):"
ls -1 "$OUT" | sed 's/^/  /'
if [ "$kib" -gt $((MAX_MB * 1024)) ]; then
  echo "gpu_wheels: FAILED: $OUT/ holds more than $MAX_MB MiB" >&2
  exit 1
fi
"$VENV_PY" bench/_gpu_wheels.py --check "$OUT"
echo "gpu_wheels: complete: every requirement is a wheel here or on the GPU machine (torch, psutil, pyyaml)"
