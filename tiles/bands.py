"""Which bands make the RGB composite, and how non-8-bit pixels become uint8.

The model embeds 8-bit RGB. Band choice follows colour interpretation first, then NAIP's
conventions; a user override (1-based indices) always wins. Non-8-bit data is stretched
linearly between per-band percentiles estimated once per scene, so every tile of a scene
gets the same mapping.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tiles.errors import AlphaBandIgnoredWarning, BandSelectionError, NIRBandDroppedWarning
from tiles.scene import SceneInfo

RGB = tuple[int, int, int]


def _check_override(info: SceneInfo, override: Sequence[int]) -> RGB:
    bands = tuple(int(b) for b in override)
    if len(bands) not in (1, 3):
        raise BandSelectionError(
            f"band override must list 1 band (shown as gray) or 3 bands (R, G, B), got {bands}"
        )
    for band in bands:
        if not 1 <= band <= info.count:
            raise BandSelectionError(
                f"band {band} was requested but {info.path} has {info.count} band(s); "
                f"band indices are 1-based, so use 1..{info.count}"
            )
        if band == info.alpha_band:
            raise BandSelectionError(
                f"band {band} of {info.path} is its alpha (transparency) band and cannot be "
                "used as colour; choose image bands"
            )
    return (bands[0],) * 3 if len(bands) == 1 else (bands[0], bands[1], bands[2])


def select_rgb_bands(info: SceneInfo, override: Sequence[int] | None = None) -> RGB:
    """Choose the 1-based bands shown as red, green and blue.

    Rules, in order: a user ``override`` (1 band is replicated to gray); bands tagged red,
    green and blue; otherwise, among bands that are not alpha: 3 or more use bands 1-3
    (a 4th untagged band is taken as NAIP near-infrared and dropped), 2 use band 1 as gray
    (the second band of a 2-band file is usually a mask or a second spectral band that has
    no colour meaning), 1 is replicated to gray. A band tagged alpha that holds image data
    (NAIP near-infrared) counts as an image band, never as a mask.

    Args:
        info: The scene description.
        override: 1-based band indices chosen by the user, 1 or 3 of them.

    Returns:
        The (red, green, blue) band indices.

    Raises:
        BandSelectionError: The override is malformed, out of range or names the alpha band,
            or the scene has no image band.

    Warns:
        AlphaBandIgnoredWarning: A band tagged alpha holds image data.
        NIRBandDroppedWarning: A 4th untagged band is assumed to be near-infrared.
    """
    for band in info.mislabelled_alpha_bands:
        warnings.warn(
            f"band {band} of {info.path} is tagged alpha but holds image data (NAIP stores "
            "near-infrared this way); it is not used as a mask",
            AlphaBandIgnoredWarning,
            stacklevel=2,
        )
    if override is not None:
        return _check_override(info, override)
    interp = {name: i + 1 for i, name in reversed(list(enumerate(info.colorinterp)))}
    if all(name in interp for name in ("red", "green", "blue")):
        return interp["red"], interp["green"], interp["blue"]
    image_bands = [b for b in range(1, info.count + 1) if b != info.alpha_band]
    if not image_bands:
        raise BandSelectionError(f"{info.path} has only an alpha band and no image band")
    if len(image_bands) >= 3:
        if len(image_bands) == 4 and not info.mislabelled_alpha_bands:
            warnings.warn(
                f"{info.path} has 4 bands without RGB colour tags; using bands "
                f"{image_bands[:3]} as RGB and taking band {image_bands[3]} as near-infrared",
                NIRBandDroppedWarning,
                stacklevel=2,
            )
        return image_bands[0], image_bands[1], image_bands[2]
    return (image_bands[0],) * 3


@dataclass(frozen=True)
class Stretch:
    """Linear per-band mapping of ``[lo, hi]`` to ``[0, 255]``, one entry per RGB channel.

    Attributes:
        lo: Value mapped to 0 for each channel.
        hi: Value mapped to 255 for each channel.
    """

    lo: tuple[float, ...]
    hi: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready form, stored in catalog metadata."""
        return {"lo": list(self.lo), "hi": list(self.hi)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stretch:
        """Rebuild a stretch saved with :meth:`to_dict`."""
        return cls(lo=tuple(map(float, data["lo"])), hi=tuple(map(float, data["hi"])))


def estimate_stretch(
    sample: NDArray[Any], valid: NDArray[np.bool_], percentiles: tuple[float, float] = (2, 98)
) -> Stretch:
    """Per-band percentile stretch from a decimated sample of the scene.

    Args:
        sample: (bands, rows, cols) pixels of a reduced-resolution read.
        valid: (rows, cols) mask of pixels to use; nodata and masked pixels are False.
        percentiles: Low and high percentiles mapped to 0 and 255.

    Returns:
        The stretch; a band whose range collapses gets ``hi = lo + 1``.

    Raises:
        ValueError: The percentiles are not ``0 <= low < high <= 100``.
    """
    low, high = percentiles
    if not 0 <= low < high <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
    los, his = [], []
    for band in sample:
        values = band[valid & np.isfinite(band)]
        if values.size == 0:
            values = band[np.isfinite(band)]
        lo, hi = (float(v) for v in np.percentile(values, percentiles)) if values.size else (0, 0)
        los.append(lo)
        his.append(hi if hi > lo else lo + 1)
    return Stretch(lo=tuple(los), hi=tuple(his))


def to_uint8(data: NDArray[Any], stretch: Stretch | None) -> NDArray[np.uint8]:
    """Convert (bands, rows, cols) pixels to uint8.

    Args:
        data: Pixels read from the scene.
        stretch: The scene's stretch, or None for 8-bit data, which passes unchanged.

    Returns:
        uint8 pixels of the same shape.

    Raises:
        ValueError: ``stretch`` is None but ``data`` is not uint8.
    """
    if stretch is None:
        if data.dtype != np.uint8:
            raise ValueError(f"{data.dtype} pixels need a Stretch to become uint8")
        return data
    lo = np.asarray(stretch.lo, dtype=np.float32)[:, np.newaxis, np.newaxis]
    hi = np.asarray(stretch.hi, dtype=np.float32)[:, np.newaxis, np.newaxis]
    scaled = (data.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8)
