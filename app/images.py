"""Pictures the pages show: hit thumbnails and map overlays, small and cached.

Overlays travel inside the map's HTML (folium embeds image pixels), and a large PNG there
slows or crashes the page, so every overlay is re-encoded as a WebP of at most
``OVERLAY_SIDE`` pixels. Thumbnails are read from the scene's source file with the tiling's
own band choice and stretch, so they look like what the model saw, and only while that file
is still the one ingested (its recorded stamp); otherwise the page says why. A scene's band
warning (a 4th band taken as near-infrared) is the same for every tile, so the server log
gets it once per scene, not once per thumbnail.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import warnings
from pathlib import Path

import streamlit as st
from PIL import Image

from core import Hit, SceneManifest, TileRef
from tiles import (
    SOURCE_CHANGED,
    AlphaBandIgnoredWarning,
    NIRBandDroppedWarning,
    SourceChangedError,
    TilesError,
    check_unchanged,
    tile_thumbnail,
)

OVERLAY_SIDE = 768
THUMB_SIDE = 160
QUERY_THUMB_SIDE = 96
SCENE_WARNINGS = (NIRBandDroppedWarning, AlphaBandIgnoredWarning)  # the same for every tile

_log = logging.getLogger(__name__)
_warned: set[tuple[str, type[Warning]]] = set()
_warned_lock = threading.Lock()


def _log_once(source: str, caught: list[warnings.WarningMessage]) -> None:
    """Log each scene warning once per source; pass any other warning on as it came."""
    for w in caught:
        if not issubclass(w.category, SCENE_WARNINGS):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            continue
        with _warned_lock:
            first = (source, w.category) not in _warned
            _warned.add((source, w.category))
        if first:
            _log.warning("%s: %s (logged once per scene)", w.category.__name__, w.message)


def webp_data_url(image: Image.Image, max_side: int) -> str:
    """An image shrunk to ``max_side`` as an inline WebP (alpha kept, a tenth of a PNG)."""
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=82, method=4)
    return "data:image/webp;base64," + base64.b64encode(out.getvalue()).decode("ascii")


@st.cache_data(max_entries=64, show_spinner=False)
def _file_overlay(path: str, mtime_ns: int, max_side: int) -> str:
    with Image.open(path) as image:
        return webp_data_url(image.convert("RGBA"), max_side)


def overlay_url(png: Path, max_side: int = OVERLAY_SIDE) -> str:
    """A PNG overlay (quicklook, heat map) as a small data URL, cached until the file changes."""
    return _file_overlay(str(png), png.stat().st_mtime_ns, max_side)


@st.cache_data(max_entries=2048, show_spinner=False)
def _thumbnail(
    source: str,
    mtime_ns: int,
    window: tuple[int, int, int, int],
    bands: tuple[int, ...] | None,
    percentiles: tuple[float, float],
    size: int,
) -> bytes:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rgb = tile_thumbnail(source, window, size, bands=bands, percentiles=percentiles)
    _log_once(source, caught)
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=85)
    return out.getvalue()


def thumbnail(
    manifest: SceneManifest, window: tuple[int, int, int, int], size: int = THUMB_SIDE
) -> bytes | None:
    """JPEG of one tile as the model saw it, or None (``thumbnail_note`` says why)."""
    tiling = manifest.fingerprint.get("tiling", {})
    source = Path(manifest.source or "")
    bands = tuple(tiling["bands"]) if tiling.get("bands") else None
    percentiles = tuple(tiling.get("percentiles", (2.0, 98.0)))
    try:
        check_unchanged(source, manifest.source_stamp)  # before the cache: a new file misses
        mtime = source.stat().st_mtime_ns
        return _thumbnail(str(source), mtime, tuple(window), bands, percentiles, size)  # type: ignore[arg-type]
    except (OSError, TilesError):
        return None


def thumbnail_note(manifest: SceneManifest | None) -> str:
    """What a page shows in place of a scene's missing thumbnail."""
    source = Path(manifest.source or "") if manifest else Path()
    try:
        check_unchanged(source, manifest.source_stamp if manifest else None)
    except SourceChangedError:
        return SOURCE_CHANGED
    except OSError:
        return "source file not found"
    return "source file unreadable; re-index"


def data_url(jpeg: bytes) -> str:
    """Inline a small JPEG into HTML (map popups)."""
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def hit_thumbnails(manifests: dict[str, SceneManifest], hits: list[Hit]) -> dict[str, bytes | None]:
    """Thumbnail of every hit, keyed ``SCENE:TILE``."""
    return {
        str(TileRef.of(hit)): thumbnail(manifests.get(hit.scene, SceneManifest()), hit.window)
        for hit in hits
    }


@st.cache_data(max_entries=16, show_spinner=False)
def example_thumbnail(data: bytes, size: int = QUERY_THUMB_SIDE) -> bytes | None:
    """A small JPEG of a dropped example image, showing what results are for (None: unreadable)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (size, size))  # JPEGs decode at a reduced size
            image.thumbnail((size, size), Image.Resampling.LANCZOS)
            rgb = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=85)
    return out.getvalue()
