"""Refine with marks: Rocchio re-ranking from the analyst's relevant and irrelevant tiles."""

from __future__ import annotations

import time

import numpy as np

from core.errors import QueryError
from core.search.ranking import (
    Filters,
    rank_vector,
)
from core.search.results import SearchResult
from core.search.scenes import SearchResources

REFINE_WEIGHTS = (1.0, 0.75, 0.25)  # Rocchio: query, mean relevant, mean irrelevant


def _unit(x: np.ndarray) -> np.ndarray:
    return x / max(float(np.linalg.norm(x)), 1e-8)


def tile_vector(res: SearchResources, kind: str, scene: str, tile_id: int) -> np.ndarray:
    """A tile in the query's scoring space: ``v * g`` for text queries, ``v`` for images."""
    v, gate = res.tile_vectors(scene, tile_id)
    return _unit(v * gate if kind == "text" and gate is not None else v)


def refine(
    res: SearchResources,
    previous: SearchResult,
    relevant: list[tuple[str, int]],
    irrelevant: list[tuple[str, int]],
    f: Filters = Filters(),
) -> SearchResult:
    """Re-rank with the analyst's marks, moving the query towards relevant tiles (Rocchio).

    Instant: no training, just a new query vector scored the same way as the original.

    Raises:
        QueryError: when there is no previous query vector or no mark.
    """
    if previous.vector is None:
        raise QueryError("refine needs a previous search to start from")
    if not relevant and not irrelevant:
        raise QueryError("mark at least one hit relevant or not relevant to refine")
    t0 = time.perf_counter()
    a, b, c = REFINE_WEIGHTS
    vector = a * _unit(previous.vector)
    if relevant:
        vector = vector + b * np.mean(
            [tile_vector(res, previous.kind, *m) for m in relevant], axis=0
        )
    if irrelevant:
        vector = vector - c * np.mean(
            [tile_vector(res, previous.kind, *m) for m in irrelevant], axis=0
        )
    query = {
        **previous.query,
        "refined": {"relevant": len(relevant), "irrelevant": len(irrelevant)},
    }
    return rank_vector(res, previous.kind, vector.astype(np.float32), query, f, t0)
