"""A later date of a real scene, made for change tests: objects pasted in, colours shifted.

``edited_copy`` resamples a scene onto a grid offset by a fraction of a pixel (as two real
acquisitions never share a grid), shifts brightness and hue over the whole scene (season,
sun, sensor) and pastes real pictures (e.g. UCM storage tanks) into chosen windows of the
new grid. The pasted windows are the ground truth: they are what really changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image
from rasterio.enums import Resampling
from rasterio.warp import reproject

from core.settings import get_settings

STORAGE_TANKS = range(1901, 2001)  # UCM numbering: class 19 (storagetanks), images 1..100


def storage_tank_images(count: int, data_root: Path | None = None) -> list[Path]:
    """``count`` 256x256 UCM storage-tank pictures, spread over the class."""
    folder = (data_root or get_settings().data_root) / "ucm" / "images"
    paths = [folder / f"{n}.jpg" for n in STORAGE_TANKS]
    square = [p for p in paths if Image.open(p).size == (256, 256)]
    step = max(1, len(square) // count)
    return square[::step][:count]


@dataclass(frozen=True)
class Edit:
    """How the later date differs from the earlier one."""

    pastes: tuple[tuple[int, int, Path], ...] = ()  # (col, row, picture) in the new grid
    paste_px: int = 0  # side the pictures are resized to (0: as they are)
    brightness: float = 1.15
    hue_shift: int = 10  # of 255 on PIL's hue circle (about 14 degrees)
    offset_px: tuple[float, float] = (0.2, 0.2)  # grid origin moved by this much (col, row)
    crop_rows: int = 1  # the new grid is this many rows shorter


def _shift_colours(rgb: np.ndarray, edit: Edit) -> np.ndarray:
    """Hue rotated and brightness scaled, as a whole-scene change of season or sensor."""
    hsv = np.asarray(Image.fromarray(np.moveaxis(rgb, 0, -1)).convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + edit.hue_shift) % 256
    shifted = np.asarray(Image.fromarray(hsv, mode="HSV").convert("RGB"), dtype=np.float32)
    return np.moveaxis(np.clip(shifted * edit.brightness, 1, 255).astype(np.uint8), -1, 0)


def edited_copy(source: Path, target: Path, edit: Edit) -> Path:
    """Write the later date of ``source`` (see the module docstring); bands after 3 are kept.

    Returns:
        ``target``.
    """
    with rasterio.open(source) as src:
        profile, colours = src.profile, src.colorinterp
        transform = src.transform @ Affine.translation(*edit.offset_px)
        height = src.height - edit.crop_rows
        out = np.zeros((src.count, height, src.width), dtype=src.dtypes[0])
        for band in range(1, src.count + 1):
            reproject(
                rasterio.band(src, band),
                out[band - 1],
                dst_transform=transform,
                dst_crs=src.crs,
                dst_nodata=src.nodata,
                resampling=Resampling.bilinear,
            )
    empty = ~out[:3].any(axis=0)  # outside the source: stays nodata
    out[:3] = np.where(empty, 0, _shift_colours(out[:3], edit))
    for col, row, picture in edit.pastes:
        image = Image.open(picture).convert("RGB")
        if edit.paste_px:
            image = image.resize((edit.paste_px, edit.paste_px), Image.Resampling.LANCZOS)
        pixels = np.maximum(np.asarray(image), 1)  # 0 is nodata
        h, w = min(pixels.shape[0], height - row), min(pixels.shape[1], out.shape[2] - col)
        out[:3, row : row + h, col : col + w] = np.moveaxis(pixels[:h, :w], -1, 0)
    profile.pop("photometric", None)  # YCbCr needs JPEG; the copy is lossless
    profile.update(
        transform=transform,
        height=height,
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
        bigtiff="IF_SAFER",
    )
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(out)
        dst.colorinterp = colours
    return target
