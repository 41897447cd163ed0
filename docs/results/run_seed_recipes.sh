#!/usr/bin/env bash
# Short CPU runs of the seed recipes on FER2013 (train to fit, valid to choose and report), as
# recorded in docs/results/README.md. Each run is capped by limit_train/epochs/max_minutes so the
# five fit in about an hour on one core; drop those overrides for the full recipes.
# Usage: docs/results/run_seed_recipes.sh PATH/TO/fer2013 [RUNS_DIR]
set -euo pipefail
data=${1:?usage: $0 PATH/TO/fer2013 [RUNS_DIR]}
runs=${2:-runs}
here=$(cd "$(dirname "$0")" && pwd)
emotrace=${EMOTRACE:-emotrace}
run() {
    local name=$1; shift
    "$emotrace" train --config "configs/$name.yaml" --data "$data" --out "$runs/$name" \
        --no-progress threads=1 "$@"
    "$emotrace" evaluate --model "$runs/$name" --data "$data" --split valid -o "$runs/$name/eval" \
        --threads 1
    mkdir -p "$here/$name"
    cp "$runs/$name/eval/metrics.json" "$runs/$name/history.csv" "$here/$name/"
}
run mobilenet_v2_frozen limit_train=10000 epochs=2 max_minutes=12
run cnn_fer2013 limit_train=8000 epochs=2 max_minutes=12
run mobilenet_v2_finetune limit_train=8000 epochs=2 max_minutes=12
run mobilenet_v2_facecrop_finetune limit_train=8000 epochs=2 max_minutes=12
run mobilevit_xs_fer2013 limit_train=3000 epochs=2 max_minutes=12
