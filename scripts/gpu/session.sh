#!/usr/bin/env bash
# One GPU lease (device tool, about 10 minutes of one H200): MobileViT-XS's full seed recipe and
# the default model's candidate students and teachers, trained side by side (each run is
# launch-bound, so one GPU holds several), then everything packed under OUT_DIR.
#
# Usage, from the repository root on the GPU machine (PYTHONPATH=src, no install, no network):
#   scripts/gpu/session.sh PACK_DIR OUT_DIR [SECONDS]
# PACK_DIR is what `pack_data.py pack` wrote; SECONDS (default 540) is when unfinished runs are
# stopped (Ctrl+C: each keeps its last finished epoch, resumable) and packing starts. EXTRA adds
# overrides to every run (a quick CPU check: EXTRA='device=cpu epochs=1 limit_train=256').
# The CPU path to the same runs is the same `emotrace train` commands (see RUNS below) with
# --data PATH/TO/fer2013; only the data and weights' transport is special here: the MobileNetV2
# runs name the unpacked backbone with pretrained_weights= (torch hub's file cannot be fetched).
set -uo pipefail
# Job control: background runs get their own process groups and keep Ctrl+C (SIGINT) handled, so
# the deadline below can stop each after its last finished epoch (without it, bash starts
# background commands with SIGINT ignored).
set -m
pack=${1:?usage: $0 PACK_DIR OUT_DIR [SECONDS]}
out=${2:?usage: $0 PACK_DIR OUT_DIR [SECONDS]}
deadline=${3:-540}
repo=$(pwd)
work=/tmp/emotrace-gpu
mkdir -p "$work/logs" "$work/runs" "$out"
export PYTHONPATH=$repo/src PYTHONUNBUFFERED=1 EMOTRACE_CACHE=$work/cache
weights=$work/imagenet_mobilenet_v2.pth
py=${PYTHON:-python3}
emotrace=("$py" -m emotrace)  # the CLI from the repository: nothing is installed there
log() { echo "[$(printf '%4d' "$SECONDS")s] $*" | tee -a "$out/session.log"; }

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    "$py" -c "import torch, onnxruntime, cv2; print('torch', torch.__version__, 'cuda', \
torch.cuda.is_available(), 'onnxruntime', onnxruntime.__version__, 'opencv', cv2.__version__)"
    nproc
} > "$out/machine.txt" 2>&1
cat "$out/machine.txt"
"$py" "$repo/scripts/gpu/pack_data.py" unpack "$pack" "$work/fer2013" "$weights" || exit 1
data=$work/fer2013
log "data unpacked"

train() {  # train NAME CONFIG [OVERRIDES...]: one background run, its log in $work/logs
    local name=$1 config=$2
    shift 2
    "${emotrace[@]}" train --config "$config" --data "$data" --out "$work/runs/$name" --no-progress \
        threads=2 "$@" ${EXTRA:-} > "$work/logs/$name.log" 2>&1 &
    echo "$name $!" >> "$work/pids"
    log "started $name: $config $*"
}

# RUNS. MobileViT-XS: the seed recipe as train_seed_recipes.sh runs it.
train mobilevit_xs_fer2013 configs/mobilevit_xs_fer2013.yaml precision=bf16
# The aligned 96 px crops, prepared (and cached) once before the runs that share them.
"$py" - <<PY
from emotrace.data.prepared import load_prepared
from emotrace.preprocessing import Preprocess
from emotrace.training import load_config
config = load_config("configs/mobilenet_v2_distilled_aligned_fer2013.yaml", [])
load_prepared("$data", Preprocess.from_dict(config.preprocess))
PY
log "aligned crops prepared"
student=(configs/mobilenet_v2_distilled_aligned_fer2013.yaml "pretrained_weights=$weights")
mixing=(mixup=0.2 cutmix=1.0 mix_prob=0.5 model_options.drop_path=0.1)
# Students of the bundled default (born-again distillation): a longer schedule alone, and with
# mixing + stochastic depth. Teachers without distillation (seeds 1 and 2), regularised alike.
train student_long "${student[@]}" "distill_teacher=[default]" epochs=40
train student_mix "${student[@]}" "distill_teacher=[default]" epochs=40 "${mixing[@]}"
train teacher_mix_s1 "${student[@]}" epochs=40 seed=1 "${mixing[@]}"
train teacher_mix_s2 "${student[@]}" epochs=40 seed=2 "${mixing[@]}"

running() { jobs -rp | wc -l; }
while [ "$(running)" -gt 0 ] && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 10
    if [ $((SECONDS % 60)) -lt 10 ]; then
        for f in "$work"/logs/*.log; do log "$(basename "$f" .log): $(grep -h '^epoch' "$f" | tail -1)"; done
    fi
done
if [ "$(running)" -gt 0 ]; then
    log "deadline: stopping $(running) unfinished run(s); each keeps its last finished epoch"
    while read -r name pid; do kill -INT "$pid" 2>/dev/null || true; done < "$work/pids"
    wait
fi
log "packing"
"$py" - "$work/runs" "$work/logs" "$out" <<'PY'
import sys, tarfile
from pathlib import Path
runs, logs, out = map(Path, sys.argv[1:4])
budget = 58 * 2**20  # under the 64 MiB that comes back, with the logs
small = [p for p in sorted(runs.rglob("*")) if p.is_file() and p.suffix in {".csv", ".yaml", ".png", ".json"}]
small += sorted(logs.glob("*.log"))
import yaml

def unfinished(run):
    hist, cfg = run / "history.csv", run / "config.yaml"
    if not hist.is_file() or not cfg.is_file():
        return False
    done = len(hist.read_text().strip().splitlines()) - 1
    return done < int(yaml.safe_load(cfg.read_text())["epochs"])

# The seed recipe first (its best checkpoint, and its resume point if it did not finish), then the
# other runs' best checkpoints, then their resume points (each file under 16 MiB comes back).
order = sorted((r for r in runs.iterdir() if r.is_dir()), key=lambda r: r.name != "mobilevit_xs_fer2013")
heavy = []
for rank, run in enumerate(order):
    heavy.append(run / "model.safetensors")
    if rank == 0 and unfinished(run):
        heavy += [run / "last.safetensors", run / "state.pt"]
heavy += [p for run in order[1:] if unfinished(run) for p in (run / "last.safetensors", run / "state.pt")]
chosen, used = [], sum(p.stat().st_size for p in small)
for p in heavy:
    if p.is_file() and used + p.stat().st_size <= budget:
        chosen.append(p)
        used += p.stat().st_size
    else:
        print("left out:", p)
with tarfile.open(out / "runs.tar", "w") as tar:
    for p in small + chosen:
        tar.add(p, arcname=str(p.relative_to(p.parents[1])))
print(f"runs.tar: {used / 2**20:.1f} MiB")
PY
cd "$out" && split -b 15M -d runs.tar runs.tar.part && rm runs.tar && ls -la "$out"
log "done"
