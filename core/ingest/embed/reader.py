"""Blocks of tiles read in DataLoader workers, so reading overlaps the model.

Each item is one block (``tiles.blocks``): a single windowed read cut into its tiles, so a
worker pays GDAL's per-call cost and the mask and stretch arithmetic once per block, not
once per tile.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from tiles import TileReader
from tiles.blocks import Block


class BlockTileDataset(Dataset[tuple[torch.Tensor, int]]):
    """Blocks as uint8 ``[n, S, S, 3]`` tensors of their tiles, with the block's position.

    Holds only the block plan (plain integers) and a picklable ``TileReader``, which
    reopens the scene lazily in each worker process.
    """

    def __init__(self, reader: TileReader, blocks: list[Block]) -> None:
        self.reader = reader
        self.blocks = blocks

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(self.reader.read_tiles(self.blocks[index])), index


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
