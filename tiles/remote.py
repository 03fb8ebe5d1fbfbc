"""Remote scenes: check a COG URL and its redirects before any byte reaches GDAL.

:func:`resolve_remote` follows redirects itself, one hop at a time, checks every hop against
the allow-list, and asks the last one for the first bytes with a range request: a server
that ignores ranges, or whose bytes are not a TIFF, is refused before GDAL parses anything.
GDAL then reads an ``http(s)://`` scene through SceneSeek's own client
(:mod:`tiles.remote_file`), never through ``/vsicurl/``, and an ``s3://`` object through
``/vsis3/`` with the retry settings of :func:`network_env`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from rasterio.errors import RasterioError

from tiles.allowlist import AllowList, redact_url
from tiles.checked_http import TIMEOUT_S, CheckedSession
from tiles.errors import NoOverviewsWarning, NotGeoTiffError, RemoteReadError
from tiles.remote_file import RemoteScene, open_remote
from tiles.scene import TIFF_SIGNATURES


def resolve_remote(
    url: str, allow: AllowList, *, retries: int = 3, retry_delay_s: float = 1.0
) -> RemoteScene:
    """Check ``url`` and find the final URL that will be read, before GDAL sees it.

    Args:
        url: An ``http(s)://`` or ``s3://`` URL.
        allow: The allow-list every request is checked against, now and on every read.
        retries: Retries of a failed read request.
        retry_delay_s: First retry delay; it doubles at each retry.

    Raises:
        RemoteRefusedError: The URL or a redirect hop is not allowed.
        RemoteReadError: The server cannot be reached, answers with an error, ignores
            range requests (the file would be downloaded whole) or does not say its size.
        NotGeoTiffError: The first bytes are not a TIFF or BigTIFF signature.
    """
    if url.lower().startswith("s3://"):
        allow.check(url)
        return RemoteScene(url, url, allow=allow, retries=retries, retry_delay_s=retry_delay_s)
    session = CheckedSession(allow, retries=0)
    try:
        answer = session.get(url, byte_range="bytes=0-3", max_bytes=4)
    finally:
        session.close()
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
    if not total.isdigit():
        raise RemoteReadError(
            f"{shown}: the server does not say the file's size (Content-Range "
            f"{answer.headers.get('content-range')!r}), so it cannot be read piece by piece"
        )
    version = answer.headers.get("etag") or answer.headers.get("last-modified")
    return RemoteScene(url, answer.url, int(total), version, allow, retries, retry_delay_s)


def network_options(retries: int, retry_delay_s: float) -> dict[str, str]:
    """GDAL settings for ``/vsis3/`` reads: retries with back-off, no directory listings."""
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
        RemoteRefusedError: A request was not allowed (a later redirect, say).
        RemoteReadError: It cannot be read or GDAL cannot open it.
        NotGeoTiffError: Another driver reads it, or it is stored in strips.
    """
    shown = scene.recorded
    try:
        with open_remote(scene) as ds:
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
