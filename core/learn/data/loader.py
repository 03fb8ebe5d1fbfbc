"""Torch datasets over image files, for batched encoding and for training.

Items are ``(image tensor, image index)``: the index lets the caller look up captions,
metadata or output rows, and which caption to pair with an image is the trainer's choice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from core.learn.data.captions import CaptionSet
from core.model.transforms import load_image


class ImageDataset(Dataset[tuple[torch.Tensor, int]]):
    """Decode and transform image ``i`` of ``paths`` on access."""

    def __init__(
        self, paths: Sequence[str | Path], transform: Callable[[Image.Image], torch.Tensor]
    ) -> None:
        self.paths = tuple(Path(p) for p in paths)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        """Return ``(transform(image), index)``.

        Raises:
            ImageReadError: if the file is missing or corrupt.
        """
        return self.transform(load_image(self.paths[index])), index


class CaptionImageDataset(ImageDataset):
    """The images of a ``CaptionSet``; indices are the set's image indices."""

    def __init__(
        self, caption_set: CaptionSet, transform: Callable[[Image.Image], torch.Tensor]
    ) -> None:
        super().__init__(caption_set.image_paths, transform)
        self.caption_set = caption_set
