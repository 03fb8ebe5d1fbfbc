"""Embedding parts on disk: one atomic ``.npz`` per run of tiles, merged when all exist."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tiles.atomic import atomic_path

PART = re.compile(r"^part-(\d{8})-(\d{8})\.npz$")


class PartWriter:
    """Writes and finds the parts of one scene's embeddings folder.

    A part covers tile ids ``[start, stop)`` and is renamed into place only when complete, so
    a killed ingest resumes by skipping the parts that exist.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def part_path(self, start: int, stop: int) -> Path:
        """File name of a part."""
        return self.folder / f"part-{start:08d}-{stop:08d}.npz"

    def done(self) -> set[tuple[int, int]]:
        """(start, stop) of the parts already written."""
        if not self.folder.is_dir():
            return set()
        found = (PART.match(p.name) for p in self.folder.iterdir())
        return {(int(m.group(1)), int(m.group(2))) for m in found if m}

    def write(self, start: int, stop: int, arrays: dict[str, np.ndarray]) -> None:
        """Write one complete part atomically."""
        with atomic_path(self.part_path(start, stop)) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)

    def merge(self, ranges: list[tuple[int, int]], names: list[str]) -> dict[str, Path]:
        """Concatenate parts in id order into ``<name>.npy`` files (atomically) and drop them."""
        out: dict[str, Path] = {}
        for name in names:
            chunks = []
            for start, stop in ranges:
                with np.load(self.part_path(start, stop)) as part:
                    chunks.append(part[name])
            target = self.folder / f"{name}.npy"
            with atomic_path(target) as tmp:
                with open(tmp, "wb") as handle:
                    np.save(handle, np.concatenate(chunks))
            out[name] = target
        for start, stop in ranges:
            self.part_path(start, stop).unlink(missing_ok=True)
        return out
