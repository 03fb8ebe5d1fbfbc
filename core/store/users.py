"""Accounts of a workspace: who may sign in, with which role, and their signed sessions.

``users.json`` in the workspace holds each account's role, random id and argon2id password
hash (never the password), and its failed sign-ins, so a lockout survives a page reload or
a restart (names without an account are counted apart, see ``core.store.lockout``). Every
change is a read-modify-write under a file lock, written atomically. A session is a token
``name:id:issued`` signed with HMAC-SHA256 under the workspace's own random key
(``.secret``); it is valid for ``session_hours``, and only while that very account (not a
new one of the same name) exists and has not signed out or changed its password since.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from filelock import FileLock

from core.errors import AccountError, ForbiddenError, SignInError
from core.settings import Settings, get_settings
from core.store.lockout import UNAVAILABLE, WRONG, Attempts, UnknownNames
from core.store.secret import workspace_key
from core.store.workspace import Workspace, read_json
from tiles.atomic import atomic_path

Role = Literal["viewer", "editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "admin")
USER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
LOCK_TIMEOUT_S = 30.0
# The least role each action needs; the app checks these, the CLI (the operator's tool) does not.
ACTIONS: dict[str, Role] = {
    "search": "viewer",
    "mark": "viewer",
    "export": "viewer",
    "add_scene": "editor",
    "delete_scene": "editor",
    "reindex": "editor",
    "align_pair": "editor",
    "caption": "editor",
    "delete_mark": "editor",
    "finetune": "editor",
    "switch_model": "admin",
    "cancel_any_job": "admin",
    "read_job_log": "admin",  # tracebacks name server paths
}
_HASHER = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown names, so they take as long as known ones."""
    return _HASHER.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class User:
    """A signed-in person (or the anonymous local user, name ``""``, on loopback only)."""

    name: str
    role: Role
    account_id: str = field(default="", compare=False, repr=False)  # what its tokens name

    def can(self, action: str) -> bool:
        """True when this role allows ``action`` (a key of ``ACTIONS``)."""
        return ROLES.index(self.role) >= ROLES.index(ACTIONS[action])

    def require(self, action: str) -> None:
        """Refuse an action the role does not allow.

        Raises:
            ForbiddenError: naming the role the action needs.
        """
        if not self.can(action):
            who = self.name or "this session"
            raise ForbiddenError(
                f"{who} is a {self.role}; {action.replace('_', ' ')} needs the "
                f"{ACTIONS[action]} role (ask an admin)"
            )


ANONYMOUS = User("", "admin")


@dataclass(frozen=True)
class Account:
    """One stored account (``users.json``)."""

    name: str
    role: Role
    hash: str
    created: float
    sessions_after: float = 0.0  # tokens issued before this are void (sign-out, new password)
    failures: int = 0  # as in lockout.Attempts, kept flat in users.json
    lockouts: int = 0
    locked_until: float = 0.0
    id: str = ""  # random, named in tokens: a name removed and added again is a new account

    @property
    def attempts(self) -> Attempts:
        """Its failed sign-ins."""
        return Attempts(self.failures, self.lockouts, self.locked_until)


def check_name(name: str) -> str:
    """A valid user name.

    Raises:
        AccountError: for empty names, spaces, or characters other than letters, digits
            and ``_ . @ -``.
    """
    if not USER_PATTERN.fullmatch(name):
        raise AccountError(
            f"invalid user name {name!r}: use letters, digits, '_', '.', '@' or '-' (max 64)"
        )
    return name


