"""Find similar on a real small scene: without the tile asked about and the tiles covering
half of it, still k hits; and a short answer says why (overlapping tiles of a small scene)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.ingest.embed.mapper import TileEmbedder
from core.ingest.pipeline import IngestOptions, ingest
from core.model.loading import load_model
from core.search.ranking import Filters, search_text, search_tile
from core.search.scenes import SearchResources
from core.search.similar import COVERS_QUERY, query_share, search_similar
from core.store.workspace import Workspace
from tests.app.conftest import SMALL_NAME, SMALL_SCENE, SMALL_TILING
from tiles import TilingConfig

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::tiles.errors.AlphaBandIgnoredWarning"),
]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(model_checkpoint, tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    loaded = load_model(ws, str(model_checkpoint), "cpu")
    options = IngestOptions(tiling=TilingConfig(**SMALL_TILING), workers=0)
    embedder = TileEmbedder(loaded.model, loaded.device)
    ingest(SMALL_SCENE, ws, embedder, loaded.tag, SMALL_NAME, options=options)
    res = SearchResources.load(ws, loaded.model, loaded.tag, loaded.device, loaded.towers)
    return res, ws


def covering(res, hits, tile_id):
    query = res.tile_window(SMALL_NAME, tile_id)
    return [h for h in hits if h.scene == SMALL_NAME and query_share(h.window, query) >= 0.5]


def test_similar_leaves_out_the_tile_and_the_tiles_covering_it(setup):
    res, _ = setup
    scene = res.scenes[SMALL_NAME]
    small = [t for t in range(len(scene)) if scene.scales[t] == 64]
    assert COVERS_QUERY == 0.5
    for tile_id in small[:: max(1, len(small) // 4)]:
        plain = search_tile(res, SMALL_NAME, tile_id, Filters(k=5))
        assert plain.hits[0].tile_id == tile_id  # the default keeps the tile first
        assert covering(res, plain.hits, tile_id)
        result = search_similar(res, SMALL_NAME, tile_id, Filters(k=5))  # refilled to 5
        assert len(result.hits) == 5 and result.notice == ""
        assert covering(res, result.hits, tile_id) == []
        assert [h.rank for h in result.hits] == list(range(1, 6))
        left = [h.tile_id for h in plain.hits if h not in covering(res, plain.hits, tile_id)]
        assert [h.tile_id for h in result.hits][: len(left)] == left  # the same order, refilled


def test_a_small_scene_says_why_it_gives_fewer_hits(setup):
    res, _ = setup
    held = len(res.scenes[SMALL_NAME])
    result = search_text(res, "a road between trees", Filters(k=50))
    found = len(result.hits)
    assert found < 50
    assert result.notice == (
        f"{found} hits, not 50: the scenes searched hold {held} tiles, "
        f"and only {found} places that do not overlap one another."
    )
    every = search_text(res, "a road between trees", Filters(k=held + 5, suppress_overlaps=False))
    assert (
        every.notice == f"{held} hits, not {held + 5}: the scenes searched hold only {held} tiles."
    )
    similar = search_similar(res, SMALL_NAME, 0, Filters(k=50))
    assert similar.notice.endswith("that do not overlap one another besides the tile asked about.")


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "core", "search", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


def test_cli_exclude_query(setup, model_checkpoint):
    res, ws = setup
    common = ["--workspace", str(ws.root), "--checkpoint", str(model_checkpoint), "--device", "cpu"]
    tile = f"{SMALL_NAME}:3"
    plain = _cli(*common, "--tile", tile, "--k", "5", "--format", "json")
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["hits"][0]["tile_id"] == 3  # the tile first, as before
    out = _cli(*common, "--tile", tile, "--k", "5", "--format", "json", "--exclude-query")
    assert out.returncode == 0, out.stderr
    hits = [hit["tile_id"] for hit in json.loads(out.stdout)["hits"]]
    assert hits == [h.tile_id for h in search_similar(res, SMALL_NAME, 3, Filters(k=5)).hits]
    assert len(hits) == 5 and 3 not in hits


def test_cli_exclude_query_needs_a_tile():
    out = _cli("--text", "roads", "--exclude-query")
    assert out.returncode == 2
    assert (
        out.stderr
        == "error: --exclude-query goes with --tile: it leaves out the tile asked about\n"
    )
