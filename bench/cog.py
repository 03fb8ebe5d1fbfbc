"""Write a cloud-optimised GeoTIFF copy of a scene: internal tiles, overviews, header first."""

from __future__ import annotations

from pathlib import Path

import rasterio
from rasterio.shutil import copy
from rasterio.windows import Window


def write_cog(
    source: Path, out: Path, window: Window | None = None, *, overviews: bool = True
) -> Path:
    """Copy ``source`` (or a window of it) to ``out`` as a 256 px tiled, deflated COG."""
    memory = out.with_suffix(".tmp.tif")
    with rasterio.open(source) as src:
        window = window or Window(0, 0, src.width, src.height)
        profile = {
            **src.profile,
            "width": int(window.width),
            "height": int(window.height),
            "transform": src.window_transform(window),
        }
        with rasterio.open(memory, "w", **profile) as dst:
            dst.write(src.read(window=window))
    copy(
        memory,
        out,
        driver="COG",
        BLOCKSIZE=256,
        COMPRESS="DEFLATE",
        OVERVIEWS="AUTO" if overviews else "NONE",
    )
    memory.unlink()
    return out
