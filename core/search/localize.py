"""Semantic localisation (paper section V-H): where in a scene a description fits best.

Every tile's stored vectors are scored against the query (no pixel is re-read): a caption
vector with the text scores, an example image's or a tile's visual vector with the cosine
of image and tile searches. Each score is averaged into the pixels its window covers over
all scales, and the grid is median-filtered. The result is a float32 GeoTIFF on the scene's
grid at reduced resolution and a coloured RGBA overlay warped to Web Mercator (EPSG:3857),
as the map draws it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image
from rasterio.crs import CRS
from scipy.ndimage import median_filter

from core.search.aoi import AreaOfInterest, tiles_in
from core.search.scenes import SceneIndex, SearchResources
from core.search.scoring import text_scores, visual_scores
from core.search.shard_contract import HeatMap
from tiles.atomic import atomic_path
from tiles.overlay import MAP_CRS, warp_to_map

MAX_SIDE = 1024
MEDIAN_CELLS = 5
# Dark blue -> teal -> yellow: readable over imagery and for colour-blind analysts.
RAMP = np.array(
    [
        [13, 8, 135],
        [84, 2, 163],
        [139, 10, 165],
        [185, 50, 137],
        [219, 92, 104],
        [244, 136, 73],
        [254, 188, 43],
        [240, 249, 33],
    ],
    dtype=np.float32,
)


def heat_map(
    scene: SceneIndex,
    query: np.ndarray,
    max_side: int = MAX_SIDE,
    kind: str = "text",
    area: AreaOfInterest | None = None,
) -> HeatMap:
    """Average every tile's exact score into the cells it covers, then median-filter.

    ``kind`` is the query's (``SearchResult.kind``): ``"text"`` scores a caption vector as a
    text search does, ``"image"`` a visual vector by cosine, as image and tile searches do.
    With an ``area``, only the tiles it touches are scored; the rest of the scene stays blank.
    """
    scorer = text_scores if kind == "text" else visual_scores
    ids = np.arange(len(scene)) if area is None else tiles_in(scene.tiles, area)
    values = np.full(len(scene), np.nan, dtype=np.float32)
    values[ids] = scorer(scene, ids, query)
    return tile_heat(scene, values, max_side)


def scene_heat(
    res: SearchResources,
    scene: str,
    query: np.ndarray,
    kind: str = "text",
    area: AreaOfInterest | None = None,
) -> HeatMap:
    """``heat_map`` of a ready scene, drawn by the Dask worker that holds it under shards.

    Raises:
        SceneNotFoundError: for a scene that is not ready.
        ClusterError: when no Dask worker could answer for the scene.
    """
    if res.shards is None:
        return heat_map(res.select([scene])[0], query, kind=kind, area=area)
    return res.shards.heat(*res.shard_spec(res.chosen([scene])), query, kind, area)


def tile_heat(scene: SceneIndex, values: np.ndarray, max_side: int = MAX_SIDE) -> HeatMap:
    """Average one value per tile into the cells it covers, then median-filter.

    Tiles whose value is NaN (e.g. not comparable in a change map) are left out.
    """
    meta = scene.tiles.meta
    width, height = int(meta["width"]), int(meta["height"])
    step = max(1, math.ceil(max(width, height) / max_side))
    rows, cols = math.ceil(height / step), math.ceil(width / step)
    total = np.zeros((rows, cols), dtype=np.float64)
    count = np.zeros((rows, cols), dtype=np.float64)
    finite = np.isfinite(values)
    for (col, row, w, h), score in zip(scene.windows[finite], values[finite], strict=True):
        r0, r1 = max(0, row // step), min(rows, math.ceil((row + h) / step))
        c0, c1 = max(0, col // step), min(cols, math.ceil((col + w) / step))
        total[r0:r1, c0:c1] += score
        count[r0:r1, c0:c1] += 1
    covered = count > 0
    mean = np.where(covered, total / np.maximum(count, 1), np.nan)
    if covered.any():
        filled = np.where(covered, mean, np.nanmin(mean))
        mean = np.where(covered, median_filter(filled, size=MEDIAN_CELLS, mode="nearest"), np.nan)
    transform = Affine(*meta["transform"]) @ Affine.scale(step)
    return HeatMap(mean.astype(np.float32), transform, CRS.from_wkt(meta["crs_wkt"]))


def colourise(values: np.ndarray) -> np.ndarray:
    """RGBA image of a heat map: low scores dark and faint, high scores bright and opaque."""
    valid = np.isfinite(values)
    rgba = np.zeros((*values.shape, 4), dtype=np.uint8)
    if not valid.any():
        return rgba
    lo, hi = np.nanpercentile(values, [2, 99.5])
    t = np.clip((np.where(valid, values, lo) - lo) / max(hi - lo, 1e-9), 0, 1)
    position = t * (len(RAMP) - 1)
    base = np.floor(position).astype(int).clip(0, len(RAMP) - 2)
    frac = (position - base)[..., None]
    colour = RAMP[base] * (1 - frac) + RAMP[base + 1] * frac
    rgba[..., :3] = colour.astype(np.uint8)
    rgba[..., 3] = np.where(valid, (60 + 160 * t).astype(np.uint8), 0)
    return rgba


def write_heat_tif(heat: HeatMap, path: Path) -> None:
    """Float32 GeoTIFF on the scene grid (NaN = no tile), written atomically."""
    profile = {
        "driver": "GTiff",
        "width": heat.values.shape[1],
        "height": heat.values.shape[0],
        "count": 1,
        "dtype": "float32",
        "crs": heat.crs,
        "transform": heat.transform,
        "nodata": float("nan"),
        "compress": "deflate",
    }
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(heat.values, 1)


def write_heat_png(heat: HeatMap, path: Path) -> tuple[float, float, float, float]:
    """Coloured overlay warped to Web Mercator; returns its bounds in lon/lat for the map."""
    rgba, bounds = warp_to_map(colourise(heat.values), heat.transform, heat.crs, MAP_CRS)
    with atomic_path(path) as tmp:
        Image.fromarray(rgba).save(tmp, format="PNG")
    return bounds
