"""Model versions of a workspace: which checkpoint is active, and where each came from.

Version 0 is the shipped default model and is never modified; fine-tuned models become
versions 1, 2, ... with their parent, data, metrics and time. The registry file is replaced
atomically, so promotion and rollback are all-or-nothing, and every read-modify-write holds
``versions.json.lock``, so two fine-tunes registering at once get two versions.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from core.errors import CheckpointError
from core.model.checkpoint import file_sha256
from core.store.workspace import Workspace, read_json, write_json

LOCK_TIMEOUT_S = 60.0


def model_tag(sha256: str) -> str:
    """The model identity stored with embeddings: a prefix of the checkpoint's SHA-256."""
    return f"amfmn-{sha256[:16]}"


@dataclass(frozen=True)
class ModelVersion:
    """One registered model."""

    version: int
    path: str
    sha256: str
    parent: int | None = None
    created: float = field(default_factory=time.time)
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        """Identity written into every scene manifest and search result (content hash)."""
        return model_tag(self.sha256)

    @property
    def label(self) -> str:
        """Human name, e.g. ``v2 (3f9a1c0b)``."""
        return f"v{self.version} ({self.sha256[:8]})"


class ModelRegistry:
    """The ``models/versions.json`` registry of one workspace."""

    def __init__(self, workspace: Workspace, default_checkpoint: Path | None = None) -> None:
        self.workspace = workspace
        self.path = workspace.models_dir / "versions.json"
        self._default = default_checkpoint

    def _locked(self) -> FileLock:
        """The registry's lock, for every read-modify-write (re-entrant in one thread)."""
        self.workspace.models_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(f"{self.path}.lock", timeout=LOCK_TIMEOUT_S, is_singleton=True)

    def _load(self) -> dict[str, Any]:
        if self.path.exists():
            return read_json(self.path)
        with self._locked():
            return read_json(self.path) if self.path.exists() else self._create()

    def _create(self) -> dict[str, Any]:
        from core.model.shipped import resolve_checkpoint
        from core.settings import get_settings

        default = Path(self._default or resolve_checkpoint(get_settings().default_model))
        base = ModelVersion(0, str(default.resolve()), file_sha256(default), note="shipped default")
        state = {"active": 0, "versions": [asdict(base)]}
        write_json(self.path, state)
        return state

    def versions(self) -> list[ModelVersion]:
        """All versions, oldest first."""
        return [ModelVersion(**v) for v in self._load()["versions"]]

    def get(self, version: int) -> ModelVersion:
        """A version by number.

        Raises:
            CheckpointError: if there is no such version.
        """
        for v in self.versions():
            if v.version == version:
                return v
        raise CheckpointError(f"no model version {version} in {self.path}")

    def active(self) -> ModelVersion:
        """The version searches and ingestion use."""
        return self.get(int(self._load()["active"]))

    def register(
        self,
        checkpoint: Path,
        parent: int,
        note: str = "",
        data: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Copy a checkpoint into the registry as a new (inactive) version.

        Its ONNX graphs are exported here, in the registering job, when this machine runs
        ONNX (``core.model.inference.prepare_checkpoint``), not at its first query.
        """
        from core.model.inference import prepare_checkpoint
        from core.model.onnx_export import cache_dir_for

        with self._locked():
            state = self._load()
            number = max(v["version"] for v in state["versions"]) + 1
            target = self.workspace.models_dir / f"v{number}.safetensors"
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            shutil.copyfile(checkpoint, tmp)
            tmp.replace(target)
            version = ModelVersion(
                number,
                str(target),
                file_sha256(target),
                parent,
                note=note,
                data=data or {},
                metrics=metrics or {},
            )
            state["versions"].append(asdict(version))
            write_json(self.path, state)
        prepare_checkpoint(target, cache_dir_for(self.workspace))
        return version

    def set_active(self, version: int) -> ModelVersion:
        """Make ``version`` active (promotion or rollback), atomically."""
        with self._locked():
            state = self._load()
            chosen = self.get(version)
            state["active"] = chosen.version
            write_json(self.path, state)
            return chosen
