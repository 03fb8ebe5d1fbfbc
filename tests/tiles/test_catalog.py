import json
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import rasterio
import shapely
from affine import Affine

import tiles
from tests.tiles.conftest import scene
from tiles.catalog import COLUMNS
from tiles.grid import grid_sizes, stride_for, tile_count, tile_windows


def exact_valid_fractions(path, catalog):
    """Valid fraction of each tile from the full-resolution mask (the scenes are small)."""
    info = tiles.describe(path)
    with rasterio.open(path) as ds:
        if info.mask_source == "none":
            mask = np.ones((ds.height, ds.width), dtype=bool)
        else:
            mask = ds.dataset_mask() > 0
    fractions = []
    for row in catalog.itertuples():
        inside = mask[row.row_off : row.row_off + row.height, row.col_off : row.col_off + row.width]
        assert inside.shape == (row.height, row.width)  # the window lies inside the scene
        fractions.append(inside.mean())
    return np.array(fractions)


def test_catalog_every_scene(scene_path, catalog_of):
    catalog = catalog_of(scene_path)
    info = tiles.describe(scene_path)
    assert list(catalog.columns) == list(COLUMNS)
    assert catalog.crs == "EPSG:4326"
    assert catalog["tile_id"].tolist() == list(range(len(catalog)))
    for column in COLUMNS[:6]:
        assert pd.api.types.is_integer_dtype(catalog[column]), column
    # windows are the scale's square, clipped only where the scene is smaller
    assert (catalog["width"] == np.minimum(catalog["scale"], info.width)).all()
    assert (catalog["height"] == np.minimum(catalog["scale"], info.height)).all()
    assert set(catalog["scale"]) <= set(grid_sizes(info.width, info.height, (256, 512, 1024)))
    # every window lies inside the scene: nothing is padded
    assert (catalog[["col_off", "row_off"]] >= 0).all().all()
    assert (catalog["col_off"] + catalog["width"] <= info.width).all()
    assert (catalog["row_off"] + catalog["height"] <= info.height).all()
    # windows come from the grid of their scale, in scale / row / column order
    for scale, group in catalog.groupby("scale"):
        grid = {
            tuple(w) for w in tile_windows(info.width, info.height, scale, stride_for(scale, 0.5))
        }
        windows = group[["col_off", "row_off", "width", "height"]].itertuples(index=False)
        assert {tuple(w) for w in windows} <= grid
    order = catalog.sort_values(["scale", "row_off", "col_off"])["tile_id"]
    assert order.tolist() == catalog["tile_id"].tolist()
    # valid fractions agree with the full-resolution mask
    np.testing.assert_allclose(
        catalog["valid_fraction"], exact_valid_fractions(scene_path, catalog), atol=0.02
    )
    if len(catalog) > 1:
        assert (catalog["valid_fraction"] >= 0.5).all()
    # every footprint lies within the scene's lon/lat bounds (edge tiles touch them)
    assert catalog.geometry.within(shapely.box(*info.bounds_4326).buffer(1e-9)).all()
    meta = catalog.attrs[tiles.CATALOG_KEY]
    assert meta["crs_wkt"] == info.crs.to_wkt()
    assert Affine(*meta["transform"]) == info.transform


def test_catalog_is_stable(catalog_of):
    path = scene("pix4d")
    first = catalog_of(path)
    second = tiles.build_catalog(path)
    pd.testing.assert_frame_equal(
        pd.DataFrame(first.drop(columns="geometry")), pd.DataFrame(second.drop(columns="geometry"))
    )
    assert first.geometry.geom_equals_exact(second.geometry, 0).all()
    assert first.attrs == second.attrs


def test_tiny_naip_yields_one_window_covering_it(catalog_of):
    """175 x 143 px, smaller than one tile: one clipped window, no padding, fully valid."""
    catalog = catalog_of(scene("naip_m_4208701"))
    assert len(catalog) == 1
    tile = catalog.iloc[0]
    assert (tile["scale"], tile["col_off"], tile["row_off"], tile["width"], tile["height"]) == (
        256,
        0,
        0,
        175,
        143,
    )
    assert tile["valid_fraction"] == 1.0


