import itertools

import numpy as np
import pandas as pd
import pytest
from rasterio.windows import Window

from tiles.errors import TilingError
from tiles.grid import (
    as_window,
    decimated_shape,
    size_from_metres,
    stride_for,
    tile_count,
    tile_windows,
    tiles_along,
    window_valid_fractions,
)


def enumerate_offsets(length: int, size: int, stride: int) -> list[int]:
    """Brute force: start every stride until the scene is covered."""
    offsets = [0]
    while offsets[-1] + size < length:
        offsets.append(offsets[-1] + stride)
    return offsets


@pytest.mark.parametrize(
    ("length", "size", "stride"),
    list(
        itertools.product(
            [1, 100, 255, 256, 257, 383, 384, 385, 1000, 1361], [256, 100], [128, 256, 37]
        )
    ),
)
def test_count_formula_matches_enumeration(length, size, stride):
    assert tiles_along(length, size, stride) == len(enumerate_offsets(length, size, stride))


def test_tile_windows_cover_without_wrapping():
    windows = tile_windows(1361, 827, 256, 128)
    assert len(windows) == tile_count(1361, 827, 256, 128) == 10 * 6
    assert windows[:, 0].min() == 0 and windows[:, 1].min() == 0
    # the last tile of each axis runs past the edge (padded), none starts beyond it
    assert windows[:, 0].max() + 256 >= 1361 > windows[:, 0].max()
    assert windows[:, 1].max() + 256 >= 827 > windows[:, 1].max()
    assert (windows[:, 2:] == 256).all()
    # row-major order
    assert list(windows[:3, 0]) == [0, 128, 256] and (windows[:10, 1] == 0).all()


def test_small_scene_gives_one_padded_tile():
    assert tile_windows(175, 143, 256, 128).tolist() == [[0, 0, 256, 256]]
    assert tile_count(175, 143, 1024, 512) == 1


@pytest.mark.parametrize("bad", [(0, 256, 128), (100, 0, 128), (100, 256, 0)])
def test_non_positive_arguments_raise(bad):
    with pytest.raises(TilingError):
        tiles_along(*bad)


def test_stride_from_overlap():
    assert stride_for(256, 0.5) == 128
    assert stride_for(256, 0.0) == 256
    assert stride_for(1, 0.9) == 1
    for bad in (-0.1, 1.0):
        with pytest.raises(TilingError, match="overlap"):
            stride_for(256, bad)


def test_metres_to_pixels():
    assert size_from_metres(150, 0.6) == 250
    assert size_from_metres(1000, 300) == 3
    assert size_from_metres(1, 300) == 1
    with pytest.raises(TilingError):
        size_from_metres(0, 1)
    with pytest.raises(TilingError):
        size_from_metres(100, -1)


def test_decimated_shape_never_enlarges():
    assert decimated_shape(20000, 10000, 1024) == (512, 1024)
    assert decimated_shape(200, 100, 1024) == (100, 200)
    assert decimated_shape(10000, 1, 100) == (1, 100)


def test_valid_fractions_from_grid():
    grid = np.zeros((4, 4), dtype=np.float32)
    grid[:2, :] = 1  # top half valid, cells of 10 px
    windows = np.array(
        [[0, 0, 40, 40], [0, 0, 20, 20], [0, 20, 20, 20], [20, 20, 40, 40], [-20, 0, 40, 20]]
    )
    np.testing.assert_allclose(window_valid_fractions(grid, 10, windows), [0.5, 1, 0, 0, 0.5])


def test_as_window_accepts_catalog_rows():
    expected = Window(1, 2, 3, 4)
    row = pd.Series({"tile_id": 0, "col_off": 1, "row_off": 2, "width": 3, "height": 4})
    record = next(pd.DataFrame([row]).itertuples())
    for tile in (expected, row, record, dict(row), (1, 2, 3, 4), np.array([1, 2, 3, 4])):
        assert as_window(tile) == expected
    with pytest.raises(TypeError):
        as_window("0,0,1,1")
    with pytest.raises(TilingError):
        as_window((0, 0, 0, 5))
