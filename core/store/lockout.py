"""Failed sign-ins: how many a name had, and how long it is locked.

An account keeps its count in ``users.json``. A name without an account keeps one too, in
``signin_failures.json``, so guessing at a name that does not exist gets the same answers
as guessing at one that does (otherwise the lockout message would tell which names exist).
That file holds no names, only their HMAC under the workspace key, and at most
``MAX_UNKNOWN_NAMES`` of them, so a guesser cannot fill the disk: the entries that failed
longest ago go first, unlocked ones before locked ones. The caller holds the accounts' lock,
and writes both files for every counted attempt (one of them unchanged), so a wrong password
takes the same time whether the name exists or not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from core.settings import Settings
from tiles.atomic import atomic_path

UNAVAILABLE = "sign-in is unavailable: the server cannot record sign-in attempts (disk full?)"
WRONG = "wrong user name or password"
MAX_UNKNOWN_NAMES = 1000


@dataclass(frozen=True)
class Attempts:
    """The failed sign-ins of one name since its last success."""

    failures: int = 0  # since the last success or lockout
    lockouts: int = 0  # lockouts in a row; each one lasts twice as long as the last
    locked_until: float = 0.0

    def refusal(self, now: float) -> str | None:
        """The lockout message while the name is locked, else None."""
        if self.locked_until <= now:
            return None
        return (
            "too many failed sign-ins for this name; "
            f"try again in {math.ceil(self.locked_until - now)} s"
        )

    def failed(self, now: float, settings: Settings) -> Attempts:
        """These attempts and one more failure, which may lock the name."""
        failures = self.failures + 1
        if failures < settings.signin_failures:
            return Attempts(failures, self.lockouts, self.locked_until)
        lockouts = self.lockouts + 1
        return Attempts(0, lockouts, now + settings.lockout_s * 2 ** (lockouts - 1))


class UnknownNames:
    """Failed sign-ins of names that have no account (``WS/signin_failures.json``)."""

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self.key = key
        self.names: dict[str, dict] = {}
        if path.is_file():
            self.names = json.loads(path.read_text())["names"]

    def _id(self, name: str) -> str:
        return hmac.new(self.key, name.encode(), hashlib.sha256).hexdigest()[:32]

    def attempts(self, name: str) -> Attempts:
        """What ``name`` failed so far."""
        entry = self.names.get(self._id(name), {})
        return Attempts(**{k: v for k, v in entry.items() if k != "last"})

    def count(self, name: str, attempts: Attempts, now: float) -> None:
        """Set the attempts of ``name`` (kept by ``save``)."""
        self.names[self._id(name)] = {**asdict(attempts), "last": now}

    def save(self, now: float) -> None:
        """Write the entries atomically, dropping the oldest beyond ``MAX_UNKNOWN_NAMES``.

        Raises:
            OSError: when the file cannot be written (a full disk).
        """
        names = self.names
        kept = sorted(names, key=lambda k: (names[k]["locked_until"] > now, names[k]["last"]))
        self.names = {k: names[k] for k in kept[-MAX_UNKNOWN_NAMES:]}
        with atomic_path(self.path) as tmp:
            Path(tmp).write_text(json.dumps({"names": self.names}, separators=(",", ":")))
            os.chmod(tmp, 0o600)
