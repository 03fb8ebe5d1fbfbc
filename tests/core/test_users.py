"""core/store/users.py and ``python -m core users`` / ``serve-check``: accounts, lockout, tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
from dataclasses import replace

import pytest
from argon2 import PasswordHasher

from core.errors import AccountError, ForbiddenError, SignInError
from core.settings import get_settings
from core.store import lockout, users
from core.store.users import ANONYMOUS, User, UserStore, anonymous_refusal, is_loopback
from core.store.workspace import Workspace
from tests.app.conftest import ROOT
from tests.core.full_disk import full_disk


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The production cost (64 MiB, 3 passes) is not what these tests are about."""
    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(users.time, "time", clock)
    return clock


def test_accounts_are_stored_hashed_and_private(tmp_path) -> None:
    store = UserStore(Workspace(tmp_path))
    assert not store.has_users()
    store.add("alice", "correct horse", "editor")
    text = store.path.read_text()
    assert "correct horse" not in text and "$argon2id$" in text
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.sign_in("alice", "correct horse") == User("alice", "editor")
    with pytest.raises(AccountError, match="exists"):
        store.add("alice", "another one", "viewer")
    for name, password, role in (("bob\n", "long enough", "viewer"), ("bob", "short", "viewer")):
        with pytest.raises(AccountError):
            store.add(name, password, role)
    with pytest.raises(AccountError, match="role"):
        store.add("bob", "long enough", "root")


def test_wrong_passwords_lock_the_name_for_30_s_then_twice_as_long(tmp_path, clock) -> None:
    store = UserStore(Workspace(tmp_path))
    store.add("alice", "correct horse", "viewer")
    for _ in range(4):
        with pytest.raises(SignInError, match="wrong user name or password"):
            store.sign_in("alice", "guess")
    with pytest.raises(SignInError, match="try again in 30 s"):
        store.sign_in("alice", "guess")
    reloaded = UserStore(Workspace(tmp_path))  # persisted: a reload does not reset it
    with pytest.raises(SignInError, match="try again in 30 s"):
        reloaded.sign_in("alice", "correct horse")  # even the right password waits
    clock.now += 31
    for _ in range(4):
        with pytest.raises(SignInError, match="wrong"):
            reloaded.sign_in("alice", "guess")
    with pytest.raises(SignInError, match="try again in 60 s"):
        reloaded.sign_in("alice", "guess")
    clock.now += 61
    assert reloaded.sign_in("alice", "correct horse").name == "alice"
    assert reloaded.accounts()[0].lockouts == 0
    with pytest.raises(SignInError, match="wrong user name or password"):
        reloaded.sign_in("mallory", "correct horse")  # unknown names read the same


def test_tokens_expire_and_end_with_sign_out_password_or_removal(tmp_path, clock) -> None:
    store = UserStore(Workspace(tmp_path))
    store.add("alice", "correct horse", "admin")
    alice = store.sign_in("alice", "correct horse")
    token = store.issue_token(alice)
    assert store.verify_token(token) == alice
    clock.now += 12 * 3600 + 1
    assert store.verify_token(token) is None  # 12 h (SCENESEEK_SESSION_HOURS)
    token = store.issue_token(alice)
    payload, signature = token.rsplit(".", 1)
    forged = base64.urlsafe_b64encode(b"bob:" + base64.urlsafe_b64decode(payload)[6:]).decode()
    for bad in (None, "", "garbage", f"{forged}.{signature}", token[:-2] + "00", token + "é"):
        assert store.verify_token(bad) is None
    clock.now += 1
    store.sign_out("alice")
    assert store.verify_token(token) is None
    clock.now += 1
    token = store.issue_token(alice)
    clock.now += 1
    store.set_password("alice", "battery staple")
    assert store.verify_token(token) is None
    clock.now += 1
    token = store.issue_token(store.sign_in("alice", "battery staple"))
    store.remove("alice")
    assert store.verify_token(token) is None


