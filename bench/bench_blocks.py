"""Block reading against per-tile reading: reader speed, reader memory, ingest ratio, vectors.

On the generated scene (default 20,000 px, all three scales, see ``bench.large_scene``):

1. profile: where a per-tile read spends its time (first 1,000 tiles of each scale, each
   timed cold then warm in a fresh process): JPEG decoding, GDAL's per-call cost, the mask
   and stretch arithmetic of ``tiles.io.read_rgb``, the rest (GDAL environment, Python);
2. reader only: every tile of the scene read one by one (``TileReader.read``) and by block
   (``TileReader.read_tiles`` into one reused buffer, as ingest cuts them), each in a fresh
   process that reports its peak RSS;
3. ingest: forward-only against end-to-end (``LocalParts``, blocks read by as many loader
   workers as an ingest picks) on the tiles of all scales inside a square of the scene, with
   the ONNX engine as a CPU ingest uses; then the cosine of the block path's vectors to per-tile ones and
   the top-10 overlap of 20 RSICD test captions over those tiles.

    python -m bench.bench_blocks [--size 20000] [--region 2560] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from rasterio.io import DatasetReader
from rasterio.windows import Window

from bench.bench_ingest import end_to_end, forward_only, print_rounds
from bench.large_scene import make_large_scene, peak_rss_bytes
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.embed.runner import LocalParts, embed_tiles
from core.learn.data.sources import load_dataset
from core.model.attention import soft_scores
from core.model.checkpoint import load_checkpoint
from core.model.inference import load_towers
from core.model.shipped import resolve_checkpoint
from tiles import WINDOW_FIELDS, TileReader, TilingConfig, build_catalog
from tiles.io import ReadPlan, bounded_cache, read_rgb, resampling_for

CPU = torch.device("cpu")
PROFILED = 1000


def scene_tiles(scene: Path) -> tuple[TileReader, np.ndarray]:
    catalog = build_catalog(scene, TilingConfig())
    return TileReader.from_catalog(catalog), catalog[list(WINDOW_FIELDS)].to_numpy(np.int64)


def timed(calls: list, run: Callable[[tuple], object]) -> float:
    """Microseconds per call of ``run`` over ``calls``."""
    start = time.perf_counter()
    for call in calls:
        run(call)
    return 1e6 * (time.perf_counter() - start) / len(calls)


def gdal_read(ds: DatasetReader, shape: tuple[int, int], w: tuple) -> None:
    window = Window(*w)
    ds.read(
        [1, 2, 3], window=window, out_shape=(3, *shape), resampling=resampling_for(window, shape)
    )


def masked_read(ds: DatasetReader, plan: ReadPlan, shape: tuple[int, int], w: tuple) -> None:
    read_rgb(ds, plan, Window(*w), shape)


def profile(scene: Path) -> dict:
    """Per-tile read costs by step, per scale (microseconds per tile)."""
    rows = {}
    reader, windows = scene_tiles(scene)
    for size in np.unique(windows[:, 2]):
        picked = [tuple(int(v) for v in w) for w in windows[windows[:, 2] == size][:PROFILED]]
        fresh = TileReader(reader.path, out_size=reader.out_size, stretch=reader.stretch)
        opened = fresh._open()  # the bench times the steps inside TileReader.read
        shape = (fresh.out_size, fresh.out_size)

        with bounded_cache():
            cold = timed(picked, partial(gdal_read, opened.ds, shape))
            warm = timed(picked, partial(gdal_read, opened.ds, shape))
            masked = timed(picked, partial(masked_read, opened.ds, opened.plan, shape))
        whole = timed(picked, fresh.read)
        rows[int(size)] = {
            "decode": cold - warm,
            "gdal call": warm,
            "mask and stretch": masked - warm,
            "environment and Python": whole - masked,
            "total (warm)": whole,
            "total (cold)": whole + cold - warm,
        }
    return rows


def read_only(scene: Path, mode: str, budget_mb: float) -> dict:
    """Read every tile of the scene one way; tiles/s, blocks and this process's peak RSS."""
    reader, windows = scene_tiles(scene)
    base = peak_rss_bytes()
    start = time.perf_counter()
    if mode == "tile":
        blocks = len(windows)
        for w in windows:
            reader.read(tuple(int(v) for v in w))
    else:
        plan = reader.plan_blocks(windows, budget_mb)
        blocks = len(plan)
        size = reader.out_size
        most = max(len(block.members) for block in plan)
        reused = np.empty((most, size, size, 3), np.uint8)  # as LocalParts cuts into one buffer
        for block in plan:
            reader.read_tiles(block, reused[: len(block.members)])
    seconds = time.perf_counter() - start
    return {
        "tiles": len(windows),
        "blocks": blocks,
        "tiles_per_s": len(windows) / seconds,
        "peak_mib": peak_rss_bytes() / 2**20,
        "before_mib": base / 2**20,
    }


