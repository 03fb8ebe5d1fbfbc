"""Hits as files GIS tools and spreadsheets read (GeoJSON with scores, CSV with WKT)."""

from __future__ import annotations

import json
import re

from core import SearchResult


def file_stem(result: SearchResult) -> str:
    """A safe download name from the query, e.g. ``sceneseek-a-baseball-field``."""
    words = " ".join(str(v) for v in result.query.values() if isinstance(v, str))
    slug = re.sub(r"[^a-z0-9]+", "-", words.lower()).strip("-")[:60] or "hits"
    return f"sceneseek-{slug}"


def geojson_bytes(result: SearchResult) -> bytes:
    """FeatureCollection of the hits with rank, score, scene and tile."""
    return json.dumps(result.to_geojson(), indent=1).encode("utf-8")


def csv_bytes(result: SearchResult) -> bytes:
    """One row per hit with bounds and WKT footprint."""
    return result.to_csv().encode("utf-8")
