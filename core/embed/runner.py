"""Chain reader, embedder and writer over a catalog, resumably, with progress."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.embed.mapper import TileEmbedder
from core.embed.reader import TileDataset, tile_loader
from core.embed.writer import PartWriter
from tiles import TileReader

PART_SIZE = 2048
Progress = Callable[[int, int, float], None]


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
    reader: TileReader,
    windows: np.ndarray,
    embedder: TileEmbedder,
    folder: Path,
    batch_size: int = 32,
    workers: int = 2,
    progress: Progress | None = None,
    part_size: int = PART_SIZE,
) -> EmbedResult:
    """Embed every tile (``windows[i]`` is tile id ``i``), skipping parts already on disk.

    ``progress(done, total, tiles_per_second)`` is called after every batch.
    """
    names = embedder.names
    n = len(windows)
    existing = _final_files(folder, names, n)
    if existing:
        return EmbedResult(existing, 0, 0.0)
    writer = PartWriter(folder)
    ranges = [(s, min(s + part_size, n)) for s in range(0, n, part_size)]
    done = writer.done()
    todo = [r for r in ranges if r not in done]
    finished = n - sum(stop - start for start, stop in todo)
    started, computed = time.time(), 0
    for start, stop in todo:
        dataset = TileDataset(reader, windows[start:stop], np.arange(start, stop))
        loader = tile_loader(dataset, batch_size, workers, embedder.device.type == "cuda")
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for pixels, _ in loader:
            arrays = embedder(pixels)
            for name in names:
                parts[name].append(arrays[name])
            computed += len(pixels)
            if progress:
                progress(finished + computed, n, computed / max(time.time() - started, 1e-9))
        writer.write(start, stop, {name: np.concatenate(v) for name, v in parts.items()})
    files = writer.merge(ranges, names)
    return EmbedResult(files, computed, time.time() - started)
