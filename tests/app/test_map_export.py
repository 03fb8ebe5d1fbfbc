"""Map building (offline assets, escaping, view) and hit exports, without a browser."""

from __future__ import annotations

import csv
import io
import json
import re

from shapely.geometry import box
from streamlit_folium import _get_feature_group_string

from app import export
from app import map as mapping
from core.search.results import Hit, SearchResult


def hits(n: int = 3) -> list[Hit]:
    return [
        Hit(
            rank=i + 1,
            score=0.5 - i / 10,
            scene="scene<b>",
            tile_id=i,
            scale=256,
            window=(i * 256, 0, 256, 256),
            geometry=box(-122.26 + i * 0.002, 37.87, -122.258 + i * 0.002, 37.872),
        )
        for i in range(n)
    ]


def test_map_loads_only_local_assets() -> None:
    fmap = mapping.base_map(
        [mapping.Overlay("data:image/webp;base64,AA==", (0, 0, 1, 1), "s")], True
    )
    layer = mapping.hits_layer(hits(), {}, {})
    script = _get_feature_group_string(layer, fmap)
    assets = [src for _, src in fmap.default_js + fmap.default_css]
    assert assets == [
        "/app/static/leaflet/leaflet.js",
        "/app/static/leaflet/leaflet.css",
        "/app/static/map.css",
    ]
    for element in fmap._children.values():
        assert not getattr(element, "default_js", []) and not getattr(element, "default_css", [])
    urls = re.findall(r"https?://[^\s\"'`]+", script)
    assert urls == []
    assert "$(" not in script  # no jQuery: popups are bound by Leaflet itself


def test_hits_are_numbered_escaped_and_coloured_by_rank() -> None:
    fmap = mapping.base_map([], False)
    script = _get_feature_group_string(
        mapping.hits_layer(hits(), {}, {"scene<b>:1": "irrelevant"}), fmap
    )
    for rank in (1, 2, 3):
        assert "ss-rank" in script and f"\\u003e{rank}\\u003c/div\\u003e" in script
    assert "scene<b>" not in script and "scene\\u0026lt;b\\u0026gt;" in script
    assert '"dashArray": "6 6"' in script
    assert mapping.rank_colour(1, 10) == "#d7301f" and mapping.rank_colour(10, 10) == "#4575b4"


def test_view_fits_the_best_scene_or_the_focused_hit() -> None:
    found = hits()
    far = Hit(4, 0.1, "other", 0, 256, (0, 0, 256, 256), box(10.0, 50.0, 10.01, 50.01))
    bounds = mapping.hits_view([*found, far], None)
    assert bounds == mapping.union(h.bounds for h in found)
    (lat, lon), zoom = mapping.view(bounds)
    assert 37.87 < lat < 37.872 and -122.26 < lon < -122.252 and 14 <= zoom <= 19
    focused = mapping.hits_view([*found, far], "other:0")
    assert focused[0] < 10.0 and focused[2] > 10.01
    assert mapping.hits_view([], None) is None


def test_fit_box_prefers_zoom_then_hits_then_nearby_scenes() -> None:
    found = hits()
    here = (-122.27, 37.86, -122.25, 37.88)
    near = (-122.25, 37.86, -122.23, 37.88)
    far = (10.0, 50.0, 10.1, 50.1)
    scenes = {"here": here, "near": near, "far": far}
    assert mapping.fit_box(found, None, scenes, []) == mapping.union(h.bounds for h in found)
    assert mapping.fit_box(found, ("scene", "far"), scenes, []) == far
    assert mapping.fit_box([], None, scenes, []) == mapping.union([here, near])  # not the world
    assert mapping.fit_box([], None, scenes, ["far", "gone"]) == far
    assert mapping.fit_box([], ("scene", "gone"), {}, []) is None


def test_the_view_travels_with_the_hits_and_fits_once_per_view() -> None:
    fmap = mapping.base_map([], False)
    fit = mapping.FitBounds((-122.26, 37.87, -122.25, 37.88), "7-0-box")
    script = _get_feature_group_string(mapping.hits_layer(hits(), {}, {}, (), fit), fmap)
    assert "map_div.fitBounds(" in script  # the map streamlit-folium keeps, not a new one
    assert "fitBounds([[37.87, -122.26], [37.88, -122.25]]" in script
    assert "paddingTopLeft: [56, 24]" in script  # clear of the zoom buttons
    assert 'window.ssView !== "7-0-box"' in script
    assert '"zoomSnap": 0.1' in fmap.get_root().render()


def test_exports_carry_every_hit_with_its_query_and_mark() -> None:
    result = SearchResult({"text": "Tennis courts / pools!"}, "amfmn-x", hits(4))
    marks = {"scene<b>:1": "relevant", "scene<b>:2": "irrelevant"}
    collection = json.loads(export.geojson_bytes(result, marks))
    assert len(collection["features"]) == 4
    props = [f["properties"] for f in collection["features"]]
    assert props[0]["rank"] == 1 and props[0]["mark"] is None
    assert [p["mark"] for p in props[1:3]] == ["relevant", "irrelevant"]
    assert {(p["query_kind"], p["query"]) for p in props} == {("text", "Tennis courts / pools!")}
    rows = list(csv.DictReader(io.StringIO(export.csv_bytes(result, marks).decode())))
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4]
    assert [r["mark"] for r in rows] == ["", "relevant", "irrelevant", ""]
    assert rows[0]["query"] == "Tennis courts / pools!" and rows[0]["wkt"].startswith("POLYGON")
    assert export.file_stem(result) == "sceneseek-tennis-courts-pools"
    tile = SearchResult({"tile": "naip:7", "refined": {"relevant": 1}}, "amfmn-x", hits(1))
    (row,) = csv.DictReader(io.StringIO(export.csv_bytes(tile, {}).decode()))
    assert (row["query_kind"], row["query"]) == ("tile", "naip:7")
