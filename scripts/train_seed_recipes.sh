#!/usr/bin/env bash
# Full schedules of the seed recipes on FER2013 (fit on train, choose and report on valid), as
# recorded in docs/results/README.md's "converged" table. Resumable: rerun the same command after
# an interruption (or in the next session) and each run continues from its last finished epoch; a
# recipe whose evaluation exists is skipped. The same script runs on a CPU or a GPU (device=auto).
#
# Usage: scripts/train_seed_recipes.sh PATH/TO/fer2013 RUNS_DIR [RECIPE ...]
#   RECIPE defaults to all five, cheapest first. Environment: PRECISION (default bf16: about 1.8x
#   faster on CPUs with AVX512-BF16 or AMX and on GPUs; use fp32 elsewhere), EMOTRACE (the CLI).
# The MobileNetV2 recipes need mobilenet_v2-b0353104.pth in torch hub's checkpoint folder
# (~/.cache/torch/hub/checkpoints); torch downloads it there when absent.
set -euo pipefail
data=${1:?usage: $0 PATH/TO/fer2013 RUNS_DIR [RECIPE ...]}
runs=${2:?usage: $0 PATH/TO/fer2013 RUNS_DIR [RECIPE ...]}
shift 2
recipes=("$@")
if [ ${#recipes[@]} -eq 0 ]; then
    recipes=(mobilenet_v2_frozen mobilenet_v2_finetune mobilenet_v2_facecrop_finetune
             cnn_fer2013 mobilevit_xs_fer2013)
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
results=$repo/docs/results
emotrace=${EMOTRACE:-emotrace}
python=${PYTHON:-python}
precision=${PRECISION:-bf16}

for name in "${recipes[@]}"; do
    run="$runs/$name"
    if [ -f "$run/eval/metrics.json" ]; then
        echo "$name: done (evaluation in $run/eval)"
        continue
    fi
    if [ -f "$run/state.pt" ]; then
        "$emotrace" train --resume "$run" --data "$data" --no-progress
    else
        "$emotrace" train --config "$repo/configs/$name.yaml" --data "$data" --out "$run" \
            --no-progress "precision=$precision"
    fi
    "$emotrace" export "$run" -o "$run/model.onnx"
    "$emotrace" evaluate --model "$run/model.onnx" --data "$data" --split valid -o "$run/eval"
    "$python" "$here/record_recipe.py" record "$run" "$run/eval" "$run/model.onnx" "$results/$name"
done
"$python" "$here/record_recipe.py" table "$results"
