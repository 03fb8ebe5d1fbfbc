"""Marks made on one tiling follow their ground when the scene is tiled again."""

import pytest
import shapely

from core.ingest.launch import ingest_scene
from core.ingest.pipeline import IngestOptions
from core.store.feedback import Mark, SQLiteFeedback
from core.store.reattach import MIN_IOU, tile_footprint
from core.store.workspace import Workspace
from tiles import TilingConfig

pytestmark = pytest.mark.slow
NAIP = "naip_m_3211605_ne_11_060_20200415_crop.tif"


def test_a_mark_without_footprint_moves_to_the_tile_over_its_ground(
    scenes_dir, model_checkpoint, tmp_path
):
    ws = Workspace(tmp_path / "ws")
    source = scenes_dir / NAIP
    first = IngestOptions(TilingConfig(sizes=(64,), overlap=0.5), workers=0)
    ingest_scene(source, ws, "naip", first, checkpoint=str(model_checkpoint), device="cpu")
    judged = tile_footprint(ws, "naip", 7)
    store = SQLiteFeedback(ws.feedback_db)
    store.mark(Mark("text", "a road", "naip", 7, "relevant"))  # as marks were made before
    again = IngestOptions(TilingConfig(sizes=(64,), overlap=0.25), workers=0)
    ingest_scene(source, ws, "naip", again, checkpoint=str(model_checkpoint), device="cpu")
    (mark,) = store.marks()
    assert mark.footprint == judged  # recorded before the old catalog went away
    new = shapely.from_wkt(tile_footprint(ws, "naip", mark.tile_id))
    old = shapely.from_wkt(judged)
    assert new.intersection(old).area / new.union(old).area >= MIN_IOU
