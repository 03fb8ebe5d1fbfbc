"""Change search speed: scoring tile pairs once both dates are embedded, and a large pair.

Default: synthetic pairs from real vectors (``bench.synthetic``: mixes of the model's
vectors of RSICD test images). The earlier date is every tile's later vector plus noise
and one shift vector shared by all tiles (season, sensor), except a planted 1 % whose
earlier vector is another tile's. Timed, on float16 ``.npy`` files memory-mapped as search
loads them: ``change_scores`` over every tile, "biggest changes" (scores + ranking) and a
text query scored on both dates. Recall: planted tiles among the top ``planted`` scores.

    python -m bench.bench_change --sizes 10000,100000 --rounds 5

``--large SIZE``: a generated SIZE x SIZE scene (``bench.large_scene``) and an edited later
copy (``bench.change_pair``: a fifth-of-a-pixel grid shift, brightness and hue, storage
tanks pasted in) ingested, aligned and searched end to end; prints the time of each stage
and where the pasted tiles rank.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from bench.synthetic import mixed_vectors, real_vectors, synthetic_catalog
from core.device import limit_blas_threads
from core.learn.data.sources import load_dataset
from core.model.checkpoint import load_checkpoint
from core.model.shipped import resolve_checkpoint
from core.search.change.pair import ScenePair
from core.search.change.query import ChangeQuery, change_search
from core.search.change.score import change_scores
from core.search.scenes import EXACT_CHUNK, SceneIndex
from core.search.scoring import text_scores
from core.search.tile_columns import TileColumns
from core.store.pairs import PairManifest

NO_MODEL = SimpleNamespace(model_tag="bench")  # "biggest changes" encodes no query
PLANTED = 0.01
SHIFT = 0.3  # of the vectors' per-dimension spread, the same for every tile
NOISE = 0.05


def _write(folder: Path, name: str, arrays: dict[str, np.ndarray]) -> SceneIndex:
    """A scene whose vectors are memory-mapped float16 files, as search loads them."""
    n = len(arrays["visual"])
    for key, values in arrays.items():
        np.save(folder / f"{name}-{key}.npy", values)
    return SceneIndex(
        name=name,
        tiles=TileColumns.from_catalog(synthetic_catalog(n)),
        visual=np.load(folder / f"{name}-visual.npy", mmap_mode="r"),
        gate=np.load(folder / f"{name}-gate.npy", mmap_mode="r"),
        visual_ann=None,  # type: ignore[arg-type]  (change queries score exactly)
        text_ann=None,
        manifest={},  # type: ignore[arg-type]
    )


def synthetic_pair(
    visual: np.ndarray, gates: np.ndarray, n: int, folder: Path
) -> tuple[SceneIndex, SceneIndex, np.ndarray]:
    """Later and earlier scenes of ``n`` tiles, and the planted changed tiles."""
    rng = np.random.default_rng(1)
    later_v, later_g = mixed_vectors(visual, gates, 0, n, seed=0)
    spread = later_v.astype(np.float32).std(axis=0)
    shift = SHIFT * spread * rng.standard_normal(visual.shape[1]).astype(np.float32)
    earlier_v = np.empty_like(later_v)
    for start in range(0, n, EXACT_CHUNK):
        part = later_v[start : start + EXACT_CHUNK].astype(np.float32)
        noise = NOISE * spread * rng.standard_normal(part.shape).astype(np.float32)
        earlier_v[start : start + EXACT_CHUNK] = part + shift + noise
    earlier_g = later_g.copy()
    planted = np.sort(rng.choice(n, max(1, int(n * PLANTED)), replace=False))
    earlier_v[planted], earlier_g[planted] = mixed_vectors(visual, gates, 0, len(planted), seed=7)
    later = _write(folder, "later", {"visual": later_v, "gate": later_g})
    earlier = _write(folder, "earlier", {"visual": earlier_v, "gate": earlier_g})
    return later, earlier, planted


def _scores(later: SceneIndex, earlier: SceneIndex) -> np.ndarray:
    every = np.ones(len(later), dtype=bool)
    return change_scores(later.visual, earlier.visual, later.scales, every)


def _biggest(later: SceneIndex, earlier: SceneIndex) -> None:
    pair = ScenePair(later, earlier, np.ones(len(later)), _scores(later, earlier), PairManifest())
    change_search(NO_MODEL, pair, ChangeQuery(k=10))  # type: ignore[arg-type]


def _text(later: SceneIndex, earlier: SceneIndex, query: np.ndarray) -> np.ndarray:
    ids = np.arange(len(later))
    return text_scores(later, ids, query) - text_scores(earlier, ids, query)


def _median_s(fn: Callable[[], object], rounds: int) -> float:
    fn()  # warm the page cache and the allocator
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def synthetic(args: argparse.Namespace) -> None:
    model, _ = load_checkpoint(resolve_checkpoint(args.checkpoint))
    visual, gates = real_vectors(model, args.images)
    caption = list(load_dataset("rsicd", "test").captions)[0]
    with torch.inference_mode():
        query = model.encode_text(model.tokenize([caption])).float().numpy()[0]
    limit_blas_threads()  # as SearchResources.load does
    print(
        "| tile pairs | change scores s | biggest changes (scores + top 10) s | text query, both dates s | planted changes in top |"
    )
    print("|---:|---:|---:|---:|---:|")
    for n in [int(s) for s in args.sizes.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            later, earlier, planted = synthetic_pair(visual, gates, n, Path(tmp))
            scores = change_scores(later.visual, earlier.visual, later.scales, np.ones(n, bool))
            recall = len(set(np.argsort(-scores)[: len(planted)]) & set(planted)) / len(planted)
            seconds = (
                _median_s(partial(_scores, later, earlier), args.rounds),
                _median_s(partial(_biggest, later, earlier), args.rounds),
                _median_s(partial(_text, later, earlier, query), args.rounds),
            )
            print(
                f"| {n:,} | {seconds[0]:.3f} | {seconds[1]:.3f} | {seconds[2]:.3f} "
                f"| {recall:.3f} ({len(planted):,} planted) |"
            )
            del later, earlier


def large(args: argparse.Namespace) -> None:
    from bench.change_pair import Edit, edited_copy, storage_tank_images
    from bench.large_scene import make_large_scene
    from core.ingest.embed.mapper import TileEmbedder
    from core.ingest.launch import ingest_scene
    from core.ingest.pipeline import IngestOptions
    from core.model.loading import load_model
    from core.search.change.align import align_pair
    from core.search.change.pair import change_heat, load_pair
    from core.search.scenes import SearchResources
    from core.store.workspace import Workspace

    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench-change-"))
    folder.mkdir(parents=True, exist_ok=True)
    stages: list[tuple[str, float, str]] = []

    def stage(name: str, t0: float, note: str = "") -> None:
        stages.append((name, time.perf_counter() - t0, note))
        print(f"{name}: {stages[-1][1]:.3f} s {note}", flush=True)

    t0 = time.perf_counter()
    earlier_tif = folder / "earlier.tif"
    if not earlier_tif.exists():
        make_large_scene(earlier_tif, args.large)
    cell = 256 * 9  # pasted 256 px pictures on a 2,304 px lattice, away from the edges
    positions = [
        (c, r)
        for r in range(1024, args.large - 512, cell)
        for c in range(1024, args.large - 512, cell)
    ]
    tanks = storage_tank_images(len(positions))
    later_tif = folder / "later.tif"
    edit = Edit(pastes=tuple((c, r, p) for (c, r), p in zip(positions, tanks, strict=True)))
    if not later_tif.exists():  # a rerun on the same folder reuses both scenes and the pair
        edited_copy(earlier_tif, later_tif, edit)
    stage("generate both scenes", t0, f"{args.large:,} px a side, {len(positions)} pictures pasted")
    ws = Workspace(folder / "ws")
    options = IngestOptions(shared_stages=args.shared_stages, workers=args.workers)
    for tif, name in ((earlier_tif, "earlier"), (later_tif, "later")):
        t0 = time.perf_counter()
        result = ingest_scene(tif, ws, name, options, device=args.device)
        rate = "already ingested" if result.skipped else f"{result.tiles_per_second:.1f} tiles/s"
        stage(f"ingest {name}", t0, f"{result.n_tiles:,} tiles, {rate}")
    loaded = load_model(ws, None, args.device)
    t0 = time.perf_counter()
    manifest = align_pair(
        ws,
        "earlier",
        "later",
        TileEmbedder(loaded.model, loaded.device),
        loaded.scene_key,
        workers=args.workers,
    )
    stage(
        "align earlier on later's tiles",
        t0,
        f"{manifest.n_tiles:,} tiles, {manifest.n_tiles / (time.perf_counter() - t0):.1f} tiles/s",
    )
    res = SearchResources.load(ws, loaded.model, loaded.tag, loaded.device)
    t0 = time.perf_counter()
    pair = load_pair(res, "earlier", "later")
    stage("load pair + change scores", t0)
    t0 = time.perf_counter()
    change_heat(pair)
    stage("change heat map", t0)
    for label, query in (
        ("biggest changes", ChangeQuery(k=len(positions))),
        ("new 'storage tanks'", ChangeQuery(text="storage tanks", k=len(positions))),
    ):
        t0 = time.perf_counter()
        result = change_search(res, pair, query)
        inside = sum(
            any(
                w[0] <= c and w[1] <= r and c + 256 <= w[0] + w[2] and r + 256 <= w[1] + w[3]
                for c, r in positions
            )
            for w in (h.window for h in result.hits)
        )
        stage(
            label,
            t0,
            f"{inside}/{len(positions)} of the top {len(positions)} hold a pasted picture",
        )
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}\n"
    )
    print("| stage | seconds | notes |\n|---|---:|---|")
    for name, seconds, note in stages:
        print(f"| {name} | {seconds:.3f} | {note} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--images", type=int, default=600)
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--large", type=int, help="end to end on a generated pair of this size")
    parser.add_argument("--folder", help="where the large pair is written (default: a temp dir)")
    parser.add_argument("--shared-stages", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    if args.large:
        large(args)
    else:
        synthetic(args)


if __name__ == "__main__":
    main()