def test_a_recreated_account_does_not_honour_the_old_accounts_tokens(tmp_path, clock) -> None:
    store = UserStore(Workspace(tmp_path))
    store.add("bob", "bob's password", "admin")
    old = store.issue_token(store.sign_in("bob", "bob's password"))
    store.remove("bob")
    store.add("bob", "bob's password", "viewer")  # same name, same second, same password
    assert store.verify_token(old) is None
    new = store.issue_token(store.sign_in("bob", "bob's password"))
    assert store.verify_token(new) == User("bob", "viewer")


def test_accounts_from_before_ids_get_one_once_and_their_old_tokens_end(tmp_path, clock) -> None:
    store = UserStore(Workspace(tmp_path))
    old_account = {"name": "olga", "role": "editor", "created": 1.0, "failures": 2}
    old_account["hash"] = users._HASHER.hash("olga's password")
    store.path.write_text(json.dumps({"users": [old_account]}))
    payload = f"olga:{clock.now:.6f}".encode()  # a token in the format before ids
    signature = hmac.new(store._key(), payload, hashlib.sha256).hexdigest()
    assert store.verify_token(f"{base64.urlsafe_b64encode(payload).decode()}.{signature}") is None
    assert [a.name for a in store.accounts()] == ["olga"]  # `users list` works as before
    given = json.loads(store.path.read_text())["users"][0]
    assert len(given["id"]) == 32 and given["failures"] == 2  # migrated on read, nothing lost
    olga = store.sign_in("olga", "olga's password")
    token = store.issue_token(olga)
    assert UserStore(Workspace(tmp_path)).verify_token(token) == User("olga", "editor")
    assert json.loads(store.path.read_text())["users"][0]["id"] == given["id"]


def _answers(store: UserStore, name: str, password: str, tries: int) -> list[str]:
    answers = []
    for _ in range(tries):
        try:
            store.sign_in(name, password)
            answers.append("signed in")
        except (SignInError, OSError) as exc:  # OSError: what a failed write raised before
            answers.append(str(exc))
    return answers


def test_an_unknown_name_is_locked_on_the_fifth_try_like_a_real_one(tmp_path, clock) -> None:
    store = UserStore(Workspace(tmp_path))
    store.add("alice", "correct horse", "viewer")
    accounts_before = store.path.read_bytes()
    wrong, locked = "wrong user name or password", "too many failed sign-ins for this name"
    expected = [wrong] * 4 + [f"{locked}; try again in 30 s"] * 2
    mallory = _answers(store, "mallory", "guess", 6)
    assert store.path.read_bytes() == accounts_before  # unknown names stay out of users.json
    assert _answers(store, "alice", "guess", 6) == mallory == expected
    clock.now += 31
    expected = [wrong] * 4 + [f"{locked}; try again in 60 s"]
    assert (
        _answers(store, "alice", "guess", 5) == _answers(store, "mallory", "guess", 5) == expected
    )
    assert _answers(store, "mallory", "guess", 1) == [f"{locked}; try again in 60 s"]
    failures = tmp_path / "signin_failures.json"
    assert stat.S_IMODE(failures.stat().st_mode) == 0o600
    assert "mallory" not in failures.read_text()  # names are kept as keyed hashes only


def test_failures_of_unknown_names_stay_bounded(tmp_path, clock, monkeypatch) -> None:
    monkeypatch.setattr(lockout, "MAX_UNKNOWN_NAMES", 20)
    store = UserStore(Workspace(tmp_path))
    store.add("alice", "correct horse", "viewer")
    accounts_before = store.path.read_bytes()
    _answers(store, "mallory", "guess", 5)  # locked: kept while others come and go
    for i in range(60):
        clock.now += 0.1
        _answers(store, f"guesser{i}", "guess", 1)
    stored = json.loads((tmp_path / "signin_failures.json").read_text())["names"]
    assert len(stored) == 20
    assert "too many failed sign-ins" in _answers(store, "mallory", "guess", 1)[0]
    assert store.path.read_bytes() == accounts_before


