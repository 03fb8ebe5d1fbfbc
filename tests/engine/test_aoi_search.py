"""Search inside an area of interest, on a real ingested scene: every hit touches the area,
k hits whenever the area holds k places, the exact ranking of the area's own tiles, and the
same restriction for find-similar, refine, the heat map, exports and the CLI."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box, mapping, shape

from bench.saw_tooth import saw_tooth
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.pipeline import IngestOptions, ingest
from core.model.loading import load_model
from core.model.versions import ModelRegistry
from core.search.aoi import parse_aoi, tiles_in
from core.search.engine import Engine
from core.search.localize import heat_map
from core.search.ranking import Filters, search_text, search_tile
from core.search.refine import refine
from core.search.scenes import SearchResources
from core.store.workspace import Workspace
from tiles import TilingConfig

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
BERKELEY = "berkeley_z17_webmercator_naip.tif"
QUERY = "a parking lot next to buildings"


@pytest.fixture(scope="module")
def setup(model_checkpoint, scenes_dir, tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    loaded = load_model(ws, str(model_checkpoint), "cpu")
    options = IngestOptions(tiling=TilingConfig(sizes=(128, 256)), workers=0)
    embedder = TileEmbedder(loaded.model, loaded.device)
    ingest(scenes_dir / BERKELEY, ws, embedder, loaded.tag, "berkeley", options=options)
    res = SearchResources.load(ws, loaded.model, loaded.tag, loaded.device, loaded.towers)
    return res, ws


def bounds(scene) -> np.ndarray:
    """Lon/lat bounds of every footprint of a loaded scene."""
    return shapely.total_bounds(scene.tiles.footprints(np.arange(len(scene))))


def corner(res, fraction):
    """An area over the south-west ``fraction`` of the scene (per side)."""
    lon0, lat0, lon1, lat1 = bounds(res.scenes["berkeley"])
    return parse_aoi(
        mapping(box(lon0, lat0, lon0 + (lon1 - lon0) * fraction, lat0 + (lat1 - lat0) * fraction))
    )


def test_hits_all_intersect_the_area_and_are_k(setup):
    res, _ = setup
    area = corner(res, 0.5)
    result = search_text(res, QUERY, Filters(k=10, area=area))
    assert len(result.hits) == 10 and result.notice == ""
    assert all(hit.geometry.intersects(area.geometry) for hit in result.hits)
    everywhere = search_text(res, QUERY, Filters(k=10))
    assert any(not h.geometry.intersects(area.geometry) for h in everywhere.hits)  # a real limit


def test_the_area_is_ranked_exactly_not_post_filtered(setup):
    """The area's hits are the best of all its tiles, as scoring every tile finds them."""
    res, _ = setup
    area = corner(res, 0.4)
    scene = res.scenes["berkeley"]
    found = search_text(res, QUERY, Filters(k=15, area=area, suppress_overlaps=False))
    every = search_text(res, QUERY, Filters(k=len(scene), exact=True, suppress_overlaps=False))
    inside = [h.tile_id for h in every.hits if h.geometry.intersects(area.geometry)]
    assert [h.tile_id for h in found.hits] == inside[:15]
    assert len(inside) == len(tiles_in(scene.tiles, area))


def test_a_small_area_gives_its_few_tiles_and_says_so(setup):
    res, _ = setup
    lon0, lat0, lon1, lat1 = bounds(res.scenes["berkeley"])
    middle = ((lon0 + lon1) / 2, (lat0 + lat1) / 2)
    spot = parse_aoi(mapping(box(*middle, middle[0] + 1e-5, middle[1] + 1e-5)))
    held = len(tiles_in(res.scenes["berkeley"].tiles, spot))
    assert 0 < held < 20
    every = search_text(res, QUERY, Filters(k=20, area=spot, suppress_overlaps=False))
    assert len(every.hits) == held and f"the area holds only {held} tiles" in every.notice
    distinct = search_text(res, QUERY, Filters(k=20, area=spot))
    assert len(distinct.hits) < held and "places that do not overlap one another" in distinct.notice
    far = parse_aoi(mapping(box(lon0 - 0.02, lat0 - 0.02, lon0 - 0.01, lat0 - 0.01)))
    nothing = search_text(res, QUERY, Filters(k=5, area=far))
    assert nothing.hits == [] and "No tile" in nothing.notice


