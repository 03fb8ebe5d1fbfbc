"""Which tiles of a scene an area touches, found from their windows, not their footprints.

The answer is the one a test of every footprint (EPSG:4326) against the area would give. The
part of the area near the scene is taken into the scene's pixels, where each tile is its
window: a window that the area's outline does not come near lies wholly inside or outside
it (one point in polygon decides), and one that the outline crosses well inside its edges
touches the area. Only windows along the outline, within ``EDGE_PX`` plus what drawing its
reprojected edges as straight pieces may be off by, have their footprints built and tested.
Both window tests go through an STRtree of the windows, so an outline of many long edges (a
saw-tooth across the scene) costs a lookup per edge, not a scan of every edge per window.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import shapely
from affine import Affine
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

if TYPE_CHECKING:
    from core.search.tile_columns import TileColumns

LONLAT = "EPSG:4326"
EDGE_PX = 1.0  # windows this close to the area's outline are decided by their footprints
DENSIFY = 256  # the outline is cut into pieces of 1/DENSIFY of its extent ...
DENSE_POINTS = 20_000  # ... or longer, so that it makes at most about this many points
SCENE_MARGIN = 0.25  # the area is cut to the scene's lon/lat bounds widened by this share
PIECES_PER_QUERY = 4096  # pieces of outline looked up at once: bounds the candidate pairs


def tiles_touching(tiles: TileColumns, geometry: BaseGeometry) -> np.ndarray:
    """Row positions (sorted) of the tiles whose footprint intersects ``geometry`` (lon/lat)."""
    if tiles.stored is not None or not len(tiles):
        rows = np.arange(len(tiles))
        return rows[np.asarray(shapely.intersects(tiles.footprints(rows), geometry), bool)]
    starts, ends = tiles.windows[:, :2], tiles.windows[:, :2] + tiles.windows[:, 2:]
    nearby = _near_scene(tiles, geometry, (*starts.min(axis=0), *ends.max(axis=0)))
    if nearby.is_empty:
        return np.empty(0, np.int64)
    local, slack = _in_pixels(tiles, nearby)
    band = EDGE_PX + 2 * slack
    left, top, right, bottom = local.bounds
    near = (
        (ends[:, 0] >= left - band)
        & (starts[:, 0] <= right + band)
        & (ends[:, 1] >= top - band)
        & (starts[:, 1] <= bottom + band)
    )
    rows = np.flatnonzero(near)
    w = tiles.windows[rows].astype(np.float64)
    close, crossed = _outline_meets(local, w, band)
    found = crossed.copy()
    centres = w[~close, :2] + w[~close, 2:] / 2
    shapely.prepare(local)
    found[~close] = shapely.contains_xy(local, centres[:, 0], centres[:, 1])
    edge = close & ~crossed
    shapely.prepare(nearby)
    found[edge] = shapely.intersects(tiles.footprints(rows[edge]), nearby)
    return rows[found]


def _outline_meets(
    geometry: BaseGeometry, w: np.ndarray, band: float
) -> tuple[np.ndarray, np.ndarray]:
    """Which windows the outline comes within ``band`` of, and which it crosses ``band`` inside.

    Candidates come from an STRtree of the windows grown by ``band``; each candidate pair
    of a piece of outline and a window is then clipped in numpy (``_meets``), since a GEOS
    predicate per pair costs more than the rest of the lookup together.
    """
    coords, ring = _corners(geometry)
    same = np.flatnonzero(ring[1:] == ring[:-1])
    grown = np.column_stack([w[:, :2] - band, w[:, :2] + w[:, 2:] + band])
    shrunk = np.column_stack([w[:, :2] + band, w[:, :2] + w[:, 2:] - band])
    tree = shapely.STRtree(shapely.box(*grown.T))
    close, crossed = np.zeros(len(w), bool), np.zeros(len(w), bool)
    for chunk in np.array_split(same, max(1, len(same) // PIECES_PER_QUERY)):
        a, b = coords[chunk], coords[chunk + 1]
        piece, window = tree.query(shapely.linestrings(np.stack([a, b], axis=1)))
        a, b = a[piece], b[piece]
        close[window[_meets(a, b, grown[window])]] = True
        crossed[window[_meets(a, b, shrunk[window])]] = True
    return close, crossed


def _meets(a: np.ndarray, b: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Whether each segment ``a``-``b`` meets its rectangle (x0, y0, x1, y1): Liang-Barsky.

    A rectangle with x1 < x0 or y1 < y0 (a window shrunk past nothing) meets no segment.
    """
    enter, leave = np.zeros(len(a)), np.ones(len(a))
    for axis in (0, 1):
        start, step = a[:, axis], b[:, axis] - a[:, axis]
        low, high = box[:, axis], box[:, axis + 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            t_low, t_high = (low - start) / step, (high - start) / step
        flat = step == 0
        inside = (low <= start) & (start <= high)
        enter = np.maximum(
            enter, np.where(flat, np.where(inside, -np.inf, np.inf), np.minimum(t_low, t_high))
        )
        leave = np.minimum(
            leave, np.where(flat, np.where(inside, np.inf, -np.inf), np.maximum(t_low, t_high))
        )
    return enter <= leave


def _near_scene(
    tiles: TileColumns, geometry: BaseGeometry, pixels: tuple[int, ...]
) -> BaseGeometry:
    """The part of the area over the tiles (``pixels``: left, top, right, bottom) and a margin.

    A footprint lies inside the tiles' lon/lat bounds, so it meets the part exactly when it
    meets the whole; far corners of a large area are never reprojected into the scene's CRS.
    """
    left, top, right, bottom = pixels
    xs, ys = Affine(*tiles.meta["transform"]) @ (np.array([left, right]), np.array([top, bottom]))
    west, south, east, north = _transformer(tiles.meta["crs_wkt"], LONLAT).transform_bounds(
        xs.min(), ys.min(), xs.max(), ys.max(), densify_pts=21
    )
    if west > east:  # across the antimeridian: keep the whole area
        return geometry
    dx, dy = (east - west) * SCENE_MARGIN, (north - south) * SCENE_MARGIN
    return shapely.clip_by_rect(geometry, west - dx, south - dy, east + dx, north + dy)


@functools.lru_cache(maxsize=64)
def _transformer(source: str, target: str) -> Transformer:
    """A transformer kept for reuse (making one takes milliseconds; pyproj's are thread-safe)."""
    return Transformer.from_crs(source, target, always_xy=True)


def _in_pixels(tiles: TileColumns, geometry: BaseGeometry) -> tuple[BaseGeometry, float]:
    """The area in the scene's pixel coordinates, and how far (px) it may be off.

    Its edges are straight in lon/lat and curved in the scene's CRS. How far each edge's
    middle lands from the middle of its reprojected chord bounds what a straight edge
    misses; when that is more than ``EDGE_PX``, the edges are cut into pieces first
    (``DENSIFY``, ``DENSE_POINTS``) and measured again.
    """
    to_scene = _transformer(LONLAT, tiles.meta["crs_wkt"])
    inverse = ~Affine(*tiles.meta["transform"])

    def project(xy: np.ndarray) -> np.ndarray:
        x, y = to_scene.transform(xy[:, 0], xy[:, 1])
        return np.column_stack(inverse @ (np.asarray(x), np.asarray(y)))

    local, slack = _projected(geometry, project)
    if slack > EDGE_PX:
        west, south, east, north = geometry.bounds
        step = max(max(east - west, north - south) / DENSIFY, geometry.length / DENSE_POINTS)
        local, slack = _projected(shapely.segmentize(geometry, step), project)
    return local, slack


def _projected(
    geometry: BaseGeometry, project: Callable[[np.ndarray], np.ndarray]
) -> tuple[BaseGeometry, float]:
    """``geometry`` with ``project`` applied to its corners, and how far its edges bend."""
    coords, ring = _corners(geometry)
    same = ring[1:] == ring[:-1]
    ends = project(coords)
    middles = project((coords[1:][same] + coords[:-1][same]) / 2)
    chords = (ends[1:][same] + ends[:-1][same]) / 2
    slack = float(np.hypot(*(middles - chords).T).max(initial=0.0))
    return shapely.transform(geometry, lambda _: ends), slack


def _corners(geometry: BaseGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Every ring's corners, in ``shapely.get_coordinates`` order, and which ring each is on."""
    rings = shapely.get_rings(shapely.get_parts(geometry))
    return shapely.get_coordinates(rings, return_index=True)
