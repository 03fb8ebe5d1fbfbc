"""Ingest from a COG URL served on 127.0.0.1: refusal, resume after the server stops, STAC,
and no credentials in what the workspace records."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.large_scene import make_large_scene
from bench.range_server import RangeServer
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.pipeline import IngestOptions, ingest
from core.model.loading import load_model
from core.store.workspace import Workspace
from tiles import RemoteRefusedError, TilesError, TilingConfig

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
OPTIONS = IngestOptions(
    TilingConfig(sizes=(256,), overlap=0.0), batch_size=4, workers=0, part_size=8
)
SECRET = "s3cr3t-signature"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    make_large_scene(root / "scene.tif", 2048)  # 64 tiles; the quicklook reads overviews only
    server = RangeServer(root).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def embedder(model_checkpoint, tmp_path_factory):
    loaded = load_model(Workspace(tmp_path_factory.mktemp("ws")), str(model_checkpoint), "cpu")
    return TileEmbedder(loaded.model, loaded.device), loaded.tag


@pytest.fixture
def allow_loopback(monkeypatch):
    monkeypatch.setenv("SCENESEEK_REMOTE_ALLOW", "127.0.0.1")
    monkeypatch.setenv("SCENESEEK_REMOTE_RETRIES", "1")
    monkeypatch.setenv("SCENESEEK_REMOTE_RETRY_DELAY_S", "0.1")


def test_url_is_refused_unless_listed(served, embedder, tmp_path, monkeypatch):
    monkeypatch.delenv("SCENESEEK_REMOTE_ALLOW", raising=False)
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(RemoteRefusedError, match="remote scenes are off"):
        ingest(served.url("scene.tif"), ws, embedder[0], embedder[1], "scene", OPTIONS)
    assert ws.scene_names(ready_only=False) == []


def test_a_later_redirect_to_an_unlisted_service_refuses_the_ingest(
    served, embedder, tmp_path, allow_loopback
):
    unlisted = RangeServer(served.root, host="127.0.0.2").start()
    turning = RangeServer(served.root, redirect_after=(2, f"http://127.0.0.2:{unlisted.port}"))
    ws = Workspace(tmp_path / "ws")
    try:
        with pytest.raises(RemoteRefusedError, match="host 127.0.0.2 is not in"):
            ingest(turning.start().url("scene.tif"), ws, embedder[0], embedder[1], "s", OPTIONS)
        assert unlisted.requests() == []
        assert ws.scene_names(ready_only=False) == []
    finally:
        turning.stop()
        unlisted.stop()


def test_stopped_server_fails_cleanly_and_rerun_resumes(served, embedder, tmp_path, allow_loopback):
    model, tag = embedder
    url = served.url("scene.tif") + f"?X-Amz-Signature={SECRET}&v=1"
    ws = Workspace(tmp_path / "remote")

    def stop_midway(stage: str, done: int, total: int, rate: float) -> None:
        if stage == "embedding" and done >= 16:
            served.stop()

    try:
        with pytest.raises(TilesError):
            ingest(url, ws, model, tag, "scene", OPTIONS, stop_midway)
    finally:
        if served._process is None:
            served.start()
    scene = ws.scene("scene")
    kept = sorted(scene.embeddings.glob("part-*.npz"))
    assert kept and not scene.is_ready()
    reported: list[int] = []
    resumed = ingest(url, ws, model, tag, "scene", OPTIONS, lambda s, d, t, r: reported.append(d))
    assert not resumed.skipped and scene.is_ready()
    assert min(d for d in reported if d) >= OPTIONS.part_size * len(kept)  # kept parts reused
    local = Workspace(tmp_path / "local")
    ingest(served.root / "scene.tif", local, model, tag, "scene", OPTIONS)
    for name in ("visual.npy", "gate.npy"):
        remote_vectors = np.load(scene.embeddings / name)
        assert np.array_equal(remote_vectors, np.load(local.scene("scene").embeddings / name))
    manifest = scene.read_manifest()
    assert manifest.source == served.url("scene.tif") + "?v=1"
    for path in scene.root.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_cli_ingests_a_stac_item_asset(served, model_checkpoint, tmp_path, allow_loopback):
    item = tmp_path / "item.json"
    assets = {"visual": {"href": served.url("scene.tif")}, "nir": {"href": "nir.tif"}}
    item.write_text(json.dumps({"type": "Feature", "id": "x", "assets": assets}))
    ws = tmp_path / "ws"
    command = [sys.executable, "-m", "core", "ingest", str(item), "--workspace", str(ws)]
    command += ["--checkpoint", str(model_checkpoint), "--device", "cpu", "--tile-size", "1024"]
    missing = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode == 2 and "pick one of: nir, visual" in missing.stderr
    done = subprocess.run([*command, "--asset", "visual"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    manifest = Workspace(ws).scene("scene").read_manifest()
    assert manifest.ready and manifest.source == served.url("scene.tif")
