import math
import warnings

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning
from rasterio.warp import transform_bounds

import tiles
from tests.tiles.conftest import scene


def test_describe_every_scene(scene_path):
    info = tiles.describe(scene_path)
    with rasterio.open(scene_path) as ds:
        assert (info.width, info.height, info.count) == (ds.width, ds.height, ds.count)
        assert info.crs == ds.crs and info.transform == ds.transform
        assert info.dtypes == tuple(ds.dtypes)
        assert info.colorinterp == tuple(ci.name for ci in ds.colorinterp)
        assert info.nodata == ds.nodata
        assert info.overviews == tuple(ds.overviews(1))
        assert info.pixel_size == pytest.approx((abs(ds.res[0]), abs(ds.res[1])))
        lon0, lat0, lon1, lat1 = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    # the densified outline's bounds agree with GDAL's densified bounds
    assert info.bounds_4326 == pytest.approx((lon0, lat0, lon1, lat1), abs=1e-4)
    assert -180 <= info.bounds_4326[0] < info.bounds_4326[2] <= 180
    # projected metres match ground metres closely (except Web Mercator, inflated by 1/cos(lat))
    if info.crs.to_epsg() != 3857:
        assert info.ground_pixel_size_m == pytest.approx(info.pixel_size, rel=0.01)
    assert info.mask_source in ("alpha", "mask", "nodata", "none")


def test_web_mercator_ground_size_is_geodesic():
    info = tiles.describe(scene("berkeley"))
    lat = math.radians(sum(info.bounds_4326[1::2]) / 2)
    expected = info.pixel_size[0] * math.cos(lat)
    assert info.ground_pixel_size_m[0] == pytest.approx(expected, rel=0.005)


def test_geographic_crs_gets_metres(tmp_path):
    path = tmp_path / "geographic.tif"
    profile = dict(
        driver="GTiff",
        width=100,
        height=100,
        count=1,
        dtype="uint8",
        crs="EPSG:4326",
        transform=Affine(1e-5, 0, 10.0, 0, -1e-5, 60.0),
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((1, 100, 100), dtype=np.uint8))
    info = tiles.describe(path)
    assert info.pixel_size == pytest.approx((1e-5, 1e-5))
    # 1e-5 degree: about 1.11 m north-south, about 0.56 m east-west at 60 degrees north
    assert info.ground_pixel_size_m[1] == pytest.approx(1.1166, rel=0.01)
    assert info.ground_pixel_size_m[0] == pytest.approx(0.5580, rel=0.01)


@pytest.mark.parametrize(
    ("name", "source", "alpha", "mislabelled"),
    [
        ("pix4d", "alpha", 4, ()),
        ("webodm", "alpha", 4, ()),
        ("naip_m_3211605", "none", None, (4,)),
        ("naip_m_4208701", "none", None, (4,)),
        ("20090818_5m", "nodata", None, ()),
        ("rasterio_RGB", "nodata", None, ()),
        ("spacenet", "nodata", None, ()),
        ("berkeley", "none", None, ()),
    ],
)
def test_mask_sources(name, source, alpha, mislabelled):
    info = tiles.describe(scene(name))
    assert (info.mask_source, info.alpha_band, info.mislabelled_alpha_bands) == (
        source,
        alpha,
        mislabelled,
    )


def test_overviews_reported():
    assert tiles.describe(scene("20200831_5m")).overviews == (2,)


# --- bad input -----------------------------------------------------------------------


def random_bytes(tmp_path):
    path = tmp_path / "random.tif"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 10_000, dtype=np.uint8).tobytes())
    return path


def text_file(tmp_path):
    path = tmp_path / "notes.tif"
    path.write_text("this is not an image\n")
    return path


def truncated(name):
    def make(tmp_path):
        data = scene(name).read_bytes()
        path = tmp_path / f"truncated_{name}.tif"
        path.write_bytes(data[: int(len(data) * 0.6)])
        return path

    return make


def missing(tmp_path):
    return tmp_path / "does_not_exist.tif"


def not_georeferenced(tmp_path):
    path = tmp_path / "plain.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8"
        ) as dst:
            dst.write(np.full((3, 64, 64), 100, dtype=np.uint8))
    return path


def transform_without_crs(tmp_path):
    path = tmp_path / "no_crs.tif"
    profile = dict(
        driver="GTiff",
        width=64,
        height=64,
        count=1,
        dtype="uint8",
        transform=Affine(0.5, 0, 500000, 0, -0.5, 4200000),
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((1, 64, 64), dtype=np.uint8))
    return path


BAD_INPUTS = [
    (random_bytes, tiles.NotGeoTiffError, "not a TIFF or BigTIFF signature"),
    (text_file, tiles.NotGeoTiffError, "not a TIFF or BigTIFF signature"),
    (truncated("berkeley"), tiles.SceneOpenError, "cannot be opened as a raster"),
    (truncated("pix4d"), tiles.SceneOpenError, "truncated or corrupt"),
    (truncated("spacenet"), tiles.SceneOpenError, "truncated or corrupt"),
    (missing, tiles.SceneOpenError, "does not exist"),
    (not_georeferenced, tiles.NotGeoreferencedError, "no CRS and no geotransform"),
    (transform_without_crs, tiles.NotGeoreferencedError, "no CRS; assign"),
]
BAD_IDS = [
    "random",
    "text",
    "truncated_header",
    "truncated_alpha",
    "truncated_pan",
    "missing",
    "no_georef",
    "no_crs",
]


