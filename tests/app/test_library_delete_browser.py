"""Deleting a scene in headless Chromium: the confirm box closes and names what went.

The confirm box is a popover per row; before it was keyed by scene name, deleting a row in
the middle left the box open on the next scene, one click from deleting it too.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.browser import CHROMIUM, ROOT, serve_app, watched_page
from core.store.workspace import Workspace
from tests.app.conftest import SMALL_NAME

pytestmark = pytest.mark.slow
SCREENSHOT = ROOT / "tests" / "screenshots" / "library-delete-failure.png"
SCENES = ["naip_2009", "naip_2015", "naip_2020"]  # the Library lists them in this order


@pytest.fixture
def app_url(ready_env: Workspace, checkpoint: Path, tmp_path: Path) -> Iterator[str]:
    """The app on a workspace holding three copies of the small scene."""
    for name in SCENES:
        folder = ready_env.scenes_dir / name
        shutil.copytree(ready_env.scenes_dir / SMALL_NAME, folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        (folder / "manifest.json").write_text(json.dumps({**manifest, "name": name}))
    shutil.rmtree(ready_env.scenes_dir / SMALL_NAME)
    env = {
        "SCENESEEK_WORKSPACE": str(ready_env.root),
        "SCENESEEK_IMPORT_DIR": str(tmp_path / "import"),
        "SCENESEEK_MODEL": str(checkpoint),
    }
    with serve_app(env, tmp_path / "streamlit.log") as url:
        yield url


def test_deleting_the_middle_scene_closes_the_box_and_names_it(
    app_url: str, ready_env: Workspace
) -> None:
    from playwright.sync_api import expect

    if not CHROMIUM.exists():
        pytest.fail("install Chromium: apt-get install -y chromium")
    with watched_page(app_url, SCREENSHOT) as (page, foreign):
        page.goto(app_url)
        boxes = page.get_by_test_id("stPopoverButton").filter(visible=True)  # one per row
        expect(boxes).to_have_count(3, timeout=60_000)
        boxes.nth(1).click()
        confirm = page.get_by_text("and its index?")
        expect(confirm).to_have_text("Delete naip_2015 and its index? Marks are kept.")
        page.get_by_role("button", name="Delete", exact=True).click()

        deleted = page.get_by_text("Deleted naip_2015.")
        expect(deleted).to_be_visible(timeout=30_000)
        expect(boxes).to_have_count(2, timeout=10_000)
        page.wait_for_timeout(4_500)  # two refreshes of the live scene list
        expect(confirm).to_have_count(0)  # no box left open, on naip_2020 or any other
        expect(page.get_by_role("button", name="Delete", exact=True)).to_have_count(0)
        expect(deleted).to_be_visible()  # the refreshes keep the notice a while
    assert foreign == [], f"requests left the machine: {foreign}"
    assert ready_env.scene_names() == ["naip_2009", "naip_2020"]
