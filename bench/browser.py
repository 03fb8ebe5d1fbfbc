"""The real app in a subprocess and headless Chromium, for the end-to-end test and bench/.

``serve_app`` runs ``streamlit run app/Home.py`` on a free local port against a given
workspace; ``map_frame`` finds the streamlit-folium iframe once it shows numbered hits.
"""

from __future__ import annotations

import os
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
    """The app's URL while a Streamlit server runs it with ``env`` added to the environment.

    Raises:
        AssertionError: with the server log when it does not answer within ``startup_s``.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app/Home.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
    ]
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
        server.terminate()
        server.wait(timeout=20)


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


def watch_foreign(page, url: str) -> list[str]:  # noqa: ANN001 - playwright page
    """A list that fills with every request ``page`` makes to a host other than the app's."""
    app_host = urlparse(url).netloc
    foreign: list[str] = []

    def watch(request) -> None:  # noqa: ANN001 - playwright request
        parsed = urlparse(request.url)
        if parsed.scheme in ("http", "https", "ws", "wss") and parsed.netloc != app_host:
            foreign.append(request.url)

    page.on("request", watch)
    return foreign
