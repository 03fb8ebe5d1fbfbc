import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import rasterio

import tiles
from tests.tiles.conftest import scene
from tiles.bands import to_uint8


def inside_tile(catalog, width, height):
    """First smallest-scale tile lying fully inside the scene, or None."""
    inside = catalog[
        (catalog["scale"] == catalog["scale"].min())
        & (catalog["col_off"] + catalog["width"] <= width)
        & (catalog["row_off"] + catalog["height"] <= height)
    ]
    return None if inside.empty else inside.iloc[len(inside) // 2]


def direct_read(path, reader, row):
    """The tile read straight from rasterio at full resolution, masked like the reader."""
    plan = reader.plan
    with rasterio.open(path) as ds:
        window = rasterio.windows.Window(
            row["col_off"], row["row_off"], row["width"], row["height"]
        )
        inner = window.intersection(rasterio.windows.Window(0, 0, ds.width, ds.height))
        raw = ds.read(list(plan.bands), window=inner)
        if plan.mask_source == "alpha":
            valid = ds.read(plan.alpha_band, window=inner) > 0
        elif plan.mask_source == "none":
            valid = np.ones(raw.shape[1:], dtype=bool)
        else:
            valid = ds.dataset_mask(window=inner) > 0
    rgb = np.moveaxis(to_uint8(raw, plan.stretch), 0, -1)
    return np.where(valid[..., None], rgb, 0), valid


def test_reads_and_thumbnail_round_trip_every_scene(scene_path, catalog_of):
    catalog = catalog_of(scene_path)
    reader = tiles.TileReader.from_catalog(catalog)
    info = reader.info
    for _, row in catalog.iloc[[0, -1]].iterrows():
        rgb, valid = reader.read_with_mask(row)
        assert rgb.shape == (256, 256, 3) and rgb.dtype == np.uint8
        assert valid.shape == (256, 256) and valid.dtype == bool
        assert valid.mean() == pytest.approx(row["valid_fraction"], abs=0.03)
        assert (rgb[~valid] == 0).all()
        # padding beyond the scene edge is invalid
        scale = 256 / row["width"]
        assert not valid[:, round((info.width - row["col_off"]) * scale) :].any()
        assert not valid[round((info.height - row["row_off"]) * scale) :, :].any()
    row = inside_tile(catalog, info.width, info.height)
    if row is None:  # the tiny scenes only have a padded tile: compare its inside part
        row = catalog.iloc[0]
    expected, expected_valid = direct_read(scene_path, reader, row)
    thumb = tiles.tile_thumbnail(scene_path, row, size=256)
    h, w = expected.shape[:2]
    np.testing.assert_array_equal(thumb[:h, :w], expected)
    assert (thumb[h:] == 0).all() and (thumb[:, w:] == 0).all()
    # smaller thumbnails are the area average of the full-resolution tile (away from mask edges)
    small = tiles.tile_thumbnail(scene_path, row, size=64).astype(float)
    full, full_valid = np.zeros((256, 256, 3)), np.zeros((256, 256), dtype=bool)
    full[:h, :w], full_valid[:h, :w] = expected, expected_valid
    averaged = full.reshape(64, 4, 64, 4, 3).mean(axis=(1, 3))
    all_valid = full_valid.reshape(64, 4, 64, 4).all(axis=(1, 3))
    assert np.abs(small - averaged)[all_valid].mean() < 4  # NAIP 5m overviews are nearest-built


def test_pan_reader_uses_catalog_stretch(catalog_of):
    catalog = catalog_of(scene("spacenet"))
    reader = tiles.TileReader.from_catalog(catalog)
    assert reader.plan.stretch == tiles.Stretch.from_dict(
        catalog.attrs[tiles.CATALOG_KEY]["stretch"]
    )
    tile = reader.read(catalog.iloc[len(catalog) // 2])
    assert (tile[..., 0] == tile[..., 1]).all() and (tile[..., 1] == tile[..., 2]).all()
    assert tile.std() > 20


def test_read_block_matches_tiles(catalog_of):
    path = scene("berkeley")
    reader = tiles.TileReader(path)
    block, valid = reader.read_block((256, 256, 512, 512))
    assert block.shape == (512, 512, 3) and valid.all()
    for dr in (0, 256):
        for dc in (0, 256):
            np.testing.assert_array_equal(
                block[dr : dr + 256, dc : dc + 256], reader.read((256 + dc, 256 + dr, 256, 256))
            )
    coarse, _ = reader.read_block((0, 0, 1024, 512), out_shape=(128, 256))
    assert coarse.shape == (128, 256, 3)


def test_read_batch_accepts_itertuples(catalog_of):
    catalog = catalog_of(scene("usgs"))
    reader = tiles.TileReader.from_catalog(catalog)
    batch = reader.read_batch(catalog.itertuples())
    assert batch.shape == (len(catalog), 256, 256, 3)
    np.testing.assert_array_equal(batch[0], reader.read(catalog.iloc[0]))


def read_in_worker(reader, windows):
    return [reader.read(w) for w in windows]


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_reader_works_in_worker_processes(catalog_of, method):
    catalog = catalog_of(scene("pix4d"))
    reader = tiles.TileReader.from_catalog(catalog)
    windows = [tuple(w) for w in catalog[["col_off", "row_off", "width", "height"]].to_numpy()[:6]]
    expected = [reader.read(w) for w in windows]  # the parent has the dataset open now
    assert len(pickle.dumps(reader)) < 10_000  # settings only, no pixels or handles
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method)) as pool:
        results = list(pool.map(read_in_worker, [reader, reader], [windows[:3], windows[3:]]))
    for got, want in zip(results[0] + results[1], expected, strict=True):
        np.testing.assert_array_equal(got, want)
    # the parent's handle still works after the children used theirs
    np.testing.assert_array_equal(reader.read(windows[0]), expected[0])


def test_reader_opens_lazily_and_closes(tmp_path):
    reader = tiles.TileReader(tmp_path / "not_yet.tif")  # nothing is opened here
    with pytest.raises(tiles.SceneOpenError):
        reader.read((0, 0, 256, 256))
    with tiles.TileReader(scene("webodm"), out_size=32) as reader:
        assert reader.read((0, 0, 256, 256)).shape == (32, 32, 3)
    assert reader.read((0, 0, 256, 256)).shape == (32, 32, 3)  # reopens after close
    reader.close()
    with pytest.raises(tiles.TilingError):
        tiles.TileReader(scene("webodm"), out_size=0)
