"""A local HTTP server with range requests and redirects, for remote-scene tests and benchmarks.

``http.server.SimpleHTTPRequestHandler`` ignores ``Range``, so GDAL would download whole
files from it; this one answers single byte ranges with 206 like an object store. It can
also turn hostile: ``redirect_after=(n, base)`` redirects every request after the n-th to
``base`` + path, and ``requests()`` lists what it was asked, so a test can prove that a
server received nothing.
"""

from __future__ import annotations

import email.utils
import json
import re
import subprocess
import sys
import tempfile
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
_LOGGED = ("Host", "Range", "Authorization")


class RangeHandler(BaseHTTPRequestHandler):
    """Serves files of ``root`` with byte ranges; ``redirects`` maps paths to Location URLs."""

    served = 0
    lock = threading.Lock()

    def __init__(self, *args: Any, root: Path, options: dict[str, Any], **kw: Any) -> None:
        self.root, self.options = root, options
        self.redirects: dict[str, str] = options.get("redirects", {})
        super().__init__(*args, **kw)

    def _count(self) -> int:
        """This request's number; logs it first when the server keeps a log."""
        with RangeHandler.lock:
            RangeHandler.served += 1
            if self.options.get("log"):
                headers = {name: self.headers.get(name, "") for name in _LOGGED}
                with open(self.options["log"], "a") as log:
                    log.write(json.dumps({"method": self.command, "path": self.path, **headers}))
                    log.write("\n")
            return RangeHandler.served

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read their own output."""

    def _headers(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _answer(self, with_body: bool) -> None:
        number = self._count()
        path = self.path.split("?")[0]
        after = self.options.get("redirect_after")
        if after and number > after[0]:
            self._headers(302, {"Location": after[1] + self.path, "Content-Length": "0"})
            return
        if path in self.redirects:
            self._headers(302, {"Location": self.redirects[path], "Content-Length": "0"})
            return
        file = self.root / path.lstrip("/")
        if not file.is_file():
            self._headers(404, {"Content-Length": "0"})
            return
        data = file.read_bytes()
        stat = file.stat()
        headers = {
            "Accept-Ranges": "bytes",
            "ETag": f'"{stat.st_size}-{stat.st_mtime_ns}"',
            "Last-Modified": email.utils.formatdate(stat.st_mtime, usegmt=True),
            "Content-Type": "image/tiff",
        }
        wanted = _RANGE.match(self.headers.get("Range", ""))
        status, body = 200, data
        if wanted and (wanted[1] or wanted[2]):
            size = len(data)
            start, stop = (
                (int(wanted[1]), min(int(wanted[2] or size - 1), size - 1))
                if wanted[1]
                else (max(size - int(wanted[2]), 0), size - 1)
            )
            status, body = 206, data[start : stop + 1]
            headers["Content-Range"] = f"bytes {start}-{stop}/{size}"
        self._headers(status, {**headers, "Content-Length": str(len(body))})
        if with_body:
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(with_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(with_body=False)


class RangeServer:
    """``RangeHandler`` on 127.0.0.1 in its own process; ``stop`` then ``start`` keeps the port.

    A process, not a thread: GDAL calls that hold the GIL (directory listings) would
    otherwise wait for a server that cannot run.
    """

    def __init__(
        self,
        root: Path,
        redirects: dict[str, str] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        redirect_after: tuple[int, str] | None = None,
    ) -> None:
        self.root, self.redirects, self.port = Path(root), redirects or {}, port
        self.host, self.redirect_after = host, redirect_after
        self.log = Path(tempfile.mkdtemp(prefix="range-server-")) / "requests.log"
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> RangeServer:
        options = {
            "host": self.host,
            "redirects": self.redirects,
            "redirect_after": self.redirect_after,
            "log": str(self.log),
        }
        command = [sys.executable, "-m", "bench.range_server", str(self.root), str(self.port)]
        self._process = subprocess.Popen(
            [*command, json.dumps(options)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert self._process.stdout is not None
        self.port = int(self._process.stdout.readline())
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def url(self, name: str) -> str:
        return f"http://{self.host}:{self.port}/{name}"

    def requests(self) -> list[dict[str, str]]:
        """Every request received since the first start: method, path, Host, Range and
        Authorization."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [json.loads(line) for line in lines]


def serve(root: Path, port: int, options: dict[str, Any]) -> None:
    """Serve until killed; print the port first."""
    handler = partial(RangeHandler, root=root, options=options)
    server = ThreadingHTTPServer((options.get("host", "127.0.0.1"), port), handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(Path(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]))
