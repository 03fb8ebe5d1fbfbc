"""Search inside an area of interest: tile lookup and exact ranking time by area size.

A synthetic scene of ``--tiles`` 256 px tiles (vectors mixed from real RSICD images, as in
``bench_query``, on the 1 m UTM grid of ``bench.synthetic.synthetic_catalog``); square areas
holding about 100 to 100,000 of its tiles are searched with real caption queries. An area's
tiles come from the tiles' windows and their rebuilt footprints (``aoi.tiles_in``) and are
all scored exactly; the last column is the same queries over the whole scene through the
annoy index, for comparison.

``--saw-tooth 4004,10004,40004`` instead times hostile areas (``bench.saw_tooth``: teeth
across a 10,000-tile scene, no model needed): reading the GeoJSON as the app and CLI do
(``parse_aoi``, limits and simplification included) and finding its tiles, each size in a
fresh process stopped after ``--timeout`` seconds, with its peak memory; the tiles found are
checked against testing every footprint.

    python -m bench.bench_aoi [--tiles 200000] [--queries 30]
    python -m bench.bench_aoi --saw-tooth 4004,10004,40004 [--tiles 10000] [--timeout 120]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely
import shapely.ops
import torch
from affine import Affine
from pyproj import CRS, Transformer
from shapely.geometry import box

from bench.bench_query import synthetic_scene
from bench.saw_tooth import saw_tooth
from bench.synthetic import real_vectors, synthetic_catalog
from core.device import limit_blas_threads
from core.learn.data.sources import load_dataset
from core.model.checkpoint import load_checkpoint
from core.model.inference import caption_energy
from core.model.shipped import resolve_checkpoint
from core.model.versions import model_tag
from core.search.aoi import AreaOfInterest, parse_aoi, tiles_in
from core.search.ranking import Filters, rank
from core.search.scenes import SceneIndex
from core.search.tile_columns import TileColumns

AREA_TILES = (100, 1_000, 10_000, 100_000)
TILE_PX = 256


def square(scene: SceneIndex, tiles: int) -> AreaOfInterest:
    """A square area over about ``tiles`` of the scene's tiles, in its north-west corner."""
    meta = scene.tiles.meta
    transform = Affine(*meta["transform"])
    side = (math.sqrt(tiles) * TILE_PX - TILE_PX / 2) * transform.a
    west, north = transform.c, transform.f
    quarter = TILE_PX / 4 * transform.a
    local = shapely.segmentize(box(west + quarter, north - side, west + side, north - quarter), 64)
    to_lonlat = Transformer.from_crs(CRS.from_wkt(meta["crs_wkt"]), "EPSG:4326", always_xy=True)
    return AreaOfInterest(shapely.ops.transform(to_lonlat.transform, local))


def p50_p95(ms: list[float]) -> tuple[float, float]:
    return float(np.median(ms)), float(np.percentile(ms, 95))


