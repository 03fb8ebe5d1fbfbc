"""Ranking: ANN candidates, exact re-scoring and overlap suppression, for each kind of query."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from core.errors import QueryError
from core.search.aoi import tiles_in
from core.search.query import clean_text_query
from core.search.results import Hit, SearchResult
from core.search.scenes import SceneIndex, SearchResources
from core.search.scoring import text_scores, visual_scores
from core.search.shard_contract import Candidate, Filters
from core.search.shortfall import fewer_hits
from core.store.index import VectorIndex
from core.store.query_images import load_query_image
from core.store.tileref import TileRef

CANDIDATES_PER_HIT = 20


MIN_CANDIDATES = 2000  # with the next line: recall@10 0.997 at 1M tiles (docs/BENCHMARKS.md)


SEARCH_K_PER_CANDIDATE = 50


OVERLAP_SUPPRESS = 0.2


def _candidates(
    scene: SceneIndex, index: VectorIndex | None, vector: np.ndarray, f: Filters
) -> np.ndarray:
    """Tiles to score exactly: an area's own tiles (few, so no index), else index candidates."""
    if f.area is not None:
        return tiles_in(scene.tiles, f.area)
    if f.exact or index is None:
        return np.arange(len(scene))
    n = min(len(scene), max(MIN_CANDIDATES, f.k * CANDIDATES_PER_HIT))
    return np.sort(index.nearest(vector, n, n * SEARCH_K_PER_CANDIDATE))


def _of_scales(scene: SceneIndex, ids: np.ndarray, f: Filters) -> np.ndarray:
    return ids[np.isin(scene.scales[ids], f.scales)] if f.scales else ids


def _scored(
    scene: SceneIndex, kind: str, vector: np.ndarray, f: Filters
) -> tuple[np.ndarray, np.ndarray]:
    score, index = (
        (text_scores, scene.text_ann) if kind == "text" else (visual_scores, scene.visual_ann)
    )
    ids = _of_scales(scene, _candidates(scene, index, vector, f), f)
    if len(ids) == 0:
        return ids, np.empty(0, dtype=np.float32)
    return ids, score(scene, ids, vector)


def _overlap(window_a: np.ndarray, window_b: np.ndarray) -> float:
    a, b = window_a.tolist(), window_b.tolist()  # Python ints: no narrow-integer overflow
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    return (w * h) / min(a[2] * a[3], b[2] * b[3])


def distinct_places(
    tiles: np.ndarray, windows: np.ndarray, scales: np.ndarray, k: int
) -> list[int]:
    """Positions in ``tiles`` (best first) of the first ``k`` that show a new place.

    A tile repeats a place when a kept tile of the same size covers ``OVERLAP_SUPPRESS`` of
    the smaller of the two: the half-shifted neighbours of a hit add nothing for an analyst.
    """
    kept: list[int] = []
    for position, tile in enumerate(tiles.tolist()):
        if any(
            scales[tiles[other]] == scales[tile]
            and _overlap(windows[tiles[other]], windows[tile]) >= OVERLAP_SUPPRESS
            for other in kept
        ):
            continue
        kept.append(position)
        if len(kept) == k:
            break
    return kept


def scene_top(scene: SceneIndex, kind: str, vector: np.ndarray, f: Filters) -> list[Candidate]:
    """A scene's best ``f.k`` tiles by exact score, near-duplicates of better ones dropped.

    Overlaps are suppressed only within a scene, so each scene (or shard) can decide its own
    list and ``merge`` still gives what one pass over every scene would.
    """
    ids, scores = _scored(scene, kind, vector, f)
    # An area's tiles are all kept: overlap suppression can then never leave fewer than k
    # hits while the area holds k places, however densely its tiles overlap.
    pool = None if f.area is not None else max(f.k * CANDIDATES_PER_HIT, f.k)
    top = np.argsort(-scores, kind="stable")[:pool]
    if f.suppress_overlaps:
        top = top[distinct_places(ids[top], scene.windows, scene.scales, f.k)]
    kept = list(zip(ids[top[: f.k]].tolist(), scores[top[: f.k]].tolist(), strict=True))
    footprints = scene.tiles.footprints(np.array([tile for tile, _ in kept], dtype=np.int64))
    return [
        Candidate(
            score=score,
            scene=scene.name,
            tile=tile,
            tile_id=tile,
            scale=int(scene.scales[tile]),
            window=tuple(int(v) for v in scene.windows[tile]),  # type: ignore[arg-type]
            geometry=geometry,
        )
        for (tile, score), geometry in zip(kept, footprints, strict=True)
    ]


