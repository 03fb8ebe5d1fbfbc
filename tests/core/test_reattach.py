"""Marks follow their ground: re-attachment by footprint IoU after re-tiling or import."""

import os

import pytest
import shapely
from shapely import affinity

from core.store.feedback import Mark, SQLiteFeedback
from core.store.manifest import READY, SceneManifest
from core.store.reattach import MIN_IOU, reconcile, scene_tiles, tile_footprint
from core.store.workspace import Workspace
from tiles import TilingConfig, build_catalog, write_catalog

pytestmark = pytest.mark.filterwarnings("ignore::tiles.errors.AlphaBandIgnoredWarning")
SCENE = "naip_m_4208701_ne_16_060_20200902_crop.tif"  # 175 x 143 px


def tile_scene(ws: Workspace, scenes_dir, name: str, overlap: float) -> None:
    """A ready scene with only a catalog: all re-attachment needs."""
    scene = ws.scene(name)
    scene.root.mkdir(parents=True, exist_ok=True)
    write_catalog(
        build_catalog(scenes_dir / SCENE, TilingConfig(sizes=(64,), overlap=overlap)), scene.catalog
    )
    SceneManifest(name, status=READY).save(scene.manifest)


def shifted(wkt: str, fraction: float) -> str:
    """The footprint moved east by ``fraction`` of its width."""
    geometry = shapely.from_wkt(wkt)
    minx, _, maxx, _ = geometry.bounds
    return affinity.translate(geometry, xoff=fraction * (maxx - minx)).wkt


@pytest.fixture
def ws(tmp_path, scenes_dir):
    ws = Workspace(tmp_path / "ws")
    tile_scene(ws, scenes_dir, "s", overlap=0.0)
    return ws


def test_marks_follow_their_ground_when_the_scene_is_re_tiled(ws, scenes_dir):
    store = SQLiteFeedback(ws.feedback_db)
    old = {t: tile_footprint(ws, "s", t) for t in (1, 2, 3)}  # tile 0 keeps its id
    for t in (1, 2, 3):
        store.mark(Mark("text", "a road", "s", t, "relevant", footprint=old[t], author="ana"))
    store.mark(Mark("tile", "s:2", "s", 2, "caption", caption="a field", footprint=old[2]))
    tile_scene(ws, scenes_dir, "s", overlap=0.5)  # same windows among others, new ids
    report = reconcile(ws)
    assert report.moved == 4 and not report.unattached
    tiles = scene_tiles(ws, "s")
    for m in store.marks():
        assert shapely.from_wkt(m.footprint).equals(tiles.footprint(m.tile_id))
    caption = next(m for m in store.marks() if m.label == "caption")
    assert caption.query == f"s:{caption.tile_id}" and caption.tile_id != 2
    assert reconcile(ws).moved == 0  # idempotent


def test_iou_threshold_decides(ws):
    store = SQLiteFeedback(ws.feedback_db)
    footprint = tile_footprint(ws, "s", 0)
    # a shift of a quarter width keeps IoU 0.6; of 0.4 width, IoU 0.43
    near = store.mark(Mark("text", "q", "s", 5, "relevant", footprint=shifted(footprint, 0.25)))
    far = store.mark(Mark("text", "q2", "s", 5, "relevant", footprint=shifted(footprint, 0.6)))
    report = reconcile(ws)
    marks = {m.id: m for m in store.marks()}
    assert marks[near.id].tile_id in (0, 1)
    assert [u.mark.id for u in report.unattached] == [far.id]
    assert "IoU >= 0.5" in report.unattached[0].reason and MIN_IOU == 0.5


def test_imported_marks_find_their_scene_by_footprint(ws, scenes_dir, tmp_path):
    other = Workspace(tmp_path / "other")
    tile_scene(other, scenes_dir, "elsewhere", overlap=0.0)  # the same ground, named otherwise
    theirs = SQLiteFeedback(other.feedback_db)
    theirs.mark(
        Mark(
            "text",
            "a road",
            "elsewhere",
            7,
            "relevant",
            footprint=tile_footprint(other, "elsewhere", 3),
        )
    )
    theirs.mark(
        Mark(
            "text", "a road", "gone", 1, "relevant", footprint="POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0))"
        )
    )
    store = SQLiteFeedback(ws.feedback_db)
    store.import_jsonl(theirs.export_jsonl())
    report = reconcile(ws)
    (moved,) = [m for m in store.marks() if m.scene == "s"]
    assert shapely.from_wkt(moved.footprint).equals(scene_tiles(ws, "s").footprint(moved.tile_id))
    assert [u.mark.scene for u in report.unattached] == ["gone"]


def test_old_marks_get_footprints_when_the_catalog_predates_them(ws):
    catalog = ws.scene("s").catalog
    os.utime(catalog, (1_000, 1_000))
    store = SQLiteFeedback(ws.feedback_db)
    store.mark(Mark("text", "q", "s", 3, "relevant", created=2_000))
    store.mark(Mark("text", "q", "s", 4, "relevant", created=500))  # the catalog is newer
    store.mark(Mark("text", "q", "s", 10_000, "relevant", created=2_000))  # no such tile
    report = reconcile(ws)
    assert report.backfilled == 1
    by_tile = {m.tile_id: m.footprint for m in store.marks()}
    assert by_tile[3] == tile_footprint(ws, "s", 3) and by_tile[4] == ""
    assert sorted(u.mark.tile_id for u in report.unattached) == [4, 10_000]  # 4: ground unknown
    assert "re-tiled" in next(u.reason for u in report.unattached if u.mark.tile_id == 4)
