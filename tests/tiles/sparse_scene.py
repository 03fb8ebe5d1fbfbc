"""Sparse GeoTIFFs that declare a huge size in a small file, for the size-limit tests.

GDAL writes no data for blocks left empty (``SPARSE_OK``), so a file of a few megabytes
can declare a million pixels a side; unwritten blocks read as nodata (0). This is what a
crafted or damaged upload looks like, and what tiling must survive without reading it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

PIXEL_M = 0.3
ORIGIN = (500_000.0, 4_200_000.0)
CRS = "EPSG:32610"


def make_sparse_scene(
    path: str | Path, size: int, block: int = 1024, valid: Window | None = None
) -> Path:
    """Write a ``size`` x ``size`` RGB uint8 BigTIFF (nodata 0) holding at most one window.

    Args:
        path: Destination file.
        size: Declared width and height in pixels.
        block: Internal tile side; larger blocks keep the block index (and file) small.
        valid: The one window written with valid pixels; none by default.

    Returns:
        The path written.
    """
    path = Path(path)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 3,
        "dtype": "uint8",
        "nodata": 0,
        "crs": CRS,
        "transform": Affine(PIXEL_M, 0, ORIGIN[0], 0, -PIXEL_M, ORIGIN[1]),
        "tiled": True,
        "blockxsize": block,
        "blockysize": block,
        "compress": "deflate",
        "BIGTIFF": "YES",
        "SPARSE_OK": "TRUE",
    }
    with rasterio.open(path, "w", **profile) as dst:
        if valid is not None:
            shape = (3, int(valid.height), int(valid.width))
            dst.write(np.full(shape, 120, dtype=np.uint8), window=valid)
    return path
