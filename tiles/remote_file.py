"""Remote scenes opened by GDAL through SceneSeek's own HTTP client, never GDAL's.

GDAL's ``/vsicurl/`` follows redirects and resolves host names by itself, after and apart
from any check. So an ``http(s)://`` scene is handed to GDAL as a Python file
(``rasterio.open(..., opener=...)``): every byte GDAL reads is a range request of
:class:`~tiles.checked_http.CheckedSession`, which checks each hop against the allow-list
and connects only to the addresses it checked. A :class:`RemoteScene` is picklable and
carries its allow-list, so reader processes and Dask workers open it the same way.

Reads go through a process-wide cache of 64 KiB blocks (32 MiB in all, like GDAL's
``/vsicurl/`` cache); a miss right after the last one fetched doubles the read-ahead (up to
2 MiB), as GDAL's own network reader does, so a COG read tile by tile costs few requests.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import rasterio
from rasterio.abc import FileContainer
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader

from tiles.allowlist import AllowList, redact_url
from tiles.checked_http import CheckedSession
from tiles.errors import RemoteReadError, TilesError

BLOCK_BYTES = 64 << 10
MAX_AHEAD_BLOCKS = 32
CACHE_BYTES = 32 << 20
_OPENER_PREFIX = re.compile(r"^/vsiriopener_[0-9a-f]+/")
_FAILURES: dict[str, TilesError] = {}


@dataclass(frozen=True)
class RemoteScene:
    """A remote COG that passed the checks, and how to read it again anywhere.

    Attributes:
        source: The URL as given (recorded redacted; re-index checks it again).
        url: The URL read: the last hop of the redirects (may hold a token).
        size: Bytes of the file, when the server says.
        version: The server's ETag or Last-Modified, which change when the file does.
        allow: The allow-list every request is checked against, also in other processes.
        retries: Retries of a failed request (network error, HTTP 429 or 5xx).
        retry_delay_s: First retry delay; it doubles at each retry.
    """

    source: str
    url: str
    size: int | None = None
    version: str | None = None
    allow: AllowList = field(default_factory=AllowList)
    retries: int = 3
    retry_delay_s: float = 1.0

    @property
    def recorded(self) -> str:
        """What manifests and messages show: the given URL without credentials."""
        return redact_url(self.source)

    def __str__(self) -> str:
        return self.recorded


class _BlockCache:
    """Least recently used blocks of every remote file this process read, shared by opens."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._blocks: OrderedDict[tuple[str, str | None, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str | None, int]) -> bytes | None:
        with self._lock:
            found = self._blocks.get(key)
            if found is not None:
                self._blocks.move_to_end(key)
            return found

    def put(self, key: tuple[str, str | None, int], block: bytes) -> None:
        with self._lock:
            self._blocks[key] = block
            self._blocks.move_to_end(key)
            while len(self._blocks) > self.capacity:
                self._blocks.popitem(last=False)


