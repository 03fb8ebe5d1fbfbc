"""Runtime settings from the environment, in one place.

Every environment variable SceneSeek reads is declared here with its default; the README's
configuration table mirrors this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default.resolve()


@dataclass(frozen=True)
class Settings:
    """Values resolved once per process from ``SCENESEEK_*`` variables."""

    data_root: Path
    workspace: Path
    import_dir: Path
    device: str
    max_upload_mb: int
    host: str
    default_model: str
    engine: str
    cache_dir: Path


def get_settings() -> Settings:
    """Read settings now (not at import), so tests and subprocesses can override them."""
    return Settings(
        data_root=_path("SCENESEEK_DATA", PROJECT_ROOT / ".." / "shared" / "data"),
        workspace=_path("SCENESEEK_WORKSPACE", PROJECT_ROOT / "workspace"),
        import_dir=_path("SCENESEEK_IMPORT_DIR", PROJECT_ROOT / "workspace" / "import"),
        device=os.environ.get("SCENESEEK_DEVICE", "auto"),
        max_upload_mb=int(os.environ.get("SCENESEEK_MAX_UPLOAD_MB", "500")),
        host=os.environ.get("SCENESEEK_HOST", "127.0.0.1"),
        default_model=os.environ.get("SCENESEEK_MODEL", "default"),
        engine=os.environ.get("SCENESEEK_ENGINE", "auto"),
        cache_dir=_path("SCENESEEK_CACHE", Path.home() / ".cache" / "sceneseek"),
    )
