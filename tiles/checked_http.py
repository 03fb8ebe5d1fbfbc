"""HTTP requests that reach only allow-listed addresses, on every redirect hop.

Each URL is checked by the allow-list, which resolves its host once; the socket then
connects to an address that passed, and the name is never looked up again, so a DNS answer
that changes after the check (rebinding) is never used. HTTPS still verifies the
certificate for the host name and sends it as SNI. Redirects are followed here, one hop at
a time and each checked, never by a library that would not check them.
"""

from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from tiles.allowlist import AllowList, IPAddress, redact_url
from tiles.errors import RemoteReadError, RemoteRefusedError

MAX_REDIRECTS = 5
TIMEOUT_S = 30.0
_REDIRECTS = (301, 302, 303, 307, 308)
_RETRIED = (429, 500, 502, 503, 504)
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


@dataclass(frozen=True)
class HttpAnswer:
    """The last hop's answer to a checked request."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes


def credential_headers() -> dict[str, str]:
    """The HTTP credentials GDAL would take from the environment, read in this process."""
    headers = {}
    if os.environ.get("GDAL_HTTP_BEARER"):
        headers["Authorization"] = f"Bearer {os.environ['GDAL_HTTP_BEARER']}"
    elif os.environ.get("GDAL_HTTP_USERPWD"):
        token = base64.b64encode(os.environ["GDAL_HTTP_USERPWD"].encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    for line in os.environ.get("GDAL_HTTP_HEADERS", "").replace("\r", "").split("\n"):
        name, sep, value = line.partition(":")
        if sep and name.strip():
            headers[name.strip()] = value.strip()
    return headers


def _connect(addresses: tuple[IPAddress, ...], port: int, timeout: float) -> socket.socket:
    """A TCP connection to the first checked address that answers."""
    error: OSError | None = None
    for address in addresses:
        try:
            sock = socket.create_connection((str(address), port), timeout)
        except OSError as exc:
            error = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise error or OSError("no address to connect to")


class PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to checked addresses; ``Host`` still names the host."""

    def __init__(self, host: str, port: int, addresses: tuple[IPAddress, ...]) -> None:
        super().__init__(host, port, timeout=TIMEOUT_S)
        self.addresses = addresses

    def connect(self) -> None:
        """Open the socket to a checked address, never to a new DNS answer."""
        self.sock = _connect(self.addresses, self.port, TIMEOUT_S)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to checked addresses, verifying the host name's certificate."""

    def __init__(
        self, host: str, port: int, addresses: tuple[IPAddress, ...], tls: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=TIMEOUT_S, context=tls)
        self.addresses, self.tls = addresses, tls

    def connect(self) -> None:
        """Open the socket to a checked address, then TLS with SNI and the host's certificate."""
        sock = _connect(self.addresses, self.port, TIMEOUT_S)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


Pinned = PinnedHTTPConnection | PinnedHTTPSConnection


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


class CheckedSession:
    """Checked requests with kept-alive connections, retries with back-off, no secrets in URLs.

    Every URL passes :meth:`AllowList.addresses` before its first request; connections go to
    the addresses that check returned. Credentials come from the environment and are sent
    only to the origin of the URL first asked for, not to the hosts it redirects to.
    """

    def __init__(self, allow: AllowList, retries: int = 3, retry_delay_s: float = 1.0) -> None:
        self.allow, self.retries, self.retry_delay_s = allow, retries, retry_delay_s
        self._checked: dict[str, tuple[IPAddress, ...]] = {}
        self._connections: dict[tuple[str, str, int], Pinned] = {}
        self._tls: ssl.SSLContext | None = None

    def close(self) -> None:
        """Close every kept-alive connection."""
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def _connection(self, url: str) -> tuple[Pinned, bool]:
        """The kept-alive connection for ``url``'s origin (and whether it is new)."""
        if url not in self._checked:
            self._checked[url] = self.allow.addresses(url)
        scheme, host, port = _origin(url)
        key = (scheme, host, port)
        known = self._connections.get(key)
        if known is not None and known.addresses == self._checked[url]:
            return known, False
        if known is not None:
            known.close()
        if scheme == "https":
            self._tls = self._tls or ssl.create_default_context()
            made: Pinned = PinnedHTTPSConnection(host, port, self._checked[url], self._tls)
        else:
            made = PinnedHTTPConnection(host, port, self._checked[url])
        self._connections[key] = made
        return made, True

    def _once(self, url: str, headers: dict[str, str], max_bytes: int) -> HttpAnswer:
        """One GET without following redirects; a connection closed while idle is reopened."""
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for _ in range(2):
            connection, fresh = self._connection(url)
            try:
                connection.request("GET", target, headers=headers)
                response = connection.getresponse()
            except _STALE:
                connection.close()
                if fresh:
                    raise
                continue
            length = response.getheader("content-length")
            too_long = max_bytes >= 0 and (length is None or int(length) > max_bytes)
            body = response.read(max_bytes) if max_bytes >= 0 else response.read()
            if too_long or response.will_close:
                connection.close()
            found = {k.lower(): v for k, v in response.getheaders()}
            return HttpAnswer(url, response.status, found, body)
        raise RemoteReadError(f"{redact_url(url)}: the connection closed twice")

    def _retrying(self, url: str, headers: dict[str, str], max_bytes: int) -> HttpAnswer:
        """:meth:`_once`, again after a network error or a 429/5xx, waiting longer each time."""
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                answer = self._once(url, headers, max_bytes)
            except RemoteRefusedError:
                raise
            except (OSError, http.client.HTTPException, ValueError) as exc:
                broken = self._connections.pop(_origin(url), None)
                if broken is not None:
                    broken.close()
                if last:
                    raise RemoteReadError(f"{redact_url(url)} cannot be reached ({exc})") from exc
            else:
                if answer.status not in _RETRIED or last:
                    return answer
            time.sleep(self.retry_delay_s * 2**attempt)
        raise AssertionError("unreachable")

    def get(
        self, url: str, *, byte_range: str | None = None, max_bytes: int = 1 << 20
    ) -> HttpAnswer:
        """GET ``url``, following at most ``MAX_REDIRECTS`` redirects, each hop checked.

        Args:
            url: An ``http(s)://`` URL.
            byte_range: A ``Range`` header value, e.g. ``bytes=0-3``.
            max_bytes: Most body bytes read; -1 reads the whole body.

        Returns:
            The answer of the first hop that is not a redirect.

        Raises:
            RemoteRefusedError: A hop is not allowed, or there are too many redirects.
            RemoteReadError: A hop cannot be reached.
        """
        first = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            headers = credential_headers() if _origin(url) == first else {}
            if byte_range:
                headers["Range"] = byte_range
            answer = self._retrying(url, headers, max_bytes)
            if answer.status not in _REDIRECTS or "location" not in answer.headers:
                return answer
            url = urljoin(url, answer.headers["location"])
        raise RemoteRefusedError(f"{redact_url(url)}: more than {MAX_REDIRECTS} redirects")


def fetch_checked(
    url: str, allow: AllowList, *, byte_range: str | None = None, max_bytes: int = 1 << 20
) -> HttpAnswer:
    """One checked GET (see :meth:`CheckedSession.get`) on connections closed afterwards.

    Raises:
        RemoteRefusedError: A hop is not allowed, or there are too many redirects.
        RemoteReadError: A hop cannot be reached.
    """
    session = CheckedSession(allow, retries=0)
    try:
        return session.get(url, byte_range=byte_range, max_bytes=max_bytes)
    finally:
        session.close()
