"""Footprints of pixel windows as polygons in EPSG:4326.

A window's outline is densified (several points per edge) before reprojection, so curved
edges of a projected grid seen in lon/lat are followed instead of being cut by a bbox.
"""

from __future__ import annotations

import numpy as np
import shapely
from affine import Affine
from numpy.typing import NDArray
from pyproj import Transformer
from rasterio.crs import CRS

POINTS_PER_EDGE = 8


def pixel_to_crs(
    transform: Affine, cols: NDArray[np.floating], rows: NDArray[np.floating]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Apply an affine transform to arrays of pixel (col, row) coordinates.

    Args:
        transform: Pixel-to-CRS affine transform.
        cols: Column coordinates.
        rows: Row coordinates, same shape as ``cols``.

    Returns:
        The (x, y) CRS coordinates.
    """
    cols, rows = np.asarray(cols, dtype=np.float64), np.asarray(rows, dtype=np.float64)
    xs = transform.a * cols + transform.b * rows + transform.c
    ys = transform.d * cols + transform.e * rows + transform.f
    return xs, ys


def window_rings(
    windows: NDArray[np.integer], points_per_edge: int = POINTS_PER_EDGE
) -> NDArray[np.float64]:
    """Pixel-corner coordinates of each window's outline, densified along every edge.

    Args:
        windows: (n, 4) array of (col_off, row_off, width, height).
        points_per_edge: Points per edge, corners included once.

    Returns:
        (n, 4 * points_per_edge, 2) array of (col, row), clockwise from the top-left corner.

    Raises:
        ValueError: ``points_per_edge`` is below 1.
    """
    if points_per_edge < 1:
        raise ValueError(f"points_per_edge must be at least 1, got {points_per_edge}")
    t = np.linspace(0.0, 1.0, points_per_edge, endpoint=False)
    zero, one = np.zeros_like(t), np.ones_like(t)
    unit_cols = np.concatenate([t, one, 1 - t, zero])
    unit_rows = np.concatenate([zero, t, one, 1 - t])
    win = np.asarray(windows, dtype=np.float64)
    cols = win[:, [0]] + unit_cols * win[:, [2]]
    rows = win[:, [1]] + unit_rows * win[:, [3]]
    return np.stack([cols, rows], axis=-1)


def window_footprints(
    transform: Affine,
    crs: CRS | str,
    windows: NDArray[np.integer],
    points_per_edge: int = POINTS_PER_EDGE,
    dst_crs: CRS | str = "EPSG:4326",
) -> NDArray[np.object_]:
    """Footprint polygons of pixel windows, reprojected point by point.

    Args:
        transform: The scene's affine transform (pixel corner to CRS coordinates).
        crs: The scene's CRS.
        windows: (n, 4) array of (col_off, row_off, width, height); catalog windows lie
            inside the scene, so their footprints never extend past it.
        points_per_edge: Points per window edge before reprojection.
        dst_crs: CRS of the returned polygons.

    Returns:
        Array of n shapely Polygons in ``dst_crs``.

    Raises:
        ValueError: ``points_per_edge`` is below 1.
    """
    rings = window_rings(windows, points_per_edge)
    xs, ys = pixel_to_crs(transform, rings[..., 0], rings[..., 1])
    src, dst = CRS.from_user_input(crs), CRS.from_user_input(dst_crs)
    if src != dst:
        transformer = Transformer.from_crs(src.to_wkt(), dst.to_wkt(), always_xy=True)
        xs, ys = transformer.transform(xs, ys)
    return shapely.polygons(np.stack([xs, ys], axis=-1))
