"""Search page with an area of interest (AppTest): upload, results inside it, header, clear."""

from __future__ import annotations

import json

from shapely.geometry import box, mapping, shape
from streamlit.testing.v1 import AppTest

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
