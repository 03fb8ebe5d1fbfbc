"""Multiscale tile catalogs: which windows of a scene to embed, and where they are.

A catalog is a GeoDataFrame with one row per tile (its pixel window, scale, valid fraction
and EPSG:4326 footprint) plus everything needed to read the tiles again and rebuild their
scene-CRS footprints exactly, kept in ``attrs[CATALOG_KEY]`` and saved in the GeoParquet
file's metadata. That metadata records the :data:`TILING_VERSION` the windows were cut
with, so an application can tell catalogs (and the vectors embedded from them) made under
older grid rules and ask for a re-ingest.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS

from tiles.atomic import atomic_path
from tiles.config import TilingConfig, pixel_sizes
from tiles.errors import CatalogError, TilingError
from tiles.footprint import window_footprints
from tiles.grid import (
    grid_sizes,
    stride_for,
    summed_area_table,
    table_valid_fractions,
    tile_windows,
    tiles_along,
)
from tiles.io import ReadPlan, bounded_cache, plan_reads, valid_grid
from tiles.limits import MAX_PIXELS, MAX_TILES, check_scene_size
from tiles.scene import (
    PathLike,
    SceneInfo,
    ScenePath,
    describe_dataset,
    is_local_path,
    open_scene,
)

CATALOG_KEY = "sceneseek_tiles"
FORMAT_VERSION = 1
# Rules that cut windows: 1 padded edge tiles past the raster (catalogs without the key);
# 2 shifts the last row and column inward, clips to short sides, and never pads.
TILING_VERSION = 2
ROW_BLOCK_TILES = 65_536  # windows valued at once: bounds memory for any declared size
COLUMNS = (
    "tile_id",
    "scale",
    "col_off",
    "row_off",
    "width",
    "height",
    "valid_fraction",
    "geometry",
)


def _metadata(
    info: SceneInfo, config: TilingConfig, scales: tuple[int, ...], plan: ReadPlan
) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "tiling_version": TILING_VERSION,
        "source": os.path.abspath(info.path) if is_local_path(info.path) else info.path,
        "crs_wkt": info.crs.to_wkt(),
        "transform": [float(v) for v in tuple(info.transform)[:6]],
        "width": info.width,
        "height": info.height,
        "bands": list(plan.bands),
        "mask_source": info.mask_source,
        "stretch": None if plan.stretch is None else plan.stretch.to_dict(),
        "scales": list(scales),
        "ground_pixel_size_m": list(info.ground_pixel_size_m),
        "bounds_4326": list(info.bounds_4326),
        "config": {
            **asdict(config),
            "sizes": list(config.sizes),
            "percentiles": list(config.percentiles),
            "bands": None if config.bands is None else list(config.bands),
        },
    }


class _Tiles(NamedTuple):
    """Kept tiles of one block of tile rows of one scale."""

    windows: NDArray[np.int64]
    sizes: NDArray[np.int64]
    fractions: NDArray[np.float64]
    footprints: NDArray[np.object_]


def _row_blocks(info: SceneInfo, size: int, stride: int) -> Iterator[NDArray[np.int64]]:
    """The windows of one scale, a block of whole tile rows at a time."""
    per_row = tiles_along(info.width, size, stride)
    step = max(1, ROW_BLOCK_TILES // per_row)
    for start in range(0, tiles_along(info.height, size, stride), step):
        yield tile_windows(info.width, info.height, size, stride, slice(start, start + step))


def _kept(
    info: SceneInfo, size: int, windows: NDArray[np.int64], fractions: NDArray[np.float64]
) -> _Tiles:
    sizes = np.full(len(windows), size, dtype=np.int64)
    return _Tiles(windows, sizes, fractions, window_footprints(info.transform, info.crs, windows))


def _kept_tiles(
    info: SceneInfo,
    config: TilingConfig,
    scales: tuple[int, ...],
    grid: NDArray[np.float32],
    cell: tuple[float, float],
) -> list[_Tiles]:
    """Tiles at or above ``min_valid``, block by block, so memory follows the kept tiles."""
    table = summed_area_table(grid)
    kept: list[_Tiles] = []
    for size in grid_sizes(info.width, info.height, scales):
        blocks_before, best, best_fraction = len(kept), None, 0.0
        for windows in _row_blocks(info, size, stride_for(size, config.overlap)):
            fractions = table_valid_fractions(table, cell, windows)
            keep = fractions >= config.min_valid
            if keep.any():
                kept.append(_kept(info, size, windows[keep], fractions[keep]))
            top = int(np.argmax(fractions))
            if fractions[top] > best_fraction:
                best, best_fraction = windows[top : top + 1], float(fractions[top])
        if size == scales[0] and len(kept) == blocks_before and best is not None:
            kept.append(_kept(info, size, best, np.array([best_fraction])))
    return kept


def build_catalog(
    path: ScenePath,
    config: TilingConfig | None = None,
    *,
    max_pixels: float = MAX_PIXELS,
    max_tiles: float = MAX_TILES,
) -> gpd.GeoDataFrame:
    """Cut a scene into multiscale tiles and compute their footprints.

    Tiles of each scale start every ``stride`` pixels from the top-left corner, and the
    last row and column are shifted inward to end at the scene's edge, so every window and
    footprint lies inside the scene and no tile is padded (see :func:`tiles.grid.tiles_along`).
    On a scene side shorter than a scale's tile size, that scale's windows are clipped to
    the side (``width`` or ``height`` below ``scale``) and readers stretch them to the
    model's square input; larger scales whose clipped windows would keep less than half
    their size are not used (see :func:`tiles.grid.grid_sizes`). So a 175 x 143 px scene
    gets one 175 x 143 window. Valid fractions come from the scene mask (alpha, mask band
    or nodata) read at reduced resolution. Tiles below ``min_valid`` are skipped, except
    that when no tile of the smallest scale qualifies the best one is kept. Footprints
    follow each window's edges densified to 8 points per edge, reprojected.

    The scene's declared size is checked against the limits (:func:`check_scene_size`)
    from its header, before any pixel is read for tiling (opening the scene reads only its
    last block, to detect truncation). Windows, valid fractions and footprints are then
    computed ``ROW_BLOCK_TILES`` windows (whole tile rows) at a time, and the coverage read
    has a fixed size, so memory follows the tiles kept, not the size the header declares.

    Args:
        path: The scene file.
        config: Tiling settings; defaults to ``TilingConfig()``.
        max_pixels: Largest ``width * height`` accepted (setting ``SCENESEEK_MAX_PIXELS``).
        max_tiles: Largest tile count accepted (setting ``SCENESEEK_MAX_TILES``).

    Returns:
        GeoDataFrame (EPSG:4326) with columns ``COLUMNS``, ordered by scale, row, column;
        ``tile_id`` is dense from 0; ``scale`` is the tile size, ``width`` and ``height``
        the window, smaller than ``scale`` where the scene is. ``attrs[CATALOG_KEY]``
        holds the scene CRS (WKT), transform, bands, stretch and settings.

    Raises:
        SceneOpenError: The file is missing, not a raster, or damaged.
        NotGeoreferencedError: The scene has no CRS or geotransform.
        BandSelectionError: The band override is invalid.
        SceneTooLargeError: The scene declares more pixels or tiles than the limits.
        SceneReadError: Pixels cannot be read.
        TilingError: The settings are invalid or the scene has no valid pixel.
    """
    config = TilingConfig() if config is None else config
    with bounded_cache(), open_scene(path) as ds:
        info = describe_dataset(ds)
        check_scene_size(info, config, max_pixels=max_pixels, max_tiles=max_tiles)
        plan = plan_reads(ds, info, config.bands, config.percentiles)
        grid, cell = valid_grid(ds, plan)
    scales = pixel_sizes(info, config)
    kept = _kept_tiles(info, config, scales, grid, cell)
    if not kept:
        raise TilingError(
            f"{info.path} has no valid pixel (mask source: {info.mask_source}); check its "
            "nodata value or alpha band"
        )
    windows = np.concatenate([part.windows for part in kept])
    catalog = gpd.GeoDataFrame(
        {
            "tile_id": np.arange(len(windows), dtype=np.int64),
            "scale": np.concatenate([part.sizes for part in kept]),
            "col_off": windows[:, 0],
            "row_off": windows[:, 1],
            "width": windows[:, 2],
            "height": windows[:, 3],
            "valid_fraction": np.concatenate([part.fractions for part in kept]),
        },
        geometry=np.concatenate([part.footprints for part in kept]),
        crs="EPSG:4326",
    )
    catalog.attrs[CATALOG_KEY] = _metadata(info, config, scales, plan)
    return catalog


def _metadata_of(catalog: gpd.GeoDataFrame) -> dict[str, Any]:
    meta = catalog.attrs.get(CATALOG_KEY)
    missing = [name for name in COLUMNS if name not in catalog.columns]
    if meta is None or missing:
        raise CatalogError(
            f"not a tile catalog (missing {missing or [CATALOG_KEY + ' metadata']}); build it "
            "with tiles.build_catalog"
        )
    return dict(meta)


def write_catalog(catalog: gpd.GeoDataFrame, path: PathLike) -> None:
    """Save a catalog as GeoParquet, atomically.

    The file is written next to its destination under a temporary name and renamed over
    it, so readers never see a partial file and a failure leaves nothing behind.

    Args:
        catalog: A catalog from :func:`build_catalog`.
        path: Destination ``.parquet`` path; its folder is created if needed.

    Raises:
        CatalogError: ``catalog`` is not a tile catalog.
        OSError: The file cannot be written.
    """
    _metadata_of(catalog)
    with atomic_path(path) as tmp:
        catalog.to_parquet(tmp, index=False)


def read_catalog(path: PathLike) -> gpd.GeoDataFrame:
    """Load a catalog saved with :func:`write_catalog`, metadata included.

    Catalogs of every tiling version load; one saved before versions were recorded gets
    ``tiling_version`` 1 in its metadata, so callers compare it with :data:`TILING_VERSION`
    (see :func:`catalog_tiling_version`) instead of guessing from missing keys.

    Args:
        path: The ``.parquet`` file.

    Returns:
        The catalog with ``attrs[CATALOG_KEY]`` restored.

    Raises:
        FileNotFoundError: The file does not exist.
        CatalogError: The file is not a tile catalog.
    """
    try:
        catalog = gpd.read_parquet(path)
    except (ValueError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise CatalogError(f"{os.fspath(path)} is not a GeoParquet tile catalog ({exc})") from exc
    meta = _metadata_of(catalog)
    meta.setdefault("tiling_version", 1)
    catalog.attrs[CATALOG_KEY] = meta
    return catalog


def catalog_tiling_version(catalog: gpd.GeoDataFrame) -> int:
    """The tiling version a catalog's windows were cut with.

    Version 1 catalogs have padded edge windows that run past the raster; vectors embedded
    from them differ from what this version would make, so an application should mark
    their scenes as needing a re-ingest when this is below :data:`TILING_VERSION`.

    Args:
        catalog: A catalog from :func:`build_catalog` or :func:`read_catalog`.

    Returns:
        The version; 1 for catalogs saved before versions were recorded.

    Raises:
        CatalogError: ``catalog`` is not a tile catalog.
    """
    return int(_metadata_of(catalog).get("tiling_version", 1))


def scene_footprints(catalog: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """Exact tile footprints in the scene's own CRS, rebuilt from the stored transform.

    Args:
        catalog: A catalog from :func:`build_catalog` or :func:`read_catalog`.

    Returns:
        GeoSeries of the tile windows' corner polygons in the scene CRS.

    Raises:
        CatalogError: ``catalog`` is not a tile catalog.
    """
    meta = _metadata_of(catalog)
    crs = CRS.from_wkt(meta["crs_wkt"])
    windows = catalog[["col_off", "row_off", "width", "height"]].to_numpy()
    polygons = window_footprints(
        Affine(*meta["transform"]), crs, windows, points_per_edge=1, dst_crs=crs
    )
    return gpd.GeoSeries(polygons, index=catalog.index, crs=crs)
