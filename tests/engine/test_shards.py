"""Sharded search on a 2-worker LocalCluster answers exactly as one process does."""

import json
import os
import signal
import time

import numpy as np
import pytest
import rasterio
import shapely
import torch
from PIL import Image
from shapely.geometry import box, mapping

from core.cli.main import main
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.launch import refresh_workspace
from core.ingest.pipeline import IngestOptions, ingest
from core.model.checkpoint import checkpoint_scene_key, load_checkpoint, save_checkpoint
from core.model.loading import load_model
from core.model.versions import ModelRegistry
from core.search.aoi import parse_aoi, tiles_in
from core.search.localize import scene_heat
from core.search.ranking import Filters, search_image, search_text, search_tile
from core.search.refine import refine
from core.search.scenes import SearchResources
from core.search.shard_worker import loaded_stamps
from core.search.shards import ShardedSearch
from core.store.workspace import Workspace
from tiles import TilingConfig

pytestmark = pytest.mark.filterwarnings("ignore::tiles.errors.AlphaBandIgnoredWarning")
SCENES = {
    "crop42": "naip_m_4208701_ne_16_060_20200902_crop.tif",
    "crop32": "naip_m_3211605_ne_11_060_20200415_crop.tif",
}
ADDED = ("hro", "usgs_hro_colorado_0.15m_201404_13SED190110_201404_0x1500m_CL_1.tif")
OPTIONS = IngestOptions(tiling=TilingConfig(sizes=(32, 64), overlap=0.5), workers=0)
TEXT = "trees and buildings"


def _ingest(ws: Workspace, scenes_dir, name: str, file: str) -> None:
    loaded = load_model(ws, device="cpu")
    embedder = TileEmbedder(loaded.model, loaded.device, loaded.towers)
    ingest(scenes_dir / file, ws, embedder, loaded.tag, name, OPTIONS)


def _pair(ws: Workspace, shards: ShardedSearch) -> tuple[SearchResources, SearchResources]:
    """One-process resources and sharded ones, both for the active model."""
    loaded = load_model(ws, device="cpu")
    args = (ws, loaded.model, loaded.tag, loaded.device, loaded.towers)
    return SearchResources.load(*args), SearchResources.load(*args, shards)


def _same(a, b) -> None:
    assert not b.partial
    assert [(h.scene, h.tile_id, h.rank) for h in a.hits] == [
        (h.scene, h.tile_id, h.rank) for h in b.hits
    ]
    np.testing.assert_allclose([h.score for h in a.hits], [h.score for h in b.hits], atol=1e-4)
    assert [h.geometry.wkt for h in a.hits] == [h.geometry.wkt for h in b.hits]


@pytest.fixture(scope="module")
def ws(tmp_path_factory, scenes_dir, model_checkpoint):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCENESEEK_MODEL", str(model_checkpoint))
        ws = Workspace(tmp_path_factory.mktemp("shards") / "ws")
        for name, file in SCENES.items():
            _ingest(ws, scenes_dir, name, file)
        yield ws


@pytest.fixture(scope="module")
def shards():
    shards = ShardedSearch.connect("local:2")
    yield shards
    shards.close()


@pytest.fixture(scope="module")
def example(ws, scenes_dir, tmp_path_factory):
    with rasterio.open(scenes_dir / SCENES["crop32"]) as src:
        pixels = src.read((1, 2, 3), window=((40, 120), (60, 140)))
    path = tmp_path_factory.mktemp("example") / "example.png"
    Image.fromarray(np.moveaxis(pixels, 0, -1)).save(path)
    return path


