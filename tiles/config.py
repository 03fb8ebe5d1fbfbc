"""``TilingConfig``: how a scene is cut into tiles, and the tile sides it gives in pixels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from tiles.errors import TilingError
from tiles.grid import (
    size_from_metres,
)
from tiles.scene import SceneInfo


@dataclass(frozen=True)
class TilingConfig:
    """How a scene is cut into tiles. The defaults suit the 256 px model input.

    Attributes:
        sizes: Tile sides, in pixels or metres on the ground (see ``size_unit``).
        size_unit: ``"px"`` or ``"m"``; metres are converted with the scene's ground
            pixel size.
        overlap: Shared fraction of a tile side between neighbours; 0.5 shifts tiles by
            half a tile (stride = size / 2).
        min_valid: Tiles with a smaller valid-pixel fraction are skipped.
        out_size: Side in pixels each tile is resampled to for the model.
        percentiles: Stretch percentiles for non-8-bit data.
        bands: Optional 1-based RGB band override (1 or 3 indices).

    Raises:
        TilingError: A setting is out of range.
    """

    sizes: tuple[float, ...] = (256, 512, 1024)
    size_unit: Literal["px", "m"] = "px"
    overlap: float = 0.5
    min_valid: float = 0.5
    out_size: int = 256
    percentiles: tuple[float, float] = (2.0, 98.0)
    bands: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.sizes or any(size <= 0 for size in self.sizes):
            raise TilingError(f"sizes must be a non-empty list of positive sizes: {self.sizes}")
        if self.size_unit not in ("px", "m"):
            raise TilingError(f"size_unit must be 'px' or 'm', got {self.size_unit!r}")
        if self.size_unit == "px" and any(size != int(size) for size in self.sizes):
            raise TilingError(f"pixel tile sizes must be whole numbers: {self.sizes}")
        if not 0 <= self.overlap < 1:
            raise TilingError(f"overlap must be in [0, 1), got {self.overlap}")
        if not 0 <= self.min_valid <= 1:
            raise TilingError(f"min_valid must be in [0, 1], got {self.min_valid}")
        if self.out_size < 1:
            raise TilingError(f"out_size must be at least 1, got {self.out_size}")
        low, high = self.percentiles
        if not 0 <= low < high <= 100:
            raise TilingError(
                f"percentiles must satisfy 0 <= low < high <= 100, got {self.percentiles}"
            )


def pixel_sizes(info: SceneInfo, config: TilingConfig) -> tuple[int, ...]:
    """Tile sides in source pixels, ascending and without repeats.

    Args:
        info: The scene description (its ground pixel size converts metres).
        config: The tiling settings.

    Returns:
        The pixel sizes.

    Raises:
        TilingError: A size converts to less than one pixel.
    """
    if config.size_unit == "px":
        return tuple(sorted({int(size) for size in config.sizes}))
    metres_per_pixel = float(np.mean(info.ground_pixel_size_m))
    return tuple(sorted({size_from_metres(size, metres_per_pixel) for size in config.sizes}))
