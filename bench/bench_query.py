"""Text-query latency (encode + ANN + exact re-rank) and ANN recall at 10k / 100k / 1M tiles.

Vectors are synthetic but built from real ones (``bench.synthetic``: mixes of the model's
vectors of real RSICD test images). Queries are real RSICD test captions. The index is built
and searched exactly as ingest and search do (projected text index, default candidates).
Recall@10 compares the indexed search with ``--exact`` scoring of every tile. Memory: the
resident size growth from before loading the scene to after all its queries (memory-mapped
pages touched count), and the files on disk. Prints a markdown table.

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

import geopandas as gpd
import numpy as np
import psutil
import torch
from shapely.geometry import box

from bench.synthetic import mixed_vectors, real_vectors
from core.checkpoint import load_checkpoint
from core.data.captions import load_dataset
from core.device import limit_blas_threads
from core.index import TEXT_INDEX_DIM, TEXT_METRIC, build_index, load_index, soft_index_vectors
from core.registry import resolve_checkpoint
from core.search import EXACT_CHUNK, Filters, SceneIndex, caption_energy, rank, text_scores
from core.versions import model_tag
from tiles import CATALOG_KEY


def synthetic_scene(
    visual: np.ndarray, gates: np.ndarray, energy: np.ndarray, n: int, folder: Path, tag: str
) -> tuple[SceneIndex, float]:
    """A scene of ``n`` synthetic tiles and its text index; also the index build seconds."""
    v = np.lib.format.open_memmap(folder / "visual.npy", "w+", np.float16, (n, visual.shape[1]))
    g = np.lib.format.open_memmap(folder / "gate.npy", "w+", np.float16, (n, visual.shape[1]))
    for start in range(0, n, EXACT_CHUNK):
        stop = min(n, start + EXACT_CHUNK)
        v[start:stop], g[start:stop] = mixed_vectors(visual, gates, start, stop)
    v.flush()
    g.flush()
    t0 = time.time()
    proxies = np.concatenate(
        [
            soft_index_vectors(v[i : i + EXACT_CHUNK], g[i : i + EXACT_CHUNK], energy)
            for i in range(0, n, EXACT_CHUNK)
        ]
    )
    build_index(proxies, folder / "text.ann", tag, TEXT_METRIC, index_dim=TEXT_INDEX_DIM)
    build_s = time.time() - t0
    del v, g, proxies
    side = int(np.ceil(np.sqrt(n)))
    cols, rows = np.arange(n) % side, np.arange(n) // side
    catalog = gpd.GeoDataFrame(
        {
            "tile_id": np.arange(n),
            "scale": 256,
            "col_off": cols * 256,
            "row_off": rows * 256,
            "width": 256,
            "height": 256,
        },
        geometry=[box(0, 0, 1, 1)] * n,
        crs="EPSG:4326",
    )
    catalog.attrs[CATALOG_KEY] = {}
    scene = SceneIndex(
        name=f"synthetic{n}",
        catalog=catalog,
        visual=np.load(folder / "visual.npy", mmap_mode="r"),
        gate=np.load(folder / "gate.npy", mmap_mode="r"),
        visual_ann=None,  # type: ignore[arg-type]
        text_ann=load_index(folder / "text.ann", visual.shape[1], tag, TEXT_METRIC),
        manifest={},
    )
    return scene, build_s


def measure(
    model: torch.nn.Module, scene: SceneIndex, captions: list[str]
) -> tuple[np.ndarray, float, float]:
    """Milliseconds per query (encode + ANN + re-rank), the process RSS in MiB after them,
    and recall@10 against exact scoring (which reads every vector, so it comes last)."""
    latencies, found = [], []
    for caption in captions:
        t0 = time.perf_counter()
        with torch.inference_mode():
            q = model.encode_text(model.tokenize([caption])).float().numpy()[0]
        hits = rank([scene], "text", q, Filters(k=10, suppress_overlaps=False))
        latencies.append((time.perf_counter() - t0) * 1000)
        found.append((q, {t for _, t, _ in hits}))
    rss = psutil.Process().memory_info().rss / 2**20
    recalls = [
        len(got & set(np.argsort(-text_scores(scene, np.arange(len(scene)), q))[:10].tolist())) / 10
        for q, got in found
    ]
    return np.array(latencies), rss, float(np.mean(recalls))


def mib(path: Path) -> float:
    return path.stat().st_size / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--checkpoint", default="default")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 2)
    path = resolve_checkpoint(args.checkpoint)
    model, info = load_checkpoint(path)
    tag = model_tag(info.sha256)
    visual, gates = real_vectors(model, args.images)
    energy = caption_energy(model)
    captions = list(load_dataset("rsicd", "test").captions)[::5][: args.queries]
    limit_blas_threads()  # as SearchResources.load does
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            gc.collect()
            rss_before = psutil.Process().memory_info().rss / 2**20
            scene, build_s = synthetic_scene(visual, gates, energy, n, Path(tmp), tag)
            latencies, rss_after, recall = measure(model, scene, captions[:1] * 3 + captions)
            latencies = latencies[3:]  # the first queries warm the caches
            rss = rss_after - rss_before
            files = sum(mib(Path(tmp) / f) for f in ("text.ann", "visual.npy", "gate.npy"))
            p50, p95 = np.median(latencies), np.percentile(latencies, 95)
            rows.append((n, p50, p95, recall, build_s, mib(Path(tmp) / "text.ann"), files, rss))
            del scene
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        "| tiles | p50 ms | p95 ms | recall@10 vs exact | index build s | text index MiB "
        "| index + vectors on disk MiB | RSS growth after queries MiB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, p50, p95, rec, build, index, files, rss in rows:
        print(
            f"| {n:,} | {p50:.1f} | {p95:.1f} | {rec:.3f} | {build:.0f} | {index:.0f} "
            f"| {files:.0f} | {rss:.0f} |"
        )
    print(f"\npeak RSS of the benchmark process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
