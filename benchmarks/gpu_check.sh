#!/usr/bin/env bash
# Every GPU check and figure of docs/performance.md in one call, for a machine with one CUDA GPU.
#
#   bash benchmarks/gpu_check.sh            # from the repository root; results in runs/gpu-check/
#   OUT=/some/folder bash benchmarks/gpu_check.sh
#
# Runs from the source tree (PYTHONPATH=src) with the python3 that holds PyTorch there, so it
# needs no install; set PYTHON to use another interpreter. Writes six files into $OUT:
#   env.txt           GPU, driver, torch and CUDA versions
#   tests.txt         pytest of the CUDA tests (loss vs CPU, every precision, no sync in a step)
#   loss_speed.txt    the vectorised loss against the per-query loop on the GPU
#   batch1_fp32.txt   the four presets at batch 1, fp32 (the latency and memory targets)
#   best_eager.txt    bf16 + channels-last at larger batches (the throughput targets)
#   best_compile.txt  the same with torch.compile, at the batch named by COMPILE_BATCH (32)
# Each benchmark prints JSON lines, then a markdown table whose last column says which targets
# were met. A step that fails does not stop the others. About 5 to 8 minutes on an H100.
set -uo pipefail
OUT=${OUT:-runs/gpu-check}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}  # DEVICE=cpu SIZE=32 BATCHES=2 COMPILE_BATCH=2 tries the plumbing on a CPU
SIZE=${SIZE:-256}
BATCHES=${BATCHES:-8,16,32,64}
COMPILE_BATCH=${COMPILE_BATCH:-32}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore

step() {  # step NAME FILE COMMAND...: run, keep its output, say how long it took
    local name=$1 file=$2
    shift 2
    local t0=$SECONDS
    "$@" >"$OUT/$file" 2>&1
    local rc=$?
    echo "$name: rc $rc, $((SECONDS - t0)) s -> $OUT/$file"
    tail -n 12 "$OUT/$file"
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
    "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name())'
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

step tests tests.txt "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_device_sync.py
step loss loss_speed.txt "$PY" benchmarks/loss_speed.py --device "$DEVICE" --windows 64,32,16 --repeats 20
step batch1 batch1_fp32.txt "$PY" benchmarks/train_step.py --device "$DEVICE" --size "$SIZE" \
    --preset fsesim,fsesim-w32,lsesim,lsesim-w32 --batch 1 --precision fp32 --steps 30 --warmup 5
step best best_eager.txt "$PY" benchmarks/train_step.py --device "$DEVICE" --size "$SIZE" \
    --preset fsesim,lsesim --batch "$BATCHES" --precision bf16 --channels-last --steps 10 --warmup 3
step compile best_compile.txt timeout 420 "$PY" benchmarks/train_step.py --device "$DEVICE" --size "$SIZE" \
    --preset fsesim,lsesim --batch "$COMPILE_BATCH" --precision bf16 --channels-last --compile \
    --steps 10 --warmup 3
