"""Search page with an area of interest (AppTest): upload, results inside it, header, clear;
areas too large, malformed or too detailed."""

from __future__ import annotations

import json

from shapely.geometry import box, mapping, shape
from streamlit.testing.v1 import AppTest

from bench.saw_tooth import saw_tooth
from core.store.workspace import Workspace
from tests.app.conftest import SMALL_NAME
from tests.app.test_search_page import ask, errors, search_page, summary
from tiles import read_catalog

QUERY = "a road between trees"


def west_half(ws: Workspace) -> dict:
    lon0, lat0, lon1, lat1 = read_catalog(ws.scene(SMALL_NAME).catalog).total_bounds
    return mapping(box(lon0, lat0, (lon0 + lon1) / 2, lat1))


def upload_area(at: AppTest, content: bytes, name: str = "area.geojson") -> AppTest:
    nonce = at.session_state["area_nonce"]
    at.file_uploader(key=f"area_upload-{nonce}").upload(name, content, "application/geo+json")
    at.run()
    assert not at.exception, at.exception
    return at


def test_an_uploaded_area_limits_the_hits_and_is_cleared_in_one_click(
    ready_env: Workspace,
) -> None:
    at = ask(search_page(), QUERY)
    everywhere = at.session_state["result"]
    area = shape(west_half(ready_env))
    assert any(not h.geometry.intersects(area) for h in everywhere.hits)
    upload_area(at, json.dumps({"type": "Feature", "geometry": west_half(ready_env)}).encode())
    result = at.session_state["result"]
    assert result is not everywhere and len(result.hits) == 10  # searched again, k hits
    assert all(h.geometry.intersects(area) for h in result.hits)
    assert at.session_state["search_area"].geometry.equals(area)
    assert "inside an area of" in summary(at)
    assert shape(result.query["area"]).equals(area)  # exports carry it
    clear = next(b for b in at.button if b.label == "Clear area")
    clear.click().run()
    assert at.session_state["search_area"] is None
    assert "inside" not in summary(at)
    again = at.session_state["result"]
    assert [h.tile_id for h in again.hits] == [h.tile_id for h in everywhere.hits]
    assert not any(b.label == "Clear area" for b in at.button)


def test_an_unusable_upload_says_why_and_keeps_the_results(ready_env: Workspace) -> None:
    at = ask(search_page(), QUERY)
    result = at.session_state["result"]
    upload_area(at, b'{"type": "Point", "coordinates": [0, 0]}', "point.geojson")
    assert "point.geojson cannot be used as an area: the area is a Point" in errors(at)
    assert at.session_state["search_area"] is None and at.session_state["result"] is result


def test_an_area_over_the_size_limit_is_refused_by_the_server(ready_env: Workspace) -> None:
    """The uploader's 5 MB is the browser's check; the server refuses 16 MB on its own."""
    at = ask(search_page(), QUERY)
    result = at.session_state["result"]
    padded = {"type": "Feature", "properties": {"note": "x" * 16 * 2**20}}
    big = json.dumps({**padded, "geometry": west_half(ready_env)}).encode()
    upload_area(at, big, "big.geojson")
    assert (
        "big.geojson cannot be used as an area: the area's GeoJSON takes 16.0 MB, more than "
        "the 5 MB an area may take (SCENESEEK_AREA_MAX_MB)" in errors(at)
    )
    assert at.session_state["search_area"] is None and at.session_state["result"] is result


def test_an_area_with_a_nan_corner_says_why(ready_env: Workspace) -> None:
    at = ask(search_page(), QUERY)
    lon0, lat0, lon1, lat1 = shape(west_half(ready_env)).bounds
    ring = f"[[{lon0}, {lat0}], [{lon1}, NaN], [{lon1}, {lat1}], [{lon0}, {lat0}]]"
    upload_area(at, f'{{"type": "Polygon", "coordinates": [{ring}]}}'.encode(), "nan.geojson")
    assert "nan.geojson cannot be used as an area: the area has a coordinate that is not a" in (
        errors(at)
    )
    assert at.session_state["search_area"] is None


def test_a_saw_tooth_area_is_simplified_and_searched(ready_env: Workspace) -> None:
    at = ask(search_page(), QUERY)
    bounds = shape(west_half(ready_env)).bounds
    upload_area(at, json.dumps(saw_tooth(bounds, 10_004)).encode(), "teeth.geojson")
    area = at.session_state["search_area"]
    assert area.simplified_from == 10_004 and area.vertices <= 10_000
    result = at.session_state["result"]
    assert result.hits and all(h.geometry.intersects(area.geometry) for h in result.hits)
    assert f"(simplified from 10,004 to {area.vertices:,} vertices)" in summary(at)
