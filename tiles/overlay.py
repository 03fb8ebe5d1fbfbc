"""Whole-scene quicklooks for map overlays, and single-tile thumbnails.

A map (Leaflet) overlays an image by stretching it between lon/lat bounds, so a scene in
any other CRS (UTM, a rotated grid) is warped first; the quicklook is read decimated, never
at full resolution, and nodata / masked pixels are transparent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window

from tiles.atomic import atomic_path
from tiles.footprint import window_footprints
from tiles.grid import decimated_shape
from tiles.io import bounded_cache, plan_reads, read_rgb
from tiles.reader import TileReader
from tiles.scene import PathLike, ScenePath, describe_dataset, open_scene

Bounds = tuple[float, float, float, float]
MAP_CRS = "EPSG:3857"  # web maps draw overlays in Web Mercator
MAP_CRSS = ("EPSG:4326", MAP_CRS)


def _warp(
    rgba: NDArray[np.uint8],
    src_transform: Affine,
    src_crs: CRS,
    outline_px: tuple[int, int],
    dst_crs: CRS,
) -> tuple[NDArray[np.uint8], Bounds]:
    """Warp a decimated RGBA scene onto a north-up grid of ``dst_crs``."""
    height, width = rgba.shape[:2]
    outline = window_footprints(
        src_transform, src_crs, np.array([[0, 0, width, height]]), 32, dst_crs=dst_crs
    )[0]
    x0, y0, x1, y1 = outline.bounds
    x_scale = math.cos(math.radians((y0 + y1) / 2)) if dst_crs.is_geographic else 1.0
    ground_w, ground_h = (x1 - x0) * x_scale, y1 - y0
    side = max(outline_px)
    if ground_w >= ground_h:
        dst_w, dst_h = side, max(1, round(side * ground_h / ground_w))
    else:
        dst_w, dst_h = max(1, round(side * ground_w / ground_h)), side
    out = np.zeros((4, dst_h, dst_w), dtype=np.uint8)
    reproject(
        source=np.ascontiguousarray(np.moveaxis(rgba, -1, 0)),
        destination=out,
        src_transform=src_transform,
        src_crs=src_crs,
        dst_transform=Affine((x1 - x0) / dst_w, 0, x0, 0, -(y1 - y0) / dst_h, y1),
        dst_crs=dst_crs,
        resampling=Resampling.nearest,
    )
    return np.moveaxis(out, 0, -1), (x0, y0, x1, y1)


def quicklook(
    path: ScenePath,
    max_size: int = 1024,
    *,
    bands: Sequence[int] | None = None,
    percentiles: tuple[float, float] = (2, 98),
    dst_crs: str = "EPSG:4326",
) -> tuple[NDArray[np.uint8], Bounds]:
    """RGBA preview of a whole scene and its lon/lat bounds, ready for a map overlay.

    Leaflet stretches an overlay linearly in Web Mercator; an EPSG:4326 quicklook is exact
    for small scenes, and ``dst_crs="EPSG:3857"`` is exact for scenes spanning degrees.

    Args:
        path: The scene file.
        max_size: Longest side of the decimated read (and of the warped result).
        bands: Optional 1-based RGB band override.
        percentiles: Stretch percentiles for non-8-bit data.
        dst_crs: ``"EPSG:4326"`` or ``"EPSG:3857"``; scenes in another CRS, or rotated,
            are warped to it.

    Returns:
        (rows, cols, 4) uint8 RGBA with alpha 0 on nodata, masked and outside pixels, and
        (min_lon, min_lat, max_lon, max_lat) of the image.

    Raises:
        ValueError: ``max_size`` is below 1 or ``dst_crs`` is not a map CRS.
        SceneOpenError: The file is missing, not a raster, or damaged.
        NotGeoreferencedError: The scene has no CRS or geotransform.
        BandSelectionError: The band override is invalid.
        SceneReadError: Pixels cannot be read.
    """
    if max_size < 1:
        raise ValueError(f"max_size must be at least 1, got {max_size}")
    if dst_crs not in MAP_CRSS:
        raise ValueError(f"dst_crs must be one of {MAP_CRSS}, got {dst_crs!r}")
    with bounded_cache(), open_scene(path) as ds:
        info = describe_dataset(ds)
        plan = plan_reads(ds, info, bands, percentiles)
        shape = decimated_shape(info.width, info.height, max_size)
        rgb, valid = read_rgb(ds, plan, Window(0, 0, info.width, info.height), shape)
    rgba = np.dstack([rgb, np.where(valid, np.uint8(255), np.uint8(0))])
    target = CRS.from_user_input(dst_crs)
    north_up = info.transform.b == 0 and info.transform.d == 0
    if info.crs == target and north_up:
        x0, y0, x1, y1 = window_footprints(
            info.transform, info.crs, np.array([[0, 0, info.width, info.height]]), 1, target
        )[0].bounds
    else:
        src_transform = info.transform @ Affine.scale(info.width / shape[1], info.height / shape[0])
        rgba, (x0, y0, x1, y1) = _warp(rgba, src_transform, info.crs, shape, target)
    if target.is_geographic:
        return rgba, (x0, y0, x1, y1)
    return rgba, transform_bounds(target, "EPSG:4326", x0, y0, x1, y1)


def write_quicklook_png(
    path: ScenePath, out_path: PathLike, max_size: int = 1024, **options: Any
) -> Bounds:
    """Write the :func:`quicklook` of a scene as a PNG, atomically.

    Args:
        path: The scene file.
        out_path: Destination PNG; nothing is written when the scene fails.
        max_size: Longest side of the preview.
        **options: ``bands``, ``percentiles`` or ``dst_crs`` for :func:`quicklook`.

    Returns:
        (min_lon, min_lat, max_lon, max_lat) to place the PNG on a map.

    Raises:
        ValueError: An option is invalid.
        SceneOpenError: The file is missing, not a raster, or damaged.
        NotGeoreferencedError: The scene has no CRS or geotransform.
        BandSelectionError: The band override is invalid.
        SceneReadError: Pixels cannot be read.
    """
    rgba, bounds = quicklook(path, max_size, **options)
    with atomic_path(out_path) as tmp:
        Image.fromarray(rgba).save(tmp, format="PNG")
    return bounds


def tile_thumbnail(
    path: ScenePath,
    tile: Any,
    size: int = 256,
    *,
    bands: Sequence[int] | None = None,
    percentiles: tuple[float, float] = (2, 98),
) -> NDArray[np.uint8]:
    """Read one tile from the source file as an RGB thumbnail, e.g. to show a search hit.

    Args:
        path: The scene file.
        tile: A catalog row, ``Window`` or (col_off, row_off, width, height); a window
            that is not square is stretched to the square thumbnail.
        size: Thumbnail side in pixels.
        bands: Optional 1-based RGB band override.
        percentiles: Stretch percentiles for non-8-bit data.

    Returns:
        (size, size, 3) uint8 RGB; masked (nodata) pixels are 0.

    Raises:
        TilingError: ``size`` is below 1, or the window lies wholly outside the scene.
        SceneOpenError: The file is missing, not a raster, or damaged.
        NotGeoreferencedError: The scene has no CRS or geotransform.
        BandSelectionError: The band override is invalid.
        SceneReadError: Pixels cannot be read.
    """
    with TileReader(path, bands=bands, out_size=size, percentiles=percentiles) as reader:
        return reader.read(tile)


def warp_to_map(
    rgba: NDArray[np.uint8], transform: Affine, crs: CRS, dst_crs: str = "EPSG:4326"
) -> tuple[NDArray[np.uint8], Bounds]:
    """Place any RGBA raster on a map: warp it north-up to ``dst_crs`` with lon/lat bounds.

    Used for overlays computed from tiles (e.g. heat maps) on a scene's reduced grid.

    Args:
        rgba: (rows, cols, 4) uint8 image; alpha 0 stays transparent.
        transform: Its affine transform in ``crs``.
        crs: Its coordinate reference system.
        dst_crs: ``"EPSG:4326"`` or ``"EPSG:3857"``.

    Returns:
        The warped RGBA image and its (min_lon, min_lat, max_lon, max_lat).

    Raises:
        ValueError: ``dst_crs`` is not a map CRS.
    """
    if dst_crs not in MAP_CRSS:
        raise ValueError(f"dst_crs must be one of {MAP_CRSS}, got {dst_crs!r}")
    target = CRS.from_user_input(dst_crs)
    warped, (x0, y0, x1, y1) = _warp(rgba, transform, crs, rgba.shape[:2], target)
    if target.is_geographic:
        return warped, (x0, y0, x1, y1)
    return warped, transform_bounds(target, "EPSG:4326", x0, y0, x1, y1)
