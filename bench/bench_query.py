"""Query latency (ANN + exact re-rank) and ANN recall at 10k / 100k / 1M tiles.

Vectors are synthetic but built from real ones (``bench.synthetic``: mixes of the model's
vectors of real RSICD test images). Text queries are real RSICD test captions, timed with
their encoding; image queries are the visual vectors of 50 other RSICD test images, timed
without it (the image encoder's cost does not grow with the workspace). Both indexes are
built and searched exactly as ingest and search do. Recall@10 compares the indexed search
with ``--exact`` scoring of every tile. Memory: the resident size growth from before the
scene was made to after its timed queries (memory-mapped pages touched count), and the
files on disk. Prints markdown tables.

    python -m bench.bench_query --sizes 10000,100000,1000000 --queries 50
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from bench.synthetic import mixed_vectors, real_vectors, synthetic_catalog
from core.device import limit_blas_threads
from core.learn.data.sources import load_dataset
from core.model.checkpoint import load_checkpoint
from core.model.inference import Towers, caption_energy, load_towers
from core.model.onnx_export import cache_dir_for
from core.model.shipped import resolve_checkpoint
from core.model.versions import model_tag
from core.search.ranking import Filters, rank
from core.search.scenes import SceneIndex
from core.search.scoring import EXACT_CHUNK, text_scores, visual_scores
from core.search.tile_columns import TileColumns
from core.store.index import (
    INDEX_DIM,
    TEXT_METRIC,
    VISUAL_METRIC,
    build_index,
    load_index,
    soft_index_vectors,
)
from tiles import write_catalog

IMAGE_QUERIES = 50


def synthetic_scene(
    visual: np.ndarray,
    gates: np.ndarray,
    energy: np.ndarray,
    n: int,
    folder: Path,
    tag: str,
    seed: int = 0,
) -> tuple[SceneIndex, tuple[float, float]]:
    """A scene of ``n`` synthetic tiles, its catalog and both indexes; also their build seconds."""
    v = np.lib.format.open_memmap(folder / "visual.npy", "w+", np.float16, (n, visual.shape[1]))
    g = np.lib.format.open_memmap(folder / "gate.npy", "w+", np.float16, (n, visual.shape[1]))
    for start in range(0, n, EXACT_CHUNK):
        stop = min(n, start + EXACT_CHUNK)
        v[start:stop], g[start:stop] = mixed_vectors(visual, gates, start, stop, seed)
    v.flush()
    g.flush()
    t0 = time.time()
    proxies = np.concatenate(
        [
            soft_index_vectors(v[i : i + EXACT_CHUNK], g[i : i + EXACT_CHUNK], energy)
            for i in range(0, n, EXACT_CHUNK)
        ]
    )
    build_index(proxies, folder / "text.ann", tag, TEXT_METRIC, index_dim=INDEX_DIM)
    text_s = time.time() - t0
    del proxies
    t0 = time.time()
    build_index(np.asarray(v), folder / "visual.ann", tag, VISUAL_METRIC, index_dim=INDEX_DIM)
    build_s = (text_s, time.time() - t0)
    del v, g
    write_catalog(synthetic_catalog(n), folder / "catalog.parquet")
    scene = SceneIndex(
        name=f"synthetic{n}",
        tiles=TileColumns.read(folder / "catalog.parquet"),
        visual=np.load(folder / "visual.npy", mmap_mode="r"),
        gate=np.load(folder / "gate.npy", mmap_mode="r"),
        visual_ann=load_index(folder / "visual.ann", visual.shape[1], tag, VISUAL_METRIC),
        text_ann=load_index(folder / "text.ann", visual.shape[1], tag, TEXT_METRIC),
        manifest={},
    )
    return scene, build_s


def timed(
    model: torch.nn.Module, towers: Towers, scene: SceneIndex, kind: str, queries: list
) -> tuple[np.ndarray, list[tuple[np.ndarray, set[int]]]]:
    """Milliseconds per query (text: encode with ``towers`` + ANN + re-rank; image: ANN +
    re-rank of a given visual vector) and each query's vector with the tiles it found."""
    latencies, found = [], []
    for query in queries:
        t0 = time.perf_counter()
        if kind == "text":
            with torch.inference_mode():
                query = np.asarray(towers.encode_query(model.tokenize([query])), np.float32)[0]
        hits = rank([scene], kind, query, Filters(k=10, suppress_overlaps=False))
        latencies.append((time.perf_counter() - t0) * 1000)
        found.append((query, {c.tile for c in hits}))
    return np.array(latencies[3:]), found[3:]  # the first three queries warm the caches


