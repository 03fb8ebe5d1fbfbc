"""Bring a scene file in: a browser upload or a path inside the server's import folder.

Streamlit keeps uploads in memory, so the size is checked first, the bytes are streamed
to a temporary file in chunks (no second in-memory copy), and the file is validated as a
georeferenced raster before anything is written into the workspace. Import-folder paths
are resolved (symlinks included) and must stay inside the folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

from app.errors import AppError
from core import Workspace, check_free_space, get_settings
from tiles import TIFF_SIGNATURES, TilesError, check_gtiff, check_scene_size, describe

SUFFIXES = (".tif", ".tiff")
CHUNK = 1 << 20


class Upload(Protocol):
    """What the app needs from ``st.file_uploader``'s ``UploadedFile``."""

    name: str
    size: int

    def read(self, size: int = -1) -> bytes:
        """Read bytes."""

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the read position."""


def uploads_dir(ws: Workspace) -> Path:
    """Where uploaded scene files live once validated (their scene reads tiles from them)."""
    return ws.root / "uploads"


def _check_suffix(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise AppError(f"{name} is not a GeoTIFF: expected a .tif or .tiff file")
    return suffix


def _validate(path: Path, shown_as: str) -> None:
    """Open the raster the way ingestion will, naming the file as the analyst knows it.

    Only a real GeoTIFF passes (a VRT named .tif could make GDAL read other files), and a
    header that declares bigger blocks, or more pixels or tiles, than the limits is refused
    before any work.
    """
    settings = get_settings()
    try:
        check_gtiff(path)
        info = describe(path, max_block_mb=settings.max_block_mb)
        check_scene_size(info, max_pixels=settings.max_pixels, max_tiles=settings.max_tiles)
    except TilesError as exc:
        raise AppError(str(exc).replace(str(path), shown_as)) from exc


def save_upload(upload: Upload, ws: Workspace, name: str, limit_mb: int) -> Path:
    """Validate an uploaded GeoTIFF and keep it as ``uploads/<name>.tif``.

    Raises:
        AppError: when it is too large, not a TIFF, not readable or not georeferenced
            (the temporary copy is deleted and nothing is written into the workspace).
        DiskSpaceError: when keeping it would leave less than ``SCENESEEK_MIN_FREE_GB``.
    """
    suffix = _check_suffix(upload.name)
    if upload.size > limit_mb * 1024 * 1024:
        raise AppError(
            f"{upload.name} is {upload.size / 2**20:,.0f} MB; uploads are limited to "
            f"{limit_mb} MB. Put big scenes in the import folder instead."
        )
    upload.seek(0)
    if upload.read(4) not in TIFF_SIGNATURES:  # refused before a byte is copied
        raise AppError(f"{upload.name} is not a GeoTIFF: it does not start with a TIFF header")
    upload.seek(0)
    check_free_space(ws, upload.size, f"uploading {upload.name}")
    handle, temp_name = tempfile.mkstemp(prefix="sceneseek-upload-", suffix=suffix)
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            shutil.copyfileobj(upload, out, CHUNK)  # type: ignore[misc]
        _validate(temp, upload.name)
        target = uploads_dir(ws) / f"{name}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        shutil.move(temp, partial)
        partial.replace(target)
        return target
    finally:
        temp.unlink(missing_ok=True)


def import_candidates(folder: Path) -> list[str]:
    """GeoTIFFs in the import folder, as paths relative to it."""
    if not folder.is_dir():
        return []
    return sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.suffix.lower() in SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def resolve_import(folder: Path, text: str) -> Path:
    """A validated scene file inside the import folder, from a relative or absolute path.

    Raises:
        AppError: when the path leaves the folder, does not exist or is not a GeoTIFF.
    """
    root = folder.resolve()
    typed = Path(text.strip()).expanduser()
    path = (typed if typed.is_absolute() else root / typed).resolve()
    if not path.is_relative_to(root):
        raise AppError(
            f"{text} is outside the import folder {root}; only files inside it can be imported"
        )
    if not path.is_file():
        raise AppError(f"{text} is not a file in the import folder {root}")
    _check_suffix(path.name)
    _validate(path, text)
    return path
