#!/usr/bin/env bash
# How the bundled default model is built, start to finish (see docs/model_card.md).
# Usage: docs/results/build_default_model.sh PATH/TO/fer2013 [RUN_DIR]
# Fits on YuNet-aligned train crops, chooses the epoch and fits the temperature on aligned valid;
# nothing else sees valid. The teacher for distillation is emotrace 0.1.0's default model
# (EmoNet-deep on FER2013's own crops; commit 2690ec4), which was itself fitted on train only.
# The fp32 model stores its weights in half precision (6 MB instead of 12; compute stays fp32).
set -euo pipefail
data=${1:?usage: $0 PATH/TO/fer2013 [RUN_DIR]}
run=${2:-runs/emonet_deep_aligned_fer2013}
emotrace=${EMOTRACE:-emotrace}
assets=src/emotrace/assets
results=docs/results/emonet_deep_aligned_fer2013
teacher="$run.teacher.onnx"

if [ ! -f "$teacher" ]; then
    mkdir -p "$(dirname "$teacher")"
    git show 2690ec4:src/emotrace/assets/emotrace_default.onnx > "$teacher"
fi
if [ ! -f "$run/state.pt" ]; then
    # train prepares (and caches) the aligned crops itself: the config says align: true.
    "$emotrace" train --config configs/emonet_deep_aligned_fer2013.yaml --data "$data" \
        --out "$run" distill_teacher="$teacher"
fi
"$emotrace" calibrate "$run" --data "$data" --split valid
"$emotrace" export "$run" -o "$assets/emotrace_default.onnx" --fp16-weights \
    --name emonet-deep-aligned-fer2013
"$emotrace" export "$run" -o "$assets/emotrace_default_int8.onnx" --int8 --data "$data" \
    --name emonet-deep-aligned-fer2013-int8
"$emotrace" evaluate --model default --data "$data" --split valid -o "$run/eval" --tta flip
"$emotrace" evaluate --model "$assets/emotrace_default_int8.onnx" --data "$data" --split valid \
    -o "$run/eval-int8"
mkdir -p "$results/int8"
cp "$run/eval/metrics.json" "$run/eval/confusion_matrix.png" "$run/eval/reliability.png" \
    "$run/history.csv" "$run/curves.png" "$results/"
cp "$run/eval-int8/metrics.json" "$results/int8/"
