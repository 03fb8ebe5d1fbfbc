"""Text-query latency (encode + ANN + exact re-rank) and ANN recall at 10k / 100k / 1M tiles.

Vectors are synthetic but built from real ones: the model's visual vectors and gates of real
images (RSICD test), each synthetic tile a random convex mix of two of them (as a tile
straddling two kinds of ground is) plus 5 % Gaussian noise. Queries are real RSICD test
captions.
Recall@10 compares the indexed search with ``--exact`` scoring of every tile; memory is
the resident size after loading the index. Prints a markdown table.

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

from core.checkpoint import load_checkpoint
from core.data.captions import load_dataset
from core.eval.evaluate import encode_images
from core.index import TEXT_METRIC, build_index, load_index, soft_index_vectors
from core.registry import resolve_checkpoint
from core.search import Filters, SceneIndex, caption_energy, rank, text_scores
from core.versions import model_tag
from tiles import CATALOG_KEY


def real_vectors(model: torch.nn.Module, n_images: int) -> tuple[np.ndarray, np.ndarray]:
    data = load_dataset("rsicd", "test")
    paths = list(data.image_paths)[:n_images]
    visual = encode_images(model, paths, torch.device("cpu"), progress=False)
    with torch.no_grad():
        gates = model.image_gates(visual)
    return visual.numpy(), gates.numpy()


def synthetic_scene(
    visual: np.ndarray, gates: np.ndarray, energy: np.ndarray, n: int, folder: Path, tag: str
) -> SceneIndex:
    rng = np.random.default_rng(0)
    first, second = rng.integers(0, len(visual), n), rng.integers(0, len(visual), n)
    w = rng.uniform(0, 1, (n, 1)).astype(np.float32)
    noise = rng.standard_normal((n, visual.shape[1])).astype(np.float32) * visual.std(axis=0) * 0.05
    v = (w * visual[first] + (1 - w) * visual[second] + noise).astype(np.float16)
    g = np.clip(w * gates[first] + (1 - w) * gates[second], 0, 1).astype(np.float16)
    np.save(folder / "visual.npy", v)
    np.save(folder / "gate.npy", g)
    t0 = time.time()
    build_index(soft_index_vectors(v, g, energy), folder / "text.ann", tag, TEXT_METRIC)
    build_s = time.time() - t0
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
    del v, g
    gc.collect()
    rss_before = psutil.Process().memory_info().rss
    scene = SceneIndex(
        name=f"synthetic{n}",
        catalog=catalog,
        visual=np.load(folder / "visual.npy", mmap_mode="r"),
        gate=np.load(folder / "gate.npy", mmap_mode="r"),
        visual_ann=None,  # type: ignore[arg-type]
        text_ann=load_index(folder / "text.ann", visual.shape[1], tag, TEXT_METRIC),
        manifest={},
    )
    scene.build_seconds = build_s  # type: ignore[attr-defined]
    scene.rss_delta = psutil.Process().memory_info().rss - rss_before  # type: ignore[attr-defined]
    return scene


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
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            scene = synthetic_scene(visual, gates, energy, n, Path(tmp), tag)
            latencies, recalls = [], []
            for caption in captions:
                t0 = time.perf_counter()
                with torch.inference_mode():
                    q = model.encode_text(model.tokenize([caption])).float().numpy()[0]
                hits = rank([scene], "text", q, Filters(k=10, suppress_overlaps=False))
                latencies.append((time.perf_counter() - t0) * 1000)
                exact = np.argsort(-text_scores(scene, np.arange(n), q), kind="stable")[:10]
                recalls.append(len({t for _, t, _ in hits} & set(exact.tolist())) / 10)
            lat = np.array(latencies)
            rows.append(
                (
                    n,
                    np.median(lat),
                    np.percentile(lat, 95),
                    np.mean(recalls),
                    scene.build_seconds,
                    scene.rss_delta / 2**20,
                )
            )
            del scene
            gc.collect()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| tiles | p50 ms | p95 ms | recall@10 vs exact | index build s | RSS after load MiB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n, p50, p95, rec, build, rss in rows:
        print(f"| {n:,} | {p50:.1f} | {p95:.1f} | {rec:.3f} | {build:.0f} | {rss:.0f} |")
    print(f"\npeak RSS of the benchmark process: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
