"""STAC items: list a remote or local item's assets and pick the scene to ingest by key.

An item is plain JSON (``{"type": "Feature", "assets": {"visual": {"href": ...}}}``), so no
STAC library is needed to read one; relative hrefs resolve against the item's own location.
A remote item is fetched with the same allow-list checks as a scene.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from tiles.allowlist import AllowList, is_remote, redact_url
from tiles.checked_http import fetch_checked
from tiles.errors import RemoteReadError, SceneOpenError

MAX_ITEM_BYTES = 10 << 20


def is_stac_item(source: str | os.PathLike[str]) -> bool:
    """True for a ``.json`` path or URL, which SceneSeek reads as a STAC item."""
    return str(source).split("?")[0].lower().endswith(".json")


def read_item(source: str | os.PathLike[str], allow: AllowList) -> dict:
    """The item's JSON, from a file or an allow-listed URL.

    Raises:
        RemoteRefusedError: The URL is not allowed.
        RemoteReadError: The URL cannot be fetched.
        SceneOpenError: The file is missing or is not a STAC item.
    """
    text = str(source)
    shown = redact_url(text) if is_remote(text) else text
    if is_remote(text):
        answer = fetch_checked(text, allow, max_bytes=MAX_ITEM_BYTES)
        if answer.status != 200:
            raise RemoteReadError(f"{shown}: the server answered HTTP {answer.status}")
        raw = answer.body
    else:
        try:
            raw = Path(text).read_bytes()
        except OSError as exc:
            raise SceneOpenError(f"STAC item {shown} cannot be read ({exc})") from exc
    try:
        item = json.loads(raw)
    except ValueError as exc:
        raise SceneOpenError(f"{shown} is not JSON, so not a STAC item ({exc})") from exc
    if not isinstance(item, dict) or not isinstance(item.get("assets"), dict):
        raise SceneOpenError(f"{shown} is not a STAC item: it has no 'assets' object")
    return item


def item_assets(item: dict, location: str | os.PathLike[str]) -> dict[str, str]:
    """Asset key -> absolute href (URL or local path) of every asset that has an href."""
    base = str(location) if is_remote(location) else Path(location).resolve().as_uri()
    hrefs = {}
    for key, asset in item["assets"].items():
        href = asset.get("href") if isinstance(asset, dict) else None
        if isinstance(href, str) and href:
            absolute = urljoin(base, href)
            local = absolute.startswith("file:")
            hrefs[key] = unquote(urlsplit(absolute).path) if local else absolute
    return hrefs


def stac_asset(source: str | os.PathLike[str], key: str | None, allow: AllowList) -> str:
    """The href of asset ``key`` of the STAC item at ``source``.

    Raises:
        SceneOpenError: The item cannot be read, has no such asset, or no key was given
            (the message lists the keys to choose from).
        RemoteRefusedError: A URL is not allowed.
        RemoteReadError: The item URL cannot be fetched.
    """
    hrefs = item_assets(read_item(source, allow), source)
    if key not in hrefs:
        wanted = f"has no asset {key!r}" if key else "needs an asset key"
        raise SceneOpenError(
            f"STAC item {redact_url(str(source))} {wanted}; pick one of: "
            f"{', '.join(sorted(hrefs)) or '(none with an href)'} (--asset KEY)"
        )
    return hrefs[key]
