"""Areas of interest: the polygon an analyst draws or uploads, and the tiles it touches.

Search, refine, find-similar and the heat map consider only tiles whose catalog footprint
(EPSG:4326) intersects the area. Those tiles are found from the tiles' windows and
footprints before any score is computed, so a ranking never post-filters its hits and comes
up short.

An area is bounded before anything costly is done with it: its GeoJSON may take
``SCENESEEK_AREA_MAX_MB`` and it keeps at most ``SCENESEEK_AREA_MAX_VERTICES`` corners (more
are simplified away, and the area says so), so no viewer can hold up the server with one.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from pyproj import Geod
from shapely.errors import GEOSException
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from core.errors import AreaError
from core.search.area_lookup import tiles_touching
from core.settings import get_settings

if TYPE_CHECKING:
    from core.search.tile_columns import TileColumns

MAX_AREA_KM2 = 1_000_000.0  # a square 1,000 km a side: larger is a region, not a place
POLYGONAL = ("Polygon", "MultiPolygon")
LONLAT_NAMES = ("EPSG:4326", "urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:EPSG::4326")
WGS84 = Geod(ellps="WGS84")
NOT_FINITE = (
    "the area has a coordinate that is not a number (NaN or Infinity); every corner needs a "
    "finite longitude and latitude"
)
SIMPLIFY_GROWTH = 1.5  # each simplification tried has this times the last one's tolerance


class TilesFound:
    """The tiles an area holds in each scene it was looked up in, kept with the area.

    Search, its notice, refine and the heat map then look an area's tiles up once per
    scene, and the engine can do it before it takes its lock. Entries are keyed by the tile
    columns' identity and go when a refreshed scene replaces them; a copy sent to another
    process (a Dask shard) starts empty.
    """

    def __init__(self) -> None:
        self._rows: dict[int, tuple[weakref.ref[TileColumns], np.ndarray]] = {}

    def __reduce__(self) -> tuple[type[TilesFound], tuple[()]]:
        return TilesFound, ()

    def get(self, tiles: TileColumns) -> np.ndarray | None:
        """The rows found in ``tiles`` before, or None."""
        entry = self._rows.get(id(tiles))
        return entry[1] if entry is not None and entry[0]() is tiles else None

    def put(self, tiles: TileColumns, rows: np.ndarray) -> None:
        """Keep ``rows`` for ``tiles`` (and forget scenes that are gone)."""
        live = {key: entry for key, entry in self._rows.items() if entry[0]() is not None}
        self._rows = {**live, id(tiles): (weakref.ref(tiles), rows)}


@dataclass(frozen=True)
class AreaOfInterest:
    """A valid (Multi)Polygon in lon/lat; ``repaired`` when it crossed itself and was fixed.

    ``simplified_from`` is how many vertices it had when it had too many and was simplified
    (0: kept as given).
    """

    geometry: BaseGeometry
    repaired: bool = False
    simplified_from: int = 0
    found: TilesFound = field(default_factory=TilesFound, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        shapely.prepare(self.geometry)  # every footprint test reuses its index

    @property
    def km2(self) -> float:
        """Geodesic area on the WGS84 ellipsoid, in square kilometres."""
        return abs(WGS84.geometry_area_perimeter(self.geometry)[0]) / 1e6

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(min_lon, min_lat, max_lon, max_lat)."""
        return tuple(float(v) for v in self.geometry.bounds)  # type: ignore[return-value]

    @property
    def vertices(self) -> int:
        """Corners of all its rings (each ring's first corner counted twice, as GeoJSON has it)."""
        return int(shapely.get_num_coordinates(self.geometry))

    def to_geojson(self) -> dict[str, Any]:
        """The area as a GeoJSON geometry (what the map draws and exports carry)."""
        return dict(mapping(self.geometry))

    def describe(self) -> str:
        """One line for headings: its size, and whether it was repaired or simplified."""
        km2 = self.km2
        size = f"{km2:,.2f} km²" if km2 >= 0.01 else f"{km2 * 1e6:,.0f} m²"
        notes = [" (repaired: it crossed itself)"] if self.repaired else []
        if self.simplified_from:
            notes.append(
                f" (simplified from {self.simplified_from:,} to {self.vertices:,} vertices)"
            )
        return f"an area of {size}" + "".join(notes)


def _crs_name(data: Mapping[str, Any]) -> str | None:
    crs = data.get("crs")
    if not isinstance(crs, Mapping):
        return None
    return str((crs.get("properties") or {}).get("name", ""))


def _check_size(size: int) -> None:
    """Refuse GeoJSON of ``size`` bytes when it is over ``SCENESEEK_AREA_MAX_MB``."""
    limit_mb = get_settings().area_max_mb
    if size > limit_mb * 2**20:
        raise AreaError(
            f"the area's GeoJSON takes {size / 2**20:,.1f} MB, more than the {limit_mb:g} MB "
            "an area may take (SCENESEEK_AREA_MAX_MB); simplify it first, or draw it"
        )