def _memory_kb(field: str) -> int:
    """A ``/proc/self/status`` memory line (``VmRSS``, ``VmHWM``: peak), in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def one_saw_tooth(vertices: int, tiles: int) -> dict[str, float | int | bool]:
    """Read and look up one saw-tooth area over a synthetic scene (run in its own process)."""
    catalog = synthetic_catalog(tiles)
    columns = TileColumns.from_catalog(catalog)
    text = json.dumps(saw_tooth(tuple(catalog.total_bounds), vertices))
    before = _memory_kb("VmRSS")
    t0 = time.perf_counter()
    area = parse_aoi(text)
    t1 = time.perf_counter()
    held = tiles_in(columns, area)
    t2 = time.perf_counter()
    peak = _memory_kb("VmHWM")
    every = np.flatnonzero(shapely.intersects(catalog.geometry.to_numpy(), area.geometry))
    return {
        "parse_s": t1 - t0,
        "lookup_s": t2 - t1,
        "kept": int(shapely.get_num_coordinates(area.geometry)),
        "tiles": len(held),
        "exact": bool(np.array_equal(held, every)),
        "peak_mb": max(peak - before, 0) / 1024,
    }


def saw_tooth_table(sizes: list[int], tiles: int, timeout: float) -> None:
    """One row per size, each measured in a fresh process so its peak memory is its own."""
    print(f"Scene: {tiles:,} synthetic 256 px tiles; timeout {timeout:.0f} s per area.\n")
    print(
        "| vertices | read (parse_aoi) s | tile lookup s | vertices kept | tiles | exact "
        "| memory peak MB |"
    )
    print("|---:|---:|---:|---:|---:|:-:|---:|")
    for n in sizes:
        command = [sys.executable, "-m", "bench.bench_aoi", "--one-saw-tooth", str(n)]
        try:
            done = subprocess.run(
                [*command, "--tiles", str(tiles)], capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            print(f"| {n:,} | > {timeout:.0f} s in all (stopped) | | | | | |")
            continue
        if done.returncode != 0:
            print(f"| {n:,} | failed: {done.stderr.strip().splitlines()[-1]} | | | | | |")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"| {n:,} | {r['parse_s']:.3f} | {r['lookup_s']:.3f} | {r['kept']:,} | {r['tiles']:,} "
            f"| {'yes' if r['exact'] else 'NO'} | {r['peak_mb']:,.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiles", type=int, default=None, help="default 200000 (10000 saw-tooth)")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--saw-tooth", help="comma-separated vertex counts")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--one-saw-tooth", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_saw_tooth:
        print(json.dumps(one_saw_tooth(args.one_saw_tooth, args.tiles or 10_000)))
        return
    if args.saw_tooth:
        sizes = [int(v) for v in args.saw_tooth.split(",")]
        saw_tooth_table(sizes, args.tiles or 10_000, args.timeout)
        return
    args.tiles = args.tiles or 200_000
    torch.set_num_threads(os.cpu_count() or 2)
    model, info = load_checkpoint(resolve_checkpoint(args.checkpoint))
    tag = model_tag(info.sha256)
    visual, gates = real_vectors(model, args.images)
    captions = list(load_dataset("rsicd", "test").captions)[::5][: args.queries]
    with torch.inference_mode():
        queries = [model.encode_text(model.tokenize([c])).float().numpy()[0] for c in captions]
    limit_blas_threads()
    with tempfile.TemporaryDirectory() as tmp:
        scene, _ = synthetic_scene(visual, gates, caption_energy(model), args.tiles, Path(tmp), tag)
        whole = []
        for q in queries:
            t0 = time.perf_counter()
            rank([scene], "text", q, Filters(k=10))
            whole.append((time.perf_counter() - t0) * 1000)
        rows = []
        for size in AREA_TILES:
            area = square(scene, size)
            lookup, ranking, hits = [], [], 0
            for q in queries:
                t0 = time.perf_counter()
                held = tiles_in(scene.tiles, area)
                t1 = time.perf_counter()
                kept = rank([scene], "text", q, Filters(k=10, area=area))
                ranking.append((time.perf_counter() - t1) * 1000)
                lookup.append((t1 - t0) * 1000)
                hits = min(hits or len(kept), len(kept))
            rows.append((len(held), p50_p95(lookup), p50_p95(ranking), hits))
    print(f"Scene: {args.tiles:,} tiles; {len(queries)} RSICD caption queries, k = 10.\n")
    print(
        "| tiles in the area | tile lookup p50 / p95 ms | ranking (lookup included) p50 / p95 ms "
        "| fewest hits | whole scene (annoy) p50 / p95 ms |"
    )
    print("|---:|---:|---:|---:|---:|")
    w50, w95 = p50_p95(whole)
    for held, (l50, l95), (r50, r95), hits in rows:
        print(
            f"| {held:,} | {l50:.2f} / {l95:.2f} | {r50:.1f} / {r95:.1f} | {hits} "
            f"| {w50:.1f} / {w95:.1f} |"
        )


if __name__ == "__main__":
    main()