def test_find_similar_and_refine_stay_inside(setup):
    res, _ = setup
    area = corner(res, 0.5)
    scene = res.scenes["berkeley"]
    outside = int(np.setdiff1d(np.arange(len(scene)), tiles_in(scene.tiles, area))[0])
    f = Filters(k=8, area=area)
    similar = search_tile(res, "berkeley", outside, f)
    assert len(similar.hits) == 8
    assert all(h.geometry.intersects(area.geometry) for h in similar.hits)
    first = search_text(res, QUERY, f)
    marks = [(first.hits[0].scene, first.hits[0].tile_id)]
    refined = refine(res, first, marks, [("berkeley", outside)], f)
    assert len(refined.hits) == 8
    assert all(h.geometry.intersects(area.geometry) for h in refined.hits)


def test_heat_map_is_blank_outside_the_area(setup):
    res, _ = setup
    area = corner(res, 0.4)
    scene = res.scenes["berkeley"]
    vector = res.encode_text(QUERY)
    full, limited = heat_map(scene, vector), heat_map(scene, vector, area=area)
    assert np.isfinite(full.values).all()
    to_scene = Transformer.from_crs("EPSG:4326", limited.crs, always_xy=True)

    def cell(lon, lat):
        col, row = ~limited.transform @ to_scene.transform(lon, lat)
        return limited.values[int(row), int(col)]

    lon0, lat0, lon1, lat1 = area.bounds
    assert np.isfinite(cell((lon0 + lon1) / 2, (lat0 + lat1) / 2))
    _, _, slon1, slat1 = bounds(scene)
    assert np.isnan(cell(slon1 - 1e-5, slat1 - 1e-5))  # the far corner of the scene


def test_exports_carry_the_area(setup):
    res, _ = setup
    area = corner(res, 0.5)
    result = search_text(res, QUERY, Filters(k=5, area=area))
    collection = result.to_geojson()
    assert shape(collection["properties"]["query"]["area"]).equals(area.geometry)
    assert len(collection["features"]) == 5
    assert len(result.to_csv().strip().splitlines()) == 6


def test_cli_search_with_aoi(setup, model_checkpoint, tmp_path):
    res, ws = setup
    area = corner(res, 0.5)
    path = tmp_path / "area.geojson"
    path.write_text(json.dumps({"type": "Feature", "geometry": area.to_geojson()}))
    common = ["--workspace", str(ws.root), "--checkpoint", str(model_checkpoint), "--device", "cpu"]

    def cli(*args):
        command = [sys.executable, "-m", "core", "search", *common, *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)

    out = cli("--text", QUERY, "--k", "6", "--aoi", str(path), "--format", "geojson")
    assert out.returncode == 0, out.stderr
    features = json.loads(out.stdout)["features"]
    assert len(features) == 6
    assert all(shape(f["geometry"]).intersects(area.geometry) for f in features)
    path.write_text('{"type": "Point", "coordinates": [0, 0]}')
    out = cli("--text", QUERY, "--aoi", str(path))
    assert out.returncode == 2 and out.stderr.startswith("error: the area is a Point"), out.stderr
    big = tmp_path / "big.geojson"
    big.write_text(json.dumps({"type": "Feature", "properties": {"note": "x" * 16 * 2**20}}))
    out = cli("--text", QUERY, "--aoi", str(big))
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("error: the area's GeoJSON takes 16.0 MB, more than the 5 MB")
    path.write_text(json.dumps(saw_tooth(tuple(bounds(res.scenes["berkeley"])), 10_004)))
    out = cli("--text", QUERY, "--k", "5", "--aoi", str(path), "--format", "json")
    assert out.returncode == 0, out.stderr
    assert "simplified from 10,004 to" in out.stderr
    assert len(json.loads(out.stdout)["hits"]) == 5


def test_an_area_is_prepared_while_another_search_holds_the_engine(setup, model_checkpoint):
    """One viewer's area never makes the others wait: its tiles are found without the lock."""
    from app.querying import run_query, text_query

    res, ws = setup
    engine = Engine(res, ModelRegistry(ws, model_checkpoint).active())
    scene = res.scenes["berkeley"]
    area = parse_aoi(saw_tooth(tuple(bounds(scene)), 10_004))
    f = Filters(k=10, area=area)
    answers = []
    engine.lock.acquire()  # another session's search is running
    try:
        asking = threading.Thread(
            target=lambda: answers.append(run_query(engine, text_query(QUERY), f))
        )
        asking.start()
        deadline = time.monotonic() + 120
        while area.found.get(scene.tiles) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert area.found.get(scene.tiles) is not None  # found while the lock was held
        assert not answers and asking.is_alive()  # the search itself waits its turn
    finally:
        engine.lock.release()
    asking.join(timeout=120)
    [result] = answers
    assert len(result.hits) == 10
    assert all(hit.geometry.intersects(area.geometry) for hit in result.hits)
