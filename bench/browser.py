"""The real app in a subprocess and headless Chromium, for the end-to-end test and bench/.

``serve_app`` runs the app the way ``make run`` does, ``python -m core front`` (Streamlit behind
its front), on a free local port against a given workspace; ``watched_page`` opens it in Chromium and lists every request that leaves it;
``map_frame`` finds the streamlit-folium iframe once it shows numbered hits.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_app(env: dict[str, str], log: Path, startup_s: float = 60) -> Iterator[str]:
    """The front's URL while it and the app run with ``env`` added to the environment.

    The log (front and Streamlit) names the app's private port: see ``app_port``.

    Raises:
        AssertionError: with the server log when it does not answer within ``startup_s``.
    """
    port = free_port()
    command = [sys.executable, "-m", "core", "front", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as out:
        server = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + startup_s
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()  # the front stops Streamlit, then itself
        server.wait(timeout=40)


def app_port(log: Path) -> int:
    """The private port the front started Streamlit on, from the front's first line."""
    found = re.search(r"\(app: 127\.0\.0\.1:(\d+)", log.read_text())
    assert found, log.read_text()
    return int(found.group(1))


@contextmanager
def watched_page(url: str, failure_shot: Path) -> Iterator[tuple[object, list[str]]]:
    """A 1500 x 1100 Chromium page for the app at ``url``, and the requests sent elsewhere.

    The list fills while the block runs (the app must work offline, so it should stay
    empty); when the block raises, the page is saved to ``failure_shot`` first.
    """
    from playwright.sync_api import sync_playwright

    app_host = urlparse(url).netloc
    foreign: list[str] = []

    def watch(request) -> None:  # noqa: ANN001 - playwright request
        parsed = urlparse(request.url)
        if parsed.scheme in ("http", "https", "ws", "wss") and parsed.netloc != app_host:
            foreign.append(request.url)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100}, accept_downloads=True)
        page.on("request", watch)
        try:
            yield page, foreign
        except Exception:
            page.screenshot(path=failure_shot)
            raise
        finally:
            browser.close()


def map_frame(page, timeout_s: float = 60):  # noqa: ANN001, ANN201 - playwright types
    """The streamlit-folium iframe once it shows numbered hit labels."""
    from playwright.sync_api import Error

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for frame in page.frames:
            try:
                if "st_folium" in frame.url and frame.locator(".ss-rank").count() > 0:
                    return frame
            except Error:  # the iframe was replaced while we looked: look again
                continue
        page.wait_for_timeout(100)
    raise AssertionError("no numbered hits appeared on the map")