def check_role(role: str) -> Role:
    """A valid role.

    Raises:
        AccountError: for anything but viewer, editor or admin.
    """
    if role not in ROLES:
        raise AccountError(f"invalid role {role!r}: use one of {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


def _check_password(password: str) -> str:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise AccountError(
            f"a password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )
    return password


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (``127.0.0.1``, ``::1``, ``localhost``)."""
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class UserStore:
    """The accounts and session key of one workspace."""

    def __init__(self, workspace: Workspace, settings: Settings | None = None) -> None:
        self.workspace = workspace
        self.path = workspace.root / "users.json"
        self.key_path = workspace.root / ".secret"
        self.failures_path = workspace.root / "signin_failures.json"
        self.settings = settings or get_settings()

    def _load(self) -> tuple[dict[str, Account], bool]:
        """The accounts, and whether some had no id yet (a ``users.json`` from before ids)."""
        if not self.path.is_file():
            return {}, False
        accounts = {a["name"]: Account(**a) for a in read_json(self.path)["users"]}
        missing = [a for a in accounts.values() if not a.id]
        for account in missing:
            accounts[account.name] = replace(account, id=secrets.token_hex(16))
        return accounts, bool(missing)

    def _read(self) -> dict[str, Account]:
        accounts, migrated = self._load()
        if migrated:  # give the ids once, under the lock, so every process sees the same
            with self._editing() as accounts:
                return dict(accounts)
        return accounts

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.workspace.root.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{self.path}.lock", timeout=LOCK_TIMEOUT_S, is_singleton=True):
            yield

    def _write(self, accounts: dict[str, Account]) -> None:
        users = [asdict(a) for a in sorted(accounts.values(), key=lambda a: a.name)]
        with atomic_path(self.path) as tmp:
            Path(tmp).write_text(json.dumps({"users": users}, indent=2))
            os.chmod(tmp, 0o600)  # hashes are nobody else's business

    @contextmanager
    def _editing(self) -> Iterator[dict[str, Account]]:
        """The accounts, locked against other writers, saved when the block ends."""
        with self._lock():
            accounts, migrated = self._load()
            before = dict(accounts)
            try:
                yield accounts
            finally:
                if migrated or accounts != before:
                    self._write(accounts)

    def accounts(self) -> list[Account]:
        """Every account, by name."""
        return sorted(self._read().values(), key=lambda a: a.name)

    def has_users(self) -> bool:
        """True once an account exists: from then on every page asks to sign in."""
        return bool(self._read())

    def add(self, name: str, password: str, role: str = "viewer") -> Account:
        """Create an account.

        Raises:
            AccountError: for an invalid name, role or password, or a name already taken.
        """
        check_name(name)
        role = check_role(role)
        digest = _HASHER.hash(_check_password(password))
        with self._editing() as accounts:
            if name in accounts:
                raise AccountError(f"user {name!r} exists; use passwd to change the password")
            accounts[name] = Account(name, role, digest, time.time(), id=secrets.token_hex(16))
            return accounts[name]

    def remove(self, name: str) -> None:
        """Delete an account; its sessions end at their next page run.

        Raises:
            AccountError: if there is no such account.
        """
        with self._editing() as accounts:
            if accounts.pop(name, None) is None:
                raise AccountError(f"no user {name!r} in {self.path}")

    def set_password(self, name: str, password: str) -> None:
        """Change a password, sign the account out everywhere and lift any lockout.

        Raises:
            AccountError: for an unknown account or an invalid password.
        """
        digest = _HASHER.hash(_check_password(password))
        with self._editing() as accounts:
            if name not in accounts:
                raise AccountError(f"no user {name!r} in {self.path}")
            accounts[name] = replace(
                accounts[name],
                hash=digest,
                sessions_after=time.time(),
                failures=0,
                lockouts=0,
                locked_until=0.0,
            )

    def sign_in(self, name: str, password: str) -> User:
        """Check a password; count failures and lock the name after too many.

        The check holds the lock, so parallel guesses cannot outrun the failure count, and
        the attempt is counted before the password is checked: when it cannot be written
        (a full disk), every sign-in is refused rather than guessed at without a limit.

        Raises:
            SignInError: for a wrong name or password, a name that is locked now, or
                attempts that cannot be recorded.
        """
        try:
            with self._lock():
                return self._check(name, password)
        except SignInError:
            raise
        except OSError as exc:
            raise SignInError(UNAVAILABLE) from exc

    def _check(self, name: str, password: str) -> User:
        accounts, _ = self._load()
        account = accounts.get(name)
        unknown = UnknownNames(self.failures_path, self._key())
        attempts = account.attempts if account else unknown.attempts(name)
        now = time.time()
        if refusal := attempts.refusal(now):
            raise SignInError(refusal)
        counted = attempts.failed(now, self.settings)
        if account:
            accounts[name] = replace(account, **asdict(counted))
        else:
            unknown.count(name, counted, now)
        self._write(accounts)  # both files, whichever name it is: the same work either way
        unknown.save(now)
        try:
            _HASHER.verify(account.hash if account else _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            account = None
        if account is None:
            raise SignInError(counted.refusal(now) or WRONG)
        if _HASHER.check_needs_rehash(account.hash):
            account = replace(account, hash=_HASHER.hash(password))
        accounts[name] = replace(account, **asdict(Attempts()))
        self._write(accounts)
        return User(name, account.role, account.id)

    def sign_out(self, name: str) -> None:
        """End every session of ``name`` (all its signed cookies become void)."""
        with self._editing() as accounts:
            if name in accounts:
                accounts[name] = replace(accounts[name], sessions_after=time.time())

    def _key(self) -> bytes:
        return workspace_key(self.key_path)

    def issue_token(self, user: User) -> str:
        """A signed session token for a user who just signed in (``sign_in``'s answer)."""
        payload = f"{user.name}:{user.account_id}:{time.time():.6f}".encode()
        signature = hmac.new(self._key(), payload, hashlib.sha256).hexdigest()
        return f"{base64.urlsafe_b64encode(payload).decode()}.{signature}"

    def verify_token(self, token: str | None) -> User | None:
        """The user a token names, if genuine, unexpired, not signed out, and of this account."""
        if not token or "." not in token or not self.key_path.is_file():
            return None
        encoded, signature = token.rsplit(".", 1)
        try:
            payload = base64.urlsafe_b64decode(encoded.encode())
        except (binascii.Error, ValueError):
            return None
        expected = hmac.new(self._key(), payload, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode(errors="replace")):
            return None
        fields = payload.decode(errors="replace").split(":")
        if len(fields) != 3:  # a token from before account ids
            return None
        name, account_id, issued_text = fields
        issued = _float(issued_text)
        account = self._read().get(name)
        if account is None or account.id != account_id or issued is None:
            return None
        if issued < account.sessions_after:
            return None
        if time.time() - issued > self.settings.session_hours * 3600:
            return None
        return User(name, account.role, account.id)


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def anonymous_refusal(
    workspace: Workspace, host: str, settings: Settings, paths: bool = True
) -> str | None:
    """Why the app must not serve anonymously at ``host``, or None when it may.

    With no account defined, anyone who reaches the app could change the workspace, so
    that is only allowed on a loopback address (or with ``SCENESEEK_ALLOW_ANONYMOUS=1``).
    ``paths=False`` leaves the server's folders out, for a message shown to a browser.
    """
    if settings.allow_anonymous or is_loopback(host):
        return None
    if UserStore(workspace, settings).has_users():
        return None
    folder = str(workspace.root) if paths else "WS"
    where = f" in {folder}" if paths else ""
    served = f"the app would serve {host or 'every address'}" if paths else "this is not loopback"
    return (
        f"no user accounts{where}, and {served}: "
        "anyone who reaches it could upload, delete and retrain. Add an admin first: "
        f"python -m core users add NAME --role admin --workspace {folder} "
        "(in Docker: docker run --rm -it -v sceneseek-ws:/workspace sceneseek python -m core "
        "users add NAME --role admin), or set SCENESEEK_ALLOW_ANONYMOUS=1 on a trusted network"
    )