def test_short_scene_gets_clipped_windows_of_the_smallest_scale_only(catalog_of):
    """383 x 232 px: 256 px-wide windows 232 px tall, and no 512 or 1024 px windows."""
    catalog = catalog_of(scene("usgs"))
    windows = catalog[["scale", "col_off", "row_off", "width", "height"]].to_numpy().tolist()
    assert windows == [[256, 0, 0, 256, 232], [256, 127, 0, 256, 232]]


def test_landsat_collar_tiles_are_lower(catalog_of):
    path = scene("rasterio_RGB")
    catalog = catalog_of(path)
    everything = tiles.build_catalog(path, tiles.TilingConfig(min_valid=0))
    assert len(everything) == sum(tile_count(791, 718, s, s // 2) for s in (256, 512, 1024))
    assert len(catalog) < len(everything)  # collar-only tiles were skipped
    small = everything[everything["scale"] == 256].set_index(["row_off", "col_off"])[
        "valid_fraction"
    ]
    corner = small.loc[(0, 0)]  # the collar fills the top-left corner
    centre = small.loc[(256, 256)]
    assert corner < 0.5 < centre == pytest.approx(1.0, abs=0.01)


def test_pix4d_alpha_border_tiles_are_lower(catalog_of):
    everything = tiles.build_catalog(scene("pix4d"), tiles.TilingConfig(min_valid=0))
    small = everything[everything["scale"] == 256]
    assert small["valid_fraction"].max() == pytest.approx(1.0)
    assert small["valid_fraction"].min() < 0.7  # edge tiles hold the transparent border
    np.testing.assert_allclose(
        small["valid_fraction"], exact_valid_fractions(scene("pix4d"), small), atol=0.01
    )


def test_sizes_in_metres_overlap_and_threshold():
    path = scene("naip_m_3211605")  # 0.6 m pixels, 266 x 204
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tiles.AlphaBandIgnoredWarning)
        catalog = tiles.build_catalog(
            path, tiles.TilingConfig(sizes=(60, 30), size_unit="m", overlap=0, min_valid=0)
        )
        strict = tiles.build_catalog(path, tiles.TilingConfig(sizes=(50,), min_valid=1.0))
    assert sorted(set(catalog["scale"])) == [50, 100]
    assert len(catalog) == tile_count(266, 204, 50, 50) + tile_count(266, 204, 100, 100)
    assert catalog.attrs[tiles.CATALOG_KEY]["scales"] == [50, 100]
    # no nodata and no padding: every tile is wholly valid, even at the edges
    assert (strict["valid_fraction"] == 1.0).all() and len(strict) == tile_count(266, 204, 50, 25)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sizes": ()},
        {"sizes": (256, -1)},
        {"sizes": (256.5,)},
        {"size_unit": "ft"},
        {"overlap": 1.0},
        {"min_valid": 1.5},
        {"out_size": 0},
        {"percentiles": (98, 2)},
    ],
)
def test_invalid_config_raises(kwargs):
    with pytest.raises(tiles.TilingError):
        tiles.TilingConfig(**kwargs)


def test_fully_masked_scene_raises(tmp_path):
    path = tmp_path / "empty.tif"
    profile = dict(
        driver="GTiff",
        width=300,
        height=300,
        count=3,
        dtype="uint8",
        nodata=0,
        crs="EPSG:32633",
        transform=Affine(1, 0, 500000, 0, -1, 4000000),
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.zeros((3, 300, 300), dtype=np.uint8))
    with pytest.raises(tiles.TilingError, match="no valid pixel"):
        tiles.build_catalog(path)


def test_write_read_round_trip(tmp_path, catalog_of):
    catalog = catalog_of(scene("rasterio_RGB"))
    out = tmp_path / "sub" / "catalog.parquet"
    tiles.write_catalog(catalog, out)
    assert [p.name for p in out.parent.iterdir()] == ["catalog.parquet"]  # no temp file left
    back = tiles.read_catalog(out)
    pd.testing.assert_frame_equal(
        pd.DataFrame(back.drop(columns="geometry")), pd.DataFrame(catalog.drop(columns="geometry"))
    )
    assert back.geometry.geom_equals_exact(catalog.geometry, 1e-12).all()
    assert back.crs == "EPSG:4326"
    assert back.attrs == catalog.attrs
    # the metadata is in the file itself, readable without geopandas
    stored = json.loads(pq.read_schema(out).metadata[b"PANDAS_ATTRS"])[tiles.CATALOG_KEY]
    assert stored["crs_wkt"] == catalog.attrs[tiles.CATALOG_KEY]["crs_wkt"]
    assert b"geo" in pq.read_schema(out).metadata
    assert (
        tiles.scene_footprints(back).geom_equals_exact(tiles.scene_footprints(catalog), 1e-9).all()
    )


