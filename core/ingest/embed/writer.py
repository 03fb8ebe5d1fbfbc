"""Embedding parts on disk: one atomic ``.npz`` per run of tiles, merged when all exist."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tiles.atomic import atomic_path

PART = re.compile(r"part-(?:([0-9a-f]+)-)?(\d{8})-(\d{8})\.npz")


class PartWriter:
    """Writes and finds the parts of one scene's embeddings folder.

    A part covers tile ids ``[start, stop)`` and is renamed into place only when complete, so
    a killed ingest resumes by skipping the parts that exist. Parts are named with the run's
    tag (a hash of its settings): parts of another run are never counted as done.
    """

    def __init__(self, folder: Path, run_tag: str = "") -> None:
        self.folder = Path(folder)
        self.run_tag = run_tag

    def part_path(self, start: int, stop: int) -> Path:
        """File name of a part."""
        tag = f"{self.run_tag}-" if self.run_tag else ""
        return self.folder / f"part-{tag}{start:08d}-{stop:08d}.npz"

    def done(self) -> set[tuple[int, int]]:
        """(start, stop) of this run's parts already written."""
        if not self.folder.is_dir():
            return set()
        found = (PART.fullmatch(p.name) for p in self.folder.iterdir())
        return {
            (int(m.group(2)), int(m.group(3)))
            for m in found
            if m and (m.group(1) or "") == self.run_tag
        }

    def write(self, start: int, stop: int, arrays: dict[str, np.ndarray]) -> None:
        """Write one complete part atomically."""
        with atomic_path(self.part_path(start, stop)) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)

    def merge(self, ranges: list[tuple[int, int]], names: list[str]) -> dict[str, Path]:
        """Concatenate parts in id order into ``<name>.npy`` files (atomically), drop the parts.

        Every part file goes, an older run's too: the caller holds the scene's writer lock.
        """
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
        for path in self.folder.iterdir():  # ours, and any an older run left behind
            if PART.fullmatch(path.name):
                path.unlink(missing_ok=True)
        return out
