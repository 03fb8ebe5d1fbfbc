"""Marks follow the ground they judged when tiles change: footprints and re-attachment.

A mark names ``(scene, tile_id)``, which means nothing once the scene is re-tiled or the
mark is imported into another workspace. Each mark therefore also keeps its tile's
EPSG:4326 footprint; ``reconcile`` moves a mark to the tile that covers the same ground,
the largest intersection over union if it is at least ``MIN_IOU``. Tiles of two scales
(side ratio 2) overlap at most 0.25, so a match is always at the mark's own scale. Marks
that match nothing are reported, never used for training, and kept in case the ground
comes back (a scene ingested again).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from core.store.feedback import Mark, SQLiteFeedback
from core.store.mark_rules import usable_marks
from core.store.tileref import TileRef
from core.store.workspace import Workspace
from tiles import read_catalog

MIN_IOU = 0.5
_CACHE_SIZE = 16


@dataclass(frozen=True)
class SceneTiles:
    """Footprints of one catalog version, with a spatial index."""

    tile_ids: np.ndarray
    geometries: np.ndarray
    tree: shapely.STRtree
    written: float  # when the catalog was written (epoch seconds)

    def footprint(self, tile_id: int) -> BaseGeometry | None:
        """The tile's footprint, None for an id the catalog does not have."""
        rows = np.flatnonzero(self.tile_ids == tile_id)
        return self.geometries[rows[0]] if len(rows) else None

    def best(self, geometry: BaseGeometry) -> tuple[int, float] | None:
        """The tile with the largest IoU with ``geometry``, and that IoU."""
        rows = self.tree.query(geometry)
        if not len(rows):
            return None
        candidates = self.geometries[rows]
        union = shapely.area(shapely.union(candidates, geometry))
        iou = shapely.area(shapely.intersection(candidates, geometry)) / np.maximum(union, 1e-30)
        top = int(np.argmax(iou))
        return int(self.tile_ids[rows[top]]), float(iou[top])


_CATALOGS: dict[str, tuple[int, SceneTiles]] = {}


def scene_tiles(workspace: Workspace, scene: str) -> SceneTiles | None:
    """Footprints of a ready scene, read once per catalog version; None if it is not ready."""
    try:
        path = workspace.scene(scene).catalog
        if not workspace.scene(scene).is_ready():
            return None
        stamp = path.stat().st_mtime_ns
    except (OSError, ValueError):
        return None
    cached = _CATALOGS.get(str(path))
    if cached is None or cached[0] != stamp:
        catalog = read_catalog(path)
        geometries = np.asarray(catalog.geometry.values, dtype=object)
        tiles = SceneTiles(
            catalog["tile_id"].to_numpy(np.int64),
            geometries,
            shapely.STRtree(geometries),
            stamp / 1e9,
        )
        if len(_CATALOGS) >= _CACHE_SIZE:
            _CATALOGS.pop(next(iter(_CATALOGS)))
        cached = _CATALOGS[str(path)] = (stamp, tiles)
    return cached[1]


def tile_footprint(workspace: Workspace, scene: str, tile_id: int) -> str:
    """WKT footprint of a tile of a ready scene, to store with a mark ("" if unknown)."""
    tiles = scene_tiles(workspace, scene)
    geometry = tiles.footprint(int(tile_id)) if tiles is not None else None
    return "" if geometry is None else geometry.wkt


@dataclass(frozen=True)
class Unattached:
    """A mark that no tile of the workspace matches, and why."""

    mark: Mark
    reason: str


@dataclass
class Reattachment:
    """What ``reconcile`` did."""

    moved: int = 0
    backfilled: int = 0
    unattached: list[Unattached] = field(default_factory=list)

    @property
    def unattached_ids(self) -> set[int]:
        """Ids of the marks fine-tuning must leave out."""
        return {u.mark.id for u in self.unattached if u.mark.id is not None}


def _locate(
    workspace: Workspace, mark: Mark, geometry: BaseGeometry, scenes: list[str]
) -> tuple[str, int] | str:
    """Where the mark's ground is now, or why it is nowhere."""
    if mark.scene in scenes:
        searched = [mark.scene]
    elif workspace.scene(mark.scene).root.is_dir():
        return f"scene {mark.scene} is being ingested"
    else:
        searched = scenes  # imported from another workspace: any scene may hold the ground
    best: tuple[str, int, float] | None = None
    for name in searched:
        tiles = scene_tiles(workspace, name)
        found = tiles.best(geometry) if tiles is not None else None
        if found is not None and (best is None or found[1] > best[2]):
            best = (name, *found)
    if best is None or best[2] < MIN_IOU:
        where = f"scene {mark.scene}" if searched == [mark.scene] else "this workspace"
        return f"no tile of {where} covers the same ground (IoU >= {MIN_IOU})"
    return best[0], best[1]


def reconcile(workspace: Workspace, store: SQLiteFeedback | None = None) -> Reattachment:
    """Re-attach every mark to the tile that covers its ground; backfill missing footprints.

    A mark made before footprints were kept gets its tile's footprint when the catalog is
    older than the mark (so the tile is the one it judged); when the scene was re-tiled
    since, its ground is unknown and it is listed as unattached, never moved by guesswork.
    Ingest reconciles before re-tiling a scene too, so marks take their footprints along.
    A stored mark that is not valid (a bad scene name or footprint, stored before imports
    were checked) is listed as unattached with the reason, so it never breaks the others.
    """
    store = store or SQLiteFeedback(workspace.feedback_db)
    scenes = workspace.scene_names()
    good, bad = usable_marks(store.marks())
    report = Reattachment(unattached=[Unattached(m, f"not a valid mark: {why}") for m, why in bad])
    for mark in good:
        if not mark.footprint:
            tiles = scene_tiles(workspace, mark.scene)
            geometry = tiles.footprint(mark.tile_id) if tiles is not None else None
            if geometry is None:
                report.unattached.append(
                    Unattached(mark, f"no tile {TileRef.of(mark)} and no footprint recorded")
                )
            elif tiles is not None and tiles.written <= mark.created and mark.id is not None:
                store.set_footprint(mark.id, geometry.wkt)
                report.backfilled += 1
            else:
                report.unattached.append(
                    Unattached(mark, "made before the scene was re-tiled, with no footprint")
                )
            continue
        place = _locate(workspace, mark, shapely.from_wkt(mark.footprint), scenes)
        if isinstance(place, str):
            report.unattached.append(Unattached(mark, place))
        elif place != (mark.scene, mark.tile_id):
            renamed = mark.query_kind == "tile" and mark.query == str(TileRef.of(mark))
            store.move(mark, *place, query=str(TileRef(*place)) if renamed else None)
            report.moved += 1
    return report
