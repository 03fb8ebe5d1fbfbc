"""A disk that takes no more bytes, for tests of what happens when a write fails."""

from __future__ import annotations

import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def full_disk() -> Iterator[None]:
    """Every write to a file in this process fails with a real ``OSError`` (EFBIG) meanwhile.

    RLIMIT_FSIZE set to 0 makes the kernel refuse each ``write`` (tests run as root, so a
    read-only folder would not stop them). Print nothing inside: pytest's captured output
    is a file too.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