def test_write_failure_leaves_previous_file_intact(tmp_path, catalog_of, monkeypatch):
    catalog = catalog_of(scene("webodm"))
    out = tmp_path / "catalog.parquet"
    tiles.write_catalog(catalog, out)
    before = out.read_bytes()

    def broken(self, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"PAR1 partial")
        raise OSError("disk full")

    monkeypatch.setattr(gpd.GeoDataFrame, "to_parquet", broken)
    with pytest.raises(OSError, match="disk full"):
        tiles.write_catalog(catalog, out)
    assert [p.name for p in tmp_path.iterdir()] == ["catalog.parquet"]
    assert out.read_bytes() == before


def test_tiling_version_is_recorded(tmp_path, catalog_of):
    catalog = catalog_of(scene("berkeley"))
    assert tiles.TILING_VERSION == 2
    assert catalog.attrs[tiles.CATALOG_KEY]["tiling_version"] == tiles.TILING_VERSION
    assert tiles.catalog_tiling_version(catalog) == tiles.TILING_VERSION
    tiles.write_catalog(catalog, tmp_path / "v2.parquet")
    stored = json.loads(pq.read_schema(tmp_path / "v2.parquet").metadata[b"PANDAS_ATTRS"])
    assert stored[tiles.CATALOG_KEY]["tiling_version"] == tiles.TILING_VERSION
    assert tiles.catalog_tiling_version(tiles.read_catalog(tmp_path / "v2.parquet")) == 2


def test_version_1_catalog_still_reads(tmp_path, catalog_of):
    """A catalog saved before tiling versions: no version key and padded edge windows."""
    old = catalog_of(scene("berkeley")).iloc[:3].copy()
    old.loc[old.index[-1], ["col_off", "row_off", "width", "height"]] = [1152, 256, 256, 256]
    meta = dict(old.attrs[tiles.CATALOG_KEY])
    del meta["tiling_version"]
    old.attrs = {tiles.CATALOG_KEY: meta}
    assert tiles.catalog_tiling_version(old) == 1
    old.to_parquet(tmp_path / "v1.parquet", index=False)
    back = tiles.read_catalog(tmp_path / "v1.parquet")
    assert back.attrs[tiles.CATALOG_KEY]["tiling_version"] == 1
    assert tiles.catalog_tiling_version(back) == 1 < tiles.TILING_VERSION
    # its padded window still reads: the part inside the scene, stretched, never padded
    rgb, valid = tiles.TileReader.from_catalog(back).read_with_mask(back.iloc[-1])
    assert rgb.shape == (256, 256, 3) and valid.all()
    assert len(tiles.scene_footprints(back)) == 3


def test_not_a_catalog(tmp_path):
    plain = gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(0, 0)], crs=4326)
    with pytest.raises(tiles.CatalogError):
        tiles.write_catalog(plain, tmp_path / "x.parquet")
    plain.to_parquet(tmp_path / "plain.parquet")
    with pytest.raises(tiles.CatalogError, match="not a tile catalog"):
        tiles.read_catalog(tmp_path / "plain.parquet")
    (tmp_path / "junk.parquet").write_text("junk")
    with pytest.raises(tiles.CatalogError):
        tiles.read_catalog(tmp_path / "junk.parquet")
    with pytest.raises(FileNotFoundError):
        tiles.read_catalog(tmp_path / "missing.parquet")


@pytest.mark.parametrize("name", ["rasterio_RGB", "pix4d", "spacenet"])
def test_reduced_resolution_valid_fractions_stay_accurate(name, monkeypatch):
    """Big scenes get a coarse mask grid; force one here (cells of 8-10 px) and compare."""
    monkeypatch.setattr("tiles.io.VALID_GRID_MAX_SIDE", 100)
    catalog = tiles.build_catalog(scene(name), tiles.TilingConfig(min_valid=0))
    error = np.abs(catalog["valid_fraction"] - exact_valid_fractions(scene(name), catalog))
    assert error.mean() < 0.01 and error.max() < 0.03
