#!/usr/bin/env bash
# Issue 44: does more video help? Every DAVIS people sequence left out in turn, each fine-tuned
# with and without davis2016_more as footage (benchmarks/leave_one_out.py; sam2_bedroom's frames
# in both), one labels folder for all. Rerun the same command to continue where it stopped.
#   bash benchmarks/leave_one_out.sh [RUN_ROOT] [LABELS_TO_SEED_FROM]
# LABELS_TO_SEED_FROM: a labels folder of the same teacher (e.g. make beat's
# runs/beat_mediapipe/labels), copied once so that the teacher skips what it holds.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=${1:-runs/loo}
if [ -n "${2:-}" ] && [ ! -d "$ROOT/labels/data" ]; then
    mkdir -p "$ROOT/labels" && cp -r "$2/data" "$ROOT/labels/"
fi
for sequence in tennis dance-twirl breakdance dance-jump breakdance-flare; do
    for setting in none more; do
        extra=()
        [ "$setting" = none ] && extra=(--no-footage)
        echo "=== $sequence $setting $(date +%T)"
        .venv/bin/python benchmarks/leave_one_out.py "$ROOT/$setting" --sequences "$sequence" \
            --labels "$ROOT/labels" "${extra[@]}" || echo "FAILED $sequence $setting"
    done
done
for sequence in tennis dance-twirl breakdance dance-jump breakdance-flare; do
    .venv/bin/python benchmarks/leave_one_out.py "$ROOT/more" --sequences "$sequence" \
        --labels "$ROOT/labels" --against "$ROOT/none" 2>/dev/null | sed -n '/^| left out |/,$p'
done
