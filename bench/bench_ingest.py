"""Ingestion throughput: end-to-end tiles/s against the model's forward-only tiles/s.

Both are measured side by side in one run, on the same tiles and batches, alternating
rounds so machine noise hits both alike. End-to-end = reading tiles from the GeoTIFF in
DataLoader workers + embedding + writing parts (``core.embed.runner.embed_tiles``);
forward-only = the same batches already in memory through the same embedder. Also reports
peak RSS. The scene is a generated tiled GeoTIFF of real UCM images (see
``tests/tiles/large_scene.py``). Prints a markdown table.

    python -m bench.bench_ingest --tiles 512 --rounds 3 [--device cuda]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from core.checkpoint import load_checkpoint
from core.device import resolve_device
from core.embed.mapper import TileEmbedder
from core.embed.runner import LocalParts, embed_tiles
from core.registry import resolve_checkpoint
from tests.tiles.large_scene import make_large_scene
from tiles import TileReader, TilingConfig, build_catalog


def forward_only(embedder: TileEmbedder, batches: list[torch.Tensor]) -> float:
    start = time.perf_counter()
    for batch in batches:
        embedder(batch)
    if embedder.device.type == "cuda":
        torch.cuda.synchronize()
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def end_to_end(
    embedder: TileEmbedder, reader: TileReader, windows: np.ndarray, batch: int, workers: int
) -> float:
    folder = Path(tempfile.mkdtemp())
    try:
        start = time.perf_counter()
        parts = LocalParts(reader, windows, embedder, batch, workers)
        embed_tiles(parts, len(windows), folder, part_size=len(windows))
        return len(windows) / (time.perf_counter() - start)
    finally:
        shutil.rmtree(folder)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scene", type=Path, help="existing GeoTIFF (default: generate one)")
    parser.add_argument("--size", type=int, default=8192, help="side of the generated scene")
    parser.add_argument("--tiles", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--checkpoint", default="default")
    args = parser.parse_args()
    device = resolve_device(args.device)
    scene = args.scene
    if scene is None:
        scene = Path(tempfile.gettempdir()) / f"sceneseek_bench_{args.size}.tif"
        if not scene.exists():
            make_large_scene(scene, size=args.size)
    model, _ = load_checkpoint(resolve_checkpoint(args.checkpoint))
    embedder = TileEmbedder(model, device)
    catalog = build_catalog(scene, TilingConfig())
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(len(catalog), size=min(args.tiles, len(catalog)), replace=False))
    windows = catalog[["col_off", "row_off", "width", "height"]].to_numpy(np.int64)[pick]
    reader = TileReader.from_catalog(catalog)
    pixels = torch.from_numpy(reader.read_batch([tuple(w) for w in windows]))
    batches = list(pixels.split(args.batch_size))
    forward_only(embedder, batches[:2])
    fwd, e2e = [], []
    for _ in range(args.rounds):
        fwd.append(forward_only(embedder, batches))
        e2e.append(end_to_end(embedder, reader, windows, args.batch_size, args.workers))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    f, e = float(np.median(fwd)), float(np.median(e2e))
    print(
        f"device {device}, {len(windows)} tiles (scales {sorted(set(windows[:, 2]))}), "
        f"batch {args.batch_size}, workers {args.workers}"
    )
    print("| forward-only tiles/s | end-to-end tiles/s | ratio | peak RSS MiB |")
    print("|---:|---:|---:|---:|")
    print(f"| {f:.1f} | {e:.1f} | {e / f:.2f} | {peak:.0f} |")
    print(
        "rounds: forward "
        + ", ".join(f"{x:.1f}" for x in fwd)
        + "; end-to-end "
        + ", ".join(f"{x:.1f}" for x in e2e)
    )


if __name__ == "__main__":
    main()
