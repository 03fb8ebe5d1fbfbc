"""The Fine-tune page in headless Chromium with no research datasets installed.

An analyst's machine has the app and its workspace, nothing else: ``SCENESEEK_DATA`` points
at an empty folder. The page says what trains and what is held out, fine-tunes in the
background, shows the guard's numbers before and after, and promotes the new version.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.browser import CHROMIUM, CHROMIUM_ARGS, ROOT, serve_app, watch_foreign
from core.jobs import list_jobs
from core.model.versions import ModelRegistry
from core.store.feedback import Mark, SQLiteFeedback
from core.store.manifest import SceneManifest
from core.store.workspace import Workspace
from tests.app.conftest import SMALL_NAME, finished

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::ResourceWarning")]

QUERY = "dense trees"
SCREENSHOT = ROOT / "tests" / "screenshots" / "finetune.png"


@pytest.fixture
def app_url(tmp_path: Path, checkpoint: Path, ingested: Path) -> Iterator[tuple[str, Workspace]]:
    """The app on a copy of the ingested scene, with marks for one query and no datasets."""
    ws = Workspace(tmp_path / "workspace")
    shutil.copytree(ingested, ws.root)
    store = SQLiteFeedback(ws.feedback_db)
    for tile in (2, 9, 17, 30):
        store.mark(Mark("text", QUERY, SMALL_NAME, tile, "relevant"))
    for tile in (5, 40, 41):
        store.mark(Mark("text", QUERY, SMALL_NAME, tile, "irrelevant"))
    (tmp_path / "no-datasets").mkdir()
    env = {
        "SCENESEEK_WORKSPACE": str(ws.root),
        "SCENESEEK_IMPORT_DIR": str(tmp_path / "import"),
        "SCENESEEK_MODEL": str(checkpoint),
        "SCENESEEK_DATA": str(tmp_path / "no-datasets"),
        # 60 tiles: a top 10 is a sixth of the scene, so generic queries' top 10 moves more
        # than in a real workspace; the guard's default is tested in test_finetune_page.py
        "SCENESEEK_GUARD_TOP10_OVERLAP": "0.5",
    }
    with serve_app(env, tmp_path / "streamlit.log") as url:
        yield url, ws


def test_fine_tune_and_promote_without_datasets(app_url: tuple[str, Workspace]) -> None:
    from playwright.sync_api import expect, sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("install Chromium: apt-get install -y chromium")
    url, ws = app_url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1400})
        foreign = watch_foreign(page, url)
        try:
            page.goto(url)
            page.get_by_role("link", name="Fine-tune").click()
            expect(page.get_by_text("3 relevant marks and captions train")).to_be_visible(
                timeout=60_000
            )
            steps = page.get_by_label("Steps")
            steps.fill("10")
            steps.press("Enter")
            page.get_by_role("button", name="Fine-tune", exact=True).click()
            expect(page.get_by_text("Fine-tuning: done, v1 registered")).to_be_visible(
                timeout=300_000
            )
            # the before/after table is a canvas grid: its cells are in the DOM, not visible
            expect(page.get_by_text("held-out precision@10 · dense trees")).to_be_attached(
                timeout=30_000
            )
            expect(page.get_by_text("generic queries: top 10 kept")).to_be_attached()
            page.screenshot(path=SCREENSHOT, full_page=True)
            page.get_by_role("button", name="Promote", exact=True).click()
            expect(page.get_by_text("Bringing the scenes to the active model")).to_be_visible(
                timeout=30_000
            )
            (job,) = [j for j in list_jobs(ws) if j.kind == "refresh"]
            refreshed = finished(ws, job.id)
            body = page.locator("body").inner_text()
        except Exception:
            page.screenshot(path=SCREENSHOT.with_name("failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert "not installed" not in body
    assert foreign == [], f"requests left the machine: {foreign}"
    assert refreshed.status == "done", refreshed.error
    active = ModelRegistry(ws).active()
    assert active.version == 1
    assert SceneManifest.load(ws.scene(SMALL_NAME).manifest).model == active.tag
