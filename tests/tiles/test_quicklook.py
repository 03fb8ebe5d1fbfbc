import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from PIL import Image
from rasterio.enums import Resampling
from rasterio.warp import reproject

import tiles
from tests.tiles.conftest import scene


def reference_mask(path, shape, bounds):
    """The scene's own mask warped by rasterio onto the quicklook's lon/lat grid."""
    info = tiles.describe(path)
    west, south, east, north = bounds
    out = np.zeros(shape, dtype=np.uint8)
    with rasterio.open(path) as ds:
        if info.mask_source == "none":
            mask = np.full((ds.height, ds.width), 255, dtype=np.uint8)
        else:
            mask = ds.dataset_mask()
        reproject(
            mask,
            out,
            src_transform=ds.transform,
            src_crs=ds.crs,
            dst_transform=Affine(
                (east - west) / shape[1], 0, west, 0, -(north - south) / shape[0], north
            ),
            dst_crs="EPSG:4326",
            resampling=Resampling.nearest,
        )
    return out > 0


def test_quicklook_every_scene(scene_path):
    rgba, bounds = tiles.quicklook(scene_path, max_size=400)
    info = tiles.describe(scene_path)
    assert rgba.dtype == np.uint8 and rgba.ndim == 3 and rgba.shape[2] == 4
    assert max(rgba.shape[:2]) <= 400
    assert bounds == pytest.approx(info.bounds_4326, abs=1e-6)
    alpha = rgba[..., 3]
    assert set(np.unique(alpha)) <= {0, 255}
    assert (rgba[alpha == 0, :3] == 0).all()
    agreement = ((alpha > 0) == reference_mask(scene_path, alpha.shape, bounds)).mean()
    assert agreement > 0.97


def test_landsat_collar_is_transparent():
    rgba, _ = tiles.quicklook(scene("rasterio_RGB"), max_size=300)
    alpha = rgba[..., 3]
    assert alpha[0, 0] == alpha[0, -1] == alpha[-1, 0] == alpha[-1, -1] == 0
    assert 0.2 < (alpha == 0).mean() < 0.5
    assert alpha[alpha.shape[0] // 2, alpha.shape[1] // 2] == 255


def test_web_mercator_output_and_validation():
    path = scene("berkeley")
    rgba, bounds = tiles.quicklook(path, max_size=256, dst_crs="EPSG:3857")
    assert (rgba[..., 3] == 255).mean() > 0.99  # same CRS: no warp, nothing masked
    assert bounds == pytest.approx(tiles.describe(path).bounds_4326, abs=1e-6)
    with pytest.raises(ValueError, match="dst_crs"):
        tiles.quicklook(path, dst_crs="EPSG:32610")
    with pytest.raises(ValueError, match="max_size"):
        tiles.quicklook(path, max_size=0)


def test_png_written_atomically(tmp_path):
    out = tmp_path / "ql" / "scene.png"
    bounds = tiles.write_quicklook_png(scene("pix4d"), out, max_size=200)
    rgba, expected_bounds = tiles.quicklook(scene("pix4d"), max_size=200)
    assert bounds == expected_bounds
    with Image.open(out) as image:
        assert image.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(image), rgba)
    assert [p.name for p in out.parent.iterdir()] == ["scene.png"]


def write_scene(path, transform, crs, data, **profile):
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        **profile,
    ) as dst:
        dst.write(data)
    return path


def test_rotated_grid_is_warped(tmp_path):
    """A rotated geotransform (not north-up) still overlays correctly in lon/lat."""
    rotated = Affine(0.5, 0, 500_000, 0, -0.5, 4_200_000) @ Affine.rotation(30)
    data = np.random.default_rng(0).integers(100, 4000, (1, 200, 200), dtype=np.uint16)
    path = write_scene(tmp_path / "rotated.tif", rotated, "EPSG:32610", data)
    info = tiles.describe(path)
    assert info.pixel_size == pytest.approx((0.5, 0.5))
    rgba, bounds = tiles.quicklook(path, max_size=300)
    assert bounds == pytest.approx(info.bounds_4326, abs=1e-9)
    # a square rotated by 30 degrees fills 1 / (cos 30 + sin 30)^2 of its bounding box
    assert (rgba[..., 3] == 255).mean() == pytest.approx(
        1 / (np.cos(np.pi / 6) + 0.5) ** 2, abs=0.03
    )
    agreement = ((rgba[..., 3] > 0) == reference_mask(path, rgba.shape[:2], bounds)).mean()
    assert agreement > 0.97
    catalog = tiles.build_catalog(path, tiles.TilingConfig(sizes=(100,)))
    assert len(catalog) == 9 and catalog.geometry.within(shapely.box(*bounds).buffer(1e-9)).all()


def test_geographic_north_up_is_not_warped(tmp_path):
    data = np.full((3, 120, 200), 90, dtype=np.uint8)
    path = write_scene(tmp_path / "geo.tif", Affine(1e-4, 0, 10, 0, -1e-4, 50), "EPSG:4326", data)
    rgba, bounds = tiles.quicklook(path, max_size=1024)
    assert (
        rgba.shape == (120, 200, 4) and (rgba[..., 3] == 255).all() and (rgba[..., :3] == 90).all()
    )
    assert bounds == pytest.approx((10, 50 - 0.012, 10.02, 50))


def test_internal_mask_band(tmp_path):
    data = np.full((3, 300, 300), 120, dtype=np.uint8)
    path = tmp_path / "masked.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        write_scene(path, Affine(1, 0, 500_000, 0, -1, 4_000_000), "EPSG:32633", data)
        with rasterio.open(path, "r+") as dst:
            mask = np.zeros((300, 300), dtype=np.uint8)
            mask[:, :150] = 255  # left half valid
            dst.write_mask(mask)
    info = tiles.describe(path)
    assert info.mask_source == "mask"
    catalog = tiles.build_catalog(path, tiles.TilingConfig(sizes=(100,), overlap=0, min_valid=0))
    expected = np.clip((150 - catalog["col_off"]) / 100, 0, 1)
    np.testing.assert_allclose(catalog["valid_fraction"], expected, atol=0.01)
    rgba, _ = tiles.quicklook(path, max_size=300)
    assert 0.45 < (rgba[..., 3] == 255).mean() < 0.55
