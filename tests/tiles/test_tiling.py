"""Every tile of every scene lies inside its raster: windows, and footprints in both CRSs."""

import warnings

import numpy as np
import pytest
import shapely

import tiles
from bench.large_scene import make_large_scene
from tiles.footprint import window_footprints
from tiles.grid import grid_sizes, stride_for, tile_count

SIZES = (256, 512, 1024)


def build_everything(path):
    """The catalog with every grid window (no valid-fraction threshold)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tiles.AlphaBandIgnoredWarning)
        warnings.simplefilter("ignore", tiles.NIRBandDroppedWarning)
        return tiles.build_catalog(path, tiles.TilingConfig(min_valid=0))


def check_inside(path, catalog):
    info = tiles.describe(path)
    windows = catalog[["col_off", "row_off", "width", "height"]].to_numpy()
    assert (windows[:, :2] >= 0).all()
    assert (windows[:, 0] + windows[:, 2] <= info.width).all()
    assert (windows[:, 1] + windows[:, 3] <= info.height).all()
    assert len({tuple(w) for w in windows}) == len(windows)  # no window twice
    # footprints in EPSG:4326 stay within the scene's lon/lat bounds
    assert catalog.geometry.within(shapely.box(*info.bounds_4326).buffer(1e-9)).all()
    # and in the scene CRS within the raster's own outline (exact up to rounding)
    outline = window_footprints(
        info.transform, info.crs, np.array([[0, 0, info.width, info.height]]), 1, info.crs
    )[0]
    tolerance = 1e-6 * max(abs(info.transform.a), abs(info.transform.e))
    assert tiles.scene_footprints(catalog).within(outline.buffer(tolerance)).all()
    return info, windows


def check_full_grid(info, catalog, windows):
    """Every used scale has its whole grid, and its windows cover every pixel."""
    used = grid_sizes(info.width, info.height, SIZES)
    assert sorted(set(catalog["scale"])) == list(used)
    for size in used:
        mine = windows[catalog["scale"].to_numpy() == size]
        assert len(mine) == tile_count(info.width, info.height, size, stride_for(size, 0.5))
        covered = np.zeros((info.height, info.width), dtype=bool)
        for col, row, w, h in mine:
            covered[row : row + h, col : col + w] = True
        assert covered.all(), size


def test_every_shared_scene_tiles_inside_its_raster(scene_path, catalog_of):
    check_inside(scene_path, catalog_of(scene_path))
    catalog = build_everything(scene_path)
    info, windows = check_inside(scene_path, catalog)
    check_full_grid(info, catalog, windows)


@pytest.mark.parametrize("size", [2600, 1100])
def test_generated_scene_tiles_inside_its_raster(tmp_path, size):
    """A tiled, JPEG-compressed scene with overviews whose sides fit no stride."""
    path = make_large_scene(tmp_path / "generated.tif", size)
    catalog = build_everything(path)
    info, windows = check_inside(path, catalog)
    check_full_grid(info, catalog, windows)
    last = catalog.sort_values(["scale", "row_off", "col_off"]).groupby("scale").tail(1)
    assert (last["col_off"] + last["width"] == size).all()
    assert (last["row_off"] + last["height"] == size).all()
