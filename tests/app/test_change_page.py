"""Change page through Streamlit's AppTest: the small NAIP crop and a later copy of it."""

from __future__ import annotations

import json
import shutil
import time
from functools import partial
from pathlib import Path

import pytest

from app import export
from bench.change_pair import Edit, edited_copy, storage_tank_images
from core.jobs import get_job, list_jobs
from core.store.pairs import pair_dir
from core.store.workspace import Workspace
from tests.app.conftest import SMALL_NAME, SMALL_SCENE, SMALL_TILING, open_page

TIMEOUT = 180
LATER = "naip_later"

change_page = partial(open_page, "views/change.py", TIMEOUT)


@pytest.fixture(scope="session")
def two_dates(tmp_path_factory: pytest.TempPathFactory, ingested: Path) -> Path:
    """The ingested crop and a later date of it (colours shifted, a storage tank pasted)."""
    from core.ingest.embed.mapper import TileEmbedder
    from core.ingest.pipeline import IngestOptions, ingest
    from core.model.loading import load_model
    from tiles import TilingConfig

    folder = tmp_path_factory.mktemp("two-dates")
    shutil.copytree(ingested, folder / "ws")
    ws = Workspace(folder / "ws")
    (tank,) = storage_tank_images(1)
    later = edited_copy(
        SMALL_SCENE, folder / "later.tif", Edit(pastes=((64, 64, tank),), paste_px=64)
    )
    loaded = load_model(ws)
    options = IngestOptions(tiling=TilingConfig(**SMALL_TILING), workers=0)
    ingest(later, ws, TileEmbedder(loaded.model, loaded.device), loaded.tag, LATER, options)
    return ws.root


@pytest.fixture
def pair_env(env: Workspace, two_dates: Path) -> Workspace:
    shutil.copytree(two_dates, env.root)
    return env


def test_one_scene_is_not_a_pair(ready_env: Workspace) -> None:
    at = change_page()
    assert "add both dates in the Library" in at.info[0].value


@pytest.mark.slow
def test_compare_then_biggest_changes_and_new_by_text(pair_env: Workspace) -> None:
    at = change_page()
    assert at.selectbox(key="change_before").value == SMALL_NAME  # dated alike: by name
    assert at.selectbox(key="change_after").value == LATER
    compare = next(b for b in at.button if b.label == "Compare these dates")
    compare.click().run()
    assert not at.exception, at.exception
    (job,) = [j for j in list_jobs(pair_env) if j.kind == "align"]  # in the background
    deadline = time.time() + TIMEOUT
    while get_job(pair_env, job.id).active and time.time() < deadline:
        time.sleep(0.5)
    assert get_job(pair_env, job.id).status == "done", get_job(pair_env, job.id).error
    at.run()
    assert pair_dir(pair_env, SMALL_NAME, LATER).read_manifest().ready
    result = at.session_state["change_result"]
    assert result.kind == "change" and len(result.hits) == 10
    assert result.before == SMALL_NAME and result.after == LATER
    assert all(h.scene == LATER for h in result.hits)
    assert len(at.image) == 2 * len(result.hits)  # both dates side by side
    at.text_input(key="change_text").input("storage tanks").run()
    result = at.session_state["change_result"]
    assert result.kind == "text" and result.query["direction"] == "new"
    assert all(h.after_score is not None for h in result.hits)
    at.radio(key="change_direction").set_value("gone").run()
    assert at.session_state["change_result"].query["direction"] == "gone"
    assert {d.label for d in at.download_button} == {"GeoJSON", "CSV"}
    exported = json.loads(export.geojson_bytes(at.session_state["change_result"], {}))
    assert exported["properties"]["pair"]["before"]["scene"] == SMALL_NAME


@pytest.mark.slow
def test_the_same_scene_twice_is_refused(pair_env: Workspace) -> None:
    at = change_page()
    at.selectbox(key="change_after").set_value(SMALL_NAME).run()
    assert "pick two dates" in at.warning[0].value
