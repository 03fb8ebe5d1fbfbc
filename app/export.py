"""Hits as files GIS tools and spreadsheets read (GeoJSON with scores, CSV with WKT).

Each hit carries the query and the analyst's mark, so a judged export can be reviewed later.
"""

from __future__ import annotations

import json
import re

import streamlit as st

from core import SearchResult


def file_stem(result: SearchResult) -> str:
    """A safe download name from the query, e.g. ``sceneseek-a-baseball-field``."""
    words = " ".join(str(v) for v in result.query.values() if isinstance(v, str))
    slug = re.sub(r"[^a-z0-9]+", "-", words.lower()).strip("-")[:60] or "hits"
    return f"sceneseek-{slug}"


def geojson_bytes(result: SearchResult, marks: dict[str, str]) -> bytes:
    """FeatureCollection of the hits with rank, score, scene, tile, query and mark."""
    return json.dumps(result.to_geojson(marks), indent=1).encode("utf-8")


def csv_bytes(result: SearchResult, marks: dict[str, str]) -> bytes:
    """One row per hit with bounds, query, mark and WKT footprint."""
    return result.to_csv(marks).encode("utf-8")


def download_buttons(result: SearchResult, marks: dict[str, str]) -> None:
    """GeoJSON and CSV download buttons of a result (downloads never rerun the page)."""
    stem = file_stem(result)
    for label, data, suffix, mime in (
        ("GeoJSON", geojson_bytes(result, marks), "geojson", "application/geo+json"),
        ("CSV", csv_bytes(result, marks), "csv", "text/csv"),
    ):
        st.download_button(
            label,
            data,
            file_name=f"{stem}.{suffix}",
            mime=mime,
            icon=":material/download:",
            on_click="ignore",
        )
