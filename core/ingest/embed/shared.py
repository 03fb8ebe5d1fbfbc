"""Shared feature maps: run the backbone once per block of overlapping tiles, crop per tile.

Tiles of one scale overlap by half (stride = size / 2), so embedding them one by one runs
the backbone over every pixel about four times. Here the tiles of a part are grouped by scale
into blocks (tiles starting within ``BLOCK_PX`` model pixels of each other); each block is
read once at model resolution, the first ``shared_stages`` backbone stages run once over it,
and every tile's stage outputs are cropped from them. Tile starts are multiples of 32 model
pixels, so they fall on whole feature cells at every stride; the edge tiles, which end at the
raster's edge, and clipped tiles run on their own. The crops then go through the remaining
stages and the rest of the image tower (MVSA, gates) as usual.

The vectors differ from per-tile ones because a tile's border sees its real neighbours
instead of zero padding, and the deeper the shared stages, the further that reaches into the
tile: ``bench/bench_shared.py`` measures the speed-up and the cosine similarity per depth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from core.device import autocast
from core.errors import ConfigError
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.embed.reader import tile_loader
from core.ingest.embed.runner import Part
from core.model.backbones import N_STAGES, assemble
from tiles import TileReader

BLOCK_PX = 1024  # tiles starting within this many model pixels of each other share a block
MAX_STRIDE = 32  # the backbone's coarsest stride: tile starts must fall on its cells


@dataclass(frozen=True)
class Block:
    """Tiles of one scale read and run through the backbone together."""

    window: tuple[int, int, int, int]  # col_off, row_off, width, height in scene pixels
    out_shape: tuple[int, int]  # rows, cols at model resolution
    members: np.ndarray  # positions of the tiles in the part
    offsets: np.ndarray  # [n, 2] (row, col) of each tile in the block, model pixels


def on_grid(windows: np.ndarray, out_size: int) -> np.ndarray:
    """Which tiles can share feature maps: square, starting on whole 32 px model cells.

    The edge row and column of a grid end at the raster's edge, so they usually start off
    the grid, and windows clipped to a short raster are not square; those tiles are read and
    run on their own (a block of one), which gives exactly the per-tile vector.
    """
    square = windows[:, 2] == windows[:, 3]
    starts = windows[:, :2] * (out_size / np.maximum(windows[:, 2:3], 1))
    return square & np.all(starts % MAX_STRIDE == 0, axis=1)


def _single(windows: np.ndarray, member: int, out_size: int) -> Block:
    col, row, width, height = (int(v) for v in windows[member])
    return Block(
        (col, row, width, height),
        (out_size, out_size),
        np.array([member]),
        np.zeros((1, 2), np.int64),
    )


def plan_blocks(windows: np.ndarray, out_size: int, block_px: int = BLOCK_PX) -> list[Block]:
    """Group the tiles of each scale into blocks; every tile lands in exactly one.

    Tiles off the feature grid (see ``on_grid``) get a block of their own.
    """
    shared = on_grid(windows, out_size)
    blocks = [_single(windows, int(m), out_size) for m in np.nonzero(~shared)[0]]
    for size in np.unique(windows[shared, 2]):
        (members,) = np.nonzero(shared & (windows[:, 2] == size))
        starts = (windows[members, :2] * (out_size / size)).astype(np.int64)
        cells = starts // block_px
        keys = cells[:, 1] * (cells[:, 0].max() + 1) + cells[:, 0]
        order = np.argsort(keys, kind="stable")
        _, firsts = np.unique(keys[order], return_index=True)
        for pick in np.split(order, firsts[1:]):
            group, first = members[pick], starts[pick].min(axis=0)
            extent = starts[pick].max(axis=0) + out_size - first
            scene_first = windows[group, :2].min(axis=0)
            scene_extent = windows[group, :2].max(axis=0) + size - scene_first
            blocks.append(
                Block(
                    (*(int(v) for v in scene_first), *(int(v) for v in scene_extent)),
                    (int(extent[1]), int(extent[0])),
                    group,
                    (starts[pick] - first)[:, ::-1].copy(),
                )
            )
    return blocks


class BlockDataset(Dataset[tuple[torch.Tensor, int]]):
    """Blocks as uint8 ``[H, W, 3]`` pixels at model resolution, read in loader workers."""

    def __init__(self, reader: TileReader, blocks: list[Block]) -> None:
        self.reader, self.blocks = reader, blocks

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        block = self.blocks[index]
        pixels, _ = self.reader.read_block(block.window, block.out_shape)
        return torch.from_numpy(pixels), index


class SharedFeatureEmbedder:
    """Visual vectors and gates of the tiles of one block, from one backbone pass."""

    def __init__(
        self, embedder: TileEmbedder, shared_stages: int = N_STAGES, crops_per_batch: int = 64
    ) -> None:
        self.embedder = embedder
        self.shared_stages = shared_stages
        self.crops_per_batch = crops_per_batch

    @torch.inference_mode()
    def __call__(self, pixels: torch.Tensor, offsets: np.ndarray) -> dict[str, np.ndarray]:
        """``[H, W, 3]`` uint8 block and tile offsets -> arrays like ``TileEmbedder``'s."""
        e = self.embedder
        size = e.model.cfg.preprocess.image_size
        visual = []
        with autocast(e.device):
            x = e.normalise(pixels[None])
            stages = e.model.backbone.prefix(x, self.shared_stages)
            steps = [x.shape[-1] // stage.shape[-1] for stage in stages]
            for start in range(0, len(offsets), self.crops_per_batch):
                taps = [
                    torch.stack(
                        [
                            stage[
                                0,
                                :,
                                row // step : (row + size) // step,
                                col // step : (col + size) // step,
                            ]
                            for row, col in offsets[start : start + self.crops_per_batch]
                        ]
                    )
                    for stage, step in zip(stages, steps, strict=True)
                ]
                feats = (
                    assemble(taps)
                    if self.shared_stages == N_STAGES
                    else e.model.backbone.forward_from(self.shared_stages, taps)
                )
                visual.append(e.model.visual_from_features(feats))
        return e.arrays(torch.cat(visual))


class SharedParts:
    """Parts computed in this process with shared feature maps (see the module docstring)."""

    def __init__(
        self,
        reader: TileReader,
        windows: np.ndarray,
        embedder: TileEmbedder,
        shared_stages: int,
        workers: int = 2,
    ) -> None:
        """Raises ConfigError for a number of shared stages the backbone does not have."""
        if not 1 <= shared_stages <= N_STAGES:
            raise ConfigError(f"shared stages must be 1..{N_STAGES}, got {shared_stages}")
        self.out_size = embedder.model.cfg.preprocess.image_size
        self.reader, self.windows, self.workers = reader, windows, workers
        self.shared = SharedFeatureEmbedder(embedder, shared_stages)
        self.names = embedder.names
        self.engine = "torch"  # the stage crops run on the torch model

    def run(self, ranges: list[tuple[int, int]], on_tiles: Callable[[int], None]) -> Iterator[Part]:
        """Yield parts in order; blocks never straddle two parts, so each part stands alone."""
        pin = self.shared.embedder.device.type == "cuda"
        for start, stop in ranges:
            blocks = plan_blocks(self.windows[start:stop], self.out_size)
            arrays: dict[str, np.ndarray] = {}
            loader = tile_loader(BlockDataset(self.reader, blocks), None, self.workers, pin)
            for pixels, index in loader:
                block = blocks[int(index)]
                out = self.shared(pixels, block.offsets)
                for name, values in out.items():
                    if name not in arrays:
                        arrays[name] = np.empty((stop - start, values.shape[1]), values.dtype)
                    arrays[name][block.members] = values
                on_tiles(len(block.members))
            yield start, stop, arrays
