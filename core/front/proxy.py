"""The front's ASGI app: guard uploads and media, then pass HTTP and the WebSocket through.

Refusals happen before a byte of the body is read or Streamlit is contacted: 403 without a
valid session, 411 for an upload without ``Content-Length``, 413 over the size or session
bounds. Streamlit sees every request with the client's ``X-Forwarded-For`` hop and the
front's proof header added (``origin.upstream_headers``).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

import httpx2
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from core.front.access import is_guarded, refusal
from core.front.origin import HOP_BY_HOP, upstream_headers
from core.front.quota import UploadQuota
from core.settings import Settings
from core.store.users import UserStore

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
UPLOAD = re.compile(r"/_stcore/upload_file/([^/]+)/([^/]+)")
HOST = re.compile(r"[A-Za-z0-9.\-]+(:\d+)?|\[[0-9A-Fa-f:.]+\](:\d+)?")
WS_HANDSHAKE = ("host", "origin", "sec-websocket-key", "sec-websocket-version")
WS_NEGOTIATED = ("sec-websocket-protocol", "sec-websocket-extensions")


@dataclass
class Upstream:
    """Where Streamlit listens, and the token that proves a request came through the front."""

    port: int
    token: str

    @property
    def base(self) -> str:
        """The upstream's HTTP base URL."""
        return f"http://127.0.0.1:{self.port}"


def _peer(scope: dict) -> str:
    client = scope.get("client")
    return client[0] if client else ""


def _pairs(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]


class Front:
    """The handlers, around one HTTP client to Streamlit and the upload bookings."""

    def __init__(self, upstream: Upstream, store: UserStore, settings: Settings) -> None:
        self.upstream = upstream
        self.store = store
        self.settings = settings
        self.quota = UploadQuota(
            settings.max_upload_mb, settings.session_uploads, settings.session_upload_mb
        )
        self.client: httpx2.AsyncClient | None = None

    @asynccontextmanager
    async def lifespan(self, _: Starlette) -> AsyncIterator[None]:
        """One connection pool to Streamlit for the front's lifetime."""
        timeout = httpx2.Timeout(300.0, connect=10.0)
        async with httpx2.AsyncClient(timeout=timeout, trust_env=False) as client:
            self.client = client
            yield

    def app(self) -> Starlette:
        """The ASGI app uvicorn serves."""
        return Starlette(
            routes=[
                WebSocketRoute("/_stcore/stream", self.stream),
                Route("/{path:path}", self.http, methods=METHODS),
            ],
            lifespan=self.lifespan,
        )

    def _refused(self, request: Request) -> Response | None:
        why = refusal(
            self.store, self.settings, request.cookies, request.headers, _peer(request.scope)
        )
        return PlainTextResponse(why, status_code=403) if why else None

    async def http(self, request: Request) -> Response:
        """Pass a request on, after the guard and the upload bounds."""
        path = request.url.path
        if is_guarded(path) and (refused := self._refused(request)):
            return refused
        upload = UPLOAD.fullmatch(path)
        if upload is None:
            return await self._forward(request)
        if request.method == "PUT":
            return await self._upload(request, *upload.groups())
        response = await self._forward(request)
        if request.method == "DELETE" and response.status_code < 300:
            self.quota.release(*upload.groups())
        return response

    async def _upload(self, request: Request, session: str, file_id: str) -> Response:
        """Book the declared size first; the server reads no more than it (h11 framing)."""
        length = request.headers.get("content-length", "")
        if not length.isdigit() or "transfer-encoding" in request.headers:
            return PlainTextResponse("an upload needs a Content-Length", status_code=411)
        if why := self.quota.reserve(session, file_id, int(length)):
            return PlainTextResponse(why, status_code=413)
        try:
            response = await self._forward(request)
        except BaseException:
            self.quota.release(session, file_id)
            raise
        if response.status_code >= 300:
            self.quota.release(session, file_id)
        return response

    async def _forward(self, request: Request) -> Response:
        assert self.client is not None, "the front's lifespan did not start"
        headers = upstream_headers(
            _pairs(request.headers.raw), _peer(request.scope), self.upstream.token
        )
        has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
        target = self.upstream.base + request.scope["raw_path"].decode("latin-1")
        if request.url.query:
            target += f"?{request.url.query}"
        outgoing = self.client.build_request(
            request.method,
            target,
            headers=headers,
            content=request.stream() if has_body else None,
        )
        try:
            answer = await self.client.send(outgoing, stream=True)
        except httpx2.TransportError:
            return PlainTextResponse("the app is not answering (still starting?)", 502)
        response = StreamingResponse(
            answer.aiter_raw(),
            status_code=answer.status_code,
            background=BackgroundTask(answer.aclose),
        )
        response.raw_headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in answer.headers.multi_items()
            if k.lower() not in HOP_BY_HOP
        ]
        return response

    async def stream(self, websocket: WebSocket) -> None:
        """Join the browser's WebSocket to one opened to Streamlit with the same handshake."""
        host = websocket.headers.get("host", "")
        if not HOST.fullmatch(host):
            await websocket.close(code=1008)
            return
        headers = upstream_headers(
            _pairs(websocket.headers.raw),
            _peer(websocket.scope),
            self.upstream.token,
            skip=WS_HANDSHAKE + WS_NEGOTIATED,
        )
        query = websocket.scope.get("query_string", b"").decode("latin-1")
        try:
            upstream = await connect(
                f"ws://{host}/_stcore/stream" + (f"?{query}" if query else ""),
                host="127.0.0.1",
                port=self.upstream.port,
                origin=websocket.headers.get("origin"),
                subprotocols=websocket.scope.get("subprotocols") or None,
                additional_headers=headers,
                user_agent_header=None,
                compression=None,
                proxy=None,
                max_size=None,
                open_timeout=10,
                ping_interval=None,  # Streamlit pings its clients; a busy app must not look dead
            )
        except (OSError, InvalidHandshake, TimeoutError):
            await websocket.close(code=1011)
            return
        async with upstream:
            await websocket.accept(subprotocol=upstream.subprotocol)
            await _join(websocket, upstream)


async def _join(browser: WebSocket, app: ClientConnection) -> None:
    """Copy messages both ways until either side closes, then close the other."""

    async def to_app() -> None:
        while True:
            message = await browser.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            await app.send(data if data is not None else message.get("text") or "")

    async def to_browser() -> None:
        async for data in app:
            if isinstance(data, bytes):
                await browser.send_bytes(data)
            else:
                await browser.send_text(data)

    tasks = [asyncio.create_task(to_app()), asyncio.create_task(to_browser())]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with suppress(asyncio.CancelledError, ConnectionClosed, WebSocketDisconnect, RuntimeError):
            await task
    await app.close()
    with suppress(RuntimeError, WebSocketDisconnect):
        await browser.close()
