"""Image decoding and AMFMN's pixel pipeline, built on PIL and torch only (no torchvision).

Every path from pixels to model input goes through ``_normalise`` with a ``PreprocessCfg``
that travels with the model, so training, evaluation and the search engine cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.errors import ConfigError, ImageReadError
from core.model.config import PreprocessCfg


def load_image(path: str | Path) -> Image.Image:
    """Decode an image file fully into RGB, so corrupt files fail here and not later.

    Raises:
        ImageReadError: if the file is missing, unreadable or not a decodable image.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError as exc:
        raise ImageReadError(f"image not found: {path}") from exc
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageReadError(f"cannot decode image {path}: {exc}") from exc


class ImageTransform:
    """PIL image to normalised float tensor ``[3, S, S]`` with ``S = cfg.image_size``.

    Training follows AMFMN: square resize to ``cfg.train_resize``, random ``S`` crop and a
    random rotation by a multiple of 90 degrees (remote-sensing scenes have no "up").
    Testing is a plain square resize to ``S``. Resampling is bilinear (PIL, antialiased).
    Randomness comes from torch's global generator unless one is passed, so data-loader
    worker seeding and ``torch.manual_seed`` both make it reproducible.
    """

    def __init__(self, cfg: PreprocessCfg, train: bool) -> None:
        """Build the transform.

        Raises:
            ConfigError: if ``cfg.train_resize`` is smaller than ``cfg.image_size``.
        """
        if train and cfg.train_resize < cfg.image_size:
            raise ConfigError(
                f"train_resize {cfg.train_resize} is smaller than image_size {cfg.image_size}"
            )
        self.cfg = cfg
        self.train = train

    def __repr__(self) -> str:
        return f"ImageTransform(cfg={self.cfg!r}, train={self.train})"

    def __call__(
        self, image: Image.Image, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Transform one RGB image; ``generator`` optionally drives the random choices."""
        size = self.cfg.image_size
        if not self.train:
            return _normalise(_pil_to_uint8(_resize(image, size)), self.cfg)
        pixels = _pil_to_uint8(_resize(image, self.cfg.train_resize))
        offsets = torch.randint(0, self.cfg.train_resize - size + 1, (2,), generator=generator)
        top, left = (int(v) for v in offsets)
        pixels = pixels[:, top : top + size, left : left + size]
        quarter_turns = int(torch.randint(0, 4, (1,), generator=generator))
        return _normalise(torch.rot90(pixels, quarter_turns, dims=(1, 2)), self.cfg)


def to_tensor_batch(tiles: Sequence[np.ndarray], cfg: PreprocessCfg) -> torch.Tensor:
    """Stack already-sized uint8 RGB tiles ``[S, S, 3]`` into a normalised ``[B, 3, S, S]``.

    The engine tiles scenes at ``cfg.image_size`` itself, so no resampling happens here; a
    tile of another size is a caller bug and is refused rather than silently resized.

    Raises:
        ValueError: if there are no tiles, or a tile is not uint8 ``[S, S, 3]``.
    """
    if len(tiles) == 0:
        raise ValueError("to_tensor_batch needs at least one tile")
    expected = (cfg.image_size, cfg.image_size, 3)
    for k, tile in enumerate(tiles):
        if tile.dtype != np.uint8 or tile.shape != expected:
            raise ValueError(f"tile {k} is {tile.dtype} {tile.shape}; expected uint8 {expected}")
    pixels = torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2)
    return _normalise(pixels, cfg)


def _resize(image: Image.Image, size: int) -> Image.Image:
    return image.resize((size, size), Image.Resampling.BILINEAR)


def _pil_to_uint8(image: Image.Image) -> torch.Tensor:
    """RGB PIL image to a uint8 ``[3, H, W]`` tensor."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)


def _normalise(pixels: torch.Tensor, cfg: PreprocessCfg) -> torch.Tensor:
    """uint8 ``[..., 3, H, W]`` to float32 scaled to [0, 1], then standardised per channel."""
    mean = torch.tensor(cfg.mean, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(cfg.std, dtype=torch.float32).view(3, 1, 1)
    return (pixels.to(torch.float32) / 255.0 - mean) / std
