#!/usr/bin/env bash
# Issue 14's ablation, row "+ new data": issue 6's mobile segmenter trained from scratch with
# `make mobile`'s flags (recipes/mobile_training.sh) on the old data AND the new labelled sets
# (picsart_selfies, ccp_fashion), for as many training steps as `make mobile` takes: its 200 float
# + 20 quantization-aware epochs are 35 steps each on the old data, these 25 + 3 are 280 each
# (7000 + 840 steps against 7000 + 700). Only the training splits are trained on: `prepare` holds
# out the same validation pictures `evaluate --split validation` scores. Then the same evaluate
# as `make beat`'s, beside MediaPipe general.
#
#   bash recipes/scratch_all_data.sh [RUN_DIR] [EPOCHS] [QUANTIZE_AWARE_EPOCHS]
#
# Epochs took 138-206 s on 2 CPU cores with little else running (2026-11-27; about 1 h 20 min in
# all, the first epoch longer as it fills the cache), so it is resumable: run it again and it
# continues from the last finished epoch (records that exist are kept). Environment:
# BACKDROP_DATA, BACKDROP_ANCHORS. Nothing trained here may be committed: the data's licences
# forbid it.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/scratch_all_data}
EPOCHS=${2:-25}
QAT_EPOCHS=${3:-3}
DATA=${BACKDROP_DATA:-../shared/datasets}
ANCHORS=${BACKDROP_ANCHORS:-../shared/anchors}
BIN=.venv/bin
# The same set-up as make demo: Backdrop's venv, and MediaPipe's for the files' TFLite metadata.
make --no-print-directory .venv/.installed .venv-mediapipe/.installed
mkdir -p "$RUN/backgrounds"
started=$(date +%s)

"$BIN/python" recipes/coco_backgrounds.py "$DATA" "$RUN/backgrounds"
if [ ! -f "$RUN/records/metadata.json" ]; then
    "$BIN/backdrop" prepare -d "$RUN/records" --side 288 --remove-all-previous-results -q \
        --portrait "$DATA/human_seg_vikram" \
        --davis "$DATA/davis2016_people" --davis-frame-step 3 \
        --coco "$DATA/coco_tiny/tiny_coco" --coco-split train2017 --coco-split val2017 \
        --portrait "$DATA/picsart_selfies" --portrait "$DATA/ccp_fashion"
fi

source recipes/mobile_training.sh
mobile_training "$RUN"
TOTAL=$((EPOCHS + QAT_EPOCHS))
last() { printf '%s/training/epoch-%04d.keras' "$RUN" "$1"; }
done_epochs() {  # epochs the run folder has finished (0: none)
    "$BIN/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["epoch"])' \
        "$RUN/training/state.json" 2> /dev/null || echo 0
}
if [ "$(done_epochs)" -lt "$EPOCHS" ]; then
    restore=()
    [ -f "$RUN/training/state.json" ] && restore=(--restore)
    "$BIN/backdrop" "${TRAIN[@]}" -e "$EPOCHS" "${restore[@]}"
fi
if [ "$(done_epochs)" -lt "$TOTAL" ]; then
    "$BIN/backdrop" "${TRAIN[@]}" -e "$TOTAL" --quantize-aware-epochs "$QAT_EPOCHS" --restore
fi
"$BIN/backdrop" export "$(last "$TOTAL")" -r "$RUN/records" --modes float16 int8

"$BIN/backdrop" evaluate "$RUN"/training/model_{float16,int8}.tflite \
    "$ANCHORS/selfie_segmentation.tflite" \
    --data "portrait:$DATA/picsart_selfies" "portrait:$DATA/human_seg_vikram" \
    "davis:$DATA/davis2016_people" --split validation -o "$RUN/evaluation" -q
echo "recipe wall time (this invocation): $(( ($(date +%s) - started) / 60 )) min"
