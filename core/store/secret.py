"""The workspace's random signing key (``WS/.secret``): session tokens and sign-in records."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def workspace_key(path: Path) -> bytes:
    """The 256-bit key at ``path``, created once (0600) by whichever process comes first.

    Raises:
        OSError: when a missing key cannot be written (a full disk).
    """
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
                handle.flush()
                os.fsync(handle.fileno())
            os.link(tmp, path)  # fails if another process made it first
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return bytes.fromhex(path.read_text().strip())
