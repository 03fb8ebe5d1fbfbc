"""Areas of interest: the polygon an analyst draws or uploads, and the tiles it touches.

Search, refine, find-similar and the heat map consider only tiles whose catalog footprint
(EPSG:4326) intersects the area. Those tiles are found from the tiles' windows and
footprints before any score is computed, so a ranking never post-filters its hits and comes
up short.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from affine import Affine
from pyproj import Geod, Transformer
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from core.errors import AreaError

if TYPE_CHECKING:
    from core.search.tile_columns import TileColumns

MAX_AREA_KM2 = 1_000_000.0  # a square 1,000 km a side: larger is a region, not a place
POLYGONAL = ("Polygon", "MultiPolygon")
LONLAT_NAMES = ("EPSG:4326", "urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:EPSG::4326")
WGS84 = Geod(ellps="WGS84")
EDGE_PX = 1.0  # windows this close to the area's edge are decided by their footprints
DENSIFY = 256  # the area's edges are cut into pieces of 1/DENSIFY of its extent


@dataclass(frozen=True)
class AreaOfInterest:
    """A valid (Multi)Polygon in lon/lat; ``repaired`` when it crossed itself and was fixed."""

    geometry: BaseGeometry
    repaired: bool = False

    @property
    def km2(self) -> float:
        """Geodesic area on the WGS84 ellipsoid, in square kilometres."""
        return abs(WGS84.geometry_area_perimeter(self.geometry)[0]) / 1e6

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min_lon, min_lat, max_lon, max_lat)."""
        return tuple(float(v) for v in self.geometry.bounds)  # type: ignore[return-value]

    def to_geojson(self) -> dict[str, Any]:
        """The area as a GeoJSON geometry (what the map draws and exports carry)."""
        return dict(mapping(self.geometry))

    def describe(self) -> str:
        """One line for headings: its size."""
        km2 = self.km2
        size = f"{km2:,.2f} km²" if km2 >= 0.01 else f"{km2 * 1e6:,.0f} m²"
        return f"an area of {size}" + (" (repaired: it crossed itself)" if self.repaired else "")


def _crs_name(data: Mapping[str, Any]) -> str | None:
    crs = data.get("crs")
    if not isinstance(crs, Mapping):
        return None
    return str((crs.get("properties") or {}).get("name", ""))


def _geometries(data: Any) -> list[Mapping[str, Any]]:
    """Every geometry object in a GeoJSON geometry, Feature or FeatureCollection."""
    if not isinstance(data, Mapping):
        raise AreaError("the area is not a GeoJSON object")
    kind = data.get("type")
    if kind == "FeatureCollection":
        features = data.get("features") or []
        return [g for feature in features for g in _geometries(feature)]
    if kind == "Feature":
        geometry = data.get("geometry")
        if not geometry:
            raise AreaError("a feature of the area has no geometry")
        return [geometry]
    if kind in POLYGONAL:
        return [data]
    what = f"a {kind}" if kind else "GeoJSON without a type"
    raise AreaError(
        f"the area is {what}; draw or upload a Polygon or MultiPolygon (a Feature or "
        "FeatureCollection of them also works)"
    )


def _polygonal(geometry: BaseGeometry) -> BaseGeometry:
    """The areal parts of a repaired geometry (make_valid can add lines and points)."""
    parts = shapely.get_parts(geometry)
    return shapely.union_all([p for p in parts if p.geom_type in POLYGONAL and not p.is_empty])


def _checked_lonlat(geometry: BaseGeometry) -> None:
    lon0, lat0, lon1, lat1 = geometry.bounds
    if not (-180 <= lon0 <= lon1 <= 180 and -90 <= lat0 <= lat1 <= 90):
        raise AreaError(
            f"the area's coordinates ({lon0:.6g}, {lat0:.6g}, {lon1:.6g}, {lat1:.6g}) are not "
            "longitude/latitude; reproject the file to EPSG:4326 (GeoJSON's own CRS)"
        )


