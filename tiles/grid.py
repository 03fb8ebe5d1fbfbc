"""Pure window-grid arithmetic: tile offsets, counts, sizes and window conversions.

Nothing here touches a file, so the functions are cheap to test exhaustively. Every window
the grid makes lies inside the raster: the last row and column are shifted inward to end at
the edge, and a raster side shorter than the tile size clips the tiles on that side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rasterio.windows import Window

from tiles.errors import TilingError

WINDOW_FIELDS = ("col_off", "row_off", "width", "height")
Cell = float | tuple[float, float]  # a coverage cell's side, or its (width, height)


def tiles_along(length: int, size: int, stride: int) -> int:
    """Number of tiles needed to cover ``length`` pixels.

    Like torchgeo's ``tile_to_chips``, the count along one axis is::

        n = 1                                   if length <= size
        n = ceil((length - size) / stride) + 1  otherwise

    Tiles start at ``0, stride, 2 * stride, ..., (n - 2) * stride`` and the last one starts
    at ``length - size``: it is shifted inward to end exactly at the edge, as torchgeo's
    ``GridGeoSampler`` does, so no tile runs past the raster and none needs padding. The
    shift never makes two tiles coincide, because ``(n - 2) * stride < length - size``.
    When ``length <= size`` the one tile is clipped to ``length``. Every pixel is covered
    as long as ``stride <= size``.

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


def tile_offsets(length: int, size: int, stride: int) -> NDArray[np.int64]:
    """Start of every tile along one axis, increasing and without repeats.

    Args:
        length: Scene width or height in pixels.
        size: Tile size in pixels.
        stride: Distance between tile starts in pixels.

    Returns:
        (n,) int64 offsets, n = :func:`tiles_along`; the last is ``max(length - size, 0)``.

    Raises:
        TilingError: An argument is not positive.
    """
    starts = np.arange(tiles_along(length, size, stride), dtype=np.int64) * stride
    return np.minimum(starts, max(length - size, 0))


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


def tile_windows(
    width: int, height: int, size: int, stride: int, rows: slice | None = None
) -> NDArray[np.int64]:
    """Tile windows of one scale, in row-major order, all inside the raster.

    Windows are ``size`` x ``size`` except on a raster side shorter than ``size``, where
    they are clipped to that side (e.g. 256 wide and 232 tall on a raster 232 px tall).

    Args:
        width: Scene width in pixels.
        height: Scene height in pixels.
        size: Tile size in pixels.
        stride: Distance between tile starts in pixels.
        rows: Which rows of tiles to return (a slice of the grid's rows), so a huge grid
            can be walked block by block; all rows by default.

    Returns:
        (n, 4) int64 array of (col_off, row_off, width, height); n = :func:`tile_count`
        for all rows.

    Raises:
        TilingError: An argument is not positive.
    """
    cols = tile_offsets(width, size, stride)
    row_offsets = tile_offsets(height, size, stride)[slice(None) if rows is None else rows]
    row_grid, col_grid = np.meshgrid(row_offsets, cols, indexing="ij")
    n = row_grid.size
    return np.stack(
        [
            col_grid.ravel(),
            row_grid.ravel(),
            np.full(n, min(size, width), dtype=np.int64),
            np.full(n, min(size, height), dtype=np.int64),
        ],
        axis=1,
    )


def grid_sizes(width: int, height: int, sizes: Sequence[int]) -> tuple[int, ...]:
    """The tile sizes whose grids are used on a ``width`` x ``height`` raster, ascending.

    The smallest size is always used, so every raster gets tiles. A larger size is used
    only if its windows, clipped to the raster, keep at least half the size on both sides:
    a tile stretched from less would distort too much and adds nothing a smaller scale
    lacks. Once a size covers the whole raster with one window, larger sizes would repeat
    that same window and are left out.

    Args:
        width: Scene width in pixels.
        height: Scene height in pixels.
        sizes: Tile sizes in pixels, in any order.

    Returns:
        The sizes used.

    Raises:
        TilingError: ``sizes`` is empty or a size is not positive.
    """
    ordered = sorted(set(sizes))
    if not ordered or ordered[0] < 1:
        raise TilingError(f"sizes must be a non-empty list of positive sizes: {tuple(sizes)}")
    used = [ordered[0]]
    for size in ordered[1:]:
        if max(width, height) <= used[-1]:
            break
        if 2 * width >= size and 2 * height >= size:
            used.append(size)
    return tuple(used)


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


def summed_area_table(grid: NDArray[np.floating]) -> NDArray[np.float64]:
    """Summed-area table of a coverage grid, built once and shared by many window lookups.

    Args:
        grid: (rows, cols) valid fraction of each cell.

    Returns:
        (rows + 1, cols + 1) float64 table; ``table[r, c]`` is the sum of ``grid[:r, :c]``.
    """
    table = np.zeros((grid.shape[0] + 1, grid.shape[1] + 1), dtype=np.float64)
    table[1:, 1:] = grid.astype(np.float64).cumsum(axis=0).cumsum(axis=1)
    return table


def table_valid_fractions(
    table: NDArray[np.float64], cell: Cell, windows: NDArray[np.integer]
) -> NDArray[np.float64]:
    """Valid-pixel fraction of each window, from a :func:`summed_area_table`.

    Each window is snapped to the nearest cell boundaries and its cells are summed in
    constant time per window; cells outside the grid count as invalid.

    Args:
        table: Summed-area table of the coverage grid.
        cell: Cell size in pixels: one side, or (width, height) for cells that are not
            square or not a whole number of pixels.
        windows: (n, 4) array of (col_off, row_off, width, height).

    Returns:
        (n,) fractions in [0, 1].
    """
    cell_w, cell_h = cell if isinstance(cell, tuple) else (cell, cell)
    rows, cols = table.shape[0] - 1, table.shape[1] - 1
    windows = np.asarray(windows, dtype=np.float64)
    c0 = np.rint(windows[:, 0] / cell_w).astype(np.int64)
    r0 = np.rint(windows[:, 1] / cell_h).astype(np.int64)
    c1 = np.maximum(np.rint((windows[:, 0] + windows[:, 2]) / cell_w).astype(np.int64), c0 + 1)
    r1 = np.maximum(np.rint((windows[:, 1] + windows[:, 3]) / cell_h).astype(np.int64), r0 + 1)
    area = (c1 - c0) * (r1 - r0)
    c0, c1 = np.clip(c0, 0, cols), np.clip(c1, 0, cols)
    r0, r1 = np.clip(r0, 0, rows), np.clip(r1, 0, rows)
    inside = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
    return np.clip(inside / area, 0.0, 1.0)


def window_valid_fractions(
    grid: NDArray[np.floating], cell: Cell, windows: NDArray[np.integer]
) -> NDArray[np.float64]:
    """Valid-pixel fraction of each window, from a coarse coverage grid.

    Args:
        grid: (rows, cols) valid fraction of each cell.
        cell: Cell size in pixels, as for :func:`table_valid_fractions`.
        windows: (n, 4) array of (col_off, row_off, width, height).

    Returns:
        (n,) fractions in [0, 1]; see :func:`table_valid_fractions`.
    """
    return table_valid_fractions(summed_area_table(grid), cell, windows)


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
