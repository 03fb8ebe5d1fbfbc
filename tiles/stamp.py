"""A cheap stamp of a scene file, so a file replaced after it came in is noticed before use.

A scene's file is checked when it is ingested, but thumbnails and re-indexing open whatever
is at its path later. Its size, modification time and the hash of its first 64 KiB (where a
TIFF keeps its header) are recorded at ingest; a file that differs in any of them is
another file. Hashing 64 KiB takes well under a millisecond, so every open can afford it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

from tiles.errors import SourceChangedError
from tiles.scene import PathLike

HEAD_BYTES = 64 * 1024
SOURCE_CHANGED = "source changed; re-index"


def file_stamp(path: PathLike) -> dict[str, Any]:
    """Size, ``mtime_ns`` and the SHA-256 of the first 64 KiB of a local file.

    Raises:
        OSError: The file cannot be read.
    """
    with open(path, "rb") as file:
        stat = os.fstat(file.fileno())
        head = hashlib.sha256(file.read(HEAD_BYTES)).hexdigest()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "head_sha256": head}


def check_unchanged(path: PathLike, recorded: Mapping[str, Any] | None) -> None:
    """Refuse a file that is not the one ``recorded`` stamped; no record accepts any file.

    Raises:
        SourceChangedError: Its size, time or first bytes differ from the record.
        OSError: The file cannot be read.
    """
    if recorded is None:
        return
    now = file_stamp(path)
    differ = [key for key, value in recorded.items() if now.get(key) != value]
    if differ:
        raise SourceChangedError(
            f"{os.fspath(path)} is not the file that was ingested ({', '.join(differ)} "
            f"changed): {SOURCE_CHANGED} the scene to read it"
        )
