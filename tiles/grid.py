"""Pure window-grid arithmetic: tile offsets, counts, sizes and window conversions.

Nothing here touches a file, so the functions are cheap to test exhaustively.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from tiles.errors import TilingError

WINDOW_FIELDS = ("col_off", "row_off", "width", "height")


def tiles_along(length: int, size: int, stride: int) -> int:
    """Number of tiles needed to cover ``length`` pixels.

    Like torchgeo's ``tile_to_chips``, the count along one axis is::

        n = 1                                   if length <= size
        n = ceil((length - size) / stride) + 1  otherwise

    so tiles start at ``0, stride, 2 * stride, ...`` and the last one may run past the edge
    (it is then padded), but no pixel is left uncovered and nothing wraps around.

    Args:
        length: Scene width or height in pixels.
        size: Tile size in pixels.
        stride: Distance between tile starts in pixels.

    Returns:
        The number of tiles along that axis.

    Raises:
        TilingError: An argument is not positive.
    """
    if length < 1 or size < 1 or stride < 1:
        raise TilingError(
            f"length, size and stride must be positive, got {length}, {size}, {stride}"
        )
    if length <= size:
        return 1
    return math.ceil((length - size) / stride) + 1


def tile_count(width: int, height: int, size: int, stride: int) -> int:
    """Number of tiles in the grid of one scale: ``tiles_along(width) * tiles_along(height)``.

    Args:
        width: Scene width in pixels.
        height: Scene height in pixels.
        size: Tile size in pixels.
        stride: Distance between tile starts in pixels.

    Returns:
        The tile count.

    Raises:
        TilingError: An argument is not positive.
    """
    return tiles_along(width, size, stride) * tiles_along(height, size, stride)


def tile_windows(width: int, height: int, size: int, stride: int) -> NDArray[np.int64]:
    """All square tile windows of one scale, in row-major order.

    Args:
        width: Scene width in pixels.
        height: Scene height in pixels.
        size: Tile size in pixels.
        stride: Distance between tile starts in pixels.

    Returns:
        (n, 4) int64 array of (col_off, row_off, width, height), n = :func:`tile_count`.

    Raises:
        TilingError: An argument is not positive.
    """
    cols = np.arange(tiles_along(width, size, stride), dtype=np.int64) * stride
    rows = np.arange(tiles_along(height, size, stride), dtype=np.int64) * stride
    row_grid, col_grid = np.meshgrid(rows, cols, indexing="ij")
    sizes = np.full(row_grid.size, size, dtype=np.int64)
    return np.stack([col_grid.ravel(), row_grid.ravel(), sizes, sizes], axis=1)


def stride_for(size: int, overlap: float) -> int:
    """Stride giving the requested overlap between neighbouring tiles.

    Args:
        size: Tile size in pixels.
        overlap: Shared fraction of a tile side, in [0, 1); 0.5 is a half-tile shift.

    Returns:
        ``max(1, round(size * (1 - overlap)))``.

    Raises:
        TilingError: ``overlap`` is outside [0, 1).
    """
    if not 0 <= overlap < 1:
        raise TilingError(f"overlap must be in [0, 1), got {overlap}")
    return max(1, round(size * (1 - overlap)))


def size_from_metres(metres: float, ground_pixel_size_m: float) -> int:
    """Tile side in pixels that covers ``metres`` on the ground.

    Args:
        metres: Wanted tile side on the ground.
        ground_pixel_size_m: Ground size of one pixel in metres.

    Returns:
        ``max(1, round(metres / ground_pixel_size_m))``.

    Raises:
        TilingError: An argument is not positive.
    """
    if metres <= 0 or ground_pixel_size_m <= 0:
        raise TilingError(
            f"tile size and pixel size must be positive, got {metres} m and "
            f"{ground_pixel_size_m} m/pixel"
        )
    return max(1, round(metres / ground_pixel_size_m))


def window_valid_fractions(
    grid: NDArray[np.floating], cell: int, windows: NDArray[np.integer]
) -> NDArray[np.float64]:
    """Valid-pixel fraction of each window, from a coarse coverage grid.

    Each window is snapped to the nearest cell boundaries and its cells are summed with a
    summed-area table (constant time per window); cells outside the grid are padding and
    count as invalid.

    Args:
        grid: (rows, cols) valid fraction of each ``cell`` x ``cell`` pixel block.
        cell: Cell side in pixels.
        windows: (n, 4) array of (col_off, row_off, width, height).

    Returns:
        (n,) fractions in [0, 1].
    """
    table = np.zeros((grid.shape[0] + 1, grid.shape[1] + 1), dtype=np.float64)
    table[1:, 1:] = grid.astype(np.float64).cumsum(axis=0).cumsum(axis=1)
    windows = np.asarray(windows, dtype=np.float64)
    c0 = np.rint(windows[:, 0] / cell).astype(np.int64)
    r0 = np.rint(windows[:, 1] / cell).astype(np.int64)
    c1 = np.maximum(np.rint((windows[:, 0] + windows[:, 2]) / cell).astype(np.int64), c0 + 1)
    r1 = np.maximum(np.rint((windows[:, 1] + windows[:, 3]) / cell).astype(np.int64), r0 + 1)
    area = (c1 - c0) * (r1 - r0)
    c0, c1 = np.clip(c0, 0, grid.shape[1]), np.clip(c1, 0, grid.shape[1])
    r0, r1 = np.clip(r0, 0, grid.shape[0]), np.clip(r1, 0, grid.shape[0])
    inside = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
    return np.clip(inside / area, 0.0, 1.0)


def decimated_shape(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(rows, cols) of a whole-scene read whose longer side is at most ``max_side``.

    Args:
        width: Scene width in pixels.
        height: Scene height in pixels.
        max_side: Longest allowed side; smaller scenes keep their size.

    Returns:
        The output shape, at least 1x1.
    """
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(height * scale)), max(1, round(width * scale))


def as_window(tile: Any) -> Window:
    """Integer pixel window of a tile given in any of the forms callers hold.

    Args:
        tile: A rasterio ``Window``; a catalog row (pandas Series, ``itertuples`` record,
            or mapping) with ``col_off``, ``row_off``, ``width`` and ``height``; or a
            4-sequence in that order.

    Returns:
        The window, offsets and sizes rounded to integers.

    Raises:
        TypeError: ``tile`` is none of those forms.
        TilingError: The window is empty.
    """
    if isinstance(tile, Window):
        values = [tile.col_off, tile.row_off, tile.width, tile.height]
    elif isinstance(tile, Mapping):
        values = [tile[name] for name in WINDOW_FIELDS]
    elif all(hasattr(tile, name) for name in WINDOW_FIELDS):
        values = [getattr(tile, name) for name in WINDOW_FIELDS]
    elif isinstance(tile, tuple | list | np.ndarray) and len(tile) == 4:
        values = list(tile)
    else:
        raise TypeError(
            "a tile must be a rasterio Window, a catalog row with col_off/row_off/width/height, "
            f"or a 4-sequence; got {type(tile).__name__}"
        )
    col_off, row_off, width, height = (round(float(v)) for v in values)
    if width < 1 or height < 1:
        raise TilingError(f"tile window must not be empty, got {width}x{height}")
    return Window(col_off, row_off, width, height)
