"""One writer per scene: a lock file per scene name, and who holds it.

Ingest, re-index and delete hold ``WS/locks/<scene>.lock`` (``filelock``: ``flock`` on
Linux, released by the kernel when the holder dies) for as long as they write; a second
writer fails at once with ``SceneBusyError`` naming the holder (pid, host, job), read from
``<scene>.json`` beside the lock. Nested holds in one thread are re-entrant, so an ingest
called inside a job that already holds its scene's lock goes on. ``flock`` is unreliable on
some network file systems: keep workspaces on a local disk (docs/SECURITY.md).
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from filelock import FileLock, Timeout

from core.errors import SceneBusyError

# What this process is doing, named in the holder record: "job 1a2b3c", "the app (alice)".
WRITER: ContextVar[str] = ContextVar("scene_writer", default="")


def _holder(info: Path) -> str:
    try:
        held = json.loads(info.read_text())
    except (OSError, ValueError):
        return "another process"
    since = time.strftime("%H:%M:%S", time.localtime(held.get("since", 0)))
    who = f" ({held['writer']})" if held.get("writer") else ""
    return f"pid {held.get('pid')} on {held.get('host')}{who} since {since}"


@contextmanager
def scene_lock(locks_dir: Path, name: str, wait_s: float = 0.0, who: str = "") -> Iterator[None]:
    """Hold scene ``name``'s writer lock for the block.

    Args:
        locks_dir: The workspace's lock folder.
        name: A validated scene name.
        wait_s: How long to wait for another holder; 0 fails at once.
        who: What holds it, for the message another writer gets (default ``WRITER``).

    Raises:
        SceneBusyError: when another process (or thread) holds it.
    """
    locks_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(locks_dir / f"{name}.lock", is_singleton=True)
    info = locks_dir / f"{name}.json"
    try:
        if wait_s > 0:
            lock.acquire(timeout=wait_s)
        else:
            lock.acquire(blocking=False)
    except Timeout:
        raise SceneBusyError(f"scene {name} is being written by {_holder(info)}") from None
    outermost = lock.lock_counter == 1
    try:
        if outermost:
            record = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "writer": who or WRITER.get() or "python -m core",
                "since": time.time(),
            }
            info.write_text(json.dumps(record))
        yield
    finally:
        if outermost:
            info.unlink(missing_ok=True)
        lock.release()
