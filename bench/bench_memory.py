"""Memory per tile of a loaded scene, by component, before and after the compact loader.

A synthetic workspace (``bench.bench_shards.synthetic_workspace``: vectors mixed from the
model's vectors of real RSICD test images, both indexes and a catalog as ingest makes them)
is loaded in a fresh process, which then answers real RSICD test captions (encoded once
here). Resident bytes are read from ``/proc/self/smaps`` after the queries: for each
memory-mapped file (vectors, gates, indexes) the pages this process touched (Rss of its
mappings), and for the process's own memory the growth of ``RssAnon``. *Before* loads each
scene as the first sharded-search pass did (the catalog as a GeoDataFrame, int64 windows and
scales, every tile's norm computed at load); *after* is ``core.search.scenes.load_scene``.

Lighter indexes: both indexes of the first scene are rebuilt with fewer trees, and each is
measured by size and by recall@10 against scoring every tile exactly: the text index with
the captions, the visual index with as many random tiles as queries ("find similar").

    python -m bench.bench_memory --tiles 1000000 --scenes 4 --queries 50
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import psutil
import torch

from bench.bench_shards import disk_per_tile, synthetic_workspace
from core.learn.data.sources import load_dataset
from core.model.checkpoint import scene_fingerprint
from core.model.inference import caption_energy
from core.model.shipped import resolve_checkpoint
from core.search.ranking import Filters, rank, scene_top
from core.search.scenes import EXACT_CHUNK, SceneIndex, load_scene
from core.search.scoring import text_scores, visual_scores
from core.store.index import (
    INDEX_DIM,
    TEXT_METRIC,
    VISUAL_METRIC,
    build_index,
    load_index,
    soft_index_vectors,
)
from core.store.workspace import Workspace
from tiles import WINDOW_FIELDS, read_catalog

MAPPED = ("visual.npy", "gate.npy", "text.ann", "visual.ann")


def _anon() -> int:
    """Resident anonymous bytes of this process (its own memory, no file pages)."""
    status = Path("/proc/self/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("RssAnon:"))
    return int(line.split()[1]) * 1024


def _mapped() -> dict[str, int]:
    """Resident bytes of this process's mappings of each search file, by file name."""
    found = dict.fromkeys(MAPPED, 0)
    for region in psutil.Process().memory_maps(grouped=True):
        name = Path(region.path).name
        if name in found:
            found[name] += region.rss
    return found


def _first_pass_extras(ws: Workspace, name: str, visual: np.ndarray) -> tuple:
    """What the first pass's loader held beside today's: catalog, int64 columns, norms."""
    catalog = read_catalog(ws.scene(name).catalog)
    norms = np.concatenate(
        [
            np.linalg.norm(np.asarray(visual[i : i + EXACT_CHUNK], dtype=np.float32), axis=1)
            for i in range(0, len(visual), EXACT_CHUNK)
        ]
    )
    windows = catalog[list(WINDOW_FIELDS)].to_numpy(np.int64)
    return catalog, windows, catalog["scale"].to_numpy(np.int64), norms


def resident(root: str, scene_key: str, dim: int, vectors: np.ndarray, first_pass: bool) -> dict:
    """In a fresh process: load every scene, answer the queries, report resident bytes."""
    ws = Workspace(Path(root))
    anon = _anon()
    scenes = [load_scene(ws, name, dim, scene_key) for name in ws.scene_names()]
    held = [_first_pass_extras(ws, s.name, s.visual) for s in scenes] if first_pass else []
    for vector in vectors:
        rank(scenes, "text", vector, Filters(k=10))
    columns = sum(a.nbytes for _, *arrays in held for a in arrays) or sum(
        s.tiles.nbytes() for s in scenes
    )
    report = _mapped() | {"own memory": _anon() - anon, "columns": columns}
    del held
    return report


def in_fresh_process(*args: object) -> dict:
    """``resident`` in a new interpreter, so no earlier allocation is reused."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        return pool.submit(resident, *args).result()


def _recall(scene: SceneIndex, kind: str, vectors: np.ndarray, exact: list[set]) -> tuple:
    """Mean recall@10 of ``scene``'s indexed search against ``exact``, and how many equal."""
    f = Filters(k=10, suppress_overlaps=False)
    found = [{c.tile for c in scene_top(scene, kind, v, f)} for v in vectors]
    hits = float(np.mean([len(a & b) / 10 for a, b in zip(found, exact, strict=True)]))
    return hits, sum(a == b for a, b in zip(found, exact, strict=True))


