"""A scene whose pixels all hold one value is refused; uniform parts of a real scene are kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

import tiles
from tests.tiles.conftest import scene, write_scene


def test_a_constant_scene_in_normal_blocks_is_refused(tmp_path: Path) -> None:
    path = write_scene(tmp_path / "grey.tif", np.full((3, 2048, 2048), 7, np.uint8))
    assert tiles.describe(path).block_shape == (256, 256)  # nothing wrong with its header
    with pytest.raises(tiles.TilingError, match=r"same value \(band 1: 7, band 2: 7, band 3: 7\)"):
        tiles.check_not_uniform(path)


def test_one_value_inside_the_nodata_is_refused_too(tmp_path: Path) -> None:
    pixels = np.zeros((3, 1024, 1024), np.uint16)
    pixels[:, 100:900, 200:800] = 1200
    path = write_scene(tmp_path / "patch.tif", pixels, nodata=0)
    with pytest.raises(tiles.TilingError, match="so all its tiles would look alike"):
        tiles.check_not_uniform(path)


def test_a_scene_with_a_uniform_lake_is_accepted_and_keeps_the_lake_tiles(tmp_path: Path) -> None:
    with rasterio.open(scene("berkeley")) as src:
        pixels, profile = src.read(), src.profile
    pixels[:, 100:700, 200:1000] = np.array([40, 70, 90])[
        :, None, None
    ]  # still water, 600 x 800 px
    lake = tmp_path / "lake.tif"
    with rasterio.open(lake, "w", **profile) as dst:
        dst.write(pixels)
    tiles.check_not_uniform(lake)
    catalog = tiles.build_catalog(lake, tiles.TilingConfig(sizes=(256,)))
    inside = catalog[
        (catalog.row_off >= 100)
        & (catalog.row_off + catalog.height <= 700)
        & (catalog.col_off >= 200)
        & (catalog.col_off + catalog.width <= 1000)
    ]
    assert len(inside) >= 6
    reader = tiles.TileReader.from_catalog(catalog)
    for row in inside.itertuples():
        tile = reader.read(row)
        assert (tile == tile[0, 0]).all()  # one colour: a uniform tile, kept


def test_every_shared_scene_has_something_to_search(scene_path: Path) -> None:
    tiles.check_not_uniform(scene_path)
