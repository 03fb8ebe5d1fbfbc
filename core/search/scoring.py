"""Exact AMFMN scores of a query against chosen tiles of a scene.

Tile norms are computed from the candidates' own rows, not kept per scene: holding them would
mean reading every stored vector at load, making the whole visual file resident.
"""

from __future__ import annotations

import numpy as np

from core.search.scenes import EXACT_CHUNK, SceneIndex


def _chunked(fn):  # noqa: ANN001, ANN202
    """Apply a scorer to at most ``EXACT_CHUNK`` tiles at a time, bounding temporary memory."""

    def run(scene: SceneIndex, ids: np.ndarray, query: np.ndarray) -> np.ndarray:
        parts = [
            fn(scene, ids[i : i + EXACT_CHUNK], query) for i in range(0, len(ids), EXACT_CHUNK)
        ]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)

    run.__doc__ = fn.__doc__
    return run


@_chunked
def text_scores(scene: SceneIndex, ids: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Exact soft-attention scores of tiles ``ids`` against a caption vector."""
    v = np.asarray(scene.visual[ids], dtype=np.float32)
    g = np.asarray(scene.gate[ids], dtype=np.float32)
    numerator = (v * g) @ query
    attended = np.sqrt(np.clip((g * g) @ (query * query), 0, None))
    return numerator / np.maximum(np.linalg.norm(v, axis=1) * attended, 1e-8)


@_chunked
def visual_scores(scene: SceneIndex, ids: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine between stored visual vectors of tiles ``ids`` and a query visual vector."""
    v = np.asarray(scene.visual[ids], dtype=np.float32)
    return (v @ query) / np.maximum(np.linalg.norm(v, axis=1) * np.linalg.norm(query), 1e-8)