def parse_aoi(source: str | bytes | Mapping[str, Any]) -> AreaOfInterest:
    """Read an area from GeoJSON text or an already parsed object, in EPSG:4326.

    A polygon that crosses itself is repaired (``shapely.make_valid``) and flagged; one that
    encloses nothing is refused.

    Raises:
        AreaError: when it is not JSON, holds no polygon or another kind of geometry, is in
            another CRS, encloses no area, or is larger than ``MAX_AREA_KM2``.
    """
    try:
        data = json.loads(source) if isinstance(source, str | bytes) else source
    except (ValueError, UnicodeDecodeError) as exc:
        raise AreaError(f"the area is not GeoJSON: {exc}") from exc
    crs = _crs_name(data) if isinstance(data, Mapping) else None
    if crs and crs not in LONLAT_NAMES:
        raise AreaError(f"the area is in {crs}; reproject it to EPSG:4326 (longitude/latitude)")
    geometries = _geometries(data)
    try:
        parts = [shape(g) for g in geometries]
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        raise AreaError(f"the area's geometry cannot be read ({exc})") from exc
    for part in parts:
        if part.geom_type not in POLYGONAL:
            raise AreaError(f"the area holds a {part.geom_type}; only polygons enclose an area")
    geometry = shapely.union_all([p for p in parts if not p.is_empty]) if parts else None
    if geometry is None or geometry.is_empty:
        raise AreaError("the area is empty: draw a rectangle or polygon, or upload one")
    _checked_lonlat(geometry)
    repaired = not geometry.is_valid
    if repaired:
        geometry = _polygonal(shapely.make_valid(geometry))
    if geometry.is_empty or geometry.area == 0:
        raise AreaError("the area's polygon encloses no ground (all its corners are on a line)")
    area = AreaOfInterest(geometry, repaired)
    if area.km2 > MAX_AREA_KM2:
        raise AreaError(
            f"the area covers {area.km2:,.0f} km², more than the {MAX_AREA_KM2:,.0f} km² an "
            "area of interest may have; draw a smaller one (or search without an area)"
        )
    return area


def read_aoi(path: str | Path) -> AreaOfInterest:
    """Read an area from a GeoJSON file.

    Raises:
        AreaError: when the file cannot be read, or as ``parse_aoi``.
    """
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise AreaError(f"cannot read the area file {path}: {exc.strerror or exc}") from exc
    return parse_aoi(text)


def tiles_in(tiles: TileColumns, area: AreaOfInterest) -> np.ndarray:
    """Row positions (sorted) of the tiles whose footprint intersects the area.

    The answer is the one a test of every stored footprint would give, without building
    them all: the area is taken into the scene's pixels, where each tile is its window; a
    window clearly inside or outside it (by ``EDGE_PX``) is decided there, and only windows
    along the area's edge have their footprints built and tested.
    """
    rows = np.arange(len(tiles))
    if tiles.stored is not None or not len(rows):
        return rows[np.asarray(shapely.intersects(tiles.footprints(rows), area.geometry), bool)]
    local = _in_pixels(tiles, area)
    left, top, right, bottom = local.bounds
    w = tiles.windows.astype(np.float64)
    near = (
        (w[:, 0] + w[:, 2] >= left - EDGE_PX)
        & (w[:, 0] <= right + EDGE_PX)
        & (w[:, 1] + w[:, 3] >= top - EDGE_PX)
        & (w[:, 1] <= bottom + EDGE_PX)
    )
    rows, w = rows[near], w[near]
    boxes = shapely.box(w[:, 0], w[:, 1], w[:, 0] + w[:, 2], w[:, 1] + w[:, 3])
    inner, outer = local.buffer(-EDGE_PX), local.buffer(EDGE_PX)
    shapely.prepare([inner, outer])
    found = shapely.intersects(inner, boxes)
    edge = shapely.intersects(outer, boxes) & ~found
    found[edge] = shapely.intersects(tiles.footprints(rows[edge]), area.geometry)
    return rows[found]


def _in_pixels(tiles: TileColumns, area: AreaOfInterest) -> BaseGeometry:
    """The area in the scene's pixel coordinates (densified, so its edges stay curved)."""
    to_scene = Transformer.from_crs("EPSG:4326", tiles.meta["crs_wkt"], always_xy=True)
    inverse = ~Affine(*tiles.meta["transform"])
    west, south, east, north = area.geometry.bounds
    lonlat = shapely.segmentize(area.geometry, max(east - west, north - south) / DENSIFY)

    def project(xy: np.ndarray) -> np.ndarray:
        x, y = to_scene.transform(xy[:, 0], xy[:, 1])
        return np.column_stack(inverse * (np.asarray(x), np.asarray(y)))

    return shapely.transform(lonlat, project)
