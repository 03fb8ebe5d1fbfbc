"""Start Streamlit on a private loopback port and the front on the public one; stop both.

The front binds its public socket first, so a busy port fails before anything starts. It
hands Streamlit a fresh random token (``SCENESEEK_FRONT_TOKEN``), which the app accepts as
proof that a request came through the front. Ctrl-C or SIGTERM stops the front and then
Streamlit; if Streamlit stops on its own, the front stops too and says so.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

from core.errors import ServeError
from core.front.proxy import Front, Upstream
from core.settings import PROJECT_ROOT, Settings
from core.store.users import UserStore
from core.store.workspace import Workspace

STOP_WAIT_S = 15.0


def listen(host: str, port: int) -> socket.socket:
    """The front's public socket, bound now.

    Raises:
        ServeError: when the address is taken or not this machine's.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, reuse_port=False)
    except OSError as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(False)
    return sock


def _private_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_app(
    ws: Workspace, settings: Settings, upstream: Upstream, public: str
) -> subprocess.Popen:
    """``streamlit run app/Home.py`` on the private port, told the token and the public URL."""
    host, _, port = public.rpartition(":")
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(Path("app") / "Home.py"),
        "--server.address=127.0.0.1",
        f"--server.port={upstream.port}",
        "--server.headless=true",
        f"--server.maxUploadSize={settings.max_upload_mb}",
        f"--browser.serverAddress={host}",
        f"--browser.serverPort={port}",
    ]
    env = {
        **os.environ,
        "SCENESEEK_WORKSPACE": str(ws.root),
        "SCENESEEK_FRONT_TOKEN": upstream.token,
    }
    return subprocess.Popen(command, cwd=PROJECT_ROOT, env=env)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(ws: Workspace, settings: Settings, host: str, port: int) -> int:
    """Run the front and the app until Ctrl-C / SIGTERM; 0 then.

    Raises:
        ServeError: when the port is taken, or the app or the front stops on its own.
    """
    import uvicorn

    sock = listen(host, port)
    upstream = Upstream(_private_port(), secrets.token_urlsafe(32))
    shown = "localhost" if host in ("0.0.0.0", "::", "") else host
    public = f"{shown}:{sock.getsockname()[1]}"
    front = Front(upstream, UserStore(ws, settings), settings)
    config = uvicorn.Config(
        front.app(),
        proxy_headers=False,  # the front is the first hop: its peer is the client
        ws="websockets-sansio",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,  # Streamlit's answers carry their own
    )
    server = uvicorn.Server(config)
    # Off the main thread uvicorn leaves signals alone, so Ctrl-C and SIGTERM reach us here.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    app = start_app(ws, settings, upstream, public)
    print(f"SceneSeek on http://{public} (app: 127.0.0.1:{upstream.port}, front only)", flush=True)
    thread.start()
    interrupted = False
    try:
        while app.poll() is None and thread.is_alive():
            thread.join(timeout=0.5)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.should_exit = True
        thread.join(timeout=STOP_WAIT_S)
        status = app.poll()
        _stop(app)
        sock.close()
    if interrupted:
        return 0
    if status is not None:
        raise ServeError(f"the app (Streamlit) stopped with status {status}; see its log above")
    raise ServeError("the front stopped on its own; see its log above")


def _stop(app: subprocess.Popen) -> None:
    if app.poll() is None:
        app.terminate()
        try:
            app.wait(timeout=STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()
