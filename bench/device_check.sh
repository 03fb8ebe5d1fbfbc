#!/usr/bin/env bash
# One-shot CUDA check on a lent GPU machine (its python3 already has torch; our few extra
# pure-Python wheels travel in .whl/, a small real RSICD subset in .devdata/):
#   CUDA embedding and training-step throughput, a real 3-epoch training run with
#   autocast + pinned memory, and evaluation of its checkpoint. Results land in $OUT.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SCENESEEK_DATA=$PWD/.devdata
nvidia-smi -L | tee "$OUT/gpu.txt"
python3 -m bench.bench_cuda --device cuda 2>&1 | tee "$OUT/bench_cuda.txt"
python3 -m core train --dataset rsicd --text bigru --epochs 3 --device cuda --workers 8 \
  --out /tmp/run --cache /tmp/cache 2>&1 | grep -v "it/s\]$" | tr '\r' '\n' | grep -v "batch/s\]$" | tail -20 | tee "$OUT/train.txt"
cp /tmp/run/metrics.jsonl "$OUT/" 2>/dev/null
python3 -m core evaluate --dataset rsicd --split test --checkpoint /tmp/run/best.safetensors \
  --device cuda --workers 8 --json 2>&1 | tail -3 | tee "$OUT/eval.txt"
