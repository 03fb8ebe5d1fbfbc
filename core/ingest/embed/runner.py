"""Chain reader, embedder and writer over a catalog, resumably, with progress.

Where parts are computed is pluggable: ``LocalParts`` runs the model in this process with
tiles read by DataLoader workers; ``core.ingest.distributed.DaskParts`` runs them on a Dask
cluster. Either way the parts land through the same ``PartWriter`` into the same layout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from core.ingest.embed.mapper import TileEmbedder
from core.ingest.embed.reader import TileDataset, tile_loader
from core.ingest.embed.writer import PartWriter
from tiles import TileReader

PART_SIZE = 2048
Progress = Callable[[int, int, float], None]
Part = tuple[int, int, dict[str, np.ndarray]]


class PartComputer(Protocol):
    """Computes embedding parts ``[start, stop)`` and reports tiles as they are done."""

    names: list[str]
    engine: str  # what runs the image tower, recorded in the manifest

    def run(self, ranges: list[tuple[int, int]], on_tiles: Callable[[int], None]) -> Iterator[Part]:
        """Yield each finished part (in any order)."""


class LocalParts:
    """Parts computed in this process; reading overlaps the model through DataLoader workers."""

    def __init__(
        self,
        reader: TileReader,
        windows: np.ndarray,
        embedder: TileEmbedder,
        batch_size: int = 32,
        workers: int = 2,
    ) -> None:
        self.reader, self.windows, self.embedder = reader, windows, embedder
        self.batch_size, self.workers = batch_size, workers
        self.names = embedder.names
        self.engine = embedder.engine

    def run(self, ranges: list[tuple[int, int]], on_tiles: Callable[[int], None]) -> Iterator[Part]:
        """Yield parts in order, one DataLoader per part."""
        pin = self.embedder.device.type == "cuda"
        for start, stop in ranges:
            dataset = TileDataset(self.reader, self.windows[start:stop], np.arange(start, stop))
            chunks: dict[str, list[np.ndarray]] = {name: [] for name in self.names}
            for pixels, _ in tile_loader(dataset, self.batch_size, self.workers, pin):
                arrays = self.embedder(pixels)
                for name in self.names:
                    chunks[name].append(arrays[name])
                on_tiles(len(pixels))
            yield start, stop, {name: np.concatenate(v) for name, v in chunks.items()}


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
