"""Runtime settings from the environment, in one place.

Every environment variable SceneSeek reads is declared here with its default; the README's
configuration table mirrors this module.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
N = TypeVar("N", int, float)


def _path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default.resolve()


def _number(name: str, default: N, kind: Callable[[str], N]) -> N:
    """A finite number >= 0 from the environment; a typo is an error, not a silent default.

    ``nan`` and ``inf`` parse as floats but would switch a limit off (``nan < x`` is never
    true), so they are refused like any other non-number.
    """
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name}={text!r} is not a finite number >= 0 (default {default})")
    return value


def _list(name: str) -> tuple[str, ...]:
    """Comma-separated entries, blanks dropped."""
    return tuple(e.strip() for e in os.environ.get(name, "").split(",") if e.strip())


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


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
    max_pixels: float
    max_tiles: float
    guard_heldout_drop: float  # largest fall of held-out precision@10 a promotion may bring
    guard_top10_overlap: float  # least mean top-10 overlap generic queries must keep
    allow_anonymous: bool = False
    session_hours: float = 12.0
    signin_failures: int = 5
    lockout_s: float = 30.0
    max_image_mpx: float = 50.0
    min_free_gb: float = 2.0
    max_jobs: int = 1
    reader_mb: float = 256.0  # memory one block of tiles may take in a reader process
    reader_workers: int | None = None  # tile-reading processes; None: 0 on ONNX, else 2
    onnx_threads: int = 0  # ONNX Runtime intra-op threads; 0: torch's thread count
    dask: str = ""  # tcp://scheduler:8786 or local:N: the app searches through Dask shards
    dask_timeout_s: float = 60.0  # longest wait for a scheduler or a shard's answer
    remote_allow: tuple[str, ...] = ()  # hosts, IP networks, s3://bucket prefixes; empty: off
    remote_retries: int = 3
    remote_retry_delay_s: float = 1.0
    port: int = 8501  # the port people reach: the front's; Streamlit listens on a private one
    session_uploads: int = 20  # files one Streamlit session may hold uploaded at once
    session_upload_mb: int = 1000  # megabytes one Streamlit session may hold uploaded at once
    front_token: str = ""  # set by the front for the app it starts: proves a request passed it
    max_block_mb: float = 64.0  # largest decoded internal block of a scene (tile or strip)
    area_max_mb: float = 5.0  # GeoJSON of an area of interest, however it comes in
    area_max_vertices: int = 10_000  # an area with more corners is simplified to fit


def get_settings() -> Settings:
    """Read settings now (not at import), so tests and subprocesses can override them.

    Raises:
        ConfigError: when a numeric setting is not a finite number >= 0.
    """
    workers = _number("SCENESEEK_READER_WORKERS", -1, int)
    return Settings(
        data_root=_path("SCENESEEK_DATA", PROJECT_ROOT / ".." / "shared" / "data"),
        workspace=_path("SCENESEEK_WORKSPACE", PROJECT_ROOT / "workspace"),
        import_dir=_path("SCENESEEK_IMPORT_DIR", PROJECT_ROOT / "workspace" / "import"),
        device=os.environ.get("SCENESEEK_DEVICE", "auto"),
        max_upload_mb=_number("SCENESEEK_MAX_UPLOAD_MB", 500, int),
        host=os.environ.get("SCENESEEK_HOST", "127.0.0.1"),
        default_model=os.environ.get("SCENESEEK_MODEL", "default"),
        max_pixels=_number("SCENESEEK_MAX_PIXELS", 4e9, float),
        max_tiles=_number("SCENESEEK_MAX_TILES", 5e6, float),
        max_block_mb=_number("SCENESEEK_MAX_BLOCK_MB", 64.0, float),
        allow_anonymous=_flag("SCENESEEK_ALLOW_ANONYMOUS"),
        session_hours=_number("SCENESEEK_SESSION_HOURS", 12.0, float),
        signin_failures=max(1, _number("SCENESEEK_SIGNIN_FAILURES", 5, int)),
        lockout_s=_number("SCENESEEK_LOCKOUT_S", 30.0, float),
        max_image_mpx=_number("SCENESEEK_MAX_IMAGE_MPX", 50.0, float),
        min_free_gb=_number("SCENESEEK_MIN_FREE_GB", 2.0, float),
        max_jobs=max(1, _number("SCENESEEK_MAX_JOBS", 1, int)),
        reader_mb=max(1.0, _number("SCENESEEK_READER_MB", 256.0, float)),
        reader_workers=workers if workers >= 0 else None,
        onnx_threads=_number("SCENESEEK_ONNX_THREADS", 0, int),
        dask=os.environ.get("SCENESEEK_DASK", "").strip(),
        dask_timeout_s=_number("SCENESEEK_DASK_TIMEOUT_S", 60.0, float),
        remote_allow=_list("SCENESEEK_REMOTE_ALLOW"),
        remote_retries=_number("SCENESEEK_REMOTE_RETRIES", 3, int),
        remote_retry_delay_s=_number("SCENESEEK_REMOTE_RETRY_DELAY_S", 1.0, float),
        port=_number("SCENESEEK_PORT", 8501, int),
        session_uploads=max(1, _number("SCENESEEK_SESSION_UPLOADS", 20, int)),
        session_upload_mb=_number("SCENESEEK_SESSION_UPLOAD_MB", 1000, int),
        front_token=os.environ.get("SCENESEEK_FRONT_TOKEN", ""),
        area_max_mb=_number("SCENESEEK_AREA_MAX_MB", 5.0, float),
        area_max_vertices=max(4, _number("SCENESEEK_AREA_MAX_VERTICES", 10_000, int)),
        engine=os.environ.get("SCENESEEK_ENGINE", "auto"),
        cache_dir=_path("SCENESEEK_CACHE", Path.home() / ".cache" / "sceneseek"),
        guard_heldout_drop=_number("SCENESEEK_GUARD_HELDOUT_DROP", 0.1, float),
        guard_top10_overlap=_number("SCENESEEK_GUARD_TOP10_OVERLAP", 0.8, float),
    )
