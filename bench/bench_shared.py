"""Shared feature maps (``core.ingest.embed.shared``) against per-tile embedding: speed and agreement.

Every shared GeoTIFF is cut with the default tiling (256/512/1024 px, half overlap). Its
tiles are embedded one by one (``TileEmbedder``, batches of 32) and with the first N backbone
stages shared per block, for several N, on pixels read beforehand, so only the model is
timed; methods alternate over ``--rounds``. Agreement with per-tile vectors: cosine per
tile, and for 20 RSICD test captions the overlap of the top 10 of all tiles (every scene
pooled, as a multi-scene search ranks them) under exact soft-attention scoring. Prints a
markdown table.

    python -m bench.bench_shared --stages 1,2,3,5 --rounds 2 [--scenes A.tif B.tif]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from core.device import resolve_device
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.embed.shared import BLOCK_PX, MAX_STRIDE, SharedFeatureEmbedder
from core.learn.data.sources import load_dataset
from core.model.attention import soft_scores
from core.model.checkpoint import load_checkpoint
from core.model.shipped import resolve_checkpoint
from core.settings import get_settings
from tiles import WINDOW_FIELDS, TileReader, TilesError, TilingConfig, build_catalog
from tiles.blocks import plan_blocks

BATCH = 32


def per_tile(embedder: TileEmbedder, batches: list[torch.Tensor]) -> dict[str, np.ndarray]:
    outs = [embedder(b) for b in batches]
    return {name: np.concatenate([o[name] for o in outs]) for name in embedder.names}


def shared(shared: SharedFeatureEmbedder, blocks: list, pixels: list, n: int) -> dict:
    dim = shared.embedder.model.cfg.embed_dim
    arrays = {name: np.zeros((n, dim), np.float16) for name in shared.embedder.names}
    for block, block_pixels in zip(blocks, pixels, strict=True):
        for name, values in shared(block_pixels, block.offsets).items():
            arrays[name][block.members] = values
    return arrays


def scores(arrays: dict[str, np.ndarray], queries: np.ndarray) -> np.ndarray:
    """Exact soft-attention scores ``[tiles, queries]``."""
    v, g = (torch.from_numpy(arrays[name].astype(np.float32)) for name in ("visual", "gate"))
    return soft_scores(v, g, torch.from_numpy(queries)).numpy()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stages", default="1,2,3,5")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--scenes", nargs="*", type=Path, help="GeoTIFFs (default: shared scenes)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    model, _ = load_checkpoint(resolve_checkpoint(args.checkpoint))
    embedder = TileEmbedder(model, device)
    depths = [int(s) for s in args.stages.split(",")]
    sharers = {k: SharedFeatureEmbedder(embedder, k) for k in depths}
    captions = list(dict.fromkeys(load_dataset("rsicd", "test").captions))[::50][:20]
    with torch.inference_mode():
        queries = model.encode_text(model.tokenize(captions)).float().cpu().numpy()
    seconds = {k: 0.0 for k in [0, *depths]}
    cosines: dict[int, dict[int, list[np.ndarray]]] = {k: {} for k in depths}
    pooled: dict[int, list[dict[str, np.ndarray]]] = {k: [] for k in [0, *depths]}
    total = 0
    for path in args.scenes or sorted((get_settings().data_root / "scenes").glob("*.tif")):
        try:
            catalog = build_catalog(path, TilingConfig())
        except TilesError as exc:
            print(f"skipped {path.name}: {exc}")
            continue
        windows = catalog[list(WINDOW_FIELDS)].to_numpy(np.int64)
        reader = TileReader.from_catalog(catalog)
        tiles = torch.from_numpy(reader.read_batch([tuple(w) for w in windows]))
        batches = list(tiles.split(BATCH))
        blocks = plan_blocks(windows, model.cfg.preprocess.image_size, BLOCK_PX, MAX_STRIDE)
        pixels = [torch.from_numpy(reader.read_block(b.window, b.out_shape)[0]) for b in blocks]
        per_tile(embedder, batches[:1])  # warm-up
        results = {}
        for _ in range(args.rounds):
            for k in [0, *depths]:
                start = time.perf_counter()
                if k == 0:
                    results[k] = per_tile(embedder, batches)
                else:
                    results[k] = shared(sharers[k], blocks, pixels, len(windows))
                seconds[k] += time.perf_counter() - start
        total += len(windows)
        for k in [0, *depths]:
            pooled[k].append(results[k])
        for k in depths:
            a, b = results[0]["visual"].astype(np.float32), results[k]["visual"].astype(np.float32)
            cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
            for size in np.unique(windows[:, 2]):
                cosines[k].setdefault(int(size), []).append(cos[windows[:, 2] == size])
        print(f"{path.name}: {len(windows)} tiles", flush=True)
    tops = {
        k: np.argsort(
            -scores({n: np.concatenate([r[n] for r in pooled[k]]) for n in pooled[k][0]}, queries),
            axis=0,
        )[:10]
        for k in pooled
    }
    overlaps = {
        k: np.mean(
            [len(set(tops[0][:, q]) & set(tops[k][:, q])) / 10 for q in range(len(captions))]
        )
        for k in depths
    }
    sizes = sorted(cosines[depths[0]])
    print(f"\n{total} tiles, {args.rounds} rounds, device {device}\n")
    header = " | ".join(f"cos {s} px mean / min" for s in sizes)
    print(f"| shared stages | tiles/s | speed-up | {header} | top-10 overlap |")
    print("|---:|---:|---:|" + "---:|" * len(sizes) + "---:|")
    base = total * args.rounds / seconds[0]
    print(f"| 0 (per tile) | {base:.1f} | 1.00 |" + " — |" * len(sizes) + " 1.00 |")
    for k in depths:
        rate = total * args.rounds / seconds[k]
        cells = " | ".join(
            f"{np.concatenate(cosines[k][s]).mean():.3f} / {np.concatenate(cosines[k][s]).min():.3f}"
            for s in sizes
        )
        print(f"| {k} | {rate:.1f} | {rate / base:.2f} | {cells} | {overlaps[k]:.2f} |")


if __name__ == "__main__":
    main()
