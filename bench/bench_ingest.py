"""Ingestion throughput: end-to-end tiles/s against the model's forward-only tiles/s.

Both are measured side by side in one run, on the same tiles and batches, alternating
rounds so machine noise hits both alike. End-to-end = reading tiles from the GeoTIFF in
DataLoader workers + embedding + writing parts (``core.ingest.embed.runner.embed_tiles``);
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

from bench.large_scene import make_large_scene
from core.device import resolve_device
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.embed.runner import LocalParts, PartComputer, embed_tiles
from core.ingest.embed.shared import SharedParts
from core.model.checkpoint import load_checkpoint
from core.model.shipped import resolve_checkpoint
from tiles import WINDOW_FIELDS, TileReader, TilingConfig, build_catalog


def forward_only(embedder: TileEmbedder, batches: list[torch.Tensor]) -> float:
    start = time.perf_counter()
    for batch in batches:
        embedder(batch)
    if embedder.device.type == "cuda":
        torch.cuda.synchronize()
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


def end_to_end(parts: PartComputer, n_tiles: int) -> float:
    folder = Path(tempfile.mkdtemp())
    try:
        start = time.perf_counter()
        embed_tiles(parts, n_tiles, folder, part_size=n_tiles)
        return n_tiles / (time.perf_counter() - start)
    finally:
        shutil.rmtree(folder)


def print_rounds(fwd: list[float], e2e: list[float]) -> None:
    print(
        "rounds: forward "
        + ", ".join(f"{x:.1f}" for x in fwd)
        + "; end-to-end "
        + ", ".join(f"{x:.1f}" for x in e2e)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scene", type=Path, help="existing GeoTIFF (default: generate one)")
    parser.add_argument("--size", type=int, default=8192, help="side of the generated scene")
    parser.add_argument(
        "--tiles", type=int, default=512, help="random tiles of the scene; all when as many"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument(
        "--shared-stages", type=int, default=0, help="also time end-to-end with shared stages"
    )
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
    if args.tiles >= len(catalog):  # the whole scene, as an ingest embeds it
        pick = np.arange(len(catalog))
    else:
        pick = np.sort(rng.choice(len(catalog), size=args.tiles, replace=False))
    windows = catalog[list(WINDOW_FIELDS)].to_numpy(np.int64)[pick]
    reader = TileReader.from_catalog(catalog)
    pixels = torch.from_numpy(reader.read_batch([tuple(w) for w in windows]))
    batches = list(pixels.split(args.batch_size))
    forward_only(embedder, batches[:2])
    per_tile = LocalParts(reader, windows, embedder, args.batch_size, args.workers)
    fwd, e2e, shared = [], [], []
    for _ in range(args.rounds):
        fwd.append(forward_only(embedder, batches))
        e2e.append(end_to_end(per_tile, len(windows)))
        if args.shared_stages:
            parts = SharedParts(reader, windows, embedder, args.shared_stages, args.workers)
            shared.append(end_to_end(parts, len(windows)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    f, e = float(np.median(fwd)), float(np.median(e2e))
    print(
        f"device {device}, {len(windows)} tiles (scales {sorted(set(windows[:, 2]))}), "
        f"batch {args.batch_size}, workers {args.workers}"
    )
    print("| forward-only tiles/s | end-to-end tiles/s | ratio | peak RSS MiB |")
    print("|---:|---:|---:|---:|")
    print(f"| {f:.1f} | {e:.1f} | {e / f:.2f} | {peak:.0f} |")
    print_rounds(fwd, e2e)
    if shared:
        s = float(np.median(shared))
        print(
            f"end-to-end with {args.shared_stages} shared stage(s): {s:.1f} tiles/s, "
            f"{s / e:.2f} x per-tile end-to-end; rounds " + ", ".join(f"{x:.1f}" for x in shared)
        )


if __name__ == "__main__":
    main()
