"""End to end in headless Chromium: upload, ingest, search by text and image, mark, export.

Also what only a browser shows: the map fitted to the hits, the gallery starting at the top
for a new result, the heat map of an image query, and the page kept across a visit.

Runs the real app (`streamlit run app/Home.py`) on a free local port with a temporary
workspace and fails if the browser requests anything from a host other than the app.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.browser import CHROMIUM, CHROMIUM_ARGS, ROOT, map_frame, serve_app, watch_foreign
from core.store.feedback import SQLiteFeedback
from tests.conftest import DATA_ROOT

pytestmark = pytest.mark.slow

SCENE = DATA_ROOT / "scenes" / "berkeley_z17_webmercator_naip.tif"
EXAMPLE = DATA_ROOT / "ucm" / "images" / "100.jpg"
SCREENSHOTS = ROOT / "tests" / "screenshots"
GALLERY = "[class*='st-key-gallery-']"  # the scroll box of the hit cards, new for each result
FITTED = """() => {
    const map = document.querySelector('.leaflet-container').getBoundingClientRect();
    const hits = [...document.querySelectorAll('path.leaflet-interactive')]
        .map(p => p.getBoundingClientRect());
    return {map: [map.left, map.top, map.right, map.bottom],
            hits: [Math.min(...hits.map(b => b.left)), Math.min(...hits.map(b => b.top)),
                   Math.max(...hits.map(b => b.right)), Math.max(...hits.map(b => b.bottom))]};
}"""


@pytest.fixture
def app_url(tmp_path: Path, checkpoint: Path) -> Iterator[tuple[str, Path]]:
    """The app served from a subprocess, with its own workspace."""
    workspace = tmp_path / "workspace"
    env = {
        "SCENESEEK_WORKSPACE": str(workspace),
        "SCENESEEK_IMPORT_DIR": str(tmp_path / "import"),
        "SCENESEEK_MODEL": str(checkpoint),
    }
    try:
        with serve_app(env, tmp_path / "streamlit.log") as url:
            yield url, workspace
    finally:
        subprocess.run(
            [sys.executable, "-m", "core", "jobs", "list", "--workspace", str(workspace)],
            cwd=ROOT,
            check=False,
        )


def test_analyst_session(app_url: tuple[str, Path]) -> None:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("install Chromium: apt-get install -y chromium")
    url, workspace = app_url
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100}, accept_downloads=True)
        foreign = watch_foreign(page, url)
        try:
            seconds = analyst(page, url, workspace)
        except Exception:
            page.screenshot(path=SCREENSHOTS / "failure.png")
            raise
        finally:
            browser.close()
    assert foreign == [], f"requests left the machine: {foreign}"
    assert seconds < 5, f"text query took {seconds:.1f} s to reach the map"


def analyst(page, url: str, workspace: Path) -> float:  # noqa: ANN001 - playwright page
    """Drive the app as an analyst would; returns seconds from Enter to hits on the map."""
    from playwright.sync_api import expect

    page.goto(url)

    # Library: upload a scene and wait for the background job to finish.
    expect(page.get_by_text("No scenes yet")).to_be_visible(timeout=30_000)
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(SCENE)
    remove = page.get_by_role("button", name=f"Remove {SCENE.name}")
    expect(remove).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Add scene").click()
    job = page.get_by_text("Ingesting berkeley_z17_webmercator_naip", exact=True)
    expect(job).to_be_visible(timeout=30_000)  # the live job panel
    page.wait_for_timeout(3000)
    page.screenshot(path=SCREENSHOTS / "library-ingesting.png")
    page.reload()  # a new session finds the job (or its result) again
    expect(page.get_by_text("ready", exact=True)).to_be_visible(timeout=120_000)
    page.screenshot(path=SCREENSHOTS / "library.png")

    # Text query: numbered hits on the map, quickly once the model is loaded.
    page.get_by_role("link", name="Search").click()
    query = page.get_by_label("Describe what to find")
    expect(query).to_be_visible(timeout=60_000)
    query.fill("a stadium next to a parking lot")
    started = time.time()
    query.press("Enter")
    frame = map_frame(page)
    seconds = time.time() - started
    assert frame.locator(".ss-rank").count() == 10
    assert frame.locator("path.leaflet-interactive").count() == 10
    assert frame.locator("img.leaflet-image-layer").count() == 1  # the scene quicklook
    print(f"text query: hits on the map after {seconds:.2f} s")
    page.wait_for_timeout(1000)  # the fit's zoom animation
    box = frame.evaluate(FITTED)
    (left, top, right, bottom), (h_left, h_top, h_right, h_bottom) = box["map"], box["hits"]
    assert left < h_left and top < h_top and h_right < right and h_bottom < bottom, box
    filled = max((h_right - h_left) / (right - left), (h_bottom - h_top) / (bottom - top))
    assert filled > 0.75, f"the hits fill {filled:.0%} of the map: {box}"
    top = frame.locator(".ss-rank", has_text=re.compile(r"^1$"))
    top.click(force=True)  # through the label to the footprint under it
    expect(frame.locator(".ss-pop img")).to_be_visible(timeout=10_000)

    # Mark the first hit relevant: stored in the workspace's SQLite.
    page.locator("[class*=st-key-relevant-] button").first.click()
    expect(page.get_by_text("✓ relevant")).to_be_visible(timeout=15_000)
    (mark,) = SQLiteFeedback(workspace / "feedback.sqlite").marks()
    assert (mark.query_kind, mark.query) == ("text", "a stadium next to a parking lot")
    assert mark.label == "relevant" and mark.scene == "berkeley_z17_webmercator_naip"

    # Export the hits as GeoJSON.
    with page.expect_download() as download:
        page.get_by_role("button", name="GeoJSON").click()
    collection = json.loads(Path(download.value.path()).read_text())
    assert len(collection["features"]) == 10
    page.wait_for_timeout(1000)
    page.screenshot(path=SCREENSHOTS / "search.png")

    # Heat map of the text query over the scene, without remounting the map.
    page.get_by_text("Heat map").click()
    expect(frame.locator("img.leaflet-image-layer")).to_have_count(2, timeout=30_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=SCREENSHOTS / "search-heat.png")

    # Image query, the gallery scrolled down: new hits start at #1, with their heat map.
    page.locator(GALLERY).evaluate("box => box.scrollTop = box.scrollHeight")
    assert page.locator(GALLERY).evaluate("box => box.scrollTop") > 500
    page.screenshot(path=SCREENSHOTS / "search-scrolled.png")
    page.locator("[data-testid=stFileUploaderDropzoneInput]").set_input_files(EXAMPLE)
    expect(page.get_by_text(f"example image {EXAMPLE.name}")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("✓ relevant")).to_have_count(0, timeout=15_000)  # new hits
    assert map_frame(page).locator(".ss-rank").count() == 10
    expect(page.locator(GALLERY)).to_have_count(1)
    assert page.locator(GALLERY).evaluate("box => box.scrollTop") == 0
    expect(frame.locator("img.leaflet-image-layer")).to_have_count(2, timeout=30_000)  # + heat
    assert page.get_by_label("Describe what to find").input_value() == ""  # not the old text
    page.wait_for_timeout(1500)
    page.screenshot(path=SCREENSHOTS / "search-image.png")

    # A visit to the Library (its 2-second refresh runs) keeps the Search page as it was.
    page.get_by_role("link", name="Library").click()
    page.wait_for_timeout(3000)
    page.get_by_role("link", name="Search").click()
    expect(page.get_by_text(f"example image {EXAMPLE.name}")).to_be_visible(timeout=30_000)
    expect(page.get_by_label("Heat map", exact=True)).to_be_checked()
    return seconds
