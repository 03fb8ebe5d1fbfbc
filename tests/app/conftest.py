"""Fixtures for the app tests: a model, a small ingested scene, and per-test workspaces."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from bench.browser import ROOT
from core.errors import CheckpointError
from core.jobs import Job, get_job
from core.model.shipped import resolve_checkpoint
from core.store.workspace import Workspace
from tests.conftest import DATA_ROOT

HOME = str(ROOT / "app" / "Home.py")
SMALL_SCENE = DATA_ROOT / "scenes" / "naip_m_3211605_ne_11_060_20200415_crop.tif"
SMALL_TILING = {"sizes": (64, 128)}  # 60 tiles: enough hits from a tiny scene
SMALL_NAME = "naip"


def open_page(page: str | None = None, timeout: float = 60) -> AppTest:
    """The app under AppTest, switched to ``page`` (a ``views/`` script; default: Library),
    after a run that raised nothing."""
    at = AppTest.from_file(HOME, default_timeout=timeout)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """NAIP's near-infrared band tagged alpha warns on every read; that is expected here."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(
                pytest.mark.filterwarnings("ignore::tiles.errors.AlphaBandIgnoredWarning")
            )


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped default model, else an untrained one written once per session."""
    try:
        return resolve_checkpoint("default")
    except CheckpointError:
        from core.model.checkpoint import save_checkpoint
        from core.model.factory import create_model

        path = tmp_path_factory.mktemp("model") / "untrained.safetensors"
        save_checkpoint(create_model("amfmn-lite0-minilm"), path)
        return path


@pytest.fixture(scope="session")
def ingested(tmp_path_factory: pytest.TempPathFactory, checkpoint: Path) -> Path:
    """A workspace holding the small NAIP crop, ingested once per session."""
    from core.ingest.embed.mapper import TileEmbedder
    from core.ingest.pipeline import IngestOptions, ingest
    from core.model.loading import load_model
    from core.model.versions import ModelRegistry
    from tiles import TilingConfig

    ws = Workspace(tmp_path_factory.mktemp("ingested"))
    ModelRegistry(ws, checkpoint).active()
    loaded = load_model(ws)
    options = IngestOptions(tiling=TilingConfig(**SMALL_TILING), workers=0)
    embedder = TileEmbedder(loaded.model, loaded.device)
    ingest(
        SMALL_SCENE, ws, embedder=embedder, model_tag=loaded.tag, name=SMALL_NAME, options=options
    )
    return ws.root


@pytest.fixture
def env(tmp_path: Path, checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """An empty per-test workspace and import folder, selected through the environment."""
    ws = Workspace(tmp_path / "workspace")
    import_dir = tmp_path / "import"
    import_dir.mkdir()
    monkeypatch.setenv("SCENESEEK_WORKSPACE", str(ws.root))
    monkeypatch.setenv("SCENESEEK_IMPORT_DIR", str(import_dir))
    monkeypatch.setenv("SCENESEEK_MODEL", str(checkpoint))
    return ws


@pytest.fixture
def ready_env(env: Workspace, ingested: Path) -> Workspace:
    """The per-test workspace, holding a copy of the ingested small scene."""
    shutil.copytree(ingested, env.root)
    return env


def busy_slot(ws: Workspace):
    """A running job record that holds the only slot (its process: this test)."""
    import os
    from dataclasses import asdict

    import psutil

    from core.jobs import Job, job_path
    from core.store.workspace import write_json

    busy = Job(
        id="busy",
        kind="reindex",
        params={"name": "elsewhere"},
        status="running",
        created=1.0,
        pid=os.getpid(),
        pid_started=psutil.Process().create_time(),
    )
    write_json(job_path(ws, busy.id), asdict(busy))
    return busy


def finished(ws: Workspace, job_id: str, timeout: float = 240) -> Job:
    """The job once it has ended."""
    deadline = time.time() + timeout
    while (job := get_job(ws, job_id)).active and time.time() < deadline:
        time.sleep(0.5)
    assert not job.active, f"job {job_id} still {job.status} after {timeout} s"
    return job