@pytest.mark.parametrize(("make", "error", "message"), BAD_INPUTS, ids=BAD_IDS)
def test_bad_input_raises_precise_error(tmp_path, make, error, message):
    path = make(tmp_path)
    with pytest.raises(error, match=message) as excinfo:
        tiles.describe(path)
    assert str(path) in str(excinfo.value)
    assert isinstance(excinfo.value, tiles.TilesError)
    builtin = OSError if error is tiles.SceneOpenError else ValueError
    assert isinstance(excinfo.value, builtin)


@pytest.mark.parametrize(("make", "error", "message"), BAD_INPUTS, ids=BAD_IDS)
def test_failing_scene_writes_nothing(tmp_path, make, error, message):
    path = make(tmp_path)
    before = set(tmp_path.iterdir())
    out = tmp_path / "out"
    with pytest.raises(error):
        tiles.write_catalog(tiles.build_catalog(path), out / "catalog.parquet")
    with pytest.raises(error):
        tiles.write_quicklook_png(path, out / "quicklook.png")
    with pytest.raises(error):
        tiles.TileReader(path).read((0, 0, 256, 256))
    assert set(tmp_path.iterdir()) == before


# --- check_gtiff: the gate for files from outside ------------------------------------


def test_check_gtiff_accepts_every_shared_scene(scene_path):
    tiles.check_gtiff(scene_path)


def test_check_gtiff_accepts_bigtiff_and_big_endian(tmp_path):
    profile = dict(driver="GTiff", width=32, height=32, count=1, dtype="uint8", crs="EPSG:32633")
    profile["transform"] = Affine(1, 0, 500000, 0, -1, 4000000)
    for name, options in [("big.tif", {"BIGTIFF": "YES"}), ("motorola.tif", {"ENDIANNESS": "BIG"})]:
        with rasterio.open(tmp_path / name, "w", **profile, **options) as dst:
            dst.write(np.ones((1, 32, 32), dtype=np.uint8))
        tiles.check_gtiff(tmp_path / name)
    assert (tmp_path / "big.tif").read_bytes()[:4] == b"II+\x00"
    assert (tmp_path / "motorola.tif").read_bytes()[:4] == b"MM\x00*"


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_check_gtiff_refuses_a_vrt_named_tif_that_reads_outside_its_folder(tmp_path):
    outside = tmp_path / "private"
    outside.mkdir()
    secret = outside / "secret.tif"
    secret.write_bytes(scene("webodm").read_bytes())
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    vrt = uploads / "scene.tif"
    vrt.write_text(
        f"""<VRTDataset rasterXSize="212" rasterYSize="212">
  <VRTRasterBand dataType="Byte" band="1">
    <SimpleSource>
      <SourceFilename relativeToVRT="1">../private/{secret.name}</SourceFilename>
      <SourceBand>1</SourceBand>
    </SimpleSource>
  </VRTRasterBand>
</VRTDataset>
"""
    )
    with rasterio.open(vrt) as ds:  # what GDAL alone would do: read the file outside
        assert ds.driver == "VRT" and ds.read(1).any()
    with pytest.raises(tiles.NotGeoTiffError, match="not a TIFF or BigTIFF signature") as excinfo:
        tiles.check_gtiff(vrt)
    assert str(vrt) in str(excinfo.value) and "<VRT" in str(excinfo.value)
    assert isinstance(excinfo.value, tiles.TilesError | ValueError)


def png_named_tif(tmp_path):
    path = tmp_path / "photo.tif"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(path, format="PNG")
    return path


@pytest.mark.parametrize("make", [png_named_tif, text_file, random_bytes])
def test_check_gtiff_refuses_other_formats(tmp_path, make):
    with pytest.raises(tiles.NotGeoTiffError, match="not a GeoTIFF"):
        tiles.check_gtiff(make(tmp_path))


def test_check_gtiff_refuses_another_driver(tmp_path, monkeypatch):
    path = tmp_path / "other.tif"
    path.write_bytes(scene("webodm").read_bytes())

    class OtherDriver:
        driver = "LIBERTIFF"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr("tiles.scene.rasterio.open", lambda _: OtherDriver())
    with pytest.raises(tiles.NotGeoTiffError, match="LIBERTIFF driver, not GTiff"):
        tiles.check_gtiff(path)


def test_check_gtiff_missing_or_damaged(tmp_path):
    with pytest.raises(tiles.SceneOpenError, match="does not exist"):
        tiles.check_gtiff(tmp_path / "missing.tif")
    damaged = tmp_path / "damaged.tif"
    damaged.write_bytes(b"II*\x00" + bytes(100))
    with pytest.raises(tiles.SceneOpenError, match="starts like a TIFF but cannot be opened"):
        tiles.check_gtiff(damaged)
