"""Library page through Streamlit's AppTest: empty state, adding scenes, refusals."""

from __future__ import annotations

import logging
import re
import time
from functools import partial
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.jobs import cancel, get_job, ingest_params, list_jobs, start_job
from core.store.workspace import Workspace
from tests.app.conftest import SMALL_SCENE, busy_slot, open_page

TIMEOUT = 60


library = partial(open_page, None, TIMEOUT)


def texts(at: AppTest) -> str:
    """Every alert's text, with Markdown escapes removed."""
    parts = [str(e.value) for e in (*at.error, *at.success, *at.info, *at.warning)]
    return re.sub(r"\\(.)", r"\1", "\n".join(parts))


def test_empty_library(env: Workspace) -> None:
    at = library()
    assert at.title[0].value == "Library"
    assert "No scenes yet" in texts(at)
    assert at.selectbox[0].options == []


def test_import_folder_listing_and_outside_paths(env: Workspace, tmp_path: Path) -> None:
    (tmp_path / "import" / "field.tif").write_bytes(b"II*\x00")
    at = library()
    assert at.selectbox[0].options == ["field.tif"]
    at.text_input(key="import_path").input("../../etc/passwd")
    at.button(key="add-import").click().run()
    assert "outside the import folder" in texts(at)
    assert list_jobs(env) == []


def test_corrupt_upload_shows_the_error_and_writes_nothing(env: Workspace) -> None:
    at = library()
    at.file_uploader[0].upload("broken.tif", b"II*\x00" + bytes(64), "image/tiff")
    at.run()
    at.button(key="add-upload").click().run()
    assert "broken.tif starts like a TIFF but cannot be opened" in texts(at)
    assert not (env.root / "uploads").exists()
    assert list_jobs(env) == []


def test_a_refused_upload_keeps_its_error_until_the_file_goes(env: Workspace) -> None:
    at = library()
    at.file_uploader[0].upload("broken.tif", b"II*\x00" + bytes(64), "image/tiff")
    at.run()
    at.button(key="add-upload").click().run()
    assert "broken.tif starts like a TIFF but cannot be opened" in texts(at)
    at.run()  # the page refreshing (or any other click) keeps it while the file is there
    assert "broken.tif starts like a TIFF but cannot be opened" in texts(at)
    at.file_uploader[0].set_value(("other.tif", b"II*\x00" + bytes(8), "image/tiff")).run()
    assert "cannot be opened" not in texts(at)  # a new file: the old error no longer applies
    at.button(key="add-upload").click().run()
    assert "other.tif starts like a TIFF but cannot be opened" in texts(at)
    at.file_uploader[0].clear().run()
    assert "cannot be opened" not in texts(at)


def test_a_refused_import_keeps_its_error_while_the_path_is_chosen(env: Workspace) -> None:
    at = library()
    at.text_input(key="import_path").input("../../etc/passwd")
    at.button(key="add-import").click().run()
    at.run()
    assert "outside the import folder" in texts(at)
    at.text_input(key="import_path").input("elsewhere.tif").run()
    assert "outside the import folder" not in texts(at)


def test_valid_upload_starts_an_ingest_job(env: Workspace) -> None:
    at = library()
    at.file_uploader[0].upload("crop.tif", SMALL_SCENE.read_bytes(), "image/tiff")
    at.run()
    at.text_input(key="upload_name").input("my-crop")
    at.button(key="add-upload").click().run()
    assert "Ingesting my-crop" in texts(at)
    (job,) = list_jobs(env)
    try:
        assert job.kind == "ingest" and job.params["name"] == "my-crop"
        assert Path(job.params["source"]) == env.root / "uploads" / "my-crop.tif"
        at.run()
        assert any(">my-<wbr>crop</div>" in h.value for h in at.html)  # wraps at the dash
    finally:
        cancel(env, job.id)


def test_ready_scene_is_listed(ready_env: Workspace) -> None:
    at = library()
    cells = [t.value for t in at.text]
    assert "EPSG:26911" in cells and "60" in cells
    assert any(">naip</div>" in h.value for h in at.html)  # wraps between words, not inside
    headers = [c.value for c in at.caption]
    assert "m/px" in headers and "Resolution" not in headers  # short: never "Resolutio / n"


def test_a_failed_job_is_explained(env: Workspace, tmp_path: Path) -> None:
    bad = tmp_path / "import" / "bad.tif"
    bad.write_bytes(b"II*\x00" + bytes(64))
    job = start_job(env, "ingest", ingest_params(bad, "bad", {"sizes": (256,)}))
    deadline = time.time() + 60
    while get_job(env, job.id).active and time.time() < deadline:
        time.sleep(0.2)
    at = library()
    assert "Ingesting bad failed" in texts(at) and "cannot be opened as a raster" in texts(at)


def test_stray_folders_never_break_the_pages(
    ready_env: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    (ready_env.scenes_dir / ".deleting-naip").mkdir()  # left by an interrupted delete
    (ready_env.scenes_dir / "copy of naip").mkdir()
    broken = ready_env.scenes_dir / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    with caplog.at_level(logging.WARNING):
        assert ready_env.scene_names() == ["naip"]
        at = library()
        assert any(">naip</div>" in h.value for h in at.html)
        at.switch_page("views/search.py").run()
        assert not at.exception, at.exception
    assert ".deleting-naip" in caplog.text and "copy of naip" in caplog.text
    assert "unreadable manifest" in caplog.text


def test_a_name_being_written_elsewhere_is_refused(env: Workspace) -> None:
    at = library()
    at.file_uploader[0].upload("crop.tif", SMALL_SCENE.read_bytes(), "image/tiff")
    at.run()
    with env.writing("crop", who="job 123"):  # this thread: another writer to the page
        at.button(key="add-upload").click().run()
    assert "scene crop is being written by" in texts(at) and "job 123" in texts(at)
    assert list_jobs(env) == [] and not list((env.root / "uploads").glob("*.tif"))


def test_waiting_jobs_show_their_place_in_line(env: Workspace, monkeypatch) -> None:
    monkeypatch.setenv("SCENESEEK_MAX_JOBS", "1")
    busy_slot(env)
    first = start_job(env, "reindex", {"name": "a"})
    second = start_job(env, "reindex", {"name": "b"})
    at = library()
    bars = [p.proto.text for p in at.get("progress")]
    assert "queued: next in line" in bars and "queued: number 2 in line" in bars
    for job in (first, second):
        cancel(env, job.id)
