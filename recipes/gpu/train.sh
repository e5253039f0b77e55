#!/usr/bin/env bash
# On a GPU machine with JAX but no TensorFlow and no registry (issue 46): trains the recipe's
# student from a bundle made by recipes/gpu/bundle.py and leaves its run folder in $OUT (the
# device tool's output folder; default gpu_out). Bring the run folder back and export it here:
#   bash recipes/gpu/train.sh BUNDLE [EPOCHS] [BATCH]
#   .venv/bin/backdrop export OUT/run -r BUNDLE/records --modes float16 int8
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=${1:-gpu_bundle}
EPOCHS=${2:-20}
BATCH=${3:-16}
OUT=${OUT:-gpu_out}
PYTHON=${PYTHON:-python3}
SITE=$(mktemp -d)
# The wheels unpacked, not installed: no pip needed, nothing of the machine's own replaced.
"$PYTHON" - "$BUNDLE/wheels" "$SITE" <<'PY'
import pathlib, sys, zipfile
for wheel in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    zipfile.ZipFile(wheel).extractall(sys.argv[2])
PY
export PYTHONPATH="$PWD/src:$SITE" KERAS_BACKEND=jax
"$PYTHON" -c "import jax, keras; print('devices:', jax.devices(), '| keras', keras.__version__)"
started=$(date +%s)
"$PYTHON" -m backdrop.cli train -r "$BUNDLE/records" --init-from "$BUNDLE/start/start.keras" \
    -o "$OUT/run" -e "$EPOCHS" -b "$BATCH" --learning-rate 2e-4 --crop-aspect input --cache \
    --export none --seed 1
echo "trained $EPOCHS epochs in $(( $(date +%s) - started )) s"
