"""Limits on what a scene header may declare, checked before any pixel is read.

A GeoTIFF header can declare any size at almost no cost, and the work of tiling grows with
the declared size, not the file size; these checks need only the header.
"""

from __future__ import annotations

from tiles.config import TilingConfig, pixel_sizes
from tiles.errors import SceneTooLargeError
from tiles.grid import (
    grid_sizes,
    stride_for,
    tile_count,
)
from tiles.scene import SceneInfo

MAX_PIXELS = 4_000_000_000  # default of the SCENESEEK_MAX_PIXELS setting

MAX_TILES = 5_000_000  # default of the SCENESEEK_MAX_TILES setting


def count_tiles(info: SceneInfo, config: TilingConfig | None = None) -> int:
    """Number of windows in the grids of every scale used, by arithmetic alone.

    No window is built, so this is instant for any declared size; it is the catalog's
    size before tiles below ``min_valid`` are skipped.

    Args:
        info: The scene description.
        config: Tiling settings; defaults to ``TilingConfig()``.

    Returns:
        The tile count.

    Raises:
        TilingError: A size converts to less than one pixel.
    """
    config = TilingConfig() if config is None else config
    sizes = grid_sizes(info.width, info.height, pixel_sizes(info, config))
    return sum(
        tile_count(info.width, info.height, size, stride_for(size, config.overlap))
        for size in sizes
    )


def check_scene_size(
    info: SceneInfo,
    config: TilingConfig | None = None,
    *,
    max_pixels: float = MAX_PIXELS,
    max_tiles: float = MAX_TILES,
) -> int:
    """Refuse a scene whose header declares more pixels or tiles than the limits allow.

    A GeoTIFF header can declare any size at almost no cost (a sparse file of a few
    kilobytes can claim a million pixels a side), and the work of tiling grows with the
    declared size, not the file size. This check needs only the header (the tile count is
    arithmetic, no window is built); :func:`build_catalog` calls it before reading any
    pixel for tiling, and an application can call it as soon as a file arrives.

    Args:
        info: The scene description (from the header, see :func:`tiles.scene.describe`).
        config: Tiling settings; defaults to ``TilingConfig()``.
        max_pixels: Largest ``width * height`` accepted (setting ``SCENESEEK_MAX_PIXELS``).
        max_tiles: Largest :func:`count_tiles` accepted (setting ``SCENESEEK_MAX_TILES``).

    Returns:
        The scene's tile count, as :func:`count_tiles`.

    Raises:
        SceneTooLargeError: The scene exceeds a limit; the message names the declared
            size, the limit and the setting that raises it.
        TilingError: A size converts to less than one pixel.
    """
    config = TilingConfig() if config is None else config
    pixels = info.width * info.height
    if pixels > max_pixels:
        raise SceneTooLargeError(
            f"{info.path} declares {info.width:,} x {info.height:,} px ({pixels:,} pixels), "
            f"more than the limit of {max_pixels:,.0f} pixels (setting SCENESEEK_MAX_PIXELS); "
            "tiling was not started. If the scene is genuine, raise SCENESEEK_MAX_PIXELS; "
            "otherwise its header is damaged or was crafted"
        )
    count = count_tiles(info, config)
    if count > max_tiles:
        raise SceneTooLargeError(
            f"{info.path} ({info.width:,} x {info.height:,} px) would be cut into {count:,} "
            f"tiles of {', '.join(map(str, pixel_sizes(info, config)))} px with overlap "
            f"{config.overlap}, more than the limit of {max_tiles:,.0f} tiles (setting "
            "SCENESEEK_MAX_TILES); tiling was not started. Use larger tiles or less overlap, "
            "or raise SCENESEEK_MAX_TILES"
        )
    return count
