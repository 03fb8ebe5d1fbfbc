"""Atomic file replacement shared by the catalog and quicklook writers."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: str) -> None:
    """Flush a file's (or a folder's) data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path beside ``path`` that replaces it when the block succeeds.

    Readers never see a partial file, and when the block raises, the temporary file is
    removed and ``path`` is left as it was. The file is synced before the rename and the
    folder after it, so a crash or power cut leaves the old file or the whole new one. The
    destination folder is created if needed.

    Args:
        path: The final destination.

    Yields:
        The temporary path to write to.

    Raises:
        OSError: The folder cannot be created or the file cannot be renamed.
    """
    final = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(final)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(final)}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, final)
        _fsync(folder)  # the rename itself survives a power cut only once its folder is synced
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
