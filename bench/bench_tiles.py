"""Benchmark tile reading on a large scene: tiles/s per scale and peak resident memory.

Generates the 20,000 x 20,000 px test scene (real UCM images, JPEG tiles, overviews) in the
temp folder (outside the repo: it is made of shared data) unless ``--scene`` names an
existing one, builds its catalog, then reads a contiguous run of tiles
of each scale (row-major, as the embedding engine does) into 256 x 256 uint8 RGB arrays,
first in this process, then split across ``--workers`` spawned processes. Prints a
markdown table.

Usage: python -m bench.bench_tiles [--scene PATH] [--size 20000] [--tiles 2000] [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import tiles
from bench.large_scene import make_large_scene, peak_rss_bytes

WINDOW = list(tiles.WINDOW_FIELDS)
DEFAULT_SCENE = Path(tempfile.gettempdir()) / "sceneseek_bench" / "large_scene.tif"

_worker_reader: tiles.TileReader | None = None


def _init_worker(reader: tiles.TileReader, warmup: tuple[int, int, int, int]) -> None:
    global _worker_reader
    _worker_reader = reader
    reader.read(warmup)  # open the dataset before timing starts


def _pid(_: int) -> int:
    time.sleep(0.2)
    return os.getpid()


def _read_windows(windows: list[tuple[int, int, int, int]]) -> tuple[int, int]:
    assert _worker_reader is not None
    for window in windows:
        _worker_reader.read(window)
    return len(windows), peak_rss_bytes()


def bench_single(reader: tiles.TileReader, windows: list[tuple[int, int, int, int]]) -> float:
    start = time.perf_counter()
    for window in windows:
        reader.read(window)
    return len(windows) / (time.perf_counter() - start)


def bench_workers(
    reader: tiles.TileReader, windows: list[tuple[int, int, int, int]], workers: int
) -> tuple[float, int]:
    """Tiles/s over ``workers`` spawned processes, and the largest worker's peak RSS."""
    step = math.ceil(len(windows) / workers)
    chunks = [windows[i : i + step] for i in range(0, len(windows), step)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, _init_worker, (reader, windows[0])) as pool:
        while len(set(pool.map(_pid, range(workers), chunksize=1))) < workers:
            pass  # wait until every worker has started and opened the scene
        start = time.perf_counter()
        results = pool.map(_read_windows, chunks, chunksize=1)
        elapsed = time.perf_counter() - start
    return sum(n for n, _ in results) / elapsed, max(peak for _, peak in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", type=Path, default=DEFAULT_SCENE)
    parser.add_argument("--size", type=int, default=20_000, help="side of a generated scene")
    parser.add_argument("--tiles", type=int, default=2000, help="tiles read per scale")
    parser.add_argument("--random", type=int, default=300, help="tiles read in random order")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    if not args.scene.exists():
        start = time.perf_counter()
        args.scene.parent.mkdir(parents=True, exist_ok=True)
        make_large_scene(args.scene, args.size)
        print(f"generated {args.scene} in {time.perf_counter() - start:.1f} s")
    info = tiles.describe(args.scene)
    size_mb = args.scene.stat().st_size / 2**20
    print(
        f"scene: {info.width} x {info.height} px, {info.count} x {info.dtypes[0]}, "
        f"block {info.block_shape}, overviews {info.overviews}, {size_mb:.0f} MiB on disk"
    )

    start = time.perf_counter()
    catalog = tiles.build_catalog(args.scene)
    print(f"catalog: {len(catalog)} tiles in {time.perf_counter() - start:.2f} s")
    reader = tiles.TileReader.from_catalog(catalog)

    rows = []
    rng = np.random.default_rng(0)
    for scale, group in catalog.groupby("scale"):
        count = min(args.tiles, len(group))
        first = (len(group) - count) // 2
        run = group.iloc[first : first + count]
        windows = [tuple(map(int, w)) for w in run[WINDOW].to_numpy()]
        single = bench_single(reader, windows)
        multi, worker_peak = bench_workers(reader, windows, args.workers)
        picks = rng.choice(len(group), min(args.random, len(group)), replace=False)
        scattered = [tuple(map(int, w)) for w in group.iloc[picks][WINDOW].to_numpy()]
        random_order = bench_single(reader, scattered)
        rows.append((scale, count, single, multi, random_order, worker_peak))

    print()
    print(
        f"| scale (px) | tiles read in row order | tiles/s, 1 process | tiles/s, {args.workers} "
        f"workers | tiles/s, {args.random} in random order | peak RSS of a worker (MiB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for scale, count, single, multi, random_order, worker_peak in rows:
        print(
            f"| {scale} | {count} | {single:.0f} | {multi:.0f} | {random_order:.0f} "
            f"| {worker_peak / 2**20:.0f} |"
        )
    print()
    print(
        "peak RSS of the main process (scene generation if any, catalog, single-process "
        f"reads): "
        f"{peak_rss_bytes() / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    main()
