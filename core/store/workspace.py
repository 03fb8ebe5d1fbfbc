"""The workspace folder: where every scene's tiles, vectors and index live.

Layout (documented in the README)::

    WS/
      scenes/<name>/manifest.json      scene, settings, model version, status, counts
      scenes/<name>/catalog.parquet    tile footprints (GeoParquet, EPSG:4326)
      scenes/<name>/quicklook.png      map overlay, bounds in manifest.json
      scenes/<name>/embeddings/        part-*.npz while ingesting; visual.npy, gate.npy when done
      scenes/<name>/visual.ann         annoy index over visual vectors (image queries)
      scenes/<name>/text.ann           annoy index over gated vectors (text queries)
      models/versions.json             model registry (version 0 = shipped default)
      models/onnx/                     ONNX graphs of the models' towers (core.model.onnx_export)
      feedback.sqlite                  analysts' marks and captions
      jobs/<id>.json                   background job registry
      import/                          server-side import folder for big scenes

Every file is written to a temp name and renamed, so a crash leaves earlier results intact
and a reader never sees half a file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.errors import DiskSpaceError, SceneNotFoundError, WorkspaceError
from core.store.locks import scene_lock
from core.store.manifest import SceneManifest
from tiles.atomic import atomic_path

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # always fullmatch


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, default=str))


def read_json(path: Path) -> Any:
    """Read a JSON file written by ``write_json``."""
    return json.loads(Path(path).read_text())


def scene_name_from(path: str | Path) -> str:
    """A valid scene name derived from a file name or URL (unsafe characters replaced)."""
    text = str(path)
    if "://" in text:
        text = urlsplit(text).path
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(text).stem).lstrip("._-") or "scene"
    return stem[:100]


def check_free_space(workspace: Workspace, needed_bytes: int, what: str = "this write") -> None:
    """Refuse a write that would leave less free disk than ``SCENESEEK_MIN_FREE_GB``.

    A full disk corrupts more than the file being written (SQLite, job records), so uploads
    and ingests stop before it, while there is room to delete things.

    Raises:
        DiskSpaceError: naming what is free, what is needed and the setting.
    """
    from core.settings import get_settings

    floor_gb = get_settings().min_free_gb
    folder = workspace.root
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free - needed_bytes < floor_gb * 2**30:
        raise DiskSpaceError(
            f"{what} needs {needed_bytes / 2**30:.2f} GB and {free / 2**30:.2f} GB is free on "
            f"{folder}: it would leave less than SCENESEEK_MIN_FREE_GB={floor_gb:g} GB. "
            "Free some space (delete scenes or old uploads) or lower the setting"
        )


@dataclass(frozen=True)
class SceneDir:
    """Paths of one scene's files."""

    root: Path

    @property
    def name(self) -> str:
        """The scene's name."""
        return self.root.name

    @property
    def manifest(self) -> Path:
        """Settings, model version and status; written last by ingestion."""
        return self.root / "manifest.json"

    @property
    def catalog(self) -> Path:
        """GeoParquet tile catalog."""
        return self.root / "catalog.parquet"

    @property
    def quicklook(self) -> Path:
        """PNG overlay for the map."""
        return self.root / "quicklook.png"

    @property
    def embeddings(self) -> Path:
        """Folder of embedding parts and the final vectors."""
        return self.root / "embeddings"

    @property
    def visual_index(self) -> Path:
        """Annoy index over visual vectors."""
        return self.root / "visual.ann"

    @property
    def text_index(self) -> Path:
        """Annoy index over gated visual vectors, for text queries."""
        return self.root / "text.ann"

    def read_manifest(self) -> SceneManifest:
        """The manifest; an empty one (status ``""``) before ingestion wrote any."""
        return SceneManifest.load(self.manifest)

    def is_ready(self) -> bool:
        """True when the last ingestion completed."""
        return self.read_manifest().ready


