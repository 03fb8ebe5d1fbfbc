"""Semantic-localisation overlays: where in each scene the query fits best.

Text queries are scored as a text search scores them; image and tile queries (and their
refined versions) by the cosine of the stored visual vectors, as an image search does.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from app.images import OVERLAY_SIDE, webp_data_url
from app.map import Overlay
from app.resources import Engine
from core import AreaOfInterest, SceneManifest, SearchResult, scene_heat, write_heat_png

HEAT_OPACITY = 0.75


@st.cache_data(max_entries=32, show_spinner="Computing the heat map…")
def _heat(
    _engine: Engine,
    scene: str,
    finished: float,
    kind: str,
    digest: str,
    _vector: np.ndarray,
    area_wkb: str,
    _area: AreaOfInterest | None,
) -> tuple[str, tuple[float, float, float, float]]:
    with _engine.searching() as res:
        heat = scene_heat(res, scene, _vector, kind, _area)
    with tempfile.TemporaryDirectory() as folder:
        png = Path(folder) / "heat.png"
        bounds = write_heat_png(heat, png)
        with Image.open(png) as image:
            return webp_data_url(image.convert("RGBA"), OVERLAY_SIDE), bounds


def heat_overlays(
    engine: Engine,
    result: SearchResult,
    manifests: dict[str, SceneManifest],
    area: AreaOfInterest | None = None,
) -> list[Overlay]:
    """One heat map per scene with hits, for a text, image or tile result (refined or not).

    With an area of interest, only its tiles are coloured, as only they were searched.
    """
    if result.vector is None:
        return []
    vector = np.asarray(result.vector, dtype=np.float32)
    digest = hashlib.sha256(vector.tobytes()).hexdigest()
    wkb = area.geometry.wkb_hex if area else ""
    overlays = []
    for scene in sorted({hit.scene for hit in result.hits} & set(manifests)):
        manifest = manifests[scene]
        url, bounds = _heat(
            engine, scene, manifest.finished or 0.0, result.kind, digest, vector, wkb, area
        )
        overlays.append(Overlay(url, bounds, f"heat: {scene}", HEAT_OPACITY))
    return overlays