def merge(per_scene: list[list[Candidate]], k: int) -> list[Candidate]:
    """The best ``k`` of every scene's list, ties broken by scene order, then tile."""
    pooled = [
        (-c.score, position, c.tile, c) for position, top in enumerate(per_scene) for c in top
    ]
    pooled.sort(key=lambda t: t[:3])
    return [c for *_, c in pooled[:k]]


def rank(scenes: list[SceneIndex], kind: str, vector: np.ndarray, f: Filters) -> list[Candidate]:
    """Every scene's best tiles merged by exact score, in one process."""
    return merge([scene_top(scene, kind, vector, f) for scene in scenes], f.k)


def _hits(ranked: list[Candidate]) -> list[Hit]:
    return [
        Hit(i, c.score, c.scene, c.tile_id, c.scale, c.window, c.geometry)
        for i, c in enumerate(ranked, start=1)
    ]


def rank_vector(
    res: SearchResources, kind: str, vector: np.ndarray, query: dict, f: Filters, t0: float
) -> SearchResult:
    """Rank by an encoded query vector; ``t0`` is when encoding started, for the timings."""
    t1 = time.perf_counter()
    missing: tuple[str, ...] = ()
    if res.shards is None:
        ranked = rank(res.select(list(f.scenes)), kind, vector, f)
    else:
        spec, sizes = res.shard_spec(res.chosen(list(f.scenes)))
        ranked, missing = res.shards.rank(spec, sizes, kind, vector, f)
    notice = ""
    if len(ranked) < f.k and not missing:  # a partial answer says why on its own
        notice = fewer_hits(len(ranked), f.k, held_tiles(res, f), f.area is not None)
    t2 = time.perf_counter()
    timings = {"encode": (t1 - t0) * 1000, "search": (t2 - t1) * 1000}
    query = {key: value for key, value in query.items() if key != "area"}
    if f.area is not None:
        query["area"] = f.area.to_geojson()
    return SearchResult(query, res.model_tag, _hits(ranked), timings, kind, vector, missing, notice)


def area_tiles(scene: SceneIndex, f: Filters) -> int:
    """How many of the scene's tiles of the chosen sizes lie in ``f``'s area (or anywhere)."""
    ids = np.arange(len(scene)) if f.area is None else tiles_in(scene.tiles, f.area)
    return len(_of_scales(scene, ids, f))


def held_tiles(res: SearchResources, f: Filters) -> int:
    """How many tiles ``f`` lets a search return, counted where they are held.

    Only asked when a search came back short, to say why in its notice.
    """
    if res.shards is None:
        return sum(area_tiles(scene, f) for scene in res.select(list(f.scenes)))
    spec, sizes = res.shard_spec(res.chosen(list(f.scenes)))
    return res.shards.area_tiles(spec, sizes, f)


def search_text(res: SearchResources, text: str, f: Filters = Filters()) -> SearchResult:
    """Rank tiles against a description.

    Raises:
        QueryError: for an empty, wordless or overlong query.
        SceneNotFoundError: when no scene (or a named one) is ready.
    """
    t0 = time.perf_counter()
    text = clean_text_query(text)
    if not res.model.has_gates:
        raise QueryError(
            "this model's attention has no index; only soft-attention models are searchable"
        )
    return rank_vector(res, "text", res.encode_text(text), {"text": text}, f, t0)


def search_image(
    res: SearchResources,
    image: str | Path | bytes | np.ndarray,
    f: Filters = Filters(),
    label: str | None = None,
) -> SearchResult:
    """Rank tiles by visual similarity to an example image.

    ``image`` is a file, its bytes, or its pixels already decoded by ``load_query_image``
    (a server decodes before taking its lock).

    Raises:
        QueryError: when the image cannot be read or is too large.
    """
    t0 = time.perf_counter()
    if isinstance(image, np.ndarray):
        pixels = image
    else:
        pixels = load_query_image(image, res.model.cfg.preprocess.image_size)
    name = label or ("upload" if isinstance(image, bytes | np.ndarray) else str(image))
    return rank_vector(res, "image", res.encode_pixels(pixels), {"image": name}, f, t0)


def search_tile(
    res: SearchResources, scene: str, tile_id: int, f: Filters = Filters()
) -> SearchResult:
    """Rank tiles by visual similarity to an indexed tile ("find similar").

    Raises:
        SceneNotFoundError: for an unknown scene.
        QueryError: for a tile id outside the scene.
    """
    t0 = time.perf_counter()
    vector, _ = res.tile_vectors(scene, tile_id)
    return rank_vector(res, "image", vector, {"tile": str(TileRef(scene, tile_id))}, f, t0)
