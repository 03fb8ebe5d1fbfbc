"""Bounded inputs: image bombs are refused from the header, outside the engine lock; disk floor."""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from PIL import Image

from core.errors import DiskSpaceError, QueryError
from core.store.query_images import load_query_image
from core.store.workspace import Workspace, check_free_space


def png_bomb(side: int = 20_000) -> bytes:
    """A 1-bit PNG declaring ``side`` x ``side`` pixels: tens of KB on disk, gigabytes decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes((side + 7) // 8)
    squeeze = zlib.compressobj(9)
    idat = b"".join(squeeze.compress(row) for _ in range(side)) + squeeze.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def test_a_20000_px_png_is_refused_from_its_header() -> None:
    bomb = png_bomb()
    assert len(bomb) < 100_000
    started = time.perf_counter()
    with pytest.raises(QueryError, match=r"larger than the 50 million pixels.*_MAX_IMAGE_MPX"):
        load_query_image(bomb, 224)
    assert time.perf_counter() - started < 1.0  # nothing was decoded


def test_the_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), "green").save(buffer, "PNG")
    assert load_query_image(buffer.getvalue(), 64).shape == (64, 64, 3)
    monkeypatch.setenv("SCENESEEK_MAX_IMAGE_MPX", "0.05")
    with pytest.raises(QueryError, match=r"\(300 x 200 pixels\) is larger than the 0.05 million"):
        load_query_image(buffer.getvalue(), 64)


class BusyEngine:
    """What ``app.querying.run_query`` needs from ``core.Engine``, with its lock held elsewhere."""

    image_size = 224

    def __init__(self) -> None:
        self.lock = threading.Lock()

    @contextmanager
    def searching(self) -> Iterator[None]:
        with self.lock:
            yield None


def test_the_app_refuses_a_bomb_without_waiting_for_the_engine_lock() -> None:
    from app.querying import image_query, run_query
    from core.search.ranking import Filters

    engine = BusyEngine()
    engine.lock.acquire()  # another session's search is running
    try:
        started = time.perf_counter()
        with pytest.raises(QueryError, match="larger than the 50 million pixels"):
            run_query(engine, image_query(png_bomb(), "bomb.png"), Filters())
        assert time.perf_counter() - started < 1.0
    finally:
        engine.lock.release()


def test_writes_stop_above_the_free_disk_floor(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace(tmp_path)
    check_free_space(ws, 10 * 2**20)  # 10 MB with 2 GB to spare: fine here
    monkeypatch.setenv("SCENESEEK_MIN_FREE_GB", "1e9")  # a floor no disk has
    with pytest.raises(DiskSpaceError, match="SCENESEEK_MIN_FREE_GB"):
        check_free_space(ws, 0)
