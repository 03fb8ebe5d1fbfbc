"""Batches of tile pixels, read in DataLoader workers so reading overlaps the model."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from tiles import TileReader


class TileDataset(Dataset[tuple[torch.Tensor, int]]):
    """Tiles ``start..stop`` of a catalog as uint8 ``[S, S, 3]`` tensors with their tile ids.

    Holds only windows (plain integers) and a picklable ``TileReader``, which reopens the
    scene lazily in each worker process.
    """

    def __init__(self, reader: TileReader, windows: np.ndarray, tile_ids: np.ndarray) -> None:
        self.reader = reader
        self.windows = windows
        self.tile_ids = tile_ids

    def __len__(self) -> int:
        return len(self.tile_ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        pixels = self.reader.read(tuple(int(v) for v in self.windows[index]))
        return torch.from_numpy(pixels), int(self.tile_ids[index])


def tile_loader(
    dataset: Dataset, batch_size: int | None, workers: int, pin_memory: bool
) -> DataLoader:
    """A loader that keeps ``2 * workers`` batches in flight ahead of the model.

    ``batch_size`` None passes the dataset's items through unbatched (e.g. blocks of tiles).
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=2 if workers else None,
        persistent_workers=False,
    )
