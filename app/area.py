"""The search page's area of interest: drawn on the map or uploaded, shown, and cleared.

Leaflet.draw comes from the app's static folder, as Leaflet does (folium's ``Draw`` loads it
from a CDN). Every new or cleared area remounts the map, whose key carries ``AREA_NONCE``:
the drawing tool's own shape and the value streamlit-folium returned for it leave with the
old map, and the area is drawn from session state, so a cleared area never comes back from
a stale returned drawing.

Uploads and drawings both go through ``core.parse_aoi``, which enforces the area limits on the
server (``SCENESEEK_AREA_MAX_MB``, ``SCENESEEK_AREA_MAX_VERTICES``): the uploader's own size
limit is checked only by the browser.
"""

from __future__ import annotations

import math

import folium
import streamlit as st
from folium.plugins import Draw

from app import state
from app.map import static_url
from core import AreaOfInterest, SceneSeekError, get_settings, parse_aoi

MAP_KEY = "search-map"
COLOUR = "#1f6f8b"
SHAPES = {  # what the drawing toolbar offers: a rectangle and a polygon
    "rectangle": {"showArea": False, "shapeOptions": {"color": COLOUR}},
    "polygon": {"allowIntersection": False, "showArea": False, "shapeOptions": {"color": COLOUR}},
    "polyline": False,
    "circle": False,
    "circlemarker": False,
    "marker": False,
}


class LocalDraw(Draw):
    """folium's ``Draw`` with Leaflet.draw served by the app itself."""

    def __init__(self) -> None:
        super().__init__(
            show_geometry_on_click=False,
            draw_options=SHAPES,
            edit_options={"edit": False, "remove": False},
        )
        self.default_js = [("leaflet_draw_js", static_url("leaflet-draw/leaflet.draw.js"))]
        self.default_css = [("leaflet_draw_css", static_url("leaflet-draw/leaflet.draw.css"))]


def map_key() -> str:
    """The map's key: a new area gives a new (freshly mounted) map."""
    return f"{MAP_KEY}-{st.session_state[state.AREA_NONCE]}"


def _use(area: AreaOfInterest | None) -> None:
    st.session_state[state.AREA] = area
    st.session_state[state.AREA_NONCE] += 1
    st.session_state[state.FOCUS] = None


def _take(source: str | bytes | dict, what: str) -> None:
    try:
        _use(parse_aoi(source))
    except SceneSeekError as exc:
        st.session_state[state.ERROR] = f"{what}: {exc}"


def on_drawn() -> None:
    """The map's callback: a rectangle or polygon was drawn.

    Reads ``all_drawings`` (the drawing tool's layer), not ``last_active_drawing``, which
    streamlit-folium also sets to any hit footprint clicked.
    """
    drawings = (st.session_state.get(map_key()) or {}).get("all_drawings")
    if drawings:
        _take(drawings[-1], "The drawn area cannot be used")


def on_upload() -> None:
    """The uploader's callback: a GeoJSON file was dropped."""
    upload = st.session_state.get(f"{state.AREA_UPLOAD}-{st.session_state[state.AREA_NONCE]}")
    if upload is not None:
        _take(upload.getvalue(), f"{upload.name} cannot be used as an area")


def clear() -> None:
    """Search everywhere again."""
    _use(None)


def add_outline(group: folium.FeatureGroup, area: AreaOfInterest | None) -> None:
    """Draw the area's outline (dashed, unfilled) into the hits' group.

    ``map.css`` makes it let clicks through to the hits (folium drops ``interactive``).
    """
    if area is None:
        return
    for polygon in getattr(area.geometry, "geoms", [area.geometry]):
        rings = [polygon.exterior, *polygon.interiors]
        folium.Polygon(
            [[(lat, lon) for lon, lat in ring.coords] for ring in rings],
            color=COLOUR,
            weight=2.5,
            dash_array="8 6",
            fill=False,
            class_name="ss-area",
        ).add_to(group)


def controls() -> None:
    """How to set an area (draw on the map, or upload GeoJSON), and its clear button."""
    area: AreaOfInterest | None = st.session_state[state.AREA]
    with st.popover("Area", icon=":material/pentagon:"):
        st.caption(
            "Search only tiles that touch an area: draw a rectangle or polygon with the tools "
            "at the map's top left, or upload one."
        )
        st.file_uploader(
            "GeoJSON polygon (longitude/latitude)",
            type=["geojson", "json"],
            key=f"{state.AREA_UPLOAD}-{st.session_state[state.AREA_NONCE]}",
            on_change=on_upload,
            max_upload_size=max(1, math.ceil(get_settings().area_max_mb)),
        )
    if area is not None:
        st.button(
            "Clear area",
            icon=":material/layers_clear:",
            on_click=clear,
            help="Search every tile of the chosen scenes again",
        )
