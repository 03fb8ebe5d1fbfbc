"""Where a workspace scene's pixels are read again: its file, or its URL re-checked.

A catalog records a remote scene's URL without credentials. Reading it again (fine-tuning,
change alignment, ingest itself) goes through the operator's allow-list and retry settings
each time, and GDAL gets a checked ``tiles.RemoteScene``, never the URL.
"""

from __future__ import annotations

import geopandas as gpd

from core.settings import get_settings
from tiles import CATALOG_KEY, AllowList, RemoteScene, is_remote, resolve_remote
from tiles.scene import ScenePath


def allow_list() -> AllowList:
    """The operator's allow-list (``SCENESEEK_REMOTE_ALLOW``).

    Raises:
        tiles.RemoteRefusedError: An entry cannot be read.
    """
    return AllowList.parse(get_settings().remote_allow)


def remote_scene(url: str) -> RemoteScene:
    """``url`` checked now, read later with the allow-list and the retry settings.

    Raises:
        tiles.RemoteRefusedError: The URL or a redirect is not allowed.
        tiles.RemoteReadError: The URL cannot be read.
        tiles.NotGeoTiffError: Its bytes are not a TIFF.
    """
    settings = get_settings()
    return resolve_remote(
        url,
        allow_list(),
        retries=settings.remote_retries,
        retry_delay_s=settings.remote_retry_delay_s,
    )


def catalog_scene(catalog: gpd.GeoDataFrame) -> ScenePath:
    """What a tile reader opens for a catalog's recorded source.

    Raises:
        tiles.RemoteRefusedError, tiles.RemoteReadError: for a remote source, as
            :func:`remote_scene`.
    """
    source = catalog.attrs[CATALOG_KEY]["source"]
    return remote_scene(source) if is_remote(source) else source
