"""Remote scenes: COG URLs read through GDAL's network file systems, after our own checks.

GDAL follows HTTP redirects by itself and GDAL 3.10 has no option to stop it, so GDAL is
never handed the URL a user typed. :func:`resolve_remote` follows redirects itself, one hop
at a time, checks every hop against the allow-list, and asks the last one for the first
bytes with a range request: a server that ignores ranges, or whose bytes are not a TIFF, is
refused before GDAL parses anything. GDAL then reads that final URL (``/vsicurl/``) or the
S3 object (``/vsis3/``) with the retry settings of :func:`network_env`.
"""

from __future__ import annotations

import base64
import http.client
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import rasterio
from rasterio.errors import RasterioError

from tiles.allowlist import AllowList, redact_url
from tiles.errors import NoOverviewsWarning, NotGeoTiffError, RemoteReadError, RemoteRefusedError
from tiles.scene import TIFF_SIGNATURES

MAX_REDIRECTS = 5
TIMEOUT_S = 30.0
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class HttpAnswer:
    """The last hop's answer to a checked request."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes


def _credential_headers() -> dict[str, str]:
    """The HTTP credentials GDAL takes from the environment, so probes authenticate alike."""
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


def _request(url: str, headers: dict[str, str], max_bytes: int) -> HttpAnswer:
    """One GET without following redirects; reads at most ``max_bytes`` of the body."""
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.hostname or "", parts.port, timeout=TIMEOUT_S)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        body = response.read(max_bytes)
        found = {k.lower(): v for k, v in response.getheaders()}
        return HttpAnswer(url, response.status, found, body)
    except (OSError, http.client.HTTPException) as exc:
        raise RemoteReadError(f"{redact_url(url)} cannot be reached ({exc})") from exc
    finally:
        connection.close()


def fetch_checked(
    url: str, allow: AllowList, *, byte_range: str | None = None, max_bytes: int = 1 << 20
) -> HttpAnswer:
    """GET ``url``, following at most ``MAX_REDIRECTS`` redirects, each hop allow-listed.

    Args:
        url: An ``http(s)://`` URL.
        allow: The allow-list every hop must pass.
        byte_range: A ``Range`` header value, e.g. ``bytes=0-3``.
        max_bytes: Most body bytes kept.

    Returns:
        The answer of the first hop that is not a redirect.

    Raises:
        RemoteRefusedError: A hop is not allowed, or there are too many redirects.
        RemoteReadError: A hop cannot be reached.
    """
    headers = {**_credential_headers(), **({"Range": byte_range} if byte_range else {})}
    for _ in range(MAX_REDIRECTS + 1):
        allow.check(url)
        answer = _request(url, headers, max_bytes)
        if answer.status not in _REDIRECTS or "location" not in answer.headers:
            return answer
        url = urljoin(url, answer.headers["location"])
    raise RemoteRefusedError(f"{redact_url(url)}: more than {MAX_REDIRECTS} redirects")


@dataclass(frozen=True)
class RemoteScene:
    """A remote COG that passed the checks.

    Attributes:
        source: The URL as given (recorded redacted; re-index checks it again).
        url: The URL GDAL reads: the last hop of the redirects (may hold a token).
        size: Bytes of the file, when the server says.
        version: The server's ETag or Last-Modified, which change when the file does.
    """

    source: str
    url: str
    size: int | None = None
    version: str | None = None

    @property
    def gdal_path(self) -> str:
        """The path rasterio opens: ``/vsis3/bucket/key`` or ``/vsicurl/<url>``."""
        if self.url.lower().startswith("s3://"):
            return "/vsis3/" + self.url[len("s3://") :]
        return "/vsicurl/" + self.url

    @property
    def recorded(self) -> str:
        """What manifests and messages show: the given URL without credentials."""
        return redact_url(self.source)


def resolve_remote(url: str, allow: AllowList) -> RemoteScene:
    """Check ``url`` and find the final URL GDAL may read, before GDAL sees it.

    Raises:
        RemoteRefusedError: The URL or a redirect hop is not allowed.
        RemoteReadError: The server cannot be reached, answers with an error, or ignores
            range requests (GDAL would then download whole files).
        NotGeoTiffError: The first bytes are not a TIFF or BigTIFF signature.
    """
    allow.check(url)
    if url.lower().startswith("s3://"):
        return RemoteScene(url, url)
    answer = fetch_checked(url, allow, byte_range="bytes=0-3", max_bytes=4)
    shown = redact_url(answer.url)
    if answer.status == 200:
        raise RemoteReadError(
            f"{shown}: the server ignores range requests, so the scene cannot be read piece by "
            "piece; serve it from a server that supports HTTP ranges (any object store does)"
        )
    if answer.status != 206:
        raise RemoteReadError(f"{shown}: the server answered HTTP {answer.status}")
    if answer.body[:4] not in TIFF_SIGNATURES:
        raise NotGeoTiffError(
            f"{shown} is not a GeoTIFF: it starts with {answer.body[:4]!r}; only tiled "
            "GeoTIFFs (COGs) are read from URLs"
        )
    total = answer.headers.get("content-range", "").rpartition("/")[2]
    version = answer.headers.get("etag") or answer.headers.get("last-modified")
    return RemoteScene(url, answer.url, int(total) if total.isdigit() else None, version)


def network_options(retries: int, retry_delay_s: float) -> dict[str, str]:
    """GDAL settings for remote reads: retries with back-off, no directory listings."""
    return {
        "GDAL_HTTP_MAX_RETRY": str(retries),
        "GDAL_HTTP_RETRY_DELAY": str(retry_delay_s),
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "GDAL_HTTP_TIMEOUT": str(int(TIMEOUT_S)),
    }


@contextmanager
def network_env(retries: int, retry_delay_s: float) -> Iterator[None]:
    """Set :func:`network_options` in the environment for the block, then restore it.

    Environment variables rather than ``rasterio.Env``, so that tile-reading worker
    processes started inside the block (fork or spawn) read with the same settings.
    """
    options = network_options(retries, retry_delay_s)
    saved = {key: os.environ.get(key) for key in options}
    os.environ.update(options)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def check_remote_gtiff(scene: RemoteScene) -> None:
    """Accept only an internally tiled GeoTIFF; warn when it has no overviews.

    Call inside :func:`network_env`.

    Raises:
        RemoteReadError: GDAL cannot open it.
        NotGeoTiffError: Another driver reads it, or it is stored in strips.
    """
    shown = scene.recorded
    try:
        with rasterio.open(scene.gdal_path) as ds:
            driver, tiled, overviews = ds.driver, ds.profile.get("tiled", False), ds.overviews(1)
    except RasterioError as exc:
        raise RemoteReadError(f"{shown} cannot be opened as a raster ({exc})") from exc
    if driver != "GTiff":
        raise NotGeoTiffError(f"{shown} is read by GDAL's {driver} driver; only GTiff is read")
    if not tiled:
        raise NotGeoTiffError(
            f"{shown} is stored in strips, not tiles, so every tile would read whole rows; "
            f"convert it to a COG (`gdal_translate -of COG <in> <out>`)"
        )
    if not overviews:
        warnings.warn(
            f"{shown} has no overviews: large tiles read full-resolution bytes; a COG with "
            "overviews (`gdal_translate -of COG`) is read faster",
            NoOverviewsWarning,
            stacklevel=2,
        )
