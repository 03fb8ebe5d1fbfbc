"""The Folium map of the search page, built to work with no internet access.

Leaflet comes from the app's own static folder (``app/static``, a link to ``assets/static``),
never a CDN: folium's default jQuery, Bootstrap and icon-font links are replaced, because one
failed script blanks the whole map offline. Hit numbers are plain ``DivIcon`` labels (no icon
fonts).

The base map (scene quicklooks, optional OpenStreetMap) changes only when the scene set
does; hits and heat maps travel in a separate feature group that streamlit-folium swaps
in place, so a new query redraws the hits without remounting the map. The feature group
also carries the view: Leaflet's own ``fitBounds`` fits it to the map's real size in the
browser (the server does not know the map's width), once per new view, so a redraw for a
mark leaves the analyst's pan and zoom alone.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import folium
import streamlit as st
from branca.element import MacroElement
from jinja2 import Template

from core import Hit, TileRef

Bounds = tuple[float, float, float, float]  # min_lon, min_lat, max_lon, max_lat
MAP_HEIGHT = 620
ASSUMED_WIDTH = 600  # the map's pixel width is not known server-side; zoom fits this
MAX_ZOOM = 22
ZOOM_SNAP = 0.1  # fractional zoom levels, so a fit fills the map instead of half of it
FIT_PADDING = 24  # pixels kept free around what the map is fitted to
ZOOM_BUTTONS = 56  # and on the left, so the zoom buttons cover no hit number
FOCUS_CONTEXT = 1.0  # a focused hit is shown with this many tile widths around it
# Rank 1 warm and bright, later ranks cooler: readable over imagery.
RAMP = ((215, 48, 31), (252, 141, 89), (254, 224, 144), (145, 191, 219), (69, 117, 180))


def static_url(path: str) -> str:
    """URL of a file in ``app/static`` as served by Streamlit (honours baseUrlPath)."""
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return f"{'/' + base if base else ''}/app/static/{path}"


class HtmlPopup(MacroElement):
    """A popup bound from an HTML string by Leaflet itself.

    ``folium.Popup`` builds its content with jQuery, which this offline map does not load.
    """

    _template = Template(
        """{% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.bindPopup({{ this.html|tojson }}, {maxWidth: 220});
        {% endmacro %}"""
    )

    def __init__(self, html: str) -> None:
        super().__init__()
        self._name = "HtmlPopup"
        self.html = html


class FitBounds(MacroElement):
    """Fit the map to a box when ``view`` differs from the last view fitted in this map.

    Added to the hits' feature group, whose parent is the map.
    """

    _template = Template(
        """{% macro script(this, kwargs) %}
        if (window.ssView !== {{ this.view|tojson }}) {
            window.ssView = {{ this.view|tojson }};
            {{ this._parent._parent.get_name() }}.fitBounds({{ this.bounds|tojson }}, {
                paddingTopLeft: [{{ this.left }}, {{ this.padding }}],
                paddingBottomRight: [{{ this.padding }}, {{ this.padding }}]});
        }
        {% endmacro %}"""
    )

    def __init__(
        self, bounds: Bounds, view: str, padding: int = FIT_PADDING, left: int = ZOOM_BUTTONS
    ) -> None:
        super().__init__()
        self._name = "FitBounds"
        lon0, lat0, lon1, lat1 = bounds
        self.bounds = [[lat0, lon0], [lat1, lon1]]
        self.view = view
        self.padding = padding
        self.left = left


class OfflineMap(folium.Map):
    """A ``folium.Map`` whose scripts and styles are the app's local files only."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.default_js = [("leaflet", static_url("leaflet/leaflet.js"))]
        self.default_css = [
            ("leaflet_css", static_url("leaflet/leaflet.css")),
            ("sceneseek_css", static_url("map.css")),
        ]


@dataclass(frozen=True)
class Overlay:
    """An image placed on the map between lon/lat bounds."""

    url: str
    bounds: Bounds
    name: str
    opacity: float = 1.0


def union(bounds: Iterable[Bounds]) -> Bounds | None:
    """The box around all the given boxes, or None when there are none."""
    boxes = list(bounds)
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _mercator_y(lat: float) -> float:
    lat = max(min(lat, 85.0), -85.0)
    return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def view(bounds: Bounds, pad: float = 0.08) -> tuple[tuple[float, float], int]:
    """Centre and zoom that fit ``bounds`` (plus ``pad`` each side) into the map."""
    lon0, lat0, lon1, lat1 = bounds
    center = ((lat0 + lat1) / 2, (lon0 + lon1) / 2)
    span_x = max(lon1 - lon0, 1e-7) * (1 + 2 * pad) / 360
    span_y = max(_mercator_y(lat1) - _mercator_y(lat0), 1e-9) * (1 + 2 * pad) / (2 * math.pi)
    zoom_x = math.log2(ASSUMED_WIDTH / (256 * span_x))
    zoom_y = math.log2(MAP_HEIGHT / (256 * span_y))
    return center, int(max(1, min(MAX_ZOOM - 1, math.floor(min(zoom_x, zoom_y)))))


def hits_view(hits: list[Hit], focus: str | None) -> Bounds | None:
    """What the map should show: the focused hit, else the hits in the best hit's scene.

    Hits of several scenes can be continents apart; fitting all of them shows nothing.
    """
    focused = [h for h in hits if str(TileRef.of(h)) == focus]
    if focused:
        lon0, lat0, lon1, lat1 = focused[0].bounds
        pad_x, pad_y = (lon1 - lon0) * FOCUS_CONTEXT, (lat1 - lat0) * FOCUS_CONTEXT
        return (lon0 - pad_x, lat0 - pad_y, lon1 + pad_x, lat1 + pad_y)
    if not hits:
        return None
    return union(h.bounds for h in hits if h.scene == hits[0].scene)


def _near(a: Bounds, b: Bounds) -> bool:
    """Whether box ``b`` lies within one width or height of box ``a``."""
    dx, dy = a[2] - a[0], a[3] - a[1]
    return b[0] <= a[2] + dx and b[2] >= a[0] - dx and b[1] <= a[3] + dy and b[3] >= a[1] - dy


def scenes_view(boxes: list[Bounds]) -> Bounds | None:
    """The first scene and the scenes near it: far-apart scenes fitted together are dots."""
    if not boxes:
        return None
    return union(b for b in boxes if _near(boxes[0], b))


def fit_box(
    hits: list[Hit],
    focus: tuple[str, str] | None,
    scenes: dict[str, Bounds],
    selected: list[str],
) -> Bounds | None:
    """What the map is fitted to: the scene or hit zoomed to, else the hits, else the scenes.

    Without hits, the selected scenes (all when none is) are fitted, as ``scenes_view``.
    """
    kind, target = focus or ("", "")
    if kind == "scene" and target in scenes:
        return scenes[target]
    names = [name for name in selected if name in scenes] or list(scenes)
    return hits_view(hits, target if kind == "hit" else None) or scenes_view(
        [scenes[name] for name in names]
    )


def _image_overlay(overlay: Overlay) -> folium.raster_layers.ImageOverlay:
    lon0, lat0, lon1, lat1 = overlay.bounds
    return folium.raster_layers.ImageOverlay(
        image=overlay.url,
        bounds=[[lat0, lon0], [lat1, lon1]],
        opacity=overlay.opacity,
        name=overlay.name,
        interactive=False,
    )


def base_map(scenes: list[Overlay], osm: bool) -> folium.Map:
    """Map of the scene quicklooks, centred on them; OpenStreetMap underneath when asked."""
    box = scenes_view([o.bounds for o in scenes]) or (-10.0, 30.0, 30.0, 60.0)
    center, zoom = view(box)
    fmap = OfflineMap(
        location=center,
        zoom_start=zoom,
        tiles=None,
        control_scale=True,
        max_zoom=MAX_ZOOM,
        double_click_zoom=False,
        zoom_snap=ZOOM_SNAP,
    )
    if osm:
        folium.TileLayer(
            "OpenStreetMap", name="OpenStreetMap", max_zoom=MAX_ZOOM, max_native_zoom=19
        ).add_to(fmap)
    for overlay in scenes:
        _image_overlay(overlay).add_to(fmap)
    return fmap


def rank_colour(rank: int, count: int) -> str:
    """Hex colour of a rank on the warm-to-cool ramp."""
    t = (rank - 1) / max(count - 1, 1)
    position = t * (len(RAMP) - 1)
    i = min(int(position), len(RAMP) - 2)
    frac = position - i
    r, g, b = (round(a + (c - a) * frac) for a, c in zip(RAMP[i], RAMP[i + 1], strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def popup_html(hit: Hit, thumb_url: str | None) -> str:
    """Popup of a hit: thumbnail, rank, score and scene (all text escaped)."""
    picture = (
        f'<img src="{thumb_url}" width="160" height="160" alt="tile {hit.tile_id}">'
        if thumb_url
        else '<div class="ss-missing">source file not found</div>'
    )
    return (
        f'<div class="ss-pop">{picture}'
        f"<div><b>#{hit.rank}</b> · score {hit.score:.3f}</div>"
        f"<div>{html.escape(hit.scene)} · tile {hit.tile_id} · {hit.scale} px</div></div>"
    )


def hits_layer(
    hits: list[Hit],
    thumbs: dict[str, str | None],
    marks: dict[str, str],
    overlays: Iterable[Overlay] = (),
    fit: FitBounds | None = None,
) -> folium.FeatureGroup:
    """Numbered footprints coloured by rank over optional heat maps, and the view to fit.

    Marked hits are drawn solid (relevant) or dashed (not relevant).
    """
    group = folium.FeatureGroup(name="Hits")
    if fit is not None:
        fit.add_to(group)
    for overlay in overlays:
        _image_overlay(overlay).add_to(group)
    for hit in reversed(hits):  # rank 1 drawn last, on top
        key = str(TileRef.of(hit))
        colour = rank_colour(hit.rank, len(hits))
        mark = marks.get(key)
        lon0, _, _, lat1 = hit.bounds
        ring = [(lat, lon) for lon, lat in hit.geometry.exterior.coords]
        folium.Polygon(
            ring,
            color=colour,
            weight=4 if mark == "relevant" else 2.5,
            dash_array="6 6" if mark == "irrelevant" else None,
            fill=True,
            fill_color=colour,
            fill_opacity=0.08 if mark == "irrelevant" else 0.18,
            tooltip=f"#{hit.rank} · {hit.score:.3f}",
        ).add_child(HtmlPopup(popup_html(hit, thumbs.get(key)))).add_to(group)
        folium.Marker(
            (lat1, lon0),
            icon=folium.DivIcon(
                html=f'<div class="ss-rank" style="background:{colour}">{hit.rank}</div>',
                icon_size=(24, 24),
                icon_anchor=(0, 0),
                class_name="ss-rank-icon",
            ),
            interactive=False,  # a click on the number reaches the footprint and its popup
        ).add_to(group)
    return group
