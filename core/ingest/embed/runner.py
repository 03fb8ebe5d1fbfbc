"""Chain reader, embedder and writer over a catalog, resumably, with progress.

Where parts are computed is pluggable: ``LocalParts`` runs the model in this process with
blocks of tiles read by DataLoader workers; ``core.ingest.distributed.DaskParts`` runs them
on a Dask cluster. Either way the parts land through the same ``PartWriter`` into the same layout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from core.ingest.embed.mapper import TileEmbedder
from core.ingest.embed.reader import BlockDataset, block_batches, tile_loader
from core.ingest.embed.writer import PartWriter
from core.settings import get_settings
from tiles import TileReader
from tiles.blocks import cut_tiles

PART_SIZE = 2048
Progress = Callable[[int, int, float], None]
Part = tuple[int, int, dict[str, np.ndarray]]


class PartComputer(Protocol):
    """Computes embedding parts ``[start, stop)`` and reports tiles as they are done."""

    names: list[str]
    engine: str  # what runs the image tower, recorded in the manifest

    def run(self, ranges: list[tuple[int, int]], on_tiles: Callable[[int], None]) -> Iterator[Part]:
        """Yield each finished part (in any order)."""


def reader_workers(engine: str) -> int:
    """Tile-reading processes when none are asked for: ``SCENESEEK_READER_WORKERS``, or by engine.

    With ONNX Runtime on the CPU none: reading a block's tiles costs about 1% of embedding
    them, less than a worker process costs to start and feed, and a worker's turn on a core
    stalls the session's threads (``bench.bench_ingest_profile``). Otherwise 2.
    """
    chosen = get_settings().reader_workers
    if chosen is not None:
        return chosen
    return 0 if engine == "onnx" else 2


class LocalParts:
    """Parts computed in this process; blocks of tiles are read by DataLoader workers.

    One loader serves every part (its workers start once) and blocks never straddle two
    parts. This process cuts each block's tiles into one reused batch buffer (fresh pages
    cost as much to fault in as the copy itself) and embeds them in ``block_batches``.
    """

    def __init__(
        self,
        reader: TileReader,
        windows: np.ndarray,
        embedder: TileEmbedder,
        batch_size: int = 32,
        workers: int | None = None,
        reader_mb: float | None = None,
    ) -> None:
        self.reader, self.windows, self.embedder = reader, windows, embedder
        self.batch_size = batch_size
        self.workers = reader_workers(embedder.engine) if workers is None else workers
        self.reader_mb = get_settings().reader_mb if reader_mb is None else reader_mb
        self.names = embedder.names
        self.engine = embedder.engine

    def run(self, ranges: list[tuple[int, int]], on_tiles: Callable[[int], None]) -> Iterator[Part]:
        """Yield parts in order."""
        plans = [self.reader.plan_blocks(self.windows[a:b], self.reader_mb) for a, b in ranges]
        owners = [part for part, blocks in enumerate(plans) for _ in blocks]
        dataset = BlockDataset(self.reader, [block for blocks in plans for block in blocks])
        pin = self.embedder.device.type == "cuda"
        size = self.reader.out_size
        buffer = torch.empty((self.batch_size, size, size, 3), dtype=torch.uint8, pin_memory=pin)
        arrays: dict[str, np.ndarray] = {}
        for pixels, index in tile_loader(dataset, None, self.workers, pin):
            block, part = dataset.blocks[int(index)], owners[int(index)]
            for batch in block_batches(len(block.members), self.batch_size):
                tiles = buffer[: len(batch)]
                cut_tiles(pixels.numpy(), block.offsets[batch], size, tiles.numpy())
                for name, values in self.embedder(tiles).items():
                    if name not in arrays:
                        rows = ranges[part][1] - ranges[part][0]
                        arrays[name] = np.empty((rows, values.shape[1]), values.dtype)
                    arrays[name][block.members[batch]] = values
            on_tiles(len(block.members))
            if int(index) + 1 == len(owners) or owners[int(index) + 1] != part:
                yield *ranges[part], arrays
                arrays = {}


@dataclass(frozen=True)
class EmbedResult:
    """Final arrays of a scene and what computing them took."""

    files: dict[str, Path]
    computed: int
    seconds: float


def _final_files(folder: Path, names: list[str], n_tiles: int) -> dict[str, Path] | None:
    files = {name: folder / f"{name}.npy" for name in names}
    for path in files.values():
        if not path.exists() or np.load(path, mmap_mode="r").shape[0] != n_tiles:
            return None
    return files


def embed_tiles(
    parts: PartComputer,
    n_tiles: int,
    folder: Path,
    progress: Progress | None = None,
    part_size: int = PART_SIZE,
    run_tag: str = "",
) -> EmbedResult:
    """Embed tiles ``0..n_tiles-1``, skipping parts already on disk, then merge them.

    ``progress(done, total, tiles_per_second)`` is called as tiles finish; ``run_tag`` (a
    hash of the run's settings) names the parts, so only this run's parts are reused.
    """
    existing = _final_files(folder, parts.names, n_tiles)
    if existing:
        return EmbedResult(existing, 0, 0.0)
    writer = PartWriter(folder, run_tag)
    ranges = [(s, min(s + part_size, n_tiles)) for s in range(0, n_tiles, part_size)]
    done = writer.done()
    todo = [r for r in ranges if r not in done]
    finished = n_tiles - sum(stop - start for start, stop in todo)
    started = time.time()
    computed = 0

    def on_tiles(count: int) -> None:
        nonlocal computed
        computed += count
        if progress:
            progress(finished + computed, n_tiles, computed / max(time.time() - started, 1e-9))

    for start, stop, arrays in parts.run(todo, on_tiles):
        writer.write(start, stop, arrays)
    files = writer.merge(ranges, parts.names)
    return EmbedResult(files, computed, time.time() - started)
