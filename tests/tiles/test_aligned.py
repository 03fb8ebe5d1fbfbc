"""AlignedTileReader: one scene read on another scene's grid (the real 2009/2020 NAIP pair)."""

import pickle
from dataclasses import replace

import numpy as np
import pytest
from affine import Affine

import tiles
from tests.tiles.conftest import scene

EARLIER = scene("20090818_5m")
LATER = scene("20200831_5m")
SMALL = tiles.TilingConfig(sizes=(256,))


@pytest.fixture(scope="module")
def catalogs():
    return tiles.build_catalog(EARLIER, SMALL), tiles.build_catalog(LATER, SMALL)


def _windows(catalog) -> np.ndarray:
    return catalog[list(tiles.WINDOW_FIELDS)].to_numpy(np.int64)


def test_reads_the_earlier_scene_on_the_later_grid(catalogs):
    earlier, later = catalogs
    reader = tiles.AlignedTileReader.from_catalogs(earlier, later)
    assert reader.grid == tiles.PixelGrid.from_catalog(later)
    assert (reader.grid.width, reader.grid.height) == (934, 723)  # the later scene's size
    window = tuple(_windows(later)[8])
    aligned = reader.read(window).astype(np.int16)
    own = tiles.TileReader.from_catalog(earlier).read(window).astype(np.int16)
    other_date = tiles.TileReader.from_catalog(later).read(window).astype(np.int16)
    # 1 m apart (a fifth of a pixel): nearly the earlier scene's own pixels, far from 2020's
    assert np.abs(aligned - own).mean() < 4 < 30 < np.abs(aligned - other_date).mean()
    copy = pickle.loads(pickle.dumps(reader))
    assert np.array_equal(copy.read(window), aligned.astype(np.uint8))


@pytest.mark.parametrize("name", ["20090818_5m", "3211605_ne", "pix4d", "RGB.byte"])
def test_on_its_own_grid_a_scene_reads_as_itself(name):
    """Nodata, a real alpha band, and NAIP's near-infrared tagged alpha (not a mask)."""
    catalog = tiles.build_catalog(scene(name), tiles.TilingConfig(sizes=(128,)))
    reader = tiles.AlignedTileReader.from_catalogs(catalog, catalog)
    own = tiles.TileReader.from_catalog(catalog)
    windows = _windows(catalog)
    for window in windows[:: max(1, len(windows) // 6)]:
        assert np.abs(reader.read(window).astype(np.int16) - own.read(window)).mean() < 0.5
    assert np.allclose(reader.coverage(windows), catalog["valid_fraction"], atol=0.02)


def test_ground_outside_the_scene_is_invalid_and_uncovered(catalogs):
    earlier, later = catalogs
    grid = tiles.PixelGrid.from_catalog(later)
    moved = Affine(*grid.transform) @ Affine.translation(500, 0)  # 500 px east: half outside
    reader = tiles.AlignedTileReader(
        EARLIER, replace(grid, transform=tuple(moved)[:6]), out_size=64
    )
    windows = _windows(later)
    coverage = reader.coverage(windows)
    inside = windows[:, 0] + windows[:, 2] <= 934 - 500
    outside = windows[:, 0] >= 934 - 500
    assert np.all(coverage[inside] > 0.99) and np.all(coverage[outside] == 0)
    pixels, valid = reader.read_with_mask(tuple(windows[outside][0]))
    assert not valid.any() and not pixels.any()
    assert np.all(tiles.AlignedTileReader.from_catalogs(earlier, later).coverage(windows) > 0.99)