def test_sign_in_is_refused_when_attempts_cannot_be_recorded(tmp_path) -> None:
    store = UserStore(Workspace(tmp_path))
    store.add("alice", "correct horse", "viewer")
    _answers(store, "mallory", "guess", 1)  # the key and the failure file exist already
    accounts_before = store.path.read_bytes()
    with full_disk():
        alice = _answers(store, "alice", "guess", 20) + _answers(store, "alice", "correct horse", 1)
        mallory = _answers(store, "mallory", "guess", 6)
        nobody = _answers(UserStore(Workspace(tmp_path / "fresh")), "nobody", "guess", 1)
    assert alice + mallory + nobody == [lockout.UNAVAILABLE] * 28
    assert lockout.UNAVAILABLE == (
        "sign-in is unavailable: the server cannot record sign-in attempts (disk full?)"
    )
    assert store.path.read_bytes() == accounts_before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert store.sign_in("alice", "correct horse") == User("alice", "viewer")  # room again


def test_roles_allow_what_the_issue_lists() -> None:
    viewer, editor, admin = (User("x", role) for role in ("viewer", "editor", "admin"))
    assert viewer.can("search") and viewer.can("mark") and viewer.can("export")
    assert not viewer.can("add_scene") and not viewer.can("caption")
    assert editor.can("delete_scene") and editor.can("finetune") and editor.can("caption")
    assert not editor.can("switch_model") and not editor.can("cancel_any_job")
    assert admin.can("switch_model") and admin.can("cancel_any_job")
    with pytest.raises(ForbiddenError, match="needs the editor role"):
        viewer.require("add_scene")
    assert ANONYMOUS.can("switch_model")


def test_anonymous_serving_only_on_loopback(tmp_path) -> None:
    ws = Workspace(tmp_path / "ws")
    settings = get_settings()
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("10.0.0.1")
    assert anonymous_refusal(ws, "127.0.0.1", settings) is None
    assert "users add NAME --role admin" in anonymous_refusal(ws, "0.0.0.0", settings)
    assert anonymous_refusal(ws, "0.0.0.0", replace(settings, allow_anonymous=True)) is None
    UserStore(ws).add("alice", "correct horse", "admin")
    assert anonymous_refusal(ws, "0.0.0.0", settings) is None


def _core(*args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_cli_adds_lists_and_removes_users_and_checks_serving(tmp_path) -> None:
    ws = str(tmp_path / "ws")
    no_users = _core("serve-check", "--workspace", ws, env={"SCENESEEK_HOST": "0.0.0.0"})
    assert no_users.returncode == 2 and no_users.stderr.startswith("error: no user accounts")
    assert "python -m core users add" in no_users.stderr
    assert _core("serve-check", "--workspace", ws, "--host", "127.0.0.1").returncode == 0
    added = _core(
        "users", "add", "alice", "--role", "editor", "--workspace", ws, stdin="s3cret pw\n"
    )
    assert added.returncode == 0, added.stderr
    listing = _core("users", "list", "--workspace", ws).stdout
    assert "alice" in listing and "editor" in listing and "s3cret" not in listing
    assert _core("serve-check", "--workspace", ws, "--host", "0.0.0.0").returncode == 0
    stored = json.loads((tmp_path / "ws" / "users.json").read_text())["users"][0]
    assert stored["name"] == "alice" and "s3cret" not in json.dumps(stored)
    again = _core("users", "add", "alice", "--workspace", ws, stdin="whatever pw\n")
    assert again.returncode == 2 and again.stderr.startswith("error: user 'alice' exists")
    assert _core("users", "remove", "alice", "--workspace", ws).returncode == 0
    missing = _core("users", "list", "--workspace", str(tmp_path / "typo"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: no workspace")
    assert not (tmp_path / "typo").exists()
