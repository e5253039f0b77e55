# `make mobile`'s training flags for Backdrop's mobile segmenter (issue 6), sourced by every recipe
# that trains it from scratch, so that they train it the same way.
# Environment: ACTIVATION, CROP_ASPECT, WHOLE_FRAME, WEIGHT_DECAY override the options below (the
# variants measured in docs/lab/2026-11-issue-6-mobile-segmenter.md).
ACTIVATION=${ACTIVATION:-relu}  # relu6: a smaller post-training int8 drop, lower IoU
CROP_ASPECT=${CROP_ASPECT:-input}  # frame: crops stretched like the runtime's frames
WHOLE_FRAME=${WHOLE_FRAME:-0.3}  # share of examples that are the whole frame, stretched
WEIGHT_DECAY=${WEIGHT_DECAY:-0}  # AdamW's decoupled weight decay; 0: plain Adam

mobile_training() {  # RUN: sets TRAIN, `backdrop train`'s arguments (RUN/records into RUN/training)
    local run="$1"
    TRAIN=(train -r "$run/records" --model mobile_segmenter --input 256 -f 16
        --activation "$ACTIVATION" --crop-aspect "$CROP_ASPECT"
        --whole-frame-probability "$WHOLE_FRAME"
        -b 16 --learning-rate 3e-3 --weight-decay "$WEIGHT_DECAY" --cache --repeat-source portrait=2
        --copy-paste-probability 0.4 --background "$run/backgrounds" --background-probability 0.5
        -o "$run/training" --export none)
}