def _wait_until(done, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "the cluster did not change in time"
        time.sleep(0.05)


def _stamps(shards: ShardedSearch) -> dict[str, dict]:
    return shards.client.run(loaded_stamps)


@pytest.mark.slow
def test_text_image_tile_and_refine_match_one_process(ws, shards, example):
    single, sharded = _pair(ws, shards)
    for f in (Filters(k=10), Filters(k=15, suppress_overlaps=False), Filters(k=5, scales=(64,))):
        _same(search_text(single, TEXT, f), search_text(sharded, TEXT, f))
        _same(search_image(single, example, f), search_image(sharded, example, f))
        _same(search_tile(single, "crop42", 7, f), search_tile(sharded, "crop42", 7, f))
    first = search_text(single, TEXT)
    marks = (
        [(first.hits[0].scene, first.hits[0].tile_id)],
        [(h.scene, h.tile_id) for h in first.hits[2:4]],
    )
    _same(refine(single, first, *marks), refine(sharded, search_text(sharded, TEXT), *marks))
    held = _stamps(shards)
    assert sorted(len(v) for v in held.values()) == [1, 1]  # one scene per worker, kept loaded


@pytest.mark.slow
def test_the_heat_map_is_drawn_by_the_worker_as_one_process_draws_it(ws, shards):
    single, sharded = _pair(ws, shards)
    for kind, vector in (
        ("text", single.encode_text(TEXT)),
        ("image", single.tile_vectors("crop32", 3)[0]),
    ):
        alone, drawn = (
            scene_heat(single, "crop32", vector, kind),
            scene_heat(sharded, "crop32", vector, kind),
        )
        np.testing.assert_array_equal(drawn.values, alone.values)
        assert (drawn.transform, drawn.crs) == (alone.transform, alone.crs)
    held = {key.rsplit("/", 1)[1] for v in _stamps(shards).values() for key in v}
    assert "crop32" in held and not sharded.scenes


@pytest.mark.slow
def test_an_area_of_interest_is_searched_on_the_workers_as_in_one_process(ws, shards):
    single, sharded = _pair(ws, shards)
    scene = single.scenes["crop42"]
    west, south, east, north = shapely.total_bounds(scene.tiles.footprints(np.arange(len(scene))))
    area = parse_aoi(mapping(box(west, south, (west + east) / 2, (south + north) / 2)))
    inside = set(tiles_in(scene.tiles, area).tolist())
    for f in (Filters(k=5, area=area), Filters(k=8, area=area, suppress_overlaps=False)):
        alone, spread = search_text(single, TEXT, f), search_text(sharded, TEXT, f)
        _same(alone, spread)
        assert spread.hits and {h.tile_id for h in spread.hits if h.scene == "crop42"} <= inside
        assert all(h.geometry.intersects(area.geometry) for h in spread.hits)
    # An area holding fewer tiles than asked for says so, counted on the workers.
    short = Filters(k=len(inside) + 5, area=area, scenes=("crop42",), suppress_overlaps=False)
    alone, spread = search_text(single, TEXT, short), search_text(sharded, TEXT, short)
    _same(alone, spread)
    assert spread.notice == alone.notice
    assert f"the area holds only {len(inside)} tiles" in spread.notice
    # So does a scene holding fewer tiles than asked for, with no area.
    n = len(scene)
    whole = Filters(k=n + 5, scenes=("crop42",), suppress_overlaps=False)
    alone, spread = search_text(single, TEXT, whole), search_text(sharded, TEXT, whole)
    assert spread.notice == alone.notice
    assert spread.notice == f"{n} hits, not {n + 5}: the scenes searched hold only {n} tiles."


@pytest.mark.slow
def test_a_worker_killed_mid_query_is_retried_on_the_others(ws, shards, monkeypatch):
    single, sharded = _pair(ws, shards)
    expected = search_text(single, TEXT)
    submit = shards.client.submit
    killed = []

    def kill_then_submit(*args, **kwargs):
        if not killed:  # the first shard's worker dies after the query planned on it
            killed.extend(kwargs["workers"])
            pid = shards.client.run(os.getpid, workers=killed)[killed[0]]
            os.kill(pid, signal.SIGKILL)
            _wait_until(lambda: killed[0] not in shards.workers())
        return submit(*args, **kwargs)

    monkeypatch.setattr(shards.client, "submit", kill_then_submit)
    _same(expected, search_text(sharded, TEXT))
    assert killed and killed[0] not in shards.workers()
    monkeypatch.undo()
    shards.client.cluster.scale(2)  # the tests after this one share the cluster
    shards.client.wait_for_workers(2)


@pytest.mark.slow
def test_no_worker_left_gives_a_partial_answer_naming_the_scenes(ws, shards, monkeypatch):
    _, sharded = _pair(ws, shards)
    submit = shards.client.submit

    def stop_all_then_submit(*args, **kwargs):
        shards.client.cluster.scale(0)
        _wait_until(lambda: not shards.workers())
        return submit(*args, **kwargs)

    monkeypatch.setattr(shards.client, "submit", stop_all_then_submit)
    result = search_text(sharded, TEXT)
    monkeypatch.undo()
    shards.client.cluster.scale(2)
    shards.client.wait_for_workers(2)
    assert result.partial and set(result.missing) <= set(SCENES) and result.missing
    assert result.to_dict()["missing_scenes"] == list(result.missing)
    assert "partial" in result.to_table()


@pytest.mark.slow
def test_scenes_added_while_the_cluster_is_up_are_searched(ws, shards, scenes_dir):
    _, sharded = _pair(ws, shards)
    search_text(sharded, TEXT)
    _ingest(ws, scenes_dir, *ADDED)
    sharded.refresh()
    single, _ = _pair(ws, shards)
    f = Filters(k=30)
    _same(search_text(single, TEXT, f), search_text(sharded, TEXT, f))
    held = {key.rsplit("/", 1)[1] for v in _stamps(shards).values() for key in v}
    assert ADDED[0] in held


@pytest.mark.slow
def test_workers_reload_after_a_promotion_and_a_rollback(ws, shards, tmp_path):
    registry = ModelRegistry(ws)
    base = registry.active()
    model, _ = load_checkpoint(base.path)
    with torch.no_grad():
        for p in model.attention.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = save_checkpoint(model, tmp_path / "tuned.safetensors")
    tuned = registry.register(path, base.version).version
    for version in (tuned, base.version):  # promote, then roll back
        registry.set_active(version)
        refresh_workspace(ws, "cpu")
        single, sharded = _pair(ws, shards)
        _same(search_text(single, TEXT), search_text(sharded, TEXT))
        keys = {stamp[0] for v in _stamps(shards).values() for stamp in v.values()}
        assert keys == {checkpoint_scene_key(registry.active().path)}


@pytest.mark.slow
def test_cli_search_with_dask_prints_the_hits_one_process_prints(ws, capsys):
    argv = ["search", "--workspace", str(ws.root), "--text", TEXT, "--format", "json"]
    answers = []
    for extra in ([], ["--dask", "local:2"]):
        assert main([*argv, "--k", "12", *extra]) == 0
        answers.append(json.loads(capsys.readouterr().out))
    alone, sharded = answers
    assert "partial" not in sharded and len(alone["hits"]) == 12
    key = [(h["scene"], h["tile_id"], h["rank"], h["geometry"]) for h in alone["hits"]]
    assert [(h["scene"], h["tile_id"], h["rank"], h["geometry"]) for h in sharded["hits"]] == key
    np.testing.assert_allclose(
        [h["score"] for h in sharded["hits"]], [h["score"] for h in alone["hits"]], atol=1e-4
    )


def test_an_unreachable_scheduler_is_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SCENESEEK_DASK_TIMEOUT_S", "1")
    (tmp_path / "ws").mkdir()
    argv = ["search", "--workspace", str(tmp_path / "ws"), "--text", "a lake"]
    assert main([*argv, "--dask", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no Dask scheduler answered at tcp://127.0.0.1:9")
    assert "\n" not in err
