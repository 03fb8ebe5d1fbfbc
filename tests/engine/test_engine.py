"""Engine end to end on real shared scenes: ingest, search, resume, errors, localisation."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image
from shapely.geometry import box

from core.errors import IndexMismatchError, QueryError, SceneNotFoundError
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.pipeline import IngestOptions, ingest
from core.model.loading import load_model
from core.search.localize import heat_map, write_heat_png, write_heat_tif
from core.search.ranking import Filters, search_image, search_text, search_tile
from core.search.scenes import SearchResources, load_scene
from core.store.workspace import Workspace
from tiles import WINDOW_FIELDS, SceneOpenError, TileReader, read_catalog

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BERKELEY = "berkeley_z17_webmercator_naip.tif"
NAIP = "naip_m_3211605_ne_11_060_20200415_crop.tif"


@pytest.fixture(scope="module")
def loaded(model_checkpoint, tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    return load_model(ws, str(model_checkpoint), "cpu"), ws


@pytest.fixture(scope="module")
def resources(loaded, scenes_dir):
    model, ws = loaded
    embedder = TileEmbedder(model.model, model.device)
    for name, file in (("berkeley", BERKELEY), ("naip", NAIP)):
        ingest(scenes_dir / file, ws, embedder, model.tag, name)
    return SearchResources.load(ws, model.model, model.tag, model.device)


def test_two_scenes_are_searchable_and_merged(resources):
    assert set(resources.scenes) == {"berkeley", "naip"}
    merged = search_text(resources, "trees and buildings", Filters(k=20, suppress_overlaps=False))
    per_scene = [
        hit
        for name in ("berkeley", "naip")
        for hit in search_text(
            resources, "trees and buildings", Filters(k=20, scenes=(name,), suppress_overlaps=False)
        ).hits
    ]
    expected = sorted(per_scene, key=lambda h: -h.score)[:20]
    assert [(h.scene, h.tile_id) for h in merged.hits] == [(h.scene, h.tile_id) for h in expected]
    assert [h.rank for h in merged.hits] == list(range(1, 21))
    everything = search_text(
        resources, "trees and buildings", Filters(k=200, suppress_overlaps=False)
    )
    assert {h.scene for h in everything.hits} == {"berkeley", "naip"}


def test_indexed_search_matches_exact_scoring(resources):
    for text in ("trees and buildings", "a road between green fields", "many houses with pools"):
        indexed = search_text(resources, text, Filters(k=10))
        exact = search_text(resources, text, Filters(k=10, exact=True))
        assert [(h.scene, h.tile_id) for h in indexed.hits] == [
            (h.scene, h.tile_id) for h in exact.hits
        ]
    for scene in resources.scenes.values():  # both indexes store reduced vectors
        assert scene.text_ann.projection is not None and scene.visual_ann.projection is not None


def test_hit_bounds_contain_catalog_footprint(resources, loaded):
    _, ws = loaded
    result = search_text(resources, "a baseball field next to a parking lot", Filters(k=10))
    for hit in result.hits:
        catalog = read_catalog(ws.scene(hit.scene).catalog)
        footprint = catalog.set_index("tile_id").geometry[hit.tile_id]
        assert box(*hit.bounds).buffer(1e-9).contains(footprint)
        assert hit.window == tuple(
            catalog.set_index("tile_id").loc[hit.tile_id, list(WINDOW_FIELDS)]
        )


def test_overlap_suppression_gives_distinct_places(resources):
    result = search_text(resources, "buildings", Filters(k=10, scenes=("berkeley",), scales=(256,)))
    windows = [h.window for h in result.hits]
    for i, a in enumerate(windows):
        for b in windows[:i]:
            w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
            h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
            assert w <= 0 or h <= 0 or (w * h) / (a[2] * a[3]) < 0.2


def test_tile_query_returns_that_tile_first(resources):
    result = search_tile(resources, "berkeley", 7, Filters(k=5))
    assert (result.hits[0].scene, result.hits[0].tile_id) == ("berkeley", 7)
    assert result.hits[0].score == pytest.approx(1.0, abs=1e-3)


def test_image_query_with_tile_pixels_returns_that_tile_first(resources, loaded, tmp_path):
    _, ws = loaded
    catalog = read_catalog(ws.scene("berkeley").catalog)
    row = catalog[catalog.tile_id == 12].iloc[0]
    Image.fromarray(TileReader.from_catalog(catalog).read(row)).save(tmp_path / "q.png")
    result = search_image(resources, tmp_path / "q.png", Filters(k=3))
    assert (result.hits[0].scene, result.hits[0].tile_id) == ("berkeley", 12)


def test_scale_and_scene_filters(resources):
    result = search_text(resources, "roads", Filters(k=5, scenes=("naip",), scales=(256,)))
    assert result.hits and all(h.scene == "naip" and h.scale == 256 for h in result.hits)


def test_reingest_same_settings_is_a_noop(loaded, resources, scenes_dir):
    model, ws = loaded
    before = ws.scene("naip").manifest.stat().st_mtime_ns
    result = ingest(
        scenes_dir / NAIP,
        ws,
        TileEmbedder(model.model, model.device),
        model.tag,
        "naip",
    )
    assert result.skipped and ws.scene("naip").manifest.stat().st_mtime_ns == before


@pytest.mark.parametrize("text", ["", "   \n", "?!.", "x" * 10_000])
def test_bad_text_queries_are_refused(resources, text):
    with pytest.raises(QueryError):
        search_text(resources, text)


def test_unreadable_image_is_refused(resources, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(QueryError, match="not a readable"):
        search_image(resources, bad)
    with pytest.raises(QueryError, match="cannot open"):
        search_image(resources, tmp_path / "missing.jpg")


def test_unknown_scene_and_tile_are_refused(resources):
    with pytest.raises(SceneNotFoundError):
        search_text(resources, "a port", Filters(scenes=("nowhere",)))
    with pytest.raises(QueryError, match="no tile"):
        search_tile(resources, "naip", 10_000)


def test_index_of_another_model_version_is_refused(loaded, resources):
    model, ws = loaded
    with pytest.raises(IndexMismatchError, match="re-embed"):
        load_scene(ws, "berkeley", model.model.cfg.embed_dim, "amfmn-0000000000000000")


def test_corrupt_scene_writes_nothing(loaded, tmp_path):
    model, ws = loaded
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00" + os.urandom(2000))
    with pytest.raises(SceneOpenError):
        ingest(bad, ws, TileEmbedder(model.model, model.device), model.tag)
    assert not ws.scene("broken").root.exists()


def test_localize_writes_heat_map_on_scene_grid(resources, scenes_dir, tmp_path):
    scene = resources.scenes["berkeley"]
    heat = heat_map(scene, resources.encode_text("a stadium"))
    write_heat_tif(heat, tmp_path / "heat.tif")
    bounds = write_heat_png(heat, tmp_path / "heat.png")
    with rasterio.open(tmp_path / "heat.tif") as src, rasterio.open(scenes_dir / BERKELEY) as ref:
        assert src.crs == ref.crs and src.dtypes[0] == "float32"
        assert src.bounds.left == pytest.approx(ref.bounds.left)
        assert src.bounds.top == pytest.approx(ref.bounds.top)
        assert np.isfinite(src.read(1)).mean() > 0.9
    png = np.asarray(Image.open(tmp_path / "heat.png"))
    assert png.shape[2] == 4 and png[..., 3].max() > 0
    min_lon, min_lat, max_lon, max_lat = bounds
    assert -122.27 < min_lon < max_lon < -122.24 and 37.86 < min_lat < max_lat < 37.88


def test_visual_heat_map_is_hottest_around_the_query_tile(resources):
    scene = resources.scenes["berkeley"]
    small = np.flatnonzero(scene.scales == scene.scales.min())
    tile = int(small[len(small) // 2])
    vector = np.asarray(scene.visual[tile], dtype=np.float32)
    heat = heat_map(scene, vector, kind="image")
    text = heat_map(scene, resources.encode_text("a stadium"))
    assert heat.values.shape == text.values.shape and heat.transform == text.transform
    values = heat.values[np.isfinite(heat.values)]
    assert -1 <= values.min() < values.max() <= 1 + 1e-5  # cosines, not text scores
    col, row, w, h = scene.windows[tile]
    step = scene.tiles.meta["width"] / heat.values.shape[1]
    centre = heat.values[int((row + h / 2) / step), int((col + w / 2) / step)]
    assert centre >= np.percentile(values, 90), (centre, np.percentile(values, [50, 90]))


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )


def test_cli_search_json_geojson_and_batch(resources, loaded, model_checkpoint, tmp_path):
    _, ws = loaded
    common = ["--workspace", str(ws.root), "--checkpoint", str(model_checkpoint), "--device", "cpu"]
    out = _cli("search", *common, "--text", "a parking lot", "--k", "3", "--format", "json")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout.strip().splitlines()[-1])
    assert payload["query"] == {"text": "a parking lot"} and len(payload["hits"]) == 3
    assert set(payload["hits"][0]) == {
        "rank",
        "score",
        "scene",
        "tile_id",
        "scale",
        "window",
        "bounds",
        "geometry",
    }
    out = _cli("search", *common, "--tile", "berkeley:3", "--k", "2", "--format", "geojson")
    fc = json.loads(out.stdout)
    assert fc["type"] == "FeatureCollection" and fc["features"][0]["properties"]["tile_id"] == 3
    queries = tmp_path / "q.txt"
    queries.write_text("tennis courts\n\nswimming pools\n   \na stadium\n")
    out = _cli("search", *common, "--queries", str(queries), "--k", "2")
    lines = [json.loads(line) for line in out.stdout.strip().splitlines()]
    assert [line["query"]["text"] for line in lines] == [
        "tennis courts",
        "swimming pools",
        "a stadium",
    ]


def test_cli_errors_are_one_line(loaded, model_checkpoint, scenes_dir, tmp_path):
    _, ws = loaded
    common = ["--workspace", str(ws.root), "--checkpoint", str(model_checkpoint), "--device", "cpu"]
    out = _cli("search", *common, "--text", "x" * 10_000)
    assert (
        out.returncode == 2
        and out.stderr.startswith("error: the query is")
        and "Traceback" not in out.stderr
    )
    out = _cli("search", *common, "--tile", "berkeley-7")
    assert out.returncode == 2 and "SCENE:TILE_ID" in out.stderr
    scene = str(scenes_dir / BERKELEY)
    own = ["--workspace", str(tmp_path / "ws"), *common[2:]]
    out = _cli("ingest", scene, *own, "--shared-stages", "1", "--dask", "local:1")
    assert out.returncode == 2 and out.stderr.startswith(
        "error: --shared-stages runs in this process"
    )
    typo = tmp_path / "typo"
    out = _cli("search", "--workspace", str(typo), "--text", "a port", "--device", "cpu")
    assert out.returncode == 2 and out.stderr.startswith("error: no workspace at")
    assert not typo.exists()  # a read command never creates a workspace
    out = _cli("ingest", scene, "--workspace", "/proc/nope", "--device", "cpu")
    assert out.returncode == 2 and out.stderr.startswith("error: cannot create the workspace")


KILL_SCRIPT = """
import os, signal, sys
import torch
torch.set_num_threads(int(sys.argv[4]))  # same float reduction order as the resuming process
from pathlib import Path
from core.ingest.embed.mapper import TileEmbedder
from core.model.loading import load_model
from core.ingest.pipeline import IngestOptions, ingest
from core.store.workspace import Workspace
ws = Workspace(sys.argv[1]); model = load_model(ws, sys.argv[3], "cpu")
def progress(stage, done, total, rate):
    if stage == "embedding" and done >= 20:
        os.kill(os.getpid(), signal.SIGKILL)