class Workspace:
    """One analyst workspace folder (``--workspace`` or ``SCENESEEK_WORKSPACE``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    @classmethod
    def default(cls) -> Workspace:
        """The workspace named by the settings."""
        from core.settings import get_settings

        return cls(get_settings().workspace)

    @property
    def scenes_dir(self) -> Path:
        """Folder of all scenes."""
        return self.root / "scenes"

    @property
    def models_dir(self) -> Path:
        """Model registry folder."""
        return self.root / "models"

    @property
    def jobs_dir(self) -> Path:
        """Background job registry folder."""
        return self.root / "jobs"

    @property
    def feedback_db(self) -> Path:
        """SQLite feedback store."""
        return self.root / "feedback.sqlite"

    def scene(self, name: str) -> SceneDir:
        """Paths of a scene (which may not exist yet).

        Raises:
            WorkspaceError: if the name has characters that are unsafe in a path.
        """
        if not NAME_PATTERN.fullmatch(name):
            raise WorkspaceError(
                f"invalid scene name {name!r}: use letters, digits, '.', '_' or '-' (max 100)"
            )
        return SceneDir(self.scenes_dir / name)

    def existing_scene(self, name: str) -> SceneDir:
        """A scene that has completed ingestion.

        Raises:
            SceneNotFoundError: if it is missing or not ready.
        """
        scene = self.scene(name)
        if not scene.is_ready():
            known = ", ".join(self.scene_names()) or "none"
            raise SceneNotFoundError(f"no ingested scene {name!r} in {self.root} (ready: {known})")
        return scene

    @property
    def locks_dir(self) -> Path:
        """Per-scene writer locks."""
        return self.root / "locks"

    def scene_names(self, ready_only: bool = True) -> list[str]:
        """Names of the scenes, ready ones only by default.

        Folders that are not scenes (``.deleting-NAME`` left by an interrupted delete, a
        copy named with a space) and scenes whose manifest cannot be read are skipped with a
        warning in the log, so one stray folder never breaks a page.
        """
        if not self.scenes_dir.is_dir():
            return []
        names = []
        for path in sorted(p for p in self.scenes_dir.iterdir() if p.is_dir()):
            if not NAME_PATTERN.fullmatch(path.name):
                log.warning("skipping %s: not a scene folder (invalid scene name)", path)
                continue
            try:
                if not SceneDir(path).read_manifest().ready and ready_only:
                    continue
            except (OSError, ValueError, TypeError) as exc:
                log.warning("skipping %s: unreadable manifest (%s)", path, exc)
                continue
            names.append(path.name)
        return names

    def writing(
        self, name: str, wait_s: float = 0.0, who: str = ""
    ) -> AbstractContextManager[None]:
        """Hold scene ``name``'s writer lock (ingest, re-index, delete) for a ``with`` block.

        ``who`` names the holder in the message a second writer gets.

        Raises:
            WorkspaceError: for an invalid name.
            SceneBusyError: when another writer holds it (after ``wait_s`` seconds).
        """
        return scene_lock(self.locks_dir, self.scene(name).name, wait_s, who)

    def delete_scene(self, name: str) -> None:
        """Remove a scene and everything derived from it, as its only writer.

        Raises:
            SceneBusyError: while another process writes the scene.
        """
        scene = self.scene(name)
        with self.writing(name):
            if scene.root.exists():
                self.discard(scene.root, scene.name)
        for old in (self.scenes_dir / f".deleting-{scene.name}", *self._trash()):
            shutil.rmtree(old, ignore_errors=True)  # left by an interrupted delete

    def discard(self, folder: Path, label: str) -> None:
        """Remove ``folder`` at once for readers: renamed into ``trash/``, then deleted.

        What an interrupted delete leaves in ``trash/`` goes with the next scene delete.
        """
        trash = self.root / "trash" / f"{label}-{os.getpid()}-{time.time_ns()}"
        trash.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)

    def _trash(self) -> list[Path]:
        folder = self.root / "trash"
        return list(folder.iterdir()) if folder.is_dir() else []
