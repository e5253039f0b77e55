#!/usr/bin/env bash
# Issue 44: `make beat`'s square recipe judged by leaving one DAVIS people sequence out at a time,
# with and without more video (davis2016_more's seven sequences as footage, sam2_bedroom's
# frames as photos). Each fold is the recipe's fine-tune (benchmarks/leave_one_out.py): from
# MediaPipe general, the unlabelled selfies as photos (a tenth held out), the training splits of
# the three still sets and of the other DAVIS sequences as data, COCO backgrounds, crops of the
# input's shape, 20 epochs. Every fold scores its left-out sequence and the three still sets'
# validation splits. Rerun the same command to continue where it stopped.
#   bash benchmarks/leave_one_out_recipe.sh [RUN_ROOT] [SETTING ...]
# SETTING: beat (the recipe as make beat runs it), more (with more video), frame (crops shaped
# like each picture, stretched to the input as the runtime stretches every frame, instead of the
# recipe's undistorted square crops) and small (the recipe with a quarter of its examples shrunk
# to 30-90% of their side onto a COCO background: people nearer tennis's size in the frame) and
# landscape (`make beat`'s landscape recipe: from Google Meet's segmenter, two seeds averaged,
# frame-shaped crops; about twice a square fold's time; its "start" column is Meet's, the goal
# also asks for MediaPipe landscape: `backdrop evaluate` it on RUN/landscape/folds/S/scored);
# default: beat and more. Folds run sequence by sequence, every setting's fold of a sequence
# before the next sequence's.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:-runs/loo_recipe}
shift || true
SETTINGS=("$@")
[ ${#SETTINGS[@]} -eq 0 ] && SETTINGS=(beat more)
DATA=${BACKDROP_DATA:-../shared/datasets}
MEET=${BACKDROP_MODELS:-../shared/models}/meet_segmentation/segm_full_v679.tflite
make --no-print-directory .venv/.installed .venv-mediapipe/.installed
.venv/bin/python recipes/coco_backgrounds.py "$DATA" "$ROOT/backgrounds"
recipe=(
    --data "portrait:$DATA/picsart_selfies" --data "portrait:$DATA/human_seg_vikram"
    --data "portrait:$DATA/ccp_fashion" --held-out-share 0.1
    --background "$ROOT/backgrounds" --labels "$ROOT/labels"
)
selfies="$DATA/picsart_selfies/unlabelled"
settings_of() {  # the flags of one setting, into the array `extra`
    case $1 in
        beat) extra=(--photos "$selfies" --no-footage --crop-aspect input) ;;
        more) extra=(--photos "$selfies" "$DATA/sam2_bedroom/frames" --crop-aspect input) ;;
        frame) extra=(--photos "$selfies" --no-footage --crop-aspect frame) ;;
        small)
            extra=(--photos "$selfies" --no-footage --crop-aspect input --zoom-out-probability 0.25)
            ;;
        landscape)
            extra=(--photos "$selfies" --no-footage --start "$MEET" --seeds 2 --crop-aspect frame)
            ;;
        *) echo "unknown setting $1 (beat, more, frame, small or landscape)" >&2; exit 2 ;;
    esac
}
for setting in "${SETTINGS[@]}"; do settings_of "$setting"; done
for sequence in tennis dance-twirl breakdance dance-jump breakdance-flare; do
    for setting in "${SETTINGS[@]}"; do
        settings_of "$setting"
        echo "=== $sequence $setting $(date +%T)"
        .venv/bin/python benchmarks/leave_one_out.py "$ROOT/$setting" --sequences "$sequence" \
            "${recipe[@]}" "${extra[@]}" || echo "FAILED $sequence $setting"
    done
done
# Every fold's table again, together, and each other setting against the recipe's.
for setting in "${SETTINGS[@]}"; do
    settings_of "$setting"
    against=()
    # The landscape model is another model, not another setting of the square one.
    case $setting in beat | landscape) ;; *) [ -d "$ROOT/beat" ] && against=(--against "$ROOT/beat") ;; esac
    echo "=== $setting"
    .venv/bin/python benchmarks/leave_one_out.py "$ROOT/$setting" "${recipe[@]}" "${extra[@]}" \
        "${against[@]}" 2>/dev/null | sed -n '/^| left out/,$p'
done
