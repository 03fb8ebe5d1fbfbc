"""Change queries: the biggest changes, or what is new (or gone) by a description or example.

"Biggest changes" ranks tiles by their change score. A text or image query is scored on
both dates of every tile exactly as search scores it (``text_scores``: AMFMN soft attention
with each date's own gates; ``visual_scores``: cosine), and tiles are ranked by the later
score minus the earlier one ("new") or the reverse ("gone"), optionally only among tiles
whose change score reaches ``min_change``. Overlapping tiles of one size are suppressed as
in search.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from core.errors import QueryError
from core.search.change.pair import ScenePair
from core.search.change.results import ChangeHit, ChangeResult
from core.search.query import clean_text_query
from core.search.ranking import distinct_places
from core.search.scenes import SearchResources
from core.search.scoring import text_scores, visual_scores
from core.store.query_images import load_query_image

Direction = Literal["new", "gone"]
MAX_K = 1000


@dataclass(frozen=True)
class ChangeQuery:
    """What to look for between two dates.

    Attributes:
        text: A description; with ``image`` None and this None, the biggest changes.
        image: An example image (path or bytes).
        image_label: Name of the example in results (default: its path, or "upload").
        direction: ``new`` (later minus earlier) or ``gone`` (earlier minus later).
        k: Number of hits.
        min_change: Only tiles whose change score is at least this (None: all tiles).
        scales: Only these tile sizes (empty: all).
    """

    text: str | None = None
    image: str | Path | bytes | None = None
    image_label: str | None = None
    direction: Direction = "new"
    k: int = 10
    min_change: float | None = None
    scales: tuple[int, ...] = ()


def _check(query: ChangeQuery) -> None:
    if query.text is not None and query.image is not None:
        raise QueryError("give a description or an example image, not both")
    if query.direction not in ("new", "gone"):
        raise QueryError(f"direction must be 'new' or 'gone', not {query.direction!r}")
    if not 1 <= query.k <= MAX_K:
        raise QueryError(f"k must be between 1 and {MAX_K}")


def _candidates(pair: ScenePair, query: ChangeQuery) -> np.ndarray:
    keep = pair.comparable.copy()
    if query.scales:
        keep &= np.isin(pair.later.scales, query.scales)
    if query.min_change is not None:
        keep &= np.nan_to_num(pair.change, nan=-np.inf) >= query.min_change
    return np.nonzero(keep)[0]


def change_search(res: SearchResources, pair: ScenePair, query: ChangeQuery) -> ChangeResult:
    """Rank the pair's tiles by change, or by a query's later-minus-earlier score.

    Raises:
        QueryError: for an empty, overlong or unreadable query, or bad options.
    """
    _check(query)
    t0 = time.perf_counter()
    ids = _candidates(pair, query)
    before = after = vector = None
    if query.text is not None:
        text = clean_text_query(query.text)
        if not res.model.has_gates:
            raise QueryError("this model has no soft attention; only its visual side compares")
        vector = res.encode_text(text)
        after = text_scores(pair.later, ids, vector)
        before = text_scores(pair.earlier, ids, vector)
        kind, described = "text", {"text": text, "direction": query.direction}
    elif query.image is not None:
        pixels = load_query_image(query.image, res.model.cfg.preprocess.image_size)
        vector = res.encode_pixels(pixels)
        after = visual_scores(pair.later, ids, vector)
        before = visual_scores(pair.earlier, ids, vector)
        label = query.image_label or (
            "upload" if isinstance(query.image, bytes) else str(query.image)
        )
        kind, described = "image", {"image": label, "direction": query.direction}
    else:
        kind, described = "change", {"change": "biggest"}
    t1 = time.perf_counter()
    if before is None or after is None:
        scores = pair.change[ids]
    else:
        scores = after - before if query.direction == "new" else before - after
    order = np.argsort(-scores, kind="stable")
    kept = order[distinct_places(ids[order], pair.later.windows, pair.later.scales, query.k)]
    tiles = ids[kept].astype(np.int64)
    hits = [
        ChangeHit(
            rank=rank,
            score=float(scores[i]),
            scene=pair.after,
            tile_id=int(tile),
            scale=int(pair.later.scales[tile]),
            window=tuple(int(v) for v in pair.later.windows[tile]),  # type: ignore[arg-type]
            geometry=geometry,
            change=float(pair.change[tile]),
            before_score=None if before is None else float(before[i]),
            after_score=None if after is None else float(after[i]),
        )
        for rank, (i, tile, geometry) in enumerate(
            zip(kept, tiles, pair.later.tiles.footprints(tiles), strict=True), start=1
        )
    ]
    t2 = time.perf_counter()
    timings = {"encode": (t1 - t0) * 1000, "search": (t2 - t1) * 1000}
    return ChangeResult(
        described, res.model_tag, hits, timings, kind, vector, before=pair.before, after=pair.after
    )
