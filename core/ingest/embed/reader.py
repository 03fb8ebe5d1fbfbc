"""Blocks of tiles read in DataLoader workers, so reading overlaps the model.

Each item is one block (``tiles.blocks``): a single windowed read at model resolution. A
worker pays GDAL's per-call cost and the mask and stretch arithmetic once per block, not once
per tile, and sends the block itself to the model's process, where its tiles are cut: at
half-tile overlap a block is about four times smaller than its tiles, so less crosses
between processes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from tiles import TileReader
from tiles.blocks import Block


class BlockDataset(Dataset[tuple[torch.Tensor, int]]):
    """Blocks as uint8 ``[H, W, 3]`` pixels at model resolution, with the block's position.

    Holds only the block plan (plain integers) and a picklable ``TileReader``, which
    reopens the scene lazily in each worker process.
    """

    def __init__(self, reader: TileReader, blocks: list[Block]) -> None:
        self.reader, self.blocks = reader, blocks

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        block = self.blocks[index]
        pixels, _ = self.reader.read_block(block.window, block.out_shape)
        return torch.from_numpy(pixels), index


def block_batches(n_tiles: int, batch_size: int) -> list[np.ndarray]:
    """Positions of a block's tiles in model batches of at most ``batch_size``, near-equal.

    The local runner and Dask workers batch a block alike, so their vectors are identical
    (a convolution's rounding can depend on what shares its batch).
    """
    return np.array_split(np.arange(n_tiles), math.ceil(n_tiles / batch_size))


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
