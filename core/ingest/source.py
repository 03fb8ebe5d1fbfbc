"""Where a scene's pixels come from: a local GeoTIFF, or a COG URL the allow-list lets through.

Ingest asks a ``SceneSource`` what GDAL opens, what the manifest records (a URL without
credentials) and which facts change when the file does (size and mtime of a file; size and
ETag of a URL), so a rerun resumes only when the source is still the same.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import get_settings
from core.store.remote import allow_list, remote_scene
from tiles import (
    CREDENTIAL_VARIABLES,
    RemoteRefusedError,
    check_remote_gtiff,
    has_credentials,
    is_remote,
    is_stac_item,
    network_env,
    redact_url,
    resolve_remote,
    stac_asset,
)
from tiles.scene import ScenePath


@dataclass(frozen=True)
class SceneSource:
    """One scene's source, checked.

    Attributes:
        read_path: What tiles opens: a file path, or a checked ``tiles.RemoteScene`` that
            every reader (other processes and Dask workers too) reads through the
            allow-list.
        recorded: What the manifest records and re-index reads again.
        facts: What changes when the source changes.
        remote: True for a URL.
    """

    read_path: ScenePath
    recorded: str
    facts: dict[str, Any] = field(default_factory=dict)
    remote: bool = False

    def environment(self) -> AbstractContextManager[None]:
        """GDAL's network settings (retries with back-off) while this source is read."""
        if not self.remote:
            return contextlib.nullcontext()
        settings = get_settings()
        return network_env(settings.remote_retries, settings.remote_retry_delay_s)


def recorded_source(source: str | Path) -> str:
    """What the manifest records for ``source``, without touching the network."""
    return (
        redact_url(str(source)) if is_remote(source) else str(Path(source).expanduser().resolve())
    )


def scene_source(source: str | Path) -> SceneSource:
    """Check a source and describe it.

    A URL passes the allow-list (every redirect hop, on every request), must answer range
    requests with TIFF bytes, and must open as an internally tiled GeoTIFF (a
    ``tiles.NoOverviewsWarning`` says when it has no overviews).

    Raises:
        tiles.RemoteRefusedError: The URL or a redirect is not allowed.
        tiles.RemoteReadError: The URL cannot be read.
        tiles.NotGeoTiffError: It is not a tiled GeoTIFF.
    """
    if not is_remote(source):
        path = Path(source).expanduser().resolve()
        stat = path.stat() if path.exists() else None
        facts = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns} if stat else {}
        return SceneSource(str(path), str(path), facts)
    remote = remote_scene(str(source))
    checked = SceneSource(
        remote,
        remote.recorded,
        {"size": remote.size, "version": remote.version},
        remote=True,
    )
    with checked.environment():
        check_remote_gtiff(remote)
    return checked


def stac_href(item: str | Path, asset: str | None) -> str:
    """The scene ``asset`` of the STAC item at ``item`` (a file or an allow-listed URL).

    Raises:
        tiles.SceneOpenError: The item cannot be read or has no such asset.
        tiles.RemoteRefusedError: The item URL is not allowed.
    """
    return stac_asset(item, asset, allow_list())


def remote_scene_url(source: str, asset: str | None = None) -> str:
    """The COG URL a page may queue for ingest: checked now, so refusals show at once.

    A STAC item URL (``.json``, or any URL with ``asset``) gives its asset's URL. URLs that
    carry credentials are refused: the server's environment holds those, never a page,
    and a job record would keep them. GDAL's tiled-GeoTIFF check runs in the job.

    Raises:
        tiles.RemoteRefusedError: Credentials in the URL, or a URL or redirect not allowed.
        tiles.RemoteReadError: The URL cannot be read.
        tiles.NotGeoTiffError: Its bytes are not a TIFF.
        tiles.SceneOpenError: The STAC item cannot be read or lacks the asset.
    """
    _refuse_local_or_credentials(source)
    url = stac_href(source, asset) if asset or is_stac_item(source) else source
    _refuse_local_or_credentials(url)
    resolve_remote(url, allow_list())
    return url


def _refuse_local_or_credentials(url: str) -> None:
    """A page reads no server file (STAC items included) and passes no credentials."""
    if not is_remote(url):
        raise RemoteRefusedError(f"{url}: only http(s):// and s3:// URLs are read from here")
    if has_credentials(url):
        raise RemoteRefusedError(
            f"{redact_url(url)}: credentials are not taken from this page; the operator sets "
            f"them in the server's environment ({CREDENTIAL_VARIABLES})"
        )