def _document(source: str | bytes | Mapping[str, Any]) -> Any:
    """The parsed GeoJSON, once its size is known to be within ``SCENESEEK_AREA_MAX_MB``.

    An object (a drawing from the map) is measured as the JSON text it stands for.
    """
    try:
        text = json.dumps(source) if isinstance(source, Mapping) else source
    except (TypeError, ValueError, RecursionError) as exc:
        raise AreaError(f"the area is not a GeoJSON object: {exc}") from exc
    _check_size(len(text.encode() if isinstance(text, str) else text))
    if isinstance(source, Mapping):
        return source
    try:
        return json.loads(source, parse_constant=_not_finite)
    except AreaError:
        raise
    except RecursionError as exc:
        raise AreaError("the area's GeoJSON is nested too deeply to be a polygon") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise AreaError(f"the area is not GeoJSON: {exc}") from exc


def _not_finite(token: str) -> float:
    """``json.loads``' hook for ``NaN`` and ``Infinity``, which JSON does not have."""
    raise AreaError(NOT_FINITE)


def _feature_geometry(feature: Any) -> Any:
    if not isinstance(feature, Mapping) or feature.get("type", "Feature") != "Feature":
        raise AreaError("a feature of the area is not a GeoJSON Feature")
    geometry = feature.get("geometry")
    if not geometry:
        raise AreaError("a feature of the area has no geometry")
    return geometry


def _geometries(data: Any) -> list[Any]:
    """Every geometry object in a GeoJSON geometry, Feature or FeatureCollection."""
    if not isinstance(data, Mapping):
        raise AreaError("the area is not a GeoJSON object")
    kind = data.get("type")
    if kind == "FeatureCollection":
        features = data.get("features") or []
        if not isinstance(features, list):
            raise AreaError("the area's features are not a list")
        return [_feature_geometry(feature) for feature in features]
    if kind == "Feature":
        return [_feature_geometry(data)]
    if kind in POLYGONAL:
        return [data]
    what = f"a {kind}" if kind else "GeoJSON without a type"
    raise AreaError(
        f"the area is {what}; draw or upload a Polygon or MultiPolygon (a Feature or "
        "FeatureCollection of them also works)"
    )


def _polygon(geometry: Any) -> BaseGeometry:
    """One GeoJSON geometry as a shapely (Multi)Polygon with finite coordinates."""
    kind = geometry.get("type") if isinstance(geometry, Mapping) else None
    if kind is not None and kind not in POLYGONAL:
        raise AreaError(f"the area holds a {kind}; only polygons enclose an area")
    try:
        with np.errstate(invalid="ignore"):  # a NaN corner is refused just below
            polygon = shape(geometry)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, RecursionError) as exc:
        raise AreaError(f"the area's geometry cannot be read ({exc})") from exc
    if not np.isfinite(shapely.get_coordinates(polygon)).all():
        raise AreaError(NOT_FINITE)
    return polygon


def _repaired(geometry: BaseGeometry) -> BaseGeometry:
    """A valid geometry covering what ``geometry`` covers: overlapping parts are joined.

    Only the areal parts are kept (a repair can leave lines and points).
    """
    parts = shapely.get_parts(shapely.make_valid(geometry, method="structure"))
    return shapely.union_all([p for p in parts if p.geom_type in POLYGONAL and not p.is_empty])


def _checked_lonlat(bounds: np.ndarray) -> None:
    lon0, lat0, lon1, lat1 = bounds.tolist()
    if not (-180 <= lon0 <= lon1 <= 180 and -90 <= lat0 <= lat1 <= 90):
        raise AreaError(
            f"the area's coordinates ({lon0:.6g}, {lat0:.6g}, {lon1:.6g}, {lat1:.6g}) are not "
            "longitude/latitude; reproject the file to EPSG:4326 (GeoJSON's own CRS)"
        )


def _simplified(geometry: BaseGeometry, limit: int) -> BaseGeometry:
    """``geometry`` with at most ``limit`` vertices, its rings kept apart and unbroken.

    Visvalingam-Whyatt (``shapely.coverage_simplify``) rather than Douglas-Peucker
    (``shapely.simplify``), which takes quadratic time on a saw-tooth (20 s at 40,000
    vertices). The first tolerance tried would remove just enough corners if removing one
    changed no other's triangle (``_first_tolerance``); it grows by half until the area fits,
    so the area moves little more than it must. Each pass simplifies the last one's result:
    only the first reads every corner.

    Raises:
        AreaError: when even a tolerance of its whole extent leaves too many (many separate
            polygons or holes keep three corners each).
    """
    west, south, east, north = geometry.bounds
    extent = max(east - west, north - south)
    tolerance, simpler = _first_tolerance(geometry, limit), geometry
    while tolerance < extent * SIMPLIFY_GROWTH:
        simpler = shapely.coverage_simplify(simpler, tolerance)
        if not simpler.is_valid:
            simpler = _repaired(simpler)
        if shapely.get_num_coordinates(simpler) <= limit:
            return simpler
        tolerance *= SIMPLIFY_GROWTH
    rings = len(shapely.get_rings(shapely.get_parts(geometry)))
    raise AreaError(
        f"the area has {rings:,} polygons and holes, too many to fit in the {limit:,} "
        "vertices an area may have (SCENESEEK_AREA_MAX_VERTICES); merge or drop some"
    )


