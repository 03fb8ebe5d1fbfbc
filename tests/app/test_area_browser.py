"""Area of interest in headless Chromium: draw a rectangle on the map, search inside it.

The drawing tools (Leaflet.draw) must come from the app itself: the test fails on any
request to another host.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from shapely.geometry import shape

from bench.browser import CHROMIUM, ROOT, map_frame, serve_app, watched_page
from core.store.workspace import Workspace

pytestmark = pytest.mark.slow
SCREENSHOT = ROOT / "tests" / "screenshots" / "search-aoi.png"


@pytest.fixture
def app_url(ready_env: Workspace, checkpoint: Path, tmp_path: Path) -> Iterator[str]:
    env = {
        "SCENESEEK_WORKSPACE": str(ready_env.root),
        "SCENESEEK_IMPORT_DIR": str(tmp_path / "import"),
        "SCENESEEK_MODEL": str(checkpoint),
    }
    with serve_app(env, tmp_path / "streamlit.log") as url:
        yield url


def test_draw_a_rectangle_and_search_inside_it(app_url: str) -> None:
    if not CHROMIUM.exists():
        pytest.fail("install Chromium: apt-get install -y chromium")
    with watched_page(app_url, SCREENSHOT.with_name("failure.png")) as (page, foreign):
        features, area = draw_and_search(page, app_url)
    assert foreign == [], f"requests left the machine: {foreign}"
    assert len(features) == 10
    assert all(shape(f["geometry"]).intersects(area) for f in features)


def outlines(page, expected: int = 1, timeout_s: float = 30) -> int:  # noqa: ANN001
    """Area outlines on the current map (the old map may linger a moment after a remount)."""
    from playwright.sync_api import Error

    deadline = time.time() + timeout_s
    while True:
        frame = map_frame(page)
        try:
            count = frame.locator("path.ss-area").count()
        except Error:  # the old map went while we looked
            count = -1
        if count == expected or time.time() > deadline:
            return count
        page.wait_for_timeout(200)


def draw_and_search(page, url: str) -> tuple[list[dict], object]:  # noqa: ANN001
    """Search, drag a rectangle over the scene's west half, and export the new hits."""
    from playwright.sync_api import expect

    page.goto(f"{url}/search")
    query = page.get_by_label("Describe what to find")
    expect(query).to_be_visible(timeout=60_000)
    query.fill("a road between trees")
    query.press("Enter")
    frame = map_frame(page)
    expect(frame.locator(".ss-rank")).to_have_count(10, timeout=30_000)
    page.wait_for_timeout(1000)  # the fit's zoom animation
    frame.locator(".ss-rank", has_text=re.compile(r"^1$")).click(force=True)  # a hit's popup
    expect(frame.locator(".ss-pop")).to_be_visible(timeout=10_000)
    page.wait_for_timeout(1500)
    expect(page.get_by_text("inside an area of")).to_have_count(0)  # a click draws nothing
    frame.locator("a.leaflet-draw-draw-rectangle").click()
    scene = frame.locator("img.leaflet-image-layer").first.bounding_box()
    shown = frame.locator(".leaflet-container").bounding_box()
    # From the middle of the scene to its south-east corner, clear of the drawing toolbar.
    left, top = scene["x"] + scene["width"] * 0.4, scene["y"] + scene["height"] * 0.3
    right = min(scene["x"] + scene["width"], shown["x"] + shown["width"]) - 4
    bottom = min(scene["y"] + scene["height"], shown["y"] + shown["height"]) - 4
    page.mouse.move(left, top)
    page.mouse.down()
    page.mouse.move(right, bottom, steps=12)
    page.mouse.up()
    expect(page.get_by_text("inside an area of")).to_be_visible(timeout=30_000)
    assert outlines(page) == 1  # a new map, with the area drawn from the page's state
    expect(page.get_by_role("button", name="Clear area")).to_be_visible()
    page.mouse.move(5, 5)  # no hit's tooltip in the picture
    page.wait_for_timeout(1500)
    page.screenshot(path=SCREENSHOT)
    with page.expect_download() as download:
        page.get_by_role("button", name="GeoJSON").click()
    collection = json.loads(Path(download.value.path()).read_text())
    area = shape(collection["properties"]["query"]["area"])

    page.get_by_role("button", name="Clear area").click()  # one click: everywhere again
    expect(page.get_by_text("inside an area of")).to_have_count(0, timeout=30_000)
    assert outlines(page, 0) == 0
    return collection["features"], area
