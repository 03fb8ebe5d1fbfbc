"""Ingest rate from a COG on a local HTTP server against the same file on disk.

``python -m bench.bench_remote [size]``: a size x size px tiled GeoTIFF with overviews (UCM
images) is read tile by tile, then ingested whole (256 px tiles, no overlap, CPU, ONNX or
torch as configured), once from disk and once from 127.0.0.1 through SceneSeek's checked HTTP
client (GDAL reads it as a Python file, ``tiles.remote_file``). Prints a markdown table.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.large_scene import make_large_scene
from bench.range_server import RangeServer
from core.ingest.launch import ingest_scene
from core.ingest.pipeline import IngestOptions
from core.ingest.source import scene_source
from core.store.workspace import Workspace
from tiles import WINDOW_FIELDS, TileReader, TilingConfig, build_catalog

TILING = TilingConfig(sizes=(256,), overlap=0.0)


def read_rate(source: str) -> float:
    """Tiles per second reading every tile in this process."""
    checked = scene_source(source)
    with checked.environment():
        catalog = build_catalog(checked.read_path, TILING)
        reader = TileReader.from_catalog(catalog, path=checked.read_path)
        windows = catalog[list(WINDOW_FIELDS)].to_numpy(np.int64)
        started = time.perf_counter()
        for window in windows:
            reader.read(tuple(int(v) for v in window))
        return len(windows) / (time.perf_counter() - started)


def ingest_time(source: str, root: Path) -> tuple[int, float]:
    result = ingest_scene(source, Workspace(root), "scene", IngestOptions(TILING), device="cpu")
    return result.n_tiles, result.seconds


def main(size: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "served").mkdir()
        make_large_scene(root / "served" / "scene.tif", size)
        server = RangeServer(root / "served").start()
        os.environ["SCENESEEK_REMOTE_ALLOW"] = "127.0.0.1"
        rows = []
        try:
            for label, source in (
                ("file on disk", str(root / "served" / "scene.tif")),
                ("HTTP COG, 127.0.0.1", server.url("scene.tif")),
            ):
                rate = read_rate(source)
                tiles, seconds = ingest_time(source, root / label.split()[0])
                rows.append((label, tiles, rate, seconds, tiles / seconds))
        finally:
            server.stop()
    print(f"{size} x {size} px scene, 256 px tiles, no overlap\n")
    print("| source | tiles | read only (tiles/s) | ingest (s) | ingest (tiles/s) |")
    print("|---|---:|---:|---:|---:|")
    for label, tiles, rate, seconds, ingest_rate in rows:
        print(f"| {label} | {tiles} | {rate:.0f} | {seconds:.1f} | {ingest_rate:.1f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2048)