def child(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_blocks", *args], capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def region_windows(windows: np.ndarray, side: int) -> np.ndarray:
    """Tiles of every scale lying inside the top-left ``side`` x ``side`` px square."""
    inside = (windows[:, 0] + windows[:, 2] <= side) & (windows[:, 1] + windows[:, 3] <= side)
    return windows[inside]


def ingest_check(scene: Path, side: int, rounds: int) -> None:
    model, _ = load_checkpoint(resolve_checkpoint("default"))
    towers = load_towers(model, CPU, "onnx")
    embedder = TileEmbedder(model, CPU, towers)
    reader, windows = scene_tiles(scene)
    windows = region_windows(windows, side)
    pixels = torch.from_numpy(reader.read_batch([tuple(w) for w in windows]))
    batches = list(pixels.split(32))
    forward_only(embedder, batches[:2])
    parts = LocalParts(reader, windows, embedder, 32)
    fwd, e2e = [], []
    for _ in range(rounds):
        fwd.append(forward_only(embedder, batches))
        e2e.append(end_to_end(parts, len(windows)))
    f, e = float(np.median(fwd)), float(np.median(e2e))
    print(
        f"\n{len(windows)} tiles inside {side} x {side} px (scales {sorted(set(windows[:, 2].tolist()))}), "
        f"ONNX engine ({embedder.engine}), batch 32, {parts.workers} reader workers, {rounds} rounds\n"
    )
    print("| forward-only tiles/s | end-to-end tiles/s (blocks) | ratio |")
    print("|---:|---:|---:|")
    print(f"| {f:.1f} | {e:.1f} | **{e / f:.2f}** |")
    print_rounds(fwd, e2e)
    per_tile = {k: np.concatenate([embedder(b)[k] for b in batches]) for k in embedder.names}
    folder = Path(tempfile.mkdtemp())
    files = embed_tiles(parts, len(windows), folder, part_size=len(windows)).files
    by_block = {k: np.load(files[k]) for k in embedder.names}
    a, b = (x["visual"].astype(np.float32) for x in (per_tile, by_block))
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    captions = list(dict.fromkeys(load_dataset("rsicd", "test").captions))[::50][:20]
    text = torch.from_numpy(towers.text(model.tokenize(captions)))
    tops = [
        np.argsort(
            -soft_scores(
                torch.from_numpy(x["visual"]).float(), torch.from_numpy(x["gate"]).float(), text
            ).numpy(),
            axis=0,
        )[:10]
        for x in (per_tile, by_block)
    ]
    overlap = np.mean(
        [len(set(tops[0][:, q]) & set(tops[1][:, q])) / 10 for q in range(len(captions))]
    )
    print(
        f"\nblock against per-tile vectors: cos mean {cos.mean():.5f}, min {cos.min():.5f}; "
        f"top-10 overlap over {len(captions)} RSICD test captions: {overlap:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scene", type=Path, help="existing GeoTIFF (default: generate one)")
    parser.add_argument("--size", type=int, default=20_000, help="side of the generated scene")
    parser.add_argument(
        "--region", type=int, default=4096, help="side of the ingest square; 0 skips it"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--budgets", default="256,64,16", help="reader budgets (MiB) to time")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "BUDGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    scene = args.scene or Path(tempfile.gettempdir()) / f"sceneseek_bench_{args.size}.tif"
    if args.child:
        mode, budget = args.child
        result = profile(scene) if mode == "profile" else read_only(scene, mode, float(budget))
        print(json.dumps(result))
        return
    if not scene.exists():
        make_large_scene(scene, size=args.size)
    rows = child(["--scene", str(scene), "--child", "profile", "0"])
    print(f"{scene.name}: per-tile read costs, first {PROFILED} tiles of each scale, µs per tile\n")
    steps = list(next(iter(rows.values())))
    print("| scale | " + " | ".join(steps) + " |")
    print("|---:|" + "---:|" * len(steps))
    for size, row in rows.items():
        print(f"| {size} | " + " | ".join(f"{row[s]:.0f}" for s in steps) + " |")
    tile = child(["--scene", str(scene), "--child", "tile", "0"])
    print(f"\nreader only, {tile['tiles']} tiles, one process each\n")
    print("| reading | budget MiB | reads | tiles/s | speed-up | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| per tile | — | {tile['blocks']} | {tile['tiles_per_s']:.0f} | 1.00 | {tile['peak_mib']:.0f} |"
    )
    for budget in args.budgets.split(","):
        block = child(["--scene", str(scene), "--child", "block", budget])
        print(
            f"| by block | {budget} | {block['blocks']} | {block['tiles_per_s']:.0f} | "
            f"{block['tiles_per_s'] / tile['tiles_per_s']:.2f} | {block['peak_mib']:.0f} |"
        )
    if args.region:
        ingest_check(scene, args.region, args.rounds)


if __name__ == "__main__":
    main()
