"""Both engines end to end: a scene embedded by one searches the same with the other."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from core.ingest.embed.mapper import TileEmbedder
from core.ingest.pipeline import ingest
from core.learn.finetune.guard import promote
from core.model.checkpoint import file_sha256
from core.model.loading import load_model
from core.model.versions import ModelRegistry
from core.search.ranking import Filters, search_image, search_text
from core.search.scenes import SearchResources
from core.store.workspace import Workspace
from tiles import TileReader, read_catalog

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BERKELEY = "berkeley_z17_webmercator_naip.tif"
QUERIES = (
    "a baseball field next to a parking lot",
    "many buildings and green trees",
    "a stadium",
    "a road between houses",
    "tennis courts",
)
ENGINES = ("onnx", "torch")


@pytest.fixture(scope="module")
def workspaces(model_checkpoint, scenes_dir, tmp_path_factory):
    """The same scene ingested by each engine, in a workspace of its own."""
    out = {}
    for engine in ENGINES:
        ws = Workspace(tmp_path_factory.mktemp(engine))
        loaded = load_model(ws, str(model_checkpoint), "cpu", engine)
        assert loaded.towers.engine == engine
        embedder = TileEmbedder(loaded.model, loaded.device, loaded.towers)
        ingest(scenes_dir / BERKELEY, ws, embedder, loaded.tag, "berkeley")
        out[engine] = (ws, loaded)
    return out


def resources(workspaces, scene_engine, query_engine):
    ws, _ = workspaces[scene_engine]
    loaded = workspaces[query_engine][1]
    return SearchResources.load(ws, loaded.model, loaded.tag, loaded.device, loaded.towers)


def top10(res, query, image=False):
    search = search_image if image else search_text
    return [h.tile_id for h in search(res, query, Filters(k=10)).hits]


def test_manifest_records_the_engine_outside_the_fingerprint(workspaces):
    for engine, (ws, _) in workspaces.items():
        manifest = ws.scene("berkeley").read_manifest()
        assert manifest.engine == engine
        assert "engine" not in json.dumps(manifest.fingerprint)


def test_each_engine_finds_the_same_top_10_in_a_scene_embedded_by_either(workspaces, tmp_path):
    ws, _ = workspaces["onnx"]
    catalog = read_catalog(ws.scene("berkeley").catalog)
    example = tmp_path / "tile.png"
    Image.fromarray(TileReader.from_catalog(catalog).read(catalog.iloc[12])).save(example)
    for scene_engine in ENGINES:
        both = {q: resources(workspaces, scene_engine, q) for q in ENGINES}
        for query in QUERIES:
            assert top10(both["onnx"], query) == top10(both["torch"], query), query
        assert top10(both["onnx"], example, image=True) == top10(both["torch"], example, True)
    for query in QUERIES:  # and the scenes themselves rank alike
        assert top10(resources(workspaces, "onnx", "onnx"), query) == top10(
            resources(workspaces, "torch", "onnx"), query
        )


def test_ingest_with_the_other_engine_is_a_noop(workspaces, scenes_dir, model_checkpoint):
    ws, _ = workspaces["onnx"]
    before = ws.scene("berkeley").manifest.stat().st_mtime_ns
    out = subprocess.run(
        [sys.executable, "-m", "core", "ingest", str(scenes_dir / BERKELEY), "--name", "berkeley"]
        + ["--workspace", str(ws.root), "--checkpoint", str(model_checkpoint)]
        + ["--device", "cpu", "--engine", "torch"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "already ingested" in out.stdout
    assert ws.scene("berkeley").manifest.stat().st_mtime_ns == before


def test_registering_and_promoting_a_version_exports_its_graphs(model_checkpoint, tmp_path):
    ws = Workspace(tmp_path / "ws")
    registry = ModelRegistry(ws, Path(model_checkpoint))
    version = registry.register(Path(model_checkpoint), parent=0, note="copy")
    graphs = sorted(p.name.split("-")[0] for p in (ws.models_dir / "onnx").glob("*.onnx"))
    assert graphs == ["image", "text"]
    records = list((ws.models_dir / "onnx").glob("checkpoint-*.json"))
    assert len(records) == 1 and file_sha256(version.path)[:24] in records[0].name
    stamps = {p: p.stat().st_mtime_ns for p in (ws.models_dir / "onnx").glob("*.onnx")}
    assert promote(ws, version.version).version == version.version
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # cached: nothing re-exported
