"""Library page, adding a scene by URL: off by default, refusals at once, a queued job."""

from __future__ import annotations

import json
import re
from functools import partial

import pytest
from rasterio.windows import Window

from bench.cog import write_cog
from bench.range_server import RangeServer
from core.jobs import cancel, list_jobs
from core.store.workspace import Workspace
from tests.app.conftest import open_page
from tests.conftest import DATA_ROOT

library = partial(open_page, None, 60)


def texts(at) -> str:
    return re.sub(r"\\(.)", r"\1", "\n".join(str(e.value) for e in (*at.error, *at.success)))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    write_cog(
        DATA_ROOT / "scenes" / "berkeley_z17_webmercator_naip.tif",
        root / "cog.tif",
        Window(0, 0, 512, 512),
    )
    server = RangeServer(root).start()
    item = {"type": "Feature", "assets": {"visual": {"href": server.url("cog.tif")}}}
    (root / "item.json").write_text(json.dumps(item))
    yield server
    server.stop()


def test_remote_scenes_are_off_by_default(env: Workspace, monkeypatch) -> None:
    monkeypatch.delenv("SCENESEEK_REMOTE_ALLOW", raising=False)
    at = library()
    assert "SCENESEEK_REMOTE_ALLOW" in " ".join(c.value for c in at.caption)
    assert not [t for t in at.text_input if t.key == "remote_url"]


def test_urls_are_checked_before_a_job_is_queued(env: Workspace, served, monkeypatch) -> None:
    monkeypatch.setenv("SCENESEEK_REMOTE_ALLOW", "127.0.0.1")
    at = library()
    refusals = {
        served.url("cog.tif") + "?token=abc": "credentials are not taken from this page",
        f"http://localhost:{served.port}/cog.tif": "host localhost is not in",
        "/etc/hosts.json": "only http(s):// and s3:// URLs",
    }
    for url, message in refusals.items():
        at.text_input(key="remote_url").input(url)
        at.button(key="add-remote").click().run()
        assert message in texts(at), url
        assert "abc" not in texts(at)
    assert list_jobs(env) == []
    at.text_input(key="remote_url").input(served.url("item.json"))
    at.text_input(key="remote_asset").input("visual")
    at.button(key="add-remote").click().run()
    assert "Ingesting cog from its URL" in texts(at)
    (job,) = list_jobs(env)
    try:
        assert job.kind == "ingest" and job.params["source"] == served.url("cog.tif")
    finally:
        cancel(env, job.id)
