"""A Streamlit client without a browser: one WebSocket session, its first run's text, uploads.

Speaks Streamlit's own protocol (BackMsg / ForwardMsg protobufs) over a real WebSocket, so a
test can hold a live session (uploads need one), send its own headers and read what the app
drew, through the front or straight to Streamlit.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx2
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import connect

XSRF = "_streamlit_xsrf"


@dataclass
class Session:
    """A live Streamlit session: its id, what its first run drew, and the xsrf pair."""

    url: str
    id: str
    text: str
    xsrf: str

    async def upload(
        self, data: bytes, cookies: dict[str, str] | None = None, file_id: str = "f1"
    ) -> httpx2.Response:
        """PUT one file the way the browser's uploader does."""
        async with self._client(cookies) as client:
            return await client.put(
                f"{self.url}/_stcore/upload_file/{self.id}/{file_id}",
                files={"file": ("scene.tif", data, "image/tiff")},
            )

    async def delete(self, file_id: str, cookies: dict[str, str] | None = None) -> int:
        """DELETE an uploaded file, as the uploader's remove button does."""
        async with self._client(cookies) as client:
            answer = await client.delete(f"{self.url}/_stcore/upload_file/{self.id}/{file_id}")
            return answer.status_code

    def _client(self, cookies: dict[str, str] | None) -> httpx2.AsyncClient:
        """A client that sends the xsrf pair Streamlit checks on uploads, and ``cookies``."""
        return httpx2.AsyncClient(
            trust_env=False,
            timeout=60,
            headers={"X-Xsrftoken": self.xsrf},
            cookies={XSRF: self.xsrf, **(cookies or {})},
        )


@asynccontextmanager
async def session(
    url: str, headers: dict[str, str] | None = None, timeout_s: float = 90
) -> AsyncIterator[Session]:
    """A session at ``url`` (sending ``headers`` on the WebSocket), open for the block."""
    async with httpx2.AsyncClient(trust_env=False, timeout=30) as client:
        page = await client.get(f"{url}/_stcore/health")  # sets the xsrf cookie, like the browser
    xsrf = page.cookies.get(XSRF, "")
    assert xsrf, f"no {XSRF} cookie from {url}"
    async with connect(
        re.sub("^http", "ws", url) + "/_stcore/stream",
        subprotocols=["streamlit", xsrf],
        origin=url,
        additional_headers={**(headers or {}), "Cookie": f"{XSRF}={xsrf}"},
        max_size=None,
        proxy=None,
    ) as ws:
        rerun = BackMsg()
        rerun.rerun_script.query_string = ""
        await ws.send(rerun.SerializeToString())
        session_id, drawn = "", []
        async with asyncio.timeout(timeout_s):
            while True:
                message = ForwardMsg()
                message.ParseFromString(await ws.recv())
                kind = message.WhichOneof("type")
                if kind == "new_session":
                    session_id = message.new_session.initialize.session_id
                elif kind == "delta":
                    drawn.append(str(message.delta))
                elif kind == "script_finished":
                    break
        yield Session(url, session_id, "\n".join(drawn), xsrf)
