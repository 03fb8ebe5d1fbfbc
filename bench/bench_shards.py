"""Sharded search: query latency and memory per worker, 1 and 2 local Dask workers vs one process.

A synthetic workspace (``bench.bench_query.synthetic_scene``: mixes of the model's vectors of
real RSICD test images, both indexes built as ingest builds them) is split into scenes and
written in the workspace layout with a catalog as ingest writes it (a 32-point footprint per
tile: ``bench.synthetic.synthetic_catalog``), so workers load it exactly as they load
ingested scenes. Queries are real RSICD test captions, timed from
Enter (encoding included) to merged hits. Memory: resident set growth of the process that
holds the scenes, from before loading to after the timed queries (memory-mapped pages the
queries touched count), per worker for the sharded runs; and bytes per tile on disk. Every
sharded answer is compared with one process's. Prints markdown tables.

    python -m bench.bench_shards --tiles 1000000 --scenes 4 --queries 50
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from bench.bench_query import synthetic_scene
from bench.synthetic import real_vectors
from core.learn.data.sources import load_dataset
from core.model.checkpoint import image_tower_fingerprint, load_checkpoint, scene_fingerprint
from core.model.inference import caption_energy
from core.model.shipped import resolve_checkpoint
from core.model.versions import model_tag
from core.search.ranking import Filters, search_text
from core.search.scenes import SearchResources
from core.search.shards import ShardedSearch
from core.store.index import rekey_index
from core.store.manifest import READY, SceneManifest
from core.store.workspace import Workspace
from tiles import TILING_VERSION


def synthetic_workspace(
    root: Path, tiles: int, scenes: int, checkpoint: Path, images: int = 600
) -> tuple:
    """A workspace of ``scenes`` ready synthetic scenes mixed from ``images`` RSICD vectors.

    Returns the model and its tag. Each scene is keyed as ingest keys it, so search accepts
    it: the visual index by the image tower, the text index and the manifest by the scene key.
    """
    model, info = load_checkpoint(checkpoint)
    tag = model_tag(info.sha256)
    image_tower, scene_key = image_tower_fingerprint(model), scene_fingerprint(model)
    visual, gates = real_vectors(model, images)
    ws = Workspace(root)
    for number in range(scenes):
        name, n = f"synthetic{number}", tiles // scenes
        scene = ws.scene(name)
        scene.embeddings.mkdir(parents=True)
        synthetic_scene(visual, gates, caption_energy(model), n, scene.root, tag, seed=number)
        for part in ("visual.npy", "gate.npy"):
            (scene.root / part).rename(scene.embeddings / part)
        rekey_index(scene.visual_index, image_tower)
        rekey_index(scene.text_index, scene_key)
        SceneManifest(
            name=name,
            status=READY,
            n_tiles=n,
            model=tag,
            finished=time.time(),
            tiling_version=TILING_VERSION,
            image_tower=image_tower,
            scene_key=scene_key,
        ).save(scene.manifest)
    return model, tag


def _rss() -> float:
    """This process's resident MiB, once the search code is imported (as a worker has it)."""
    import core.search.shard_worker  # noqa: F401

    return psutil.Process().memory_info().rss / 2**20


def timed(res: SearchResources, captions: list[str]) -> tuple[np.ndarray, list]:
    """Milliseconds per caption from Enter to merged hits, and each answer's hits."""
    latencies, answers = [], []
    for caption in captions:
        t0 = time.perf_counter()
        result = search_text(res, caption, Filters(k=10))
        latencies.append((time.perf_counter() - t0) * 1000)
        answers.append([(h.scene, h.tile_id, round(h.score, 4)) for h in result.hits])
    return np.array(latencies), answers


def disk_per_tile(ws: Workspace, tiles: int) -> dict[str, float]:
    """Bytes per tile on disk, by file."""
    sizes: dict[str, float] = {}
    for path in ws.scenes_dir.rglob("*"):
        if path.is_file() and path.name != "manifest.json":
            sizes[path.name] = sizes.get(path.name, 0) + path.stat().st_size / tiles
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiles", type=int, default=1_000_000)
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--checkpoint", default="default")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 2)
    captions = list(load_dataset("rsicd", "test").captions)[::5][: args.queries]
    warm = captions[:3]
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        t0 = time.time()
        model, tag = synthetic_workspace(
            ws.root, args.tiles, args.scenes, resolve_checkpoint(args.checkpoint), args.images
        )
        print(
            f"workspace of {args.tiles:,} tiles in {args.scenes} scenes: {time.time() - t0:.0f} s"
        )
        rows = []
        before = _rss()
        t0 = time.time()
        single = SearchResources.load(ws, model, tag, torch.device("cpu"))
        load_s = time.time() - t0
        timed(single, warm)
        ms, expected = timed(single, captions)
        rows.append(("one process", load_s, ms, [_rss() - before], len(captions)))
        del single
        for count in [int(w) for w in args.workers.split(",")]:
            shards = ShardedSearch.connect(f"local:{count}")
            try:
                base = shards.client.run(_rss)
                res = SearchResources.load(ws, model, tag, torch.device("cpu"), shards=shards)
                t0 = time.time()
                timed(res, warm)  # the first query loads every shard
                load_s = time.time() - t0
                ms, answers = timed(res, captions)
                grown = [mib - base[w] for w, mib in shards.client.run(_rss).items()]
                same = sum(a == b for a, b in zip(answers, expected, strict=True))
                rows.append((f"{count} Dask worker(s)", load_s, ms, grown, same))
            finally:
                shards.close()
        disk = disk_per_tile(ws, args.tiles)
    print(f"\n{args.tiles:,} synthetic tiles in {args.scenes} scenes; {len(captions)} text queries")
    print("\n| search | shard load s | p50 ms | p95 ms | RSS growth per holder MiB | same hits |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, load_s, ms, grown, same in rows:
        mem = " / ".join(f"{g:,.0f}" for g in grown)
        print(
            f"| {name} | {load_s:.1f} | {np.median(ms):.1f} | {np.percentile(ms, 95):.1f} "
            f"| {mem} | {same}/{len(captions)} |"
        )
    print("\n| file | bytes per tile on disk |")
    print("|---|---:|")
    for key, size in sorted(disk.items(), key=lambda kv: -kv[1]):
        print(f"| {key} | {size:,.1f} |")
    print(f"| **total** | **{sum(disk.values()):,.1f}** |")
    resident = [sum(grown) * 2**20 / args.tiles for _, _, _, grown, _ in rows]
    print("\n| resident bytes per tile after queries | " + " | ".join(r[0] for r in rows) + " |")
    print("|---|" + "---:|" * len(rows))
    print("| all holders together | " + " | ".join(f"{r:,.0f}" for r in resident) + " |")


if __name__ == "__main__":
    main()
