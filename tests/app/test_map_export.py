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


def test_exports_carry_every_hit() -> None:
    result = SearchResult({"text": "Tennis courts / pools!"}, "amfmn-x", hits(4))
    collection = json.loads(export.geojson_bytes(result))
    assert len(collection["features"]) == 4
    assert collection["features"][0]["properties"]["rank"] == 1
    rows = list(csv.DictReader(io.StringIO(export.csv_bytes(result).decode())))
    assert [int(r["rank"]) for r in rows] == [1, 2, 3, 4]
    assert export.file_stem(result) == "sceneseek-tennis-courts-pools"