def recall(scene: SceneIndex, kind: str, found: list[tuple[np.ndarray, set[int]]]) -> float:
    """Mean recall@10 against scoring every tile exactly."""
    score = text_scores if kind == "text" else visual_scores
    everything = np.arange(len(scene))
    return float(
        np.mean(
            [
                len(got & set(np.argsort(-score(scene, everything, q))[:10].tolist())) / 10
                for q, got in found
            ]
        )
    )


def mib(path: Path) -> float:
    return path.stat().st_size / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--engines", default="torch,onnx", help="text encoders to time")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 2)
    path = resolve_checkpoint(args.checkpoint)
    model, info = load_checkpoint(path)
    tag = model_tag(info.sha256)
    visual, gates = real_vectors(model, args.images + IMAGE_QUERIES)
    examples = list(visual[args.images :])  # image queries: real images outside the mixes
    visual, gates = visual[: args.images], gates[: args.images]
    energy = caption_energy(model)
    engines = args.engines.split(",")
    towers = {e: load_towers(model, torch.device("cpu"), e, cache_dir_for(None)) for e in engines}
    captions = list(load_dataset("rsicd", "test").captions)[::5][: args.queries]
    limit_blas_threads()  # as SearchResources.load does
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            gc.collect()
            rss_before = psutil.Process().memory_info().rss / 2**20
            scene, (text_s, visual_s) = synthetic_scene(visual, gates, energy, n, Path(tmp), tag)
            text = {
                e: timed(model, towers[e], scene, "text", captions[:1] * 3 + captions)
                for e in engines
            }
            image_ms, image_found = timed(
                model, towers[engines[0]], scene, "image", examples[:1] * 3 + examples
            )
            rss = psutil.Process().memory_info().rss / 2**20 - rss_before
            names = ("text.ann", "visual.ann", "visual.npy", "gate.npy")
            rows.append(
                {
                    "n": n,
                    **{
                        f"text ({e})": (
                            ms,
                            recall(scene, "text", found),
                            text_s,
                            mib(Path(tmp) / "text.ann"),
                        )
                        for e, (ms, found) in text.items()
                    },
                    "image": (
                        image_ms,
                        recall(scene, "image", image_found),
                        visual_s,
                        mib(Path(tmp) / "visual.ann"),
                    ),
                    "disk": sum(mib(Path(tmp) / f) for f in names),
                    "rss": rss,
                }
            )
            del scene
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| queries | tiles | p50 ms | p95 ms | recall@10 vs exact | index build s | index MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind in [*(f"text ({e})" for e in engines), "image"]:
        for row in rows:
            ms, rec, build, size = row[kind]
            print(
                f"| {kind} | {row['n']:,} | {np.median(ms):.1f} | {np.percentile(ms, 95):.1f} "
                f"| {rec:.3f} | {build:.0f} | {size:.0f} |"
            )
    print("\n| tiles | indexes + vectors on disk MiB | RSS growth after queries MiB |")
    print("|---:|---:|---:|")
    for row in rows:
        print(f"| {row['n']:,} | {row['disk']:.0f} | {row['rss']:.0f} |")
    print(f"\npeak RSS of the benchmark process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
