"""Promotion without re-embedding: a version that keeps the image tower reuses stored vectors."""

from pathlib import Path

import numpy as np
import pytest
import torch

from core.ingest.embed.mapper import TileEmbedder
from core.ingest.launch import reembed_seconds, refresh_workspace
from core.ingest.pipeline import IngestOptions, ingest
from core.learn.finetune.guard import promote
from core.learn.finetune.loop import add_adapters
from core.model.adapters import DEFAULT_TAU
from core.model.checkpoint import (
    checkpoint_image_tower,
    image_tower_fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from core.model.loading import load_model
from core.model.versions import ModelRegistry
from core.search.ranking import Filters, search_text
from core.search.scenes import SearchResources
from core.store.index import meta_path
from core.store.workspace import Workspace, read_json, write_json
from tiles import TilingConfig

pytestmark = pytest.mark.filterwarnings("ignore::tiles.errors.AlphaBandIgnoredWarning")
SCENE = "naip_m_4208701_ne_16_060_20200902_crop.tif"  # 175 x 143 px
TILING = TilingConfig(sizes=(64,), overlap=0.0)


def variant(ws: Workspace, tmp_path: Path, module: str) -> int:
    """Register the active model with one module's weights moved: a stand-in for fine-tuning."""
    registry = ModelRegistry(ws)
    model, _ = load_checkpoint(registry.active().path)
    with torch.no_grad():
        for p in getattr(model, module).parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = save_checkpoint(model, tmp_path / f"{module}.safetensors")
    return registry.register(path, registry.active().version).version


def files(ws: Workspace, name: str) -> dict[str, bytes]:
    scene = ws.scene(name)
    paths = {
        "visual.npy": scene.embeddings / "visual.npy",
        "gate.npy": scene.embeddings / "gate.npy",
        "visual.ann": scene.visual_index,
        "text.ann": scene.text_index,
    }
    return {k: p.read_bytes() for k, p in paths.items()}


@pytest.fixture
def ws(tmp_path, scenes_dir, model_checkpoint, monkeypatch):
    monkeypatch.setenv("SCENESEEK_MODEL", str(model_checkpoint))
    ws = Workspace(tmp_path / "ws")
    loaded = load_model(ws, device="cpu")
    options = IngestOptions(tiling=TILING, workers=0)
    ingest(
        scenes_dir / SCENE, ws, TileEmbedder(loaded.model, loaded.device), loaded.tag, "s", options
    )
    return ws


def test_image_tower_fingerprint_of_file_and_model_agree(model_checkpoint):
    model, _ = load_checkpoint(model_checkpoint)
    assert checkpoint_image_tower(model_checkpoint) == image_tower_fingerprint(model)
    with torch.no_grad():
        model.attention.gate.weight.add_(1.0)
        model.text.proj.weight.add_(1.0)
    assert image_tower_fingerprint(model) == checkpoint_image_tower(model_checkpoint)
    with torch.no_grad():
        model.mvsa.mask.weight.add_(1.0)
    assert image_tower_fingerprint(model) != checkpoint_image_tower(model_checkpoint)


def test_promotion_keeps_visual_vectors_and_index(ws, tmp_path):
    before = files(ws, "s")
    registry = ModelRegistry(ws)
    tower = checkpoint_image_tower(registry.active().path)
    assert ws.scene("s").read_manifest().image_tower == tower
    version = variant(ws, tmp_path, "attention")
    assert reembed_seconds(ws, checkpoint_image_tower(registry.get(version).path)) == ([], 0.0)
    registry.set_active(version)
    report = refresh_workspace(ws, "cpu")
    assert report.refreshed == ["s"] and not report.reembedded and not report.failed
    after = files(ws, "s")
    assert after["visual.npy"] == before["visual.npy"]
    assert after["visual.ann"] == before["visual.ann"]
    assert after["gate.npy"] != before["gate.npy"]
    manifest = ws.scene("s").read_manifest()
    assert manifest.model == registry.active().tag and manifest.image_tower == tower
    loaded = load_model(ws, device="cpu")
    resources = SearchResources.load(ws, loaded.model, loaded.tag, loaded.device)
    assert not resources.stale
    indexed = search_text(resources, "trees", Filters(k=5))
    exact = search_text(resources, "trees", Filters(k=5, exact=True))
    assert [h.tile_id for h in indexed.hits] == [h.tile_id for h in exact.hits]
    assert refresh_workspace(ws, "cpu").current == ["s"]


def test_a_manifest_from_before_the_image_tower_record_is_refreshed(ws, tmp_path):
    scene = ws.scene("s")
    registry = ModelRegistry(ws)
    manifest = scene.read_manifest()
    manifest.image_tower = None  # as written before this change: the index keyed by the model
    manifest.save(scene.manifest)
    write_json(
        meta_path(scene.visual_index),
        {**read_json(meta_path(scene.visual_index)), "model": manifest.model},
    )
    visual = (scene.embeddings / "visual.npy").read_bytes()
    registry.set_active(variant(ws, tmp_path, "text"))
    report = refresh_workspace(ws, "cpu")
    assert report.refreshed == ["s"]
    assert (scene.embeddings / "visual.npy").read_bytes() == visual
    assert read_json(meta_path(scene.visual_index))["model"] == scene.read_manifest().image_tower


@pytest.mark.slow
def test_a_new_image_tower_is_embedded_again(ws, tmp_path):
    registry = ModelRegistry(ws)
    version = variant(ws, tmp_path, "global_proj")
    stale, seconds = reembed_seconds(ws, checkpoint_image_tower(registry.get(version).path))
    assert stale == ["s"] and seconds > 0
    visual = np.load(ws.scene("s").embeddings / "visual.npy")
    registry.set_active(version)
    report = refresh_workspace(ws, "cpu")
    assert report.reembedded == ["s"]
    assert not np.array_equal(np.load(ws.scene("s").embeddings / "visual.npy"), visual)
    assert refresh_workspace(ws, "cpu").current == ["s"]


def adapter_version(ws: Workspace, tmp_path: Path) -> int:
    """Register the active model plus an adapter for "trees": what fine-tuning makes now."""
    registry = ModelRegistry(ws)
    model, _ = load_checkpoint(registry.active().path)
    add_adapters(model, {"trees"}, DEFAULT_TAU)
    with torch.no_grad():
        model.adapters.deltas.add_(0.5 * torch.randn_like(model.adapters.deltas))
    path = save_checkpoint(model, tmp_path / "adapter.safetensors")
    return registry.register(path, registry.active().version).version


def searched(ws: Workspace) -> SearchResources:
    loaded = load_model(ws, device="cpu")
    return SearchResources.load(ws, loaded.model, loaded.tag, loaded.device, loaded.towers)


@pytest.mark.slow
def test_a_version_with_adapters_promotes_and_rolls_back_recomputing_nothing(ws, tmp_path):
    before = files(ws, "s")
    parent = searched(ws)
    version = adapter_version(ws, tmp_path)
    assert reembed_seconds(ws, checkpoint_image_tower(ModelRegistry(ws).get(version).path))[0] == []
    promote(ws, version)
    resources = searched(ws)  # searchable at once, before any refresh job
    assert set(resources.scenes) == {"s"} and not resources.stale
    assert not np.allclose(resources.encode_text("trees"), parent.encode_text("trees"))
    np.testing.assert_array_equal(
        resources.encode_text("a harbor with boats"), parent.encode_text("a harbor with boats")
    )
    assert search_text(resources, "trees", Filters(k=5)).model == ModelRegistry(ws).active().tag
    report = refresh_workspace(ws, "cpu")
    assert report.current == ["s"] and not report.refreshed and not report.reembedded
    assert files(ws, "s") == before
    assert ws.scene("s").read_manifest().model == ModelRegistry(ws).active().tag
    promote(ws, 0)
    assert refresh_workspace(ws, "cpu").current == ["s"] and files(ws, "s") == before


@pytest.mark.slow
def test_a_manifest_from_before_the_scene_key_is_shared_with_an_adapter_version(ws, tmp_path):
    scene = ws.scene("s")
    manifest = scene.read_manifest()
    manifest.scene_key = None  # as written before this change: the text index keyed by the model
    manifest.save(scene.manifest)
    sidecar = meta_path(scene.text_index)
    write_json(sidecar, {**read_json(sidecar), "model": manifest.model})
    promote(ws, adapter_version(ws, tmp_path))
    assert not searched(ws).stale
    assert refresh_workspace(ws, "cpu").current == ["s"]
    assert read_json(sidecar)["model"] == scene.read_manifest().scene_key
    assert not searched(ws).stale
