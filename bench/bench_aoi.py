"""Search inside an area of interest: tile lookup and exact ranking time by area size.

A synthetic scene of ``--tiles`` 256 px tiles (vectors mixed from real RSICD images, as in
``bench_query``, on the 1 m UTM grid of ``bench.synthetic.synthetic_catalog``); square areas
holding about 100 to 100,000 of its tiles are searched with real caption queries. An area's
tiles come from the tiles' windows and their rebuilt footprints (``aoi.tiles_in``) and are
all scored exactly; the last column is the same queries over the whole scene through the
annoy index, for comparison.

    python -m bench.bench_aoi [--tiles 200000] [--queries 30]
"""

from __future__ import annotations

import argparse
import math
import os
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
from bench.synthetic import real_vectors
from core.device import limit_blas_threads
from core.learn.data.sources import load_dataset
from core.model.amfmn import caption_energy
from core.model.checkpoint import load_checkpoint
from core.model.shipped import resolve_checkpoint
from core.model.versions import model_tag
from core.search.aoi import AreaOfInterest, tiles_in
from core.search.ranking import Filters, rank
from core.search.scenes import SceneIndex

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiles", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--checkpoint", default="default")
    args = parser.parse_args()
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
