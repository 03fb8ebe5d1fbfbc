"""The analysts' marks as GeoJSON: each mark on its tile's footprint, for GIS review.

A mark names a scene and a tile id; the footprint comes from the scene's tile catalog
(EPSG:4326). Marks outlive scenes (deleting a scene keeps them) and a re-tiled scene may no
longer have the tile, so such marks are still exported, with a null geometry and the reason.
A stored mark that is not valid at all (``core.store.mark_rules``) is left out, and said so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from core.store.feedback import Mark
from core.store.mark_rules import usable_marks
from core.store.workspace import Workspace
from tiles import CatalogError, read_catalog

WGS84 = "EPSG:4326"


def _footprints(ws: Workspace, scene: str) -> dict[int, BaseGeometry] | str:
    """Tile id -> footprint of a scene, or why there is none."""
    path = ws.scene(scene).catalog
    try:
        catalog = read_catalog(path)
    except FileNotFoundError:
        return f"scene {scene!r} is no longer in the workspace"
    except CatalogError as exc:
        return f"scene {scene!r} has an unreadable tile catalog ({exc})"
    if catalog.crs is not None and catalog.crs != WGS84:
        catalog = catalog.to_crs(WGS84)
    return dict(zip(catalog["tile_id"].astype(int), catalog.geometry, strict=True))


def marks_geojson(
    ws: Workspace, marks: Iterable[Mark], skipped: Callable[[Mark, str], None] | None = None
) -> dict[str, Any]:
    """A FeatureCollection with one feature per valid mark, on its tile footprint.

    Every mark's fields are the properties; ``reason`` says why a mark has a null geometry
    (its scene was deleted or re-tiled), and is null otherwise. An invalid stored mark is
    handed to ``skipped`` with the reason instead.
    """
    good, bad = usable_marks(marks)
    for mark, reason in bad:
        if skipped is not None:
            skipped(mark, reason)
    catalogs: dict[str, dict[int, BaseGeometry] | str] = {}
    features = []
    for mark in good:
        if mark.scene not in catalogs:
            catalogs[mark.scene] = _footprints(ws, mark.scene)
        tiles = catalogs[mark.scene]
        geometry, reason = None, None
        if isinstance(tiles, str):
            reason = tiles
        elif mark.tile_id not in tiles:
            reason = f"scene {mark.scene!r} has no tile {mark.tile_id} any more (re-tiled)"
        else:
            geometry = mapping(tiles[mark.tile_id])
        features.append(
            {
                "type": "Feature",
                "geometry": geometry,
                "properties": {**mark.to_dict(), "reason": reason},
            }
        )
    return {"type": "FeatureCollection", "features": features}
