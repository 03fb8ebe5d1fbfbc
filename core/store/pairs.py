"""Scene pairs compared for change: where their aligned vectors live and what made them.

A pair puts the earlier scene on the later scene's tile grid: every tile of the later scene
gets a vector of the earlier date for the same ground. Layout::

    WS/pairs/<before>__<after>/manifest.json     both scenes, model, grid; written last
    WS/pairs/<before>__<after>/embeddings/       visual.npy, gate.npy of the earlier date
    WS/pairs/<before>__<after>/coverage.npy      share of each later tile the earlier covers

The earlier scene's own folder is never touched. The manifest's ``identity`` records what
the vectors were computed from (model tag, both scenes' fingerprints and ingest times); when
any of it changes, the pair is recomputed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.store.manifest import READY, SceneManifest
from core.store.workspace import Workspace
from tiles.atomic import atomic_path

PAIR_FORMAT = 1
SEPARATOR = "__"


@dataclass
class PairManifest:
    """One pair's manifest (``pairs/<before>__<after>/manifest.json``).

    Attributes:
        before: The earlier scene.
        after: The later scene, whose tile grid the pair uses.
        identity: What the aligned vectors were computed from (see ``pair_identity``).
        status: ``embedding`` or ``ready``; empty when there is no manifest.
        n_tiles: Tiles of the later scene's grid.
        comparable: Tiles the earlier scene covers enough to compare.
        seconds: Wall time of the computation that finished it.
        finished: When it became ready (epoch seconds).
        format: Manifest format version.
    """

    before: str = ""
    after: str = ""
    identity: dict[str, Any] = field(default_factory=dict)
    status: str = ""
    n_tiles: int | None = None
    comparable: int | None = None
    seconds: float | None = None
    finished: float | None = None
    format: int = PAIR_FORMAT

    @property
    def ready(self) -> bool:
        """True when the aligned vectors are complete."""
        return self.status == READY

    @classmethod
    def load(cls, path: Path) -> PairManifest:
        """Read a manifest; a missing file gives an empty one (status ``""``)."""
        path = Path(path)
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def save(self, path: Path) -> None:
        """Write atomically, so readers never see half a file."""
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(asdict(self), indent=2, default=str))


def _scene_identity(manifest: SceneManifest) -> dict[str, Any]:
    return {
        "name": manifest.name,
        "fingerprint": manifest.fingerprint,
        "finished": manifest.finished,
        "n_tiles": manifest.n_tiles,
    }


def pair_identity(before: SceneManifest, after: SceneManifest, scene_key: str) -> dict[str, Any]:
    """What a pair's vectors depend on: the model (its scene key) and both scenes as ingested.

    The later scene's fingerprint holds its source, tiling and tiling version: its grid.
    Round-tripped through JSON so it compares equal to what a manifest reads back.
    """
    identity = {
        "model": scene_key,
        "before": _scene_identity(before),
        "after": _scene_identity(after),
    }
    return json.loads(json.dumps(identity, default=str))


@dataclass(frozen=True)
class PairDir:
    """Paths of one pair's files."""

    root: Path
    before: str
    after: str

    @property
    def manifest(self) -> Path:
        """Both scenes, model and grid; written last."""
        return self.root / "manifest.json"

    @property
    def embeddings(self) -> Path:
        """Folder of the earlier date's vectors on the later grid (and parts while running)."""
        return self.root / "embeddings"

    @property
    def coverage(self) -> Path:
        """Share of each later tile covered by valid pixels of the earlier scene."""
        return self.root / "coverage.npy"

    def read_manifest(self) -> PairManifest:
        """The manifest; an empty one (status ``""``) before any was written."""
        return PairManifest.load(self.manifest)


def pairs_dir(workspace: Workspace) -> Path:
    """Folder of every pair of a workspace."""
    return workspace.root / "pairs"


def pair_dir(workspace: Workspace, before: str, after: str) -> PairDir:
    """Paths of the pair ``before`` -> ``after`` (which may not exist yet).

    Raises:
        WorkspaceError: if a name has characters that are unsafe in a path.
    """
    workspace.scene(before), workspace.scene(after)  # validates both names
    return PairDir(pairs_dir(workspace) / f"{before}{SEPARATOR}{after}", before, after)


def _names_of(folder: Path) -> set[str]:
    """The scenes a pair folder may belong to: its manifest's, else every split of its name."""
    manifest = PairManifest.load(folder / "manifest.json")
    if manifest.before:
        return {manifest.before, manifest.after}
    parts = folder.name.split(SEPARATOR)
    return {
        name
        for i in range(1, len(parts))
        for name in (SEPARATOR.join(parts[:i]), SEPARATOR.join(parts[i:]))
    }


def delete_pairs_of(workspace: Workspace, name: str) -> list[str]:
    """Remove every pair one side of which is scene ``name``; returns their folder names.

    Deleting a scene calls this, so no pair outlives a side it was computed from.
    """
    folder = pairs_dir(workspace)
    if not folder.is_dir():
        return []
    gone = [p for p in sorted(folder.iterdir()) if p.is_dir() and name in _names_of(p)]
    for path in gone:
        workspace.discard(path, f"pair-{path.name}")
    return [p.name for p in gone]
