"""Change score per tile: how far a tile's two dates lie apart, against the pair's own spread.

Both dates' visual vectors are compared on the unit sphere. A change that touches the whole
scene (season, sun, sensor colour) moves most tiles' vectors the same way, so the pair's
mean difference vector ``m`` is removed first; what is left, ``|u - w - m|`` for unit vectors
``u`` (later) and ``w`` (earlier), is turned into a robust z-score with the median and MAD
over the pair's tiles. Tile sizes see the ground differently, so each size is normalised on
its own.

The vectors are read twice in chunks (float16 on disk, float32 in a reused buffer): once for
the norms, the cosine and ``m``, once for ``u.m`` and ``w.m``; then
``|u - w - m|^2 = 2 - 2 u.w - 2 (u.m - w.m) + |m|^2``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation
MIN_SPREAD = 1e-6
CHUNK = 16384  # rows converted to float32 at once


def _chunks(
    after: np.ndarray, before: np.ndarray, ids: np.ndarray, chunk: int
) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """Rows ``ids`` of both arrays as float32, a chunk at a time, in two reused buffers."""
    contiguous = len(ids) > 0 and ids[-1] - ids[0] + 1 == len(ids)
    a_buf = np.empty((min(chunk, len(ids)), after.shape[1]), dtype=np.float32)
    b_buf = np.empty_like(a_buf)
    for start in range(0, len(ids), chunk):
        stop = min(start + chunk, len(ids))
        rows = slice(ids[0] + start, ids[0] + stop) if contiguous else ids[start:stop]
        a, b = a_buf[: stop - start], b_buf[: stop - start]
        a[...] = after[rows]
        b[...] = before[rows]
        yield slice(start, stop), a, b


def residual_distances(
    after: np.ndarray, before: np.ndarray, ids: np.ndarray, chunk: int = CHUNK
) -> np.ndarray:
    """``|u - w - m|`` of tiles ``ids``: the distance left once the mean change is removed."""
    n, dim = len(ids), after.shape[1]
    inv_a, inv_b, cos = (np.empty(n, dtype=np.float32) for _ in range(3))
    sum_u, sum_w = np.zeros(dim, dtype=np.float64), np.zeros(dim, dtype=np.float64)
    for where, a, b in _chunks(after, before, ids, chunk):
        inv_a[where] = 1 / np.maximum(np.sqrt(np.einsum("ij,ij->i", a, a)), 1e-8)
        inv_b[where] = 1 / np.maximum(np.sqrt(np.einsum("ij,ij->i", b, b)), 1e-8)
        cos[where] = np.einsum("ij,ij->i", a, b) * inv_a[where] * inv_b[where]
        sum_u += inv_a[where] @ a
        sum_w += inv_b[where] @ b
    mean = ((sum_u - sum_w) / max(n, 1)).astype(np.float32)
    along = np.empty(n, dtype=np.float32)
    for where, a, b in _chunks(after, before, ids, chunk):
        along[where] = (a @ mean) * inv_a[where] - (b @ mean) * inv_b[where]
    squared = 2 - 2 * cos - 2 * along + float(mean @ mean)
    return np.sqrt(np.clip(squared, 0, None))


def robust_z(values: np.ndarray) -> np.ndarray:
    """``(x - median) / (1.4826 * MAD)``: a z-score that a few large changes do not inflate."""
    if len(values) == 0:
        return values.astype(np.float32)
    median = float(np.median(values))
    spread = MAD_TO_SIGMA * float(np.median(np.abs(values - median)))
    return ((values - median) / max(spread, MIN_SPREAD)).astype(np.float32)


def change_scores(
    after: np.ndarray,
    before: np.ndarray,
    groups: np.ndarray,
    comparable: np.ndarray,
    chunk: int = CHUNK,
) -> np.ndarray:
    """Robust z-score of each tile's change, per group (tile size); NaN where not comparable.

    Args:
        after: ``[n, d]`` visual vectors of the later date.
        before: ``[n, d]`` visual vectors of the earlier date on the same tiles.
        groups: ``[n]`` group of each tile (its size); each is normalised on its own.
        comparable: ``[n]`` True where both dates cover the tile.
        chunk: Rows converted to float32 at once, bounding temporary memory.

    Returns:
        ``[n]`` float32 scores: 0 is a typical tile of the pair, 3 a change three robust
        standard deviations above it.
    """
    out = np.full(len(after), np.nan, dtype=np.float32)
    for group in np.unique(groups[comparable]):
        (ids,) = np.nonzero(comparable & (groups == group))
        out[ids] = robust_z(residual_distances(after, before, ids, chunk))
    return out