ingest(sys.argv[2], ws, TileEmbedder(model.model, model.device), model.tag, "scene",
       IngestOptions(batch_size=4, workers=0, part_size=8), progress)
"""


def test_kill_and_resume_gives_identical_index(loaded, model_checkpoint, scenes_dir, tmp_path):
    model, _ = loaded
    scene = scenes_dir / BERKELEY
    killed = Workspace(tmp_path / "killed")
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            KILL_SCRIPT,
            str(killed.root),
            str(scene),
            str(model_checkpoint),
            str(torch.get_num_threads()),
        ],
        cwd=ROOT,
        timeout=600,
    )
    assert run.returncode == -9
    parts = sorted((killed.scene("scene").embeddings).glob("part-*.npz"))
    assert parts and not killed.scene("scene").is_ready()
    opts = IngestOptions(batch_size=4, workers=0, part_size=8)
    embedder = TileEmbedder(model.model, model.device)
    resumed = ingest(scene, killed, embedder, model.tag, "scene", opts)
    assert not resumed.skipped
    clean = Workspace(tmp_path / "clean")
    ingest(scene, clean, embedder, model.tag, "scene", opts)
    a, b = killed.scene("scene"), clean.scene("scene")
    for name in (
        "embeddings/visual.npy",
        "embeddings/gate.npy",
        "visual.ann",
        "text.ann",
        "text.projection.npy",
        "visual.projection.npy",
    ):
        assert (a.root / name).read_bytes() == (b.root / name).read_bytes(), name
    assert read_catalog(a.catalog).equals(read_catalog(b.catalog))


def test_hits_lie_inside_the_raster_and_their_scene(resources):
    for text in ("a large white roof", "trees and buildings", "a parking lot with many cars"):
        for hit in search_text(resources, text, Filters(k=20)).hits:
            scene = resources.scenes[hit.scene]
            info = scene.manifest.scene
            col, row, width, height = hit.window
            assert col >= 0 and row >= 0, hit
            assert col + width <= info["width"] and row + height <= info["height"], hit
            west, south, east, north = info["bounds"]
            minx, miny, maxx, maxy = hit.geometry.bounds
            tol = 1e-7
            assert west - tol <= minx and maxx <= east + tol, hit
            assert south - tol <= miny and maxy <= north + tol, hit


def test_a_scene_tiled_the_old_way_needs_reingest(resources, tmp_path):
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(resources.workspace.scene("naip").root, ws.scene("naip").root)
    manifest = ws.scene("naip").read_manifest()
    manifest.tiling_version = None  # as written before windows were kept inside the raster
    manifest.save(ws.scene("naip").manifest)
    with pytest.raises(IndexMismatchError, match="re-ingest needed"):
        load_scene(ws, "naip", resources.model.cfg.embed_dim, resources.scene_key)
