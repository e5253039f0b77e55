#!/usr/bin/env bash
# Issue 14's ablation, row "+ new data": issue 6's mobile segmenter trained from scratch exactly as
# `make mobile` trains it (same flags, 200 float + 20 quantization-aware epochs), on the old data
# AND the new labelled sets (picsart_selfies, ccp_fashion). Only their training splits are
# trained on: `prepare` holds out the same validation pictures `evaluate --split validation`
# scores. Then the same evaluate as `make beat`'s, beside MediaPipe general.
#
#   bash recipes/scratch_all_data.sh [RUN_DIR] [EPOCHS] [QUANTIZE_AWARE_EPOCHS]
#
# About 4 h on 2 CPU cores, so it is resumable: run it again and it continues from the last
# finished epoch (records that exist are kept). Environment: BACKDROP_DATA, BACKDROP_ANCHORS.
# Nothing trained here may be committed: the data's licences forbid it.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/scratch_all_data}
EPOCHS=${2:-200}
QAT_EPOCHS=${3:-20}
DATA=${BACKDROP_DATA:-../shared/datasets}
ANCHORS=${BACKDROP_ANCHORS:-../shared/anchors}
BIN=.venv/bin
[ -x "$BIN/backdrop" ] || make .venv/.installed  # same set-up as make demo
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

# `make mobile`'s training flags, unchanged.
TRAIN=(train -r "$RUN/records" --model mobile_segmenter --input 256 -f 16 --activation relu
    --crop-aspect input --whole-frame-probability 0.3
    -b 16 --learning-rate 3e-3 --weight-decay 0 --cache --repeat-source portrait=2
    --copy-paste-probability 0.4 --background "$RUN/backgrounds" --background-probability 0.5
    -o "$RUN/training" --export none)
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
