#!/usr/bin/env bash
# How the bundled default model is built, start to finish (see docs/model_card.md).
# Usage: scripts/build_default_model.sh PATH/TO/fer2013 [RUN_DIR]   (from the repository root)
# Fits on YuNet-aligned train crops, chooses the epoch and fits the temperature on aligned valid;
# nothing else sees valid. The teachers for distillation are the two previous defaults (0.1.0's
# EmoNet-deep on FER2013's own crops, commit 2690ec4; EmoNet-deep on aligned crops, commit
# 8c47658), both fitted on train only. Needs ImageNet MobileNetV2 weights
# (mobilenet_v2-b0353104.pth) in torch hub's checkpoint folder (~/.cache/torch/hub/checkpoints).
#
# The two bundled files are one network: the int8 model, fine-tuned for int8 against the
# checkpoint, and its float twin (the same weights computed in float; `--float-twin`), so that
# `default` and `default-int8` give the same answer on 98.9% of valid faces. The twin stores its
# weights in half precision (4.7 MB; compute stays fp32).
set -euo pipefail
data=${1:?usage: $0 PATH/TO/fer2013 [RUN_DIR]}
run=${2:-runs/mobilenet_v2_distilled_aligned_fer2013}
emotrace=${EMOTRACE:-emotrace}
assets=src/emotrace/assets
results=docs/results/mobilenet_v2_distilled_aligned_fer2013
teachers="$run.teachers"

mkdir -p "$teachers"
[ -f "$teachers/default_010.onnx" ] ||
    git show 2690ec4:src/emotrace/assets/emotrace_default.onnx > "$teachers/default_010.onnx"
[ -f "$teachers/default_aligned.onnx" ] ||
    git show 8c47658:src/emotrace/assets/emotrace_default.onnx > "$teachers/default_aligned.onnx"
if [ ! -f "$run/state.pt" ]; then
    # train prepares (and caches) the aligned crops itself: the config says align: true.
    "$emotrace" train --config configs/mobilenet_v2_distilled_aligned_fer2013.yaml --data "$data" \
        --out "$run" "distill_teacher=[$teachers/default_010.onnx,$teachers/default_aligned.onnx]"
fi
"$emotrace" calibrate "$run" --data "$data" --split valid
# The checkpoint's own fp32 export, for comparison (not bundled).
"$emotrace" export "$run" -o "$run/export_fp32.onnx" --fp16-weights \
    --name mobilenet-v2-aligned-fer2013
"$emotrace" export "$run" -o "$assets/emotrace_default_int8.onnx" --int8 --data "$data" \
    --qat-epochs 1 --qat-lr 3e-5 --qat-augment \
    --float-twin "$assets/emotrace_default.onnx" --fp16-weights \
    --name mobilenet-v2-aligned-fer2013-int8
"$emotrace" evaluate --model default --data "$data" --split valid -o "$run/eval" --tta flip
"$emotrace" evaluate --model default-int8 --data "$data" --split valid -o "$run/eval-int8" \
    --tta flip
"$emotrace" evaluate --model "$run/export_fp32.onnx" --data "$data" --split valid \
    -o "$run/eval-export" --tta flip
mkdir -p "$results/int8" "$results/export_fp32"
cp "$run/eval/metrics.json" "$run/eval/confusion_matrix.png" "$run/eval/reliability.png" \
    "$run/history.csv" "$run/curves.png" "$results/"
cp "$run/eval-int8/metrics.json" "$results/int8/"
cp "$run/eval-export/metrics.json" "$results/export_fp32/"