def tree_recall(
    ws: Workspace,
    scene_key: str,
    energy: np.ndarray,
    captions: np.ndarray,
    trees: list[int],
    tmp: Path,
) -> list[tuple]:
    """(query kind, trees, index bytes per tile, recall@10, same top 10) on the first scene.

    Text queries are the captions; tile queries ("find similar") are as many random tiles.
    """
    dim = captions.shape[1]
    scene = load_scene(ws, ws.scene_names()[0], dim, scene_key)
    everything = np.arange(len(scene))
    picked = np.sort(np.random.default_rng(0).choice(len(scene), len(captions), replace=False))
    chunks = range(0, len(scene), EXACT_CHUNK)
    proxies = [
        soft_index_vectors(
            scene.visual[i : i + EXACT_CHUNK], scene.gate[i : i + EXACT_CHUNK], energy
        )
        for i in chunks
    ]
    kinds = {
        "text": (captions, text_scores, TEXT_METRIC, np.concatenate(proxies), "text_ann"),
        "tile": (
            np.asarray(scene.visual[picked], dtype=np.float32),
            visual_scores,
            VISUAL_METRIC,
            np.asarray(scene.visual, dtype=np.float32),
            "visual_ann",
        ),
    }
    rows = []
    for kind, (vectors, score, metric, indexed, field) in kinds.items():
        exact = [set(np.argsort(-score(scene, everything, v))[:10].tolist()) for v in vectors]
        for n_trees in trees:
            path = tmp / f"{kind}-{n_trees}.ann"
            build_index(indexed, path, scene_key, metric, n_trees=n_trees, index_dim=INDEX_DIM)
            lighter = replace(scene, **{field: load_index(path, dim, scene_key, metric)})
            ranked = "text" if kind == "text" else "image"
            found = _recall(lighter, ranked, vectors, exact)
            rows.append((kind, n_trees, path.stat().st_size / len(scene), *found))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiles", type=int, default=1_000_000)
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--trees", default="32,16,8")
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--checkpoint", default="default")
    args = parser.parse_args()
    captions = list(load_dataset("rsicd", "test").captions)[::5][: args.queries]
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        model, _ = synthetic_workspace(
            ws.root, args.tiles, args.scenes, resolve_checkpoint(args.checkpoint), args.images
        )
        with torch.inference_mode():
            vectors = model.encode_text(model.tokenize(captions)).float().numpy()
        dim = model.cfg.embed_dim
        key = scene_fingerprint(model)
        before = in_fresh_process(str(ws.root), key, dim, vectors, True)
        after = in_fresh_process(str(ws.root), key, dim, vectors, False)
        disk = disk_per_tile(ws, args.tiles)
        trees = tree_recall(
            ws,
            key,
            caption_energy(model),
            vectors,
            [int(t) for t in args.trees.split(",")],
            Path(tmp),
        )
    per = 1 / args.tiles
    print(f"\n{args.tiles:,} synthetic tiles in {args.scenes} scenes; {len(captions)} text queries")
    print("\n| component | on disk B/tile | resident before B/tile | resident after B/tile |")
    print("|---|---:|---:|---:|")
    for name in MAPPED:
        print(
            f"| {name} (memory-mapped) | {disk.get(name, 0):,.1f} | {before[name] * per:,.1f} | {after[name] * per:,.1f} |"
        )
    print(f"| catalog.parquet | {disk.get('catalog.parquet', 0):,.1f} | | |")
    print(
        f"| process's own memory (catalog, columns, norms) | | {before['own memory'] * per:,.1f} | {after['own memory'] * per:,.1f} |"
    )
    print(
        f"| of which numeric columns (windows, scales, norms) | | {before['columns'] * per:,.1f} | {after['columns'] * per:,.1f} |"
    )
    total = {
        k: sum(v[n] for n in (*MAPPED, "own memory")) * per
        for k, v in (("before", before), ("after", after))
    }
    print(f"| **total resident** | | **{total['before']:,.0f}** | **{total['after']:,.0f}** |")
    print("\n| queries | index trees | index bytes per tile | recall@10 vs exact | same top 10 |")
    print("|---|---:|---:|---:|---:|")
    for kind, n_trees, size, hits, same in trees:
        print(f"| {kind} | {n_trees} | {size:,.0f} | {hits:.3f} | {same}/{len(vectors)} |")


if __name__ == "__main__":
    main()
