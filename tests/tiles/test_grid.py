import itertools

import numpy as np
import pandas as pd
import pytest
from rasterio.windows import Window

from tiles.errors import TilingError
from tiles.grid import (
    as_window,
    decimated_shape,
    grid_sizes,
    size_from_metres,
    stride_for,
    summed_area_table,
    table_valid_fractions,
    tile_count,
    tile_offsets,
    tile_windows,
    tiles_along,
    window_valid_fractions,
)

LENGTHS = [1, 100, 127, 128, 129, 143, 175, 232, 255, 256, 257, 383, 384, 385, 1000, 1361]
AXES = list(itertools.product(LENGTHS, [256, 100, 512], [128, 256, 37, 50]))


def enumerate_offsets(length: int, size: int, stride: int) -> list[int]:
    """Brute force: start every stride until the scene is covered, then pull the last tile
    back inside so it ends at the edge."""
    offsets = [0]
    while offsets[-1] + size < length:
        offsets.append(offsets[-1] + stride)
    offsets[-1] = min(offsets[-1], max(length - size, 0))
    return offsets


@pytest.mark.parametrize(("length", "size", "stride"), AXES)
def test_count_formula_matches_enumeration(length, size, stride):
    offsets = enumerate_offsets(length, size, stride)
    assert tiles_along(length, size, stride) == len(offsets)
    assert tile_offsets(length, size, stride).tolist() == offsets
    assert len(set(offsets)) == len(offsets)  # shifting inward never repeats a start


@pytest.mark.parametrize(("length", "size", "stride"), AXES)
def test_offsets_stay_inside_and_cover_every_pixel(length, size, stride):
    offsets = tile_offsets(length, size, stride)
    side = min(size, length)
    assert offsets.min() == 0 and (offsets >= 0).all() and (offsets + side <= length).all()
    assert offsets[-1] + side == length  # the last tile ends exactly at the edge
    assert (np.diff(offsets) > 0).all()
    if stride <= size:
        covered = np.zeros(length, dtype=bool)
        for start in offsets:
            covered[start : start + side] = True
        assert covered.all()


@pytest.mark.parametrize(
    ("width", "height", "size", "stride"),
    [
        (1361, 827, 256, 128),
        (383, 232, 256, 128),
        (175, 143, 256, 128),
        (900, 900, 512, 256),
        (1000, 257, 100, 37),
        (934, 723, 1024, 512),
    ],
)
def test_windows_lie_inside_cover_everything_and_never_repeat(width, height, size, stride):
    windows = tile_windows(width, height, size, stride)
    assert len(windows) == tile_count(width, height, size, stride)
    assert (windows[:, :2] >= 0).all()
    assert (windows[:, 0] + windows[:, 2] <= width).all()
    assert (windows[:, 1] + windows[:, 3] <= height).all()
    assert len({tuple(w) for w in windows}) == len(windows)
    covered = np.zeros((height, width), dtype=bool)
    for col, row, w, h in windows:
        covered[row : row + h, col : col + w] = True
    assert covered.all()


def test_last_row_and_column_are_shifted_inward():
    windows = tile_windows(1361, 827, 256, 128)
    assert len(windows) == tile_count(1361, 827, 256, 128) == 10 * 6
    assert (windows[:, 2:] == 256).all()
    cols, rows = sorted(set(windows[:, 0])), sorted(set(windows[:, 1]))
    assert cols == [0, 128, 256, 384, 512, 640, 768, 896, 1024, 1361 - 256]
    assert rows == [0, 128, 256, 384, 512, 827 - 256]
    # Berkeley tile 29 used to be [1152, 256, 256, 256], running 47 px past the edge
    assert windows[29].tolist() == [1105, 256, 256, 256]
    # row-major order
    assert list(windows[:3, 0]) == [0, 128, 256] and (windows[:10, 1] == 0).all()


def test_rows_select_blocks_of_the_grid():
    whole = tile_windows(1361, 827, 256, 128)
    parts = [tile_windows(1361, 827, 256, 128, slice(start, start + 4)) for start in (0, 4)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert len(parts[1]) == 2 * 10


def test_scene_smaller_than_a_tile_gets_one_clipped_window():
    assert tile_windows(175, 143, 256, 128).tolist() == [[0, 0, 175, 143]]
    assert tile_count(175, 143, 1024, 512) == 1
    assert grid_sizes(175, 143, (256, 512, 1024)) == (256,)


def test_short_side_clips_windows_and_drops_larger_scales():
    assert grid_sizes(383, 232, (256, 512, 1024)) == (256,)
    assert tile_windows(383, 232, 256, 128).tolist() == [[0, 0, 256, 232], [127, 0, 256, 232]]


def test_half_size_rule():
    # 512 px tiles keep 600 x 300 (more than half on both sides); 1024 would keep 600 x 300
    assert grid_sizes(600, 300, (1024, 256, 512)) == (256, 512)
    assert tile_windows(600, 300, 512, 256).tolist() == [[0, 0, 512, 300], [88, 0, 512, 300]]
    # exactly half is enough, one pixel less is not
    assert grid_sizes(256, 256, (128, 512)) == (128, 512)
    assert grid_sizes(255, 256, (128, 512)) == (128,)
    assert grid_sizes(256, 255, (128, 512)) == (128,)
    # the smallest size is always used, however small the raster
    assert grid_sizes(10, 3, (256, 512)) == (256,)
    with pytest.raises(TilingError):
        grid_sizes(100, 100, ())


def test_larger_scale_repeating_the_whole_raster_window_is_dropped():
    # 200 x 200 fits one 256 px tile; a 300 px scale would give the same 200 x 200 window
    assert grid_sizes(200, 200, (256, 300)) == (256,)
    assert grid_sizes(260, 200, (256, 300)) == (256, 300)
    assert tile_windows(200, 200, 256, 128).tolist() == tile_windows(200, 200, 300, 150).tolist()


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


def test_valid_fractions_with_cells_that_are_not_square():
    grid = np.zeros((4, 5), dtype=np.float32)
    grid[:, :2] = 1  # left two columns valid; cells 12.5 px wide, 10 px tall
    table = summed_area_table(grid)
    assert table.shape == (5, 6) and table[-1, -1] == 8
    windows = np.array([[0, 0, 25, 40], [0, 0, 50, 20], [25, 10, 37.5, 30], [0, 0, 62.5, 40]])
    np.testing.assert_allclose(table_valid_fractions(table, (12.5, 10), windows), [1, 0.5, 0, 0.4])


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
