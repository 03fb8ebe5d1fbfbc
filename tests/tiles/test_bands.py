import warnings

import numpy as np
import pytest
import rasterio

import tiles
from tests.tiles.conftest import SCENES, scene
from tiles.io import plan_reads

EXPECTED_BANDS = {
    "naip_m_": (1, 2, 3),
    "spacenet": (1, 1, 1),
    "pix4d": (1, 2, 3),
    "webodm": (1, 2, 3),
    "berkeley": (1, 2, 3),
    "usgs": (1, 2, 3),
    "rasterio_RGB": (1, 2, 3),
}


def expected_bands(path):
    (bands,) = [b for key, b in EXPECTED_BANDS.items() if key in path.name]
    return bands


def test_every_scene_is_covered():
    assert all(expected_bands(p) for p in SCENES)


def test_band_selection_every_scene(scene_path):
    info = tiles.describe(scene_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bands = tiles.select_rgb_bands(info)
    assert bands == expected_bands(scene_path)
    assert info.alpha_band not in bands
    categories = {w.category for w in caught}
    if info.mislabelled_alpha_bands:
        assert categories == {tiles.AlphaBandIgnoredWarning}
    elif scene_path.name.endswith("_5m.tif"):
        assert categories == {tiles.NIRBandDroppedWarning}
    else:
        assert not categories


def test_override_is_one_based_and_can_use_nir():
    info = tiles.describe(scene("naip_m_3211605"))
    with pytest.warns(tiles.AlphaBandIgnoredWarning):
        assert tiles.select_rgb_bands(info, (4, 1, 2)) == (4, 1, 2)
    with pytest.warns(tiles.AlphaBandIgnoredWarning):
        assert tiles.select_rgb_bands(info, [2]) == (2, 2, 2)


@pytest.mark.parametrize(
    ("name", "override", "message"),
    [
        (
            "berkeley",
            (9, 1, 2),
            r"band 9 was requested but .* has 3 band\(s\).*1-based, so use 1\.\.3",
        ),
        ("berkeley", (0, 1, 2), "band 0 was requested"),
        ("berkeley", (1, 2), "1 band .* or 3 bands"),
        ("pix4d", (1, 2, 4), "alpha .* cannot be used as colour"),
    ],
)
def test_bad_override_raises(name, override, message):
    info = tiles.describe(scene(name))
    with pytest.raises(tiles.BandSelectionError, match=message) as excinfo:
        tiles.select_rgb_bands(info, override)
    assert isinstance(excinfo.value, ValueError)


def test_bad_override_fails_catalog_reader_and_quicklook():
    path = scene("berkeley")
    with pytest.raises(tiles.BandSelectionError):
        tiles.build_catalog(path, tiles.TilingConfig(bands=(9, 1, 2)))
    with pytest.raises(tiles.BandSelectionError):
        tiles.TileReader(path, bands=(9, 1, 2)).read((0, 0, 256, 256))
    with pytest.raises(tiles.BandSelectionError):
        tiles.quicklook(path, bands=(9, 1, 2))


def test_uint16_pan_is_stretched_over_the_byte_range():
    path = scene("spacenet")
    info = tiles.describe(path)
    with rasterio.open(path) as ds:
        plan = plan_reads(ds, info)
        sample = ds.read(1, out_shape=(300, 300))
    assert plan.stretch is not None and plan.bands == (1, 1, 1)
    lo, hi = plan.stretch.lo[0], plan.stretch.hi[0]
    valid = sample[sample != 0]
    # percentiles of valid pixels only: the nodata 0 does not pull the low end down
    assert lo == pytest.approx(np.percentile(valid, 2), rel=0.05)
    assert hi == pytest.approx(np.percentile(valid, 98), rel=0.05)
    assert 0 < lo < hi < 65535
    out = tiles.to_uint8(sample[np.newaxis], tiles.Stretch((lo,), (hi,)))[0][sample != 0]
    assert out.dtype == np.uint8
    assert out.min() == 0 and out.max() == 255
    assert 0.005 < np.mean(out == 0) < 0.05 and 0.005 < np.mean(out == 255) < 0.05
    assert np.std(out) > 30


def test_8bit_passes_through_unchanged():
    data = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    assert tiles.to_uint8(data, None) is data
    with pytest.raises(ValueError, match="need a Stretch"):
        tiles.to_uint8(data.astype(np.uint16), None)
    with rasterio.open(scene("berkeley")) as ds:
        assert plan_reads(ds, tiles.describe(scene("berkeley"))).stretch is None


def test_configurable_percentiles_and_masked_values_ignored():
    data = np.concatenate([np.zeros(50), np.arange(1, 101)]).astype(np.uint16).reshape(1, 10, 15)
    valid = data[0] > 0
    wide = tiles.estimate_stretch(data, valid, (0, 100))
    assert (wide.lo, wide.hi) == ((1.0,), (100.0,))
    narrow = tiles.estimate_stretch(data, valid, (10, 90))
    assert wide.lo[0] < narrow.lo[0] < narrow.hi[0] < wide.hi[0]
    flat = tiles.estimate_stretch(np.full((1, 4, 4), 7, dtype=np.uint16), np.ones((4, 4), bool))
    assert (flat.lo, flat.hi) == ((7.0,), (8.0,))
    with pytest.raises(ValueError):
        tiles.estimate_stretch(data, valid, (50, 50))
    assert tiles.Stretch.from_dict(narrow.to_dict()) == narrow


def test_two_bands_use_band_1_as_gray(tmp_path):
    path = tmp_path / "two_bands.tif"
    profile = dict(
        driver="GTiff",
        width=64,
        height=64,
        count=2,
        dtype="uint16",
        crs="EPSG:32633",
        transform=rasterio.Affine(1, 0, 500000, 0, -1, 4000000),
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.stack([np.arange(64 * 64).reshape(64, 64)] * 2).astype(np.uint16))
    info = tiles.describe(path)
    assert tiles.select_rgb_bands(info) == (1, 1, 1)
    tile = tiles.tile_thumbnail(path, (0, 0, 64, 64), size=64)
    assert (tile[..., 0] == tile[..., 2]).all() and tile.min() == 0 and tile.max() == 255
