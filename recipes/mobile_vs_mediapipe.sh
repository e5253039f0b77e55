#!/usr/bin/env bash
# Issue 6 recipe: train Backdrop's mobile segmenter on the real data in ../shared/datasets and
# measure it beside MediaPipe's selfie segmenter. About 50 minutes on 2 quiet CPU cores (57-59
# with other work beside it).
#
#   bash recipes/mobile_vs_mediapipe.sh [RUN_DIR] [EPOCHS] [QUANTIZE_AWARE_EPOCHS]
#
# Environment: ACTIVATION, CROP_ASPECT, WHOLE_FRAME, WEIGHT_DECAY override the training options
# (recipes/mobile_training.sh; the variants measured in
# docs/lab/2026-11-issue-6-mobile-segmenter.md); BACKDROP_DATA, BACKDROP_ANCHORS the folders.
# Nothing trained here may be committed: the data's licences forbid redistributing it.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/mobile_vs_mediapipe}
EPOCHS=${2:-200}
QAT_EPOCHS=${3:-20}
source recipes/mobile_training.sh
DATA=${BACKDROP_DATA:-../shared/datasets}
ANCHORS=${BACKDROP_ANCHORS:-../shared/anchors}
BIN=.venv/bin
# The same set-up as make demo: Backdrop's venv, and MediaPipe's for the files' TFLite metadata.
make --no-print-directory .venv/.installed .venv-mediapipe/.installed
mkdir -p "$RUN/backgrounds"

# Person-free COCO images become replacement backgrounds (links, nothing copied).
"$BIN/python" recipes/coco_backgrounds.py "$DATA" "$RUN/backgrounds"

"$BIN/backdrop" prepare -d "$RUN/records" --side 288 --remove-all-previous-results -q \
    --portrait "$DATA/human_seg_vikram" \
    --davis "$DATA/davis2016_people" --davis-frame-step 3 \
    --coco "$DATA/coco_tiny/tiny_coco" --coco-split train2017 --coco-split val2017

mobile_training "$RUN"
"$BIN/backdrop" "${TRAIN[@]}" -e "$EPOCHS" --remove-all-previous-results
# The last float epoch with plain post-training int8, to show what the fine-tuning below buys.
"$BIN/backdrop" export "$RUN/training/epoch-$(printf %04d "$EPOCHS").keras" -r "$RUN/records" \
    --modes float32 int8 -o "$RUN/post_training"
# Then fine-tune with int8 rounding simulated (batch norm frozen), for the int8 export.
TOTAL=$((EPOCHS + QAT_EPOCHS))
"$BIN/backdrop" "${TRAIN[@]}" -e "$TOTAL" --quantize-aware-epochs "$QAT_EPOCHS" --restore

# The last epoch, not best.keras: "best" is picked on the validation split that is measured below.
"$BIN/backdrop" export "$RUN/training/epoch-$(printf %04d "$TOTAL").keras" -r "$RUN/records" \
    --modes float32 float16 int8

# Portraits of the deterministic validation split (never trained on), and DAVIS for flicker:
# the held-out sequence (the validation split), then all five (four were trained on).
"$BIN/backdrop" evaluate "$RUN"/training/model_{float32,float16,int8}.tflite \
    "$RUN"/post_training/model_{float32,int8}.tflite "$ANCHORS/selfie_segmentation.tflite" \
    --data "portrait:$DATA/human_seg_vikram" --split validation -o "$RUN/evaluation" -q
"$BIN/backdrop" evaluate "$RUN"/training/model_{float32,int8}.tflite \
    "$ANCHORS/selfie_segmentation.tflite" --data "davis:$DATA/davis2016_people" \
    --split validation -o "$RUN/evaluation_davis" -q
"$BIN/backdrop" evaluate "$RUN/training/model_float32.tflite" "$ANCHORS/selfie_segmentation.tflite" \
    --data "davis:$DATA/davis2016_people" -o "$RUN/evaluation_davis_all" -q
"$BIN/backdrop" report "$RUN/training"
