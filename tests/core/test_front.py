"""core/front without a server: whom the gate believes, what the front forwards, the bounds.

The end-to-end half (a real Streamlit behind a running front) is tests/app/test_front.py.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from core.cli.main import main
from core.front.access import SESSION_COOKIE, is_guarded, refusal
from core.front.origin import FRONT_HEADER, PROXIED, served_host, upstream_headers
from core.front.quota import MIB, UploadQuota
from core.settings import get_settings
from core.store import users
from core.store.users import UserStore, anonymous_refusal
from core.store.workspace import Workspace

TOKEN = "per-run-token"


@pytest.mark.parametrize(
    "header",
    [
        "X-Forwarded-For",
        "X-Forwarded-Host",
        "X-Forwarded-Proto",
        "X-Forwarded-Port",
        "x-forwarded-server",
        "Via",
        "X-Real-Ip",
        "Forwarded",
        "True-Client-IP",
        "CF-Connecting-IP",
        FRONT_HEADER,
    ],
)
def test_any_proxy_header_makes_a_loopback_request_remote(header: str, tmp_path: Path) -> None:
    host = served_host({header: "127.0.0.1"}, None, "127.0.0.1", TOKEN)
    assert host == PROXIED
    assert anonymous_refusal(Workspace(tmp_path), host, get_settings())
    assert served_host({"User-Agent": "x"}, None, "127.0.0.1", TOKEN) == "127.0.0.1"


def test_forwarded_for_is_believed_only_with_the_fronts_proof() -> None:
    def via_front(client_headers: list[tuple[str, str]], peer: str) -> dict[str, str]:
        return dict(upstream_headers(client_headers, peer, TOKEN))

    assert served_host(via_front([], "127.0.0.1"), None, "127.0.0.1", TOKEN) == "127.0.0.1"
    assert served_host(via_front([], "203.0.113.5"), None, "127.0.0.1", TOKEN) == "203.0.113.5"
    claims = via_front([("X-Forwarded-For", "127.0.0.1")], "203.0.113.5")
    assert claims["X-Forwarded-For"] == "127.0.0.1, 203.0.113.5"
    assert served_host(claims, None, "127.0.0.1", TOKEN) == PROXIED
    behind_proxy = via_front([("X-Forwarded-Proto", "https")], "127.0.0.1")
    assert served_host(behind_proxy, None, "127.0.0.1", TOKEN) == PROXIED
    assert served_host(via_front([], "127.0.0.1"), None, "127.0.0.1", "another run") == PROXIED
    assert served_host(via_front([], "127.0.0.1"), None, "127.0.0.1", "") == PROXIED


def test_the_front_drops_a_clients_proof_and_hop_by_hop_headers() -> None:
    sent = upstream_headers(
        [(FRONT_HEADER, "guess"), ("Connection", "keep-alive"), ("Cookie", "a=b")], "::1", TOKEN
    )
    assert sent == [("Cookie", "a=b"), ("X-Forwarded-For", "::1"), (FRONT_HEADER, TOKEN)]


def test_uploads_and_media_are_guarded_however_the_path_is_spelled() -> None:
    for path in ("/media/a.png", "//media/a.png", "/_stcore//upload_file/s/f", "/media"):
        assert is_guarded(path), path
    for path in ("/", "/_stcore/health", "/_stcore/stream", "/app/static/leaflet.js"):
        assert not is_guarded(path), path


def test_only_signed_in_or_local_anonymous_clients_may_upload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    store, settings = UserStore(Workspace(tmp_path)), get_settings()
    assert refusal(store, settings, {}, {}, "127.0.0.1") is None  # no accounts: this machine
    assert refusal(store, settings, {}, {}, "203.0.113.5")
    assert refusal(store, settings, {}, {"Via": "1.1 nginx"}, "127.0.0.1")
    store.add("vera", "viewer pass", "viewer")
    token = store.issue_token(store.sign_in("vera", "viewer pass"))
    assert refusal(store, settings, {}, {}, "127.0.0.1") == "sign in first"
    assert refusal(store, settings, {SESSION_COOKIE: token + "0"}, {}, "127.0.0.1")
    assert refusal(store, settings, {SESSION_COOKIE: token}, {}, "203.0.113.5") is None
    store.sign_out("vera")
    assert refusal(store, settings, {SESSION_COOKIE: token}, {}, "203.0.113.5")


def test_a_session_is_bounded_in_size_files_and_bytes() -> None:
    quota = UploadQuota(file_mb=2, files=2, session_mb=3)
    assert "SCENESEEK_MAX_UPLOAD_MB" in quota.reserve("s", "big", 3 * MIB)
    assert quota.reserve("s", "a", 2 * MIB) is None
    assert "SCENESEEK_SESSION_UPLOAD_MB" in quota.reserve("s", "b", 2 * MIB)
    assert quota.reserve("s", "b", MIB) is None
    assert "SCENESEEK_SESSION_UPLOADS" in quota.reserve("s", "c", 10)
    assert quota.reserve("other", "c", 10) is None  # another session has its own allowance
    assert quota.reserve("s", "a", MIB) is None  # the same file again replaces its booking
    quota.release("s", "a")
    assert quota.reserve("s", "c", 10) is None
    quota.release("s", "b")
    quota.release("s", "c")
    assert "s" not in quota.held


def _front(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["front", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_front_refuses_to_start_anonymous_on_a_public_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _front(capsys, "--host", "0.0.0.0", "--workspace", str(tmp_path))
    assert status == 2 and err.startswith("error: no user accounts"), err
    assert len(err.splitlines()) == 1 and "SceneSeek on" not in out


def test_the_front_names_a_busy_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        status, _, err = _front(
            capsys, "--host", "127.0.0.1", "--port", port, "--workspace", str(tmp_path)
        )
    assert status == 2 and err.startswith(f"error: cannot listen on 127.0.0.1:{port}: "), err
    assert len(err.splitlines()) == 1
