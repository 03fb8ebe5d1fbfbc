"""Find similar without the tile asked about: a tile is always most like itself.

The tile's own hit (score 1) and the larger tiles that contain it say nothing new, so they
can be left out: every tile of the query's scene that covers at least ``COVERS_QUERY`` of
the query tile's area (pixel windows of one scene share one grid). Its same-size
neighbours overlapping it by a fifth or more are gone as well: overlap suppression drops them
behind the tile itself, before it is left out.
"""

from __future__ import annotations

from dataclasses import replace

from core.search.ranking import held_tiles, search_tile
from core.search.results import Hit, SearchResult
from core.search.scenes import SearchResources
from core.search.shard_contract import Filters
from core.search.shortfall import fewer_hits

COVERS_QUERY = 0.5

_REFILLS = 8  # each asks for as many more as were left out: about one per tile size


def query_share(window: tuple[int, int, int, int], query: tuple[int, int, int, int]) -> float:
    """The share of ``query``'s area that ``window`` covers (both ``col, row, width, height``)."""
    w = min(window[0] + window[2], query[0] + query[2]) - max(window[0], query[0])
    h = min(window[1] + window[3], query[1] + query[3]) - max(window[1], query[1])
    return 0.0 if w <= 0 or h <= 0 else (w * h) / (query[2] * query[3])


def repeats_query(hit: Hit, scene: str, query: tuple[int, int, int, int]) -> bool:
    """True for the query tile itself and the tiles of its scene covering most of it."""
    return hit.scene == scene and query_share(hit.window, query) >= COVERS_QUERY


def search_similar(
    res: SearchResources, scene: str, tile_id: int, f: Filters = Filters()
) -> SearchResult:
    """The ``f.k`` tiles most like an indexed tile, leaving out the tile and what covers it.

    The engine is asked for more candidates until ``f.k`` remain once those are left out,
    or the scenes hold no more.

    Raises:
        SceneNotFoundError: for an unknown scene.
        QueryError: for a tile id outside the scene.
    """
    query = res.tile_window(scene, tile_id)
    want, kept = f.k, []
    for _ in range(_REFILLS):
        result = search_tile(res, scene, tile_id, replace(f, k=want))  # refuses a bad tile
        assert query is not None  # so the tile exists: it has a window
        kept = [hit for hit in result.hits if not repeats_query(hit, scene, query)]
        if len(kept) >= f.k or len(result.hits) < want:
            break
        want += f.k - len(kept)
    hits = [replace(hit, rank=rank) for rank, hit in enumerate(kept[: f.k], start=1)]
    notice = ""
    if len(hits) < f.k:
        besides = " besides the tile asked about"
        notice = fewer_hits(len(hits), f.k, held_tiles(res, f), f.area is not None, besides)
    return replace(result, hits=hits, notice=notice)
