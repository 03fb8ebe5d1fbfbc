"""Change search end to end on a synthetic pair: a real NAIP scene and a later "date" of it.

The later date is the scene resampled onto a grid offset by a fifth of a pixel and one row
shorter (as the real 2009/2020 NAIP pair is), with brightness and hue shifted everywhere and
three real UCM storage-tank pictures (128 px) pasted into the middle of three 256 px tile
windows. Tiles holding a pasted picture must come first for "biggest changes" and for "new
storage tanks", ahead of every tile that only saw the global shift.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.change_pair import Edit, edited_copy, storage_tank_images
from core.errors import IndexMismatchError, PairError
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.pipeline import IngestOptions, ingest
from core.model.loading import load_model
from core.search.change.align import align_pair, is_aligned
from core.search.change.pair import change_heat, load_pair, suggest_pairs
from core.search.change.query import ChangeQuery, change_search
from core.search.localize import write_heat_png
from core.search.scenes import SearchResources
from core.store.pairs import pair_dir
from core.store.workspace import Workspace
from tiles import TilingConfig

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::tiles.errors.NIRBandDroppedWarning"),
]
ROOT = Path(__file__).resolve().parents[2]
SCENE = "naip_m_4709963_se_14_1_20200831_5m.tif"
ELSEWHERE = "naip_m_4208701_ne_16_060_20200902_crop.tif"  # another state: no common ground
PASTED = ((192, 192), (576, 320), (448, 64))  # (col, row) of 128 px pictures, later grid
PASTE_PX = 128
OPTIONS = IngestOptions(tiling=TilingConfig(sizes=(256,)), workers=0)


@pytest.fixture(scope="module")
def setup(model_checkpoint, scenes_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("change")
    tanks = storage_tank_images(len(PASTED))
    later = edited_copy(
        scenes_dir / SCENE,
        folder / "later.tif",
        Edit(
            pastes=tuple((c, r, p) for (c, r), p in zip(PASTED, tanks, strict=True)),
            paste_px=PASTE_PX,
        ),
    )
    ws = Workspace(folder / "ws")
    loaded = load_model(ws, str(model_checkpoint), "cpu")
    embedder = TileEmbedder(loaded.model, loaded.device)
    for source, name in ((scenes_dir / SCENE, "earlier"), (later, "later")):
        ingest(source, ws, embedder, loaded.tag, name, OPTIONS)
    ingest(scenes_dir / ELSEWHERE, ws, embedder, loaded.tag, "elsewhere", OPTIONS)
    manifest = align_pair(ws, "earlier", "later", embedder, loaded.scene_key, workers=0)
    res = SearchResources.load(ws, loaded.model, loaded.tag, loaded.device)
    return ws, loaded, embedder, res, manifest, load_pair(res, "earlier", "later")


def _paste_inside(window) -> int | None:
    """Which pasted picture lies wholly inside a tile window, if any."""
    col, row, width, height = window
    for i, (c, r) in enumerate(PASTED):
        if col <= c and row <= r and c + PASTE_PX <= col + width and r + PASTE_PX <= row + height:
            return i
    return None


def _touches_paste(window) -> bool:
    col, row, width, height = window
    return any(
        c < col + width and col < c + PASTE_PX and r < row + height and row < r + PASTE_PX
        for c, r in PASTED
    )


def _top_are_pasted(result) -> None:
    top = [_paste_inside(h.window) for h in result.hits[: len(PASTED)]]
    assert sorted(top, key=str) == list(range(len(PASTED))), [
        (h.window, round(h.score, 3), round(h.change, 2)) for h in result.hits
    ]


def test_pair_is_aligned_on_the_later_grid(setup):
    ws, _, _, _, manifest, pair = setup
    assert manifest.ready and manifest.n_tiles == len(pair.later) == manifest.comparable
    assert pair.earlier.visual.shape == pair.later.visual.shape
    assert pair.earlier.gate is not None and pair.earlier.gate.shape == pair.later.gate.shape
    assert np.all(pair.coverage > 0.99)
    aligned = pair_dir(ws, "earlier", "later").embeddings / "visual.npy"
    own = [p for p in ws.scene("earlier").root.rglob("*") if p.is_file()]
    assert max(p.stat().st_mtime for p in own) < aligned.stat().st_mtime  # left untouched


def test_biggest_changes_are_the_pasted_tiles(setup):
    _, _, _, res, _, pair = setup
    result = change_search(res, pair, ChangeQuery(k=5))
    _top_are_pasted(result)
    untouched = [not _touches_paste(w) for w in pair.later.windows]
    lowest = min(h.change for h in result.hits[:3])
    assert lowest > np.max(pair.change[untouched]) + 1  # the global shift stays far below
    assert lowest > 2  # robust z


def test_new_storage_tanks_rank_first_and_are_not_gone(setup):
    _, _, _, res, _, pair = setup
    new = change_search(res, pair, ChangeQuery(text="storage tanks", k=5))
    _top_are_pasted(new)
    assert all(h.after_score > h.before_score for h in new.hits[:3])
    gone = change_search(res, pair, ChangeQuery(text="storage tanks", direction="gone", k=5))
    assert all(_paste_inside(h.window) is None for h in gone.hits[:3])


def test_image_query_among_changed_tiles_finds_new_tanks(setup, data_root):
    _, _, _, res, _, pair = setup
    example = data_root / "ucm" / "images" / "1950.jpg"  # a storage tank not pasted
    result = change_search(res, pair, ChangeQuery(image=example, k=5, min_change=1.5))
    _top_are_pasted(result)
    assert all(h.after_score > h.before_score for h in result.hits[:3])


def test_min_change_limits_the_tiles(setup):
    _, _, _, res, _, pair = setup
    result = change_search(res, pair, ChangeQuery(text="a lake", min_change=2.0, k=10))
    assert 1 <= len(result.hits) <= 5
    assert all(h.change >= 2.0 for h in result.hits)


def test_heat_map_is_brightest_on_the_pasted_tiles(setup, tmp_path):
    _, _, _, _, _, pair = setup
    heat = change_heat(pair)
    assert heat.values.shape == (722, 934)  # the later grid
    pasted = np.zeros(heat.values.shape, dtype=bool)
    for col, row in PASTED:
        pasted[row : row + PASTE_PX, col : col + PASTE_PX] = True
    assert np.nanmean(heat.values[pasted]) > np.nanmean(heat.values[~pasted]) + 1
    row, col = np.unravel_index(np.nanargmax(heat.values), heat.values.shape)
    assert any(  # the hottest pixel lies in a tile holding a pasted picture
        c <= col < c + w and r <= row < r + h and _paste_inside((c, r, w, h)) is not None
        for c, r, w, h in pair.later.windows
    )
    bounds = write_heat_png(heat, tmp_path / "heat.png")
    assert bounds[0] < bounds[2] and (tmp_path / "heat.png").stat().st_size > 0


def test_pair_is_reused_until_a_scene_changes(setup):
    ws, loaded, embedder, _, manifest, _ = setup
    again = align_pair(ws, "earlier", "later", embedder, loaded.scene_key, workers=0)
    assert again.finished == manifest.finished  # nothing recomputed
    assert is_aligned(ws, "earlier", "later", loaded.scene_key)
    with pytest.raises(IndexMismatchError):
        is_aligned(ws, "earlier", "later", "scene-another-model")
    scene = ws.scene("later")
    original = scene.manifest.read_text()
    try:
        data = json.loads(original)
        data["finished"] += 1  # re-ingested since the pair was aligned
        scene.manifest.write_text(json.dumps(data))
        assert not is_aligned(ws, "earlier", "later", loaded.scene_key)
    finally:
        scene.manifest.write_text(original)
    assert pair_dir(ws, "earlier", "later").read_manifest().identity == manifest.identity


def test_scenes_without_common_ground_are_refused(setup):
    ws, loaded, embedder, res, _, _ = setup
    with pytest.raises(PairError, match="do not overlap"):
        align_pair(ws, "elsewhere", "later", embedder, loaded.scene_key, workers=0)
    with pytest.raises(PairError, match="two dates"):
        align_pair(ws, "later", "later", embedder, loaded.scene_key, workers=0)
    assert suggest_pairs(ws) == [("earlier", "later", pytest.approx(1.0, abs=0.01))]
    with pytest.raises(PairError, match="not aligned"):
        load_pair(res, "later", "earlier")


def test_cli_prints_the_search_contract_and_errors(setup, tmp_path):
    ws, _, _, _, _, _ = setup
    base = [sys.executable, "-m", "core", "change", "--workspace", str(ws.root)]
    base += ["--device", "cpu", "--checkpoint", str(setup[1].path)]
    out = subprocess.run(
        [*base, "--before", "earlier", "--after", "later", "--text", "storage tanks", "--k", "3"]
        + ["--heat", str(tmp_path / "change.tif")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["pair"]["before"]["scene"] == "earlier"
    assert result["query"] == {"text": "storage tanks", "direction": "new"}
    hit = result["hits"][0]
    assert {"rank", "score", "scene", "tile_id", "window", "bounds", "geometry", "change"} <= set(
        hit
    )
    assert hit["scene"] == "later" and _paste_inside(hit["window"]) is not None
    assert (tmp_path / "change.tif").is_file() and (tmp_path / "change.png").is_file()
    bad = subprocess.run(
        [*base, "--before", "elsewhere", "--after", "later", "--format", "geojson"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "overlap" in bad.stderr
