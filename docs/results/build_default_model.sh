#!/usr/bin/env bash
# How the bundled default model is built, start to finish (see docs/model_card.md).
# Usage: docs/results/build_default_model.sh PATH/TO/fer2013 [RUN_DIR]
# Fits on train, chooses the epoch and fits the temperature on valid; nothing else sees valid.
# The fp32 model stores its weights in half precision (6 MB instead of 12; compute stays fp32).
set -euo pipefail
data=${1:?usage: $0 PATH/TO/fer2013 [RUN_DIR]}
run=${2:-runs/emonet_deep_fer2013}
emotrace=${EMOTRACE:-emotrace}
assets=src/emotrace/assets
results=docs/results/emonet_deep_fer2013

if [ ! -f "$run/state.pt" ]; then
    "$emotrace" train --config configs/emonet_deep_fer2013.yaml --data "$data" --out "$run"
fi
"$emotrace" calibrate "$run" --data "$data" --split valid
"$emotrace" export "$run" -o "$assets/emotrace_default.onnx" --fp16-weights --name emonet-deep-fer2013
"$emotrace" export "$run" -o "$assets/emotrace_default_int8.onnx" --int8 --data "$data" \
    --name emonet-deep-fer2013-int8
"$emotrace" evaluate --model default --data "$data" --split valid -o "$run/eval" --tta flip
"$emotrace" evaluate --model "$assets/emotrace_default_int8.onnx" --data "$data" --split valid \
    -o "$run/eval-int8"
mkdir -p "$results/int8"
cp "$run/eval/metrics.json" "$run/eval/confusion_matrix.png" "$run/eval/reliability.png" \
    "$run/history.csv" "$run/curves.png" "$results/"
cp "$run/eval-int8/metrics.json" "$results/int8/"