_CACHE = _BlockCache(CACHE_BYTES // BLOCK_BYTES)


class RemoteFile:
    """A read-only, seekable file over range requests, as GDAL's plugin calls it.

    It never raises into GDAL (a Python error cannot cross GDAL's C callbacks): a failed
    request is kept in :func:`remote_failure` under the name GDAL opened, and this read and
    every later one return no bytes, which GDAL reports as a read error.
    """

    def __init__(self, scene: RemoteScene, size: int, name: str) -> None:
        self.scene, self.size, self.name = scene, size, shown_name(name)
        self._session = CheckedSession(scene.allow, scene.retries, scene.retry_delay_s)
        self._position, self._next_block, self._ahead = 0, -1, 1
        self._failed = False
        self._lock = threading.Lock()

    def __enter__(self) -> RemoteFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the kept-alive connections."""
        self._session.close()

    def tell(self) -> int:
        """The read position."""
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move the read position like ``io.IOBase.seek``."""
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def read(self, count: int = -1) -> bytes:
        """Up to ``count`` bytes from the position (all that is left when negative)."""
        with self._lock:
            left = self.size - self._position
            count = left if count < 0 else min(count, left)
            if count <= 0 or self._failed:
                return b""
            first, last = self._position // BLOCK_BYTES, (self._position + count - 1) // BLOCK_BYTES
            try:
                blocks = self._blocks(first, last)
            except TilesError as exc:
                _FAILURES[self.name], self._failed = exc, True
                return b""
            start = self._position - first * BLOCK_BYTES
            joined = blocks[0] if len(blocks) == 1 else b"".join(blocks)
            data = joined[start : start + count]
            self._position += len(data)
            return data

    def _key(self, index: int) -> tuple[str, str | None, int]:
        return (self.scene.url, self.scene.version, index)

    def _blocks(self, first: int, last: int) -> list[bytes]:
        found = [_CACHE.get(self._key(index)) for index in range(first, last + 1)]
        missing = [first + i for i, block in enumerate(found) if block is None]
        if missing:
            self._fetch(missing[0], missing[-1])
            found = [_CACHE.get(self._key(index)) for index in range(first, last + 1)]
        if any(block is None for block in found):
            raise RemoteReadError(f"{self.scene.recorded}: the block cache is too small")
        return [block for block in found if block is not None]

    def _fetch(self, first: int, last: int) -> None:
        """Fetch blocks ``first..last`` and the read-ahead after them in one range request."""
        self._ahead = min(self._ahead * 2, MAX_AHEAD_BLOCKS) if first == self._next_block else 1
        end_block = max(last + 1, first + self._ahead)
        start, end = first * BLOCK_BYTES, min(end_block * BLOCK_BYTES, self.size)
        wanted = end - start
        answer = self._session.get(
            self.scene.url, byte_range=f"bytes={start}-{end - 1}", max_bytes=wanted
        )
        shown = redact_url(answer.url)
        if answer.status != 206:
            raise RemoteReadError(
                f"{shown}: a range request was answered with HTTP {answer.status}, not 206"
            )
        if not answer.headers.get("content-range", "").startswith(f"bytes {start}-"):
            raise RemoteReadError(f"{shown}: the server sent another range than the one asked")
        if len(answer.body) != wanted:
            raise RemoteReadError(
                f"{shown}: {len(answer.body)} bytes came for a range of {wanted} (did the file "
                "change while it was read?)"
            )
        for index in range(first, (end + BLOCK_BYTES - 1) // BLOCK_BYTES):
            offset = (index - first) * BLOCK_BYTES
            _CACHE.put(self._key(index), answer.body[offset : offset + BLOCK_BYTES])
        self._next_block = end_block


class _SceneFiles(FileContainer):
    """What GDAL sees of one remote scene: one file, no folder, no side-car files."""

    def __init__(self, scene: RemoteScene, name: str) -> None:
        self.scene, self.name = scene, name

    def _mine(self, path: str) -> bool:
        return _OPENER_PREFIX.sub("", path) == self.name

    def open(self, path: str, mode: str = "rb", **kwds: Any) -> RemoteFile:
        """The scene's file, for reading only.

        Raises:
            FileNotFoundError: Any other path, or a mode that writes.
        """
        if not self._mine(path) or set(mode) - set("rb"):
            raise FileNotFoundError(path)
        return RemoteFile(self.scene, self.size(path), path)

    def isfile(self, path: str) -> bool:
        """True for the scene's file only."""
        return self._mine(path)

    def isdir(self, path: str) -> bool:
        """False: there is no folder to list."""
        return False

    def ls(self, path: str) -> list[str]:
        """Nothing: GDAL finds no side-car file to read."""
        return []

    def mtime(self, path: str) -> int:
        """Unknown (0)."""
        return 0

    def rm(self, path: str) -> None:
        """Refused: remote scenes are read only."""
        raise PermissionError(path)

    def size(self, path: str) -> int:
        """The scene's size, from the checks.

        Raises:
            FileNotFoundError: Any other path.
        """
        if not self._mine(path) or self.scene.size is None:
            raise FileNotFoundError(path)
        return self.scene.size


def remote_failure(name: str) -> TilesError | None:
    """Why reading the remote file GDAL opened as ``name`` failed, if it did (taken once)."""
    return _FAILURES.pop(shown_name(name), None)


def shown_name(name: str) -> str:
    """A dataset's name as people read it: a remote scene's URL without GDAL's prefix."""
    return _OPENER_PREFIX.sub("", name)


def open_remote(scene: RemoteScene, **options: int) -> DatasetReader:
    """Open a checked remote scene in this process; ``s3://`` goes to GDAL's ``/vsis3/``.

    Raises:
        RemoteRefusedError: The URL is not allowed (the allow-list is checked again here).
        RemoteReadError: A request failed.
        rasterio.errors.RasterioError: GDAL cannot open what it read.
    """
    if scene.url.lower().startswith("s3://"):
        scene.allow.check(scene.url)
        return rasterio.open("/vsis3/" + scene.url[len("s3://") :], **options)
    name = scene.recorded
    try:
        return rasterio.open(name, opener=_SceneFiles(scene, name), **options)
    except RasterioError:
        failure = remote_failure(name)
        if failure is not None:
            raise failure from None
        raise