def _first_tolerance(geometry: BaseGeometry, limit: int) -> float:
    """The tolerance that would leave ``limit`` corners if removing one changed no other.

    Visvalingam-Whyatt weighs each corner by its triangle with its two neighbours and removes
    those whose triangle is smaller than the tolerance squared.
    """
    triangles = []
    for ring in shapely.get_rings(shapely.get_parts(geometry)):
        here = shapely.get_coordinates(ring)[:-1]
        before, after = np.roll(here, 1, axis=0), np.roll(here, -1, axis=0)
        u, v = before - here, after - here
        triangles.append(np.abs(u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]) / 2)
    areas = np.sort(np.concatenate(triangles))
    excess = min(max(len(areas) - limit, 0), len(areas) - 1)
    return max(float(np.sqrt(areas[excess])), np.finfo(float).tiny)


def _bounded(geometry: BaseGeometry) -> tuple[BaseGeometry, int]:
    """The geometry within the vertex limit, and its vertex count if it had to be simplified."""
    limit = get_settings().area_max_vertices
    given = int(shapely.get_num_coordinates(geometry))
    return (geometry, 0) if given <= limit else (_simplified(geometry, limit), given)


def parse_aoi(source: str | bytes | Mapping[str, Any]) -> AreaOfInterest:
    """Read an area from GeoJSON text or an already parsed object, in EPSG:4326.

    Every way in (the app's upload and drawing, the CLI's ``--aoi``) comes through here, so
    the limits hold for all of them. A polygon that crosses itself is repaired
    (``shapely.make_valid``) and flagged; one with more than ``SCENESEEK_AREA_MAX_VERTICES``
    corners is simplified and flagged; one that encloses nothing is refused.

    Raises:
        AreaError: when it is larger than ``SCENESEEK_AREA_MAX_MB``, is not JSON, holds no
            polygon or another kind of geometry, has a coordinate that is not a finite
            number, is in another CRS, encloses no area, or is larger than ``MAX_AREA_KM2``.
    """
    data = _document(source)
    crs = _crs_name(data) if isinstance(data, Mapping) else None
    if crs and crs not in LONLAT_NAMES:
        raise AreaError(f"the area is in {crs}; reproject it to EPSG:4326 (longitude/latitude)")
    parts = [p for p in map(_polygon, _geometries(data)) if not p.is_empty]
    if not parts:
        raise AreaError("the area is empty: draw a rectangle or polygon, or upload one")
    _checked_lonlat(shapely.total_bounds(parts))
    try:
        valid = [p if p.is_valid else _repaired(p) for p in parts]
        repaired = any(v is not p for v, p in zip(valid, parts, strict=True))
        geometry = shapely.union_all(valid)
        if geometry.is_empty or geometry.area == 0:
            raise AreaError("the area's polygon encloses no ground (all its corners are on a line)")
        geometry, given = _bounded(geometry)
    except GEOSException as exc:
        raise AreaError(f"the area's geometry cannot be used ({exc})") from exc
    area = AreaOfInterest(geometry, repaired, given)
    if area.km2 > MAX_AREA_KM2:
        raise AreaError(
            f"the area covers {area.km2:,.0f} km², more than the {MAX_AREA_KM2:,.0f} km² an "
            "area of interest may have; draw a smaller one (or search without an area)"
        )
    return area


def read_aoi(path: str | Path) -> AreaOfInterest:
    """Read an area from a GeoJSON file (one too large is refused from its size, unread).

    Raises:
        AreaError: when the file cannot be read, or as ``parse_aoi``.
    """
    try:
        _check_size(Path(path).stat().st_size)
        text = Path(path).read_bytes()
    except OSError as exc:
        raise AreaError(f"cannot read the area file {path}: {exc.strerror or exc}") from exc
    return parse_aoi(text)


def tiles_in(tiles: TileColumns, area: AreaOfInterest) -> np.ndarray:
    """Row positions (sorted, read-only) of the tiles whose footprint intersects the area.

    Found once per scene and kept with the area (``TilesFound``).
    """
    rows = area.found.get(tiles)
    if rows is None:
        rows = tiles_touching(tiles, area.geometry)
        rows.flags.writeable = False
        area.found.put(tiles, rows)
    return rows
