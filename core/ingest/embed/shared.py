"""Shared feature maps: run the backbone once per block of overlapping tiles, crop per tile.

Tiles of one scale overlap by half (stride = size / 2), so embedding them one by one runs
the backbone over every pixel about four times. Here the tiles of a part are grouped by scale
into blocks (``tiles.blocks.plan_blocks``: tiles starting within ``BLOCK_PX`` model pixels of
each other, on whole 32 px cells); each block is
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

import numpy as np
import torch

from core.device import autocast
from core.errors import ConfigError
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.embed.reader import BlockDataset, tile_loader
from core.ingest.embed.runner import Part, reader_workers
from core.model.backbones import N_STAGES, assemble
from tiles import TileReader
from tiles.blocks import plan_blocks

BLOCK_PX = 1024  # tiles starting within this many model pixels of each other share a block
MAX_STRIDE = 32  # the backbone's coarsest stride: tile starts must fall on its cells


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
            x = e.normalise(pixels[None]).contiguous(memory_format=torch.channels_last)
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
        workers: int | None = None,
    ) -> None:
        """Raises ConfigError for a number of shared stages the backbone does not have."""
        if not 1 <= shared_stages <= N_STAGES:
            raise ConfigError(f"shared stages must be 1..{N_STAGES}, got {shared_stages}")
        self.out_size = embedder.model.cfg.preprocess.image_size
        self.reader, self.windows = reader, windows
        self.workers = reader_workers("torch") if workers is None else workers
        self.shared = SharedFeatureEmbedder(embedder, shared_stages)
        self.names = embedder.names
        self.engine = "torch"  # the stage crops run on the torch model

    def run(self, ranges: list[tuple[int, int]], on_tiles: Callable[[int], None]) -> Iterator[Part]:
        """Yield parts in order; blocks never straddle two parts, so each part stands alone."""
        pin = self.shared.embedder.device.type == "cuda"
        for start, stop in ranges:
            blocks = plan_blocks(self.windows[start:stop], self.out_size, BLOCK_PX, MAX_STRIDE)
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
