"""Block reading: one windowed read per block of tiles gives every tile's own pixels."""

import numpy as np
import pytest

import tiles
from bench.large_scene import make_large_scene
from tests.tiles.conftest import berkeley_with_overviews, scene
from tiles.blocks import PIXEL_BYTES, RGB_BYTES, blocks_within_budget
from tiles.grid import tile_windows

SMALL_BUDGET_MB = 1  # forces many blocks on the small shared scenes


def windows_of(catalog):
    return catalog[list(tiles.WINDOW_FIELDS)].to_numpy(np.int64)


def by_block(reader, windows, budget_mb):
    out = np.empty((len(windows), reader.out_size, reader.out_size, 3), np.uint8)
    for block in reader.plan_blocks(windows, budget_mb):
        out[block.members] = reader.read_tiles(block)
    return out


def assert_same_tiles(path, catalog, budget_mb=SMALL_BUDGET_MB, tolerance=0):
    windows = windows_of(catalog)
    reader = tiles.TileReader.from_catalog(catalog)
    expected = reader.read_batch([tuple(w) for w in windows])
    got = by_block(reader, windows, budget_mb)
    diff = np.abs(got.astype(np.int16) - expected).max(axis=(1, 2, 3))
    assert diff.max() <= tolerance, f"{path.name}: tiles {np.nonzero(diff > tolerance)[0]}"


def test_blocks_give_every_tile_of_every_scene_its_own_pixels(scene_path, catalog_of):
    """Every shared scene, all scales, edge and clipped tiles: nodata collars (Landsat, NAIP),
    alpha masks (drone orthophotos), the 16-bit pan scene with its stretch."""
    assert_same_tiles(scene_path, catalog_of(scene_path))


def test_blocks_read_coarse_scales_from_overviews(tmp_path):
    path = berkeley_with_overviews(tmp_path / "berkeley_ovr.tif")
    catalog = tiles.build_catalog(path)
    assert tiles.TileReader.from_catalog(catalog).info.overviews == (2, 4)
    assert_same_tiles(path, catalog)


def test_blocks_on_a_jpeg_tiled_scene_with_an_odd_side(tmp_path):
    """Generated JPEG scene with overviews 2-16, 2,561 px a side: its overviews are not exact
    halves, so the coarse scales are read tile by tile and the 256 px scale by block."""
    path = make_large_scene(tmp_path / "odd.tif", 2561)
    catalog = tiles.build_catalog(path)
    assert set(catalog["scale"]) == {256, 512, 1024}
    assert_same_tiles(path, catalog, budget_mb=4)


def test_block_count_grows_as_the_budget_shrinks_and_blocks_fit_it():
    windows = np.concatenate([tile_windows(20_000, 20_000, s, s // 2) for s in (256, 512, 1024)])
    counts = []
    for budget_mb in (1024, 256, 64, 16):
        blocks = blocks_within_budget(windows, 256, budget_mb * 2**20, 512)
        members = np.concatenate([b.members for b in blocks])
        assert sorted(members.tolist()) == list(range(len(windows)))
        for b in blocks:
            rows, cols = b.out_shape
            used = rows * cols * PIXEL_BYTES + len(b.members) * 256 * 256 * RGB_BYTES
            assert used <= budget_mb * 2**20
        counts.append(len(blocks))
    assert counts == sorted(counts) and counts[0] < counts[-1]


@pytest.mark.parametrize("budget_mb", [0.01, 1])
def test_a_budget_below_one_tile_still_reads_tile_by_tile(catalog_of, budget_mb):
    catalog = catalog_of(scene("colorado"))
    reader = tiles.TileReader.from_catalog(catalog)
    blocks = reader.plan_blocks(windows_of(catalog), budget_mb)
    assert all(len(b.members) >= 1 for b in blocks)
    assert_same_tiles(scene("colorado"), catalog, budget_mb)
