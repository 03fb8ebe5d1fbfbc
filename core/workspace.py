"""The workspace folder: where every scene's tiles, vectors and index live.

Layout (documented in the README)::

    WS/
      scenes/<name>/manifest.json      scene, settings, model version, status, counts
      scenes/<name>/catalog.parquet    tile footprints (GeoParquet, EPSG:4326)
      scenes/<name>/quicklook.png      map overlay, bounds in manifest.json
      scenes/<name>/embeddings/        part-*.npz while ingesting; vectors.npy when done
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
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import SceneNotFoundError, WorkspaceError
from tiles.atomic import atomic_path

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
READY = "ready"


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2, default=str))


def read_json(path: Path) -> Any:
    """Read a JSON file written by ``write_json``."""
    return json.loads(Path(path).read_text())


def scene_name_from(path: str | Path) -> str:
    """A valid scene name derived from a file name (unsafe characters replaced)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path).stem).lstrip("._-") or "scene"
    return stem[:100]


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

    def read_manifest(self) -> dict[str, Any]:
        """The manifest, or ``{}`` when ingestion never finished a first stage."""
        return read_json(self.manifest) if self.manifest.exists() else {}

    def is_ready(self) -> bool:
        """True when the last ingestion completed."""
        return self.read_manifest().get("status") == READY


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
        if not NAME_PATTERN.match(name):
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

    def scene_names(self, ready_only: bool = True) -> list[str]:
        """Names of the scenes, ready ones only by default."""
        if not self.scenes_dir.is_dir():
            return []
        names = sorted(p.name for p in self.scenes_dir.iterdir() if p.is_dir())
        return [n for n in names if not ready_only or SceneDir(self.scenes_dir / n).is_ready()]

    def delete_scene(self, name: str) -> None:
        """Remove a scene and everything derived from it."""
        scene = self.scene(name)
        if scene.root.exists():
            trash = scene.root.with_name(f".deleting-{scene.name}")
            shutil.rmtree(trash, ignore_errors=True)
            scene.root.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
