"""Marks as GeoJSON: footprints from a real scene's catalog, null geometry with a reason."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from shapely.geometry import shape

from core.store.feedback import Mark, SQLiteFeedback
from core.store.workspace import Workspace
from tiles import TilingConfig, build_catalog, write_catalog

ROOT = Path(__file__).resolve().parents[2]
NAIP = "naip_m_3211605_ne_11_060_20200415_crop.tif"


@pytest.mark.filterwarnings("ignore::tiles.errors.AlphaBandIgnoredWarning")
def test_feedback_export_geojson_puts_marks_on_their_tiles(tmp_path, scenes_dir):
    ws = Workspace(tmp_path / "ws")
    catalog = build_catalog(scenes_dir / NAIP, TilingConfig(sizes=(64, 128)))
    write_catalog(catalog, ws.scene("naip").catalog)
    store = SQLiteFeedback(ws.feedback_db)
    store.mark(Mark("text", "a road", "naip", 3, "relevant"))
    store.mark(Mark("text", "a road", "naip", 9999, "irrelevant"))
    store.mark(Mark("tile", "old:1", "old", 1, "caption", caption="a pool"))
    done = subprocess.run(
        [sys.executable, "-m", "core", "feedback", "export", "--format", "geojson"]
        + ["--workspace", str(ws.root)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    collection = json.loads(done.stdout)
    assert collection["type"] == "FeatureCollection"
    found, retiled, gone = collection["features"]  # oldest first, as the JSON-lines export
    assert found["properties"]["label"] == "relevant" and found["properties"]["reason"] is None
    assert found["properties"]["query"] == "a road" and found["properties"]["tile_id"] == 3
    tile = catalog.set_index("tile_id").geometry[3]
    assert shape(found["geometry"]).equals_exact(tile, 1e-9)  # EPSG:4326 lon/lat
    assert -118 < tile.centroid.x < -116 and 32 < tile.centroid.y < 33
    assert retiled["geometry"] is None and "no tile 9999" in retiled["properties"]["reason"]
    assert gone["geometry"] is None and "no longer in the workspace" in gone["properties"]["reason"]
    assert gone["properties"]["caption"] == "a pool"
