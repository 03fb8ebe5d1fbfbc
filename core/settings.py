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
    guard_heldout_drop: float  # largest fall of held-out precision@10 a promotion may bring
    guard_top10_overlap: float  # least mean top-10 overlap generic queries must keep


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
        guard_heldout_drop=float(os.environ.get("SCENESEEK_GUARD_HELDOUT_DROP", "0.1")),
        guard_top10_overlap=float(os.environ.get("SCENESEEK_GUARD_TOP10_OVERLAP", "0.8")),
    )
