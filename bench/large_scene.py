"""Generate a large tiled GeoTIFF with overviews from real UCM aerial images.

The scene is written strip by strip (never the whole array in memory), so it can be as
large as the disk allows. Image ``k`` of the sorted 256x256 UCM images lands at grid cell
``(row, col)`` with ``k = (row * cols + col) % n_images``; tests use this to check pixels.

Run directly to create a scene: ``python -m bench.large_scene out.tif [size]``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image
from rasterio.enums import Resampling

from core.settings import get_settings

CELL = 256
BLOCK = 512
PIXEL_M = 0.3
ORIGIN = (500_000.0, 4_200_000.0)
CRS = "EPSG:32610"
OVERVIEWS = (2, 4, 8, 16)
GDAL_CACHE_BYTES = 256 * 2**20


def ucm_images(data_root: Path | None = None) -> list[Path]:
    """The 256x256 UCM images, sorted by name."""
    data_root = data_root or get_settings().data_root
    paths = sorted((data_root / "ucm" / "images").glob("*.jpg"))
    return [p for p in paths if Image.open(p).size == (CELL, CELL)]


def image_at(images: list[Path], row: int, col: int, size: int) -> Path:
    """UCM image placed at grid cell (row, col) of a scene of ``size`` pixels."""
    cols = math.ceil(size / CELL)
    return images[(row * cols + col) % len(images)]


def make_large_scene(path: str | Path, size: int = 20_000, data_root: Path | None = None) -> Path:
    """Write a ``size`` x ``size`` RGB uint8 GeoTIFF (512 px JPEG tiles, overviews 2-16).

    Args:
        path: Destination file.
        size: Width and height in pixels.
        data_root: Shared data folder holding ``ucm/images``.

    Returns:
        The path written.
    """
    path = Path(path)
    images = ucm_images(data_root)
    cols = math.ceil(size / CELL)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 3,
        "dtype": "uint8",
        "crs": CRS,
        "transform": Affine(PIXEL_M, 0, ORIGIN[0], 0, -PIXEL_M, ORIGIN[1]),
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": "JPEG",
        "photometric": "YCBCR",
        "jpeg_quality": 90,
        "bigtiff": "IF_SAFER",
    }
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), rasterio.open(path, "w", **profile) as dst:
        for top in range(0, size, BLOCK):
            height = min(BLOCK, size - top)
            strip = np.empty((3, height, cols * CELL), dtype=np.uint8)
            for row in range(top // CELL, math.ceil((top + height) / CELL)):
                y = row * CELL - top
                for col in range(cols):
                    pixels = np.asarray(Image.open(image_at(images, row, col, size)).convert("RGB"))
                    strip[:, y : y + CELL, col * CELL : (col + 1) * CELL] = pixels[
                        : height - y
                    ].transpose(2, 0, 1)
            dst.write(strip[:, :, :size], window=((top, top + height), (0, size)))
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), rasterio.open(path, "r+") as dst:
        dst.build_overviews(list(OVERVIEWS), Resampling.average)
        dst.update_tags(ns="rio_overview", resampling="average")
    return path


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (VmHWM).

    Unlike ``getrusage().ru_maxrss``, VmHWM restarts at exec, so a child process started
    from a big parent (pytest, a benchmark) reports only its own peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("VmHWM not found in /proc/self/status")


if __name__ == "__main__":
    make_large_scene(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20_000)
