import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import rasterio
from PIL import Image

import tiles
from tests.tiles.conftest import berkeley_with_overviews, scene
from tiles.bands import to_uint8


def full_tile(catalog):
    """Middle smallest-scale tile that is a whole square (not clipped), or None."""
    square = catalog[
        (catalog["scale"] == catalog["scale"].min())
        & (catalog["width"] == catalog["scale"])
        & (catalog["height"] == catalog["scale"])
    ]
    return None if square.empty else square.iloc[len(square) // 2]


def direct_read(path, reader, row):
    """The tile read straight from rasterio at full resolution, masked like the reader."""
    plan = reader.plan
    with rasterio.open(path) as ds:
        window = rasterio.windows.Window(
            row["col_off"], row["row_off"], row["width"], row["height"]
        )
        assert window == window.intersection(rasterio.windows.Window(0, 0, ds.width, ds.height))
        raw = ds.read(list(plan.bands), window=window)
        if plan.mask_source == "alpha":
            valid = ds.read(plan.alpha_band, window=window) > 0
        elif plan.mask_source == "none":
            valid = np.ones(raw.shape[1:], dtype=bool)
        else:
            valid = ds.dataset_mask(window=window) > 0
    rgb = np.moveaxis(to_uint8(raw, plan.stretch), 0, -1)
    return np.where(valid[..., None], rgb, 0), valid


def resized(rgb, size, method):
    """A reference resize done by PIL, independent of GDAL."""
    return np.asarray(Image.fromarray(rgb).resize((size, size), method), dtype=float)


def test_reads_and_thumbnail_round_trip_every_scene(scene_path, catalog_of):
    catalog = catalog_of(scene_path)
    reader = tiles.TileReader.from_catalog(catalog)
    for _, row in catalog.iloc[[0, -1]].iterrows():
        rgb, valid = reader.read_with_mask(row)
        assert rgb.shape == (256, 256, 3) and rgb.dtype == np.uint8
        assert valid.shape == (256, 256) and valid.dtype == bool
        assert valid.mean() == pytest.approx(row["valid_fraction"], abs=0.03)
        assert (rgb[~valid] == 0).all()
    row = full_tile(catalog)
    if row is None:  # the tiny scenes only have clipped tiles: see the stretch tests
        return
    expected, expected_valid = direct_read(scene_path, reader, row)
    np.testing.assert_array_equal(tiles.tile_thumbnail(scene_path, row, size=256), expected)
    # smaller thumbnails are the area average of the full-resolution tile (away from mask edges)
    small = tiles.tile_thumbnail(scene_path, row, size=64).astype(float)
    averaged = expected.astype(float).reshape(64, 4, 64, 4, 3).mean(axis=(1, 3))
    all_valid = expected_valid.reshape(64, 4, 64, 4).all(axis=(1, 3))
    assert np.abs(small - averaged)[all_valid].mean() < 4  # NAIP 5m overviews are nearest-built


def test_no_tile_read_is_padded(scene_path, catalog_of):
    """Every tile's valid mask matches its in-scene valid fraction, and scenes without
    nodata read as wholly valid: no pixel of any tile comes from outside the raster."""
    catalog = catalog_of(scene_path)
    reader = tiles.TileReader.from_catalog(catalog)
    for _, row in catalog.iterrows():
        rgb, valid = reader.read_with_mask(row)
        assert valid.mean() == pytest.approx(row["valid_fraction"], abs=0.03)
        if reader.plan.mask_source == "none":
            assert valid.all()
    # the edge tile (last row and column) holds the scene's own last pixels, exactly
    square = catalog[(catalog["scale"] == 256) & (catalog["width"] == 256)]
    square = square[square["height"] == 256]
    if not square.empty:
        edge = square.sort_values(["row_off", "col_off"]).iloc[-1]
        expected, _ = direct_read(scene_path, reader, edge)
        np.testing.assert_array_equal(reader.read(edge), expected)


@pytest.mark.parametrize(
    ("name", "window"), [("usgs", (127, 0, 256, 232)), ("naip_m_4208701", (0, 0, 175, 143))]
)
def test_clipped_window_is_stretched_to_the_square(catalog_of, name, window):
    catalog = catalog_of(scene(name))
    row = catalog.iloc[-1]
    assert tuple(row[["col_off", "row_off", "width", "height"]]) == window
    reader = tiles.TileReader.from_catalog(catalog)
    rgb, valid = reader.read_with_mask(row)
    assert rgb.shape == (256, 256, 3) and valid.all()
    expected, _ = direct_read(scene(name), reader, row)
    assert expected.shape == (window[3], window[2], 3)
    reference = resized(expected, 256, Image.BILINEAR)
    assert np.abs(rgb - reference).mean() < 3
    # the bottom rows hold the scene's last row, not black padding
    assert np.abs(rgb[-1].astype(float) - resized(expected[-1:], 256, Image.BILINEAR)[0]).mean() < 6
    assert rgb[-8:].mean() > 20
    # the same holds for thumbnails, at any size
    thumb = tiles.tile_thumbnail(scene(name), row, size=64)
    assert np.abs(thumb - resized(expected, 64, Image.BOX)).mean() < 4


def test_clipped_window_read_from_overviews(tmp_path):
    """A 1024 px scale clipped to 1024 x 827 on a scene with overviews: the shrinking read
    (served from overviews) is the area average of the stretched full-resolution window."""
    path = berkeley_with_overviews(tmp_path / "berkeley_ovr.tif")
    catalog = tiles.build_catalog(path)
    clipped = catalog[catalog["scale"] == 1024]
    windows = clipped[["col_off", "row_off", "width", "height"]].to_numpy().tolist()
    assert windows == [[0, 0, 1024, 827], [337, 0, 1024, 827]]
    reader = tiles.TileReader.from_catalog(catalog)
    assert reader.info.overviews == (2, 4)
    for _, row in clipped.iterrows():
        expected, _ = direct_read(path, reader, row)
        rgb = reader.read(row)
        assert rgb.shape == (256, 256, 3)
        assert np.abs(rgb - resized(expected, 256, Image.BOX)).mean() < 4


def test_window_outside_the_scene_is_clipped_never_padded():
    """Hand-made (or pre-version-2 catalog) windows past the edge read only the inside part."""
    with tiles.TileReader(scene("webodm")) as reader:  # 212 x 212 px
        rgb, valid = reader.read_with_mask((0, 0, 256, 256))
        inside, inside_valid = reader.read_with_mask((0, 0, 212, 212))
        np.testing.assert_array_equal(rgb, inside)
        np.testing.assert_array_equal(valid, inside_valid)
        block, _ = reader.read_block((100, 100, 500, 500))
        assert block.shape == (112, 112, 3)
        with pytest.raises(tiles.TilingError, match="outside"):
            reader.read((212, 0, 10, 10))


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
