"""The front before a real Streamlit app: uploads only from signed-in clients, bounded, and
the loopback gate believing ``X-Forwarded-For`` only when the front provably added it.

Every test starts ``python -m core front`` (Streamlit behind it on a private port) and talks
to it with real HTTP and WebSocket requests; Streamlit's own ``/_stcore/metrics`` (asked on
the private port) says how many uploaded bytes it holds.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import psutil
import pytest
from argon2 import PasswordHasher

from bench.browser import CHROMIUM, CHROMIUM_ARGS, ROOT, app_port, free_port, serve_app
from core.front.access import SESSION_COOKIE
from core.store import users
from core.store.users import UserStore
from core.store.workspace import Workspace
from tests.app.conftest import SMALL_SCENE
from tests.app.streamlit_client import Session, session

pytestmark = pytest.mark.slow
METRICS_TTL_S = 5.2  # Streamlit computes its memory metrics at most every 5 s
PROXY_HEADERS = {
    "X-Forwarded-Host": "sceneseek.example.org",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Port": "443",
    "Via": "1.1 proxy",
    "X-Real-Ip": "127.0.0.1",
    "Forwarded": "for=127.0.0.1",
    "True-Client-IP": "127.0.0.1",
    "CF-Connecting-IP": "127.0.0.1",
}


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> UserStore:
    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    return UserStore(Workspace(tmp_path / "workspace"))


def _env(tmp_path: Path, checkpoint: Path, **extra: str) -> dict[str, str]:
    return {
        "SCENESEEK_WORKSPACE": str(tmp_path / "workspace"),
        "SCENESEEK_IMPORT_DIR": str(tmp_path / "import"),
        "SCENESEEK_MODEL": str(checkpoint),
        **extra,
    }


@pytest.fixture
def served(tmp_path: Path, checkpoint: Path, store: UserStore) -> Iterator[tuple[str, str]]:
    """(front URL, Streamlit's private URL) with one account and small upload bounds."""
    store.add("vera", "viewer pass", "viewer")
    env = _env(tmp_path, checkpoint, SCENESEEK_MAX_UPLOAD_MB="1", SCENESEEK_SESSION_UPLOADS="2")
    log = tmp_path / "front.log"
    with serve_app(env, log) as url:
        yield url, f"http://127.0.0.1:{app_port(log)}"


def _held(private: str) -> int:
    """Bytes of uploads Streamlit holds in memory, from its metrics (cached for 5 s)."""
    time.sleep(METRICS_TTL_S)
    metrics = httpx2.get(f"{private}/_stcore/metrics", trust_env=False).text
    found = re.search(r'cache_type="UploadedFileManager"[^}]*\} (\d+)', metrics)
    return int(found.group(1)) if found else 0


def test_unsigned_uploads_never_reach_streamlit(served: tuple[str, str], store: UserStore) -> None:
    url, private = served

    async def check() -> None:
        async with session(url) as browser:  # the WebSocket through the front: the form
            assert "User name" in browser.text and browser.id
            refused = await browser.upload(b"x" * 1000)
            assert refused.status_code == 403 and "sign in" in refused.text
            forged = await browser.upload(b"x" * 1000, cookies={SESSION_COOKIE: "vera.0000"})
            assert forged.status_code == 403
            assert _held(private) == 0
            straight = Session(private, browser.id, browser.text, browser.xsrf)
            assert (await straight.upload(b"x" * 1000, file_id="direct")).status_code == 204
            assert _held(private) > 0  # Streamlit would have stored it: the front refused it

    asyncio.run(check())


def test_signed_in_uploads_pass_within_the_bounds(
    served: tuple[str, str], store: UserStore
) -> None:
    url, private = served
    signed = {SESSION_COOKIE: store.issue_token(store.sign_in("vera", "viewer pass"))}

    async def check() -> None:
        async with session(url) as browser:
            assert (await browser.upload(b"x" * 1000, signed, "f1")).status_code == 204
            too_big = await browser.upload(b"x" * (2 * 1024 * 1024), signed, "big")
            assert too_big.status_code == 413 and "SCENESEEK_MAX_UPLOAD_MB" in too_big.text
            assert (await browser.upload(b"y" * 500, signed, "f2")).status_code == 204
            third = await browser.upload(b"z" * 10, signed, "f3")
            assert third.status_code == 413 and "SCENESEEK_SESSION_UPLOADS" in third.text
            assert _held(private) == 1500
            assert await browser.delete("f1", signed) == 204  # gives its place back
            assert (await browser.upload(b"z" * 10, signed, "f3")).status_code == 204
            assert _held(private) == 510

    asyncio.run(check())


def test_the_gate_believes_forwarded_for_only_from_the_front(
    tmp_path: Path, checkpoint: Path
) -> None:
    log = tmp_path / "front.log"
    with serve_app(_env(tmp_path, checkpoint), log) as url:
        private = f"http://127.0.0.1:{app_port(log)}"

        async def drawn(at: str, headers: dict[str, str] | None = None) -> str:
            async with session(at, headers) as browser:
                return browser.text

        async def check() -> None:
            served = await drawn(url)  # loopback through the front: served anonymously
            assert "Library" in served and "Not available" not in served
            claimed = await drawn(url, {"X-Forwarded-For": "127.0.0.1"})  # a proxy before it
            assert "Not available" in claimed
            forged = {"X-Forwarded-For": "127.0.0.1", "X-SceneSeek-Front": "a guess"}
            assert "Not available" in await drawn(private, forged)
            for name, value in PROXY_HEADERS.items():
                assert "Not available" in await drawn(private, {name: value}), name

        asyncio.run(check())


def test_a_browser_signs_in_and_uploads_through_the_front(
    tmp_path: Path, checkpoint: Path, store: UserStore
) -> None:
    from playwright.sync_api import expect, sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("install Chromium: apt-get install -y chromium")
    store.add("ed", "editor pass", "editor")
    with (
        serve_app(_env(tmp_path, checkpoint), tmp_path / "front.log") as url,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        try:
            page.goto(url)
            page.get_by_label("User name").fill("ed")
            page.get_by_role("textbox", name="Password").fill("editor pass")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Library")).to_be_visible(timeout=60_000)
            page.locator("[data-testid=stFileUploaderDropzoneInput]").first.set_input_files(
                SMALL_SCENE
            )
            # the app saw the upload: the name field offers the file's name (one element,
            # however many the rerun is still swapping)
            expect(page.get_by_placeholder(SMALL_SCENE.stem)).to_be_visible(timeout=30_000)
        finally:
            page.screenshot(path=tmp_path / "front.png")
            browser.close()


def _healthy(url: str) -> bool:
    try:
        return httpx2.get(f"{url}/_stcore/health", trust_env=False).status_code == 200
    except httpx2.TransportError:
        return False


def test_ctrl_c_stops_the_front_and_streamlit(tmp_path: Path, checkpoint: Path) -> None:
    port, log = free_port(), tmp_path / "front.log"
    command = [sys.executable, "-m", "core", "front", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        front = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **_env(tmp_path, checkpoint)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like a terminal's foreground job
        )
    try:
        deadline = time.time() + 60
        while not _healthy(f"http://127.0.0.1:{port}"):
            assert time.time() < deadline and front.poll() is None, log.read_text()
            time.sleep(0.5)
        streamlit = psutil.Process(front.pid).children()
        assert len(streamlit) == 1
        os.killpg(front.pid, signal.SIGINT)  # what Ctrl-C sends
        assert front.wait(timeout=40) == 0, log.read_text()
        psutil.wait_procs(streamlit, timeout=10)
        assert not streamlit[0].is_running()
    finally:
        if front.poll() is None:
            os.killpg(front.pid, signal.SIGKILL)
