import numpy as np
import pytest
import rasterio
from rasterio.warp import transform as warp_transform

import tiles
from tests.tiles.conftest import scene
from tiles.footprint import window_footprints, window_rings


def corners(transform, row):
    """rasterio's own CRS coordinates of a window's corners, clockwise from top-left."""
    return rasterio.transform.xy(
        transform,
        [row.row_off, row.row_off, row.row_off + row.height, row.row_off + row.height],
        [row.col_off, row.col_off + row.width, row.col_off + row.width, row.col_off],
        offset="ul",
    )


def sample_rows(catalog, n=12):
    return catalog.iloc[np.unique(np.linspace(0, len(catalog) - 1, n).astype(int))]


def test_footprints_match_rasterio_every_scene(scene_path, catalog_of):
    catalog = catalog_of(scene_path)
    with rasterio.open(scene_path) as ds:
        crs, transform = ds.crs, ds.transform
    for row in sample_rows(catalog).itertuples():
        xs, ys = corners(transform, row)
        lons, lats = warp_transform(crs, "EPSG:4326", xs, ys)
        ring = np.asarray(row.geometry.exterior.coords)
        assert len(ring) == 4 * 8 + 1  # 8 points per edge, closed
        np.testing.assert_allclose(ring[[0, 8, 16, 24]], np.c_[lons, lats], rtol=0, atol=1e-9)
        # a densified point sits on the reprojected edge, not on a straight lon/lat chord
        mid_x, mid_y = rasterio.transform.xy(
            transform, row.row_off, row.col_off + row.width / 2, offset="ul"
        )
        (mid_lon,), (mid_lat,) = warp_transform(crs, "EPSG:4326", [mid_x], [mid_y])
        np.testing.assert_allclose(ring[4], [mid_lon, mid_lat], rtol=0, atol=1e-9)
        assert row.geometry.is_valid


def test_footprint_is_not_a_bbox():
    """Landsat in UTM 18N far from the central meridian: footprints are rotated in lon/lat."""
    with rasterio.open(scene("rasterio_RGB")) as ds:
        polygon = window_footprints(ds.transform, ds.crs, np.array([[0, 0, 256, 256]]))[0]
    assert polygon.area < 0.99 * polygon.envelope.area


def test_rings_are_clockwise_and_densified():
    ring = window_rings(np.array([[10, 20, 4, 8]]), points_per_edge=2)[0]
    expected = [[10, 20], [12, 20], [14, 20], [14, 24], [14, 28], [12, 28], [10, 28], [10, 24]]
    np.testing.assert_array_equal(ring, expected)
    with pytest.raises(ValueError):
        window_rings(np.array([[0, 0, 1, 1]]), points_per_edge=0)


def test_scene_crs_footprints_rebuild_exactly(scene_path, catalog_of):
    catalog = sample_rows(catalog_of(scene_path))
    footprints = tiles.scene_footprints(catalog)
    with rasterio.open(scene_path) as ds:
        assert footprints.crs == ds.crs
        for row, polygon in zip(catalog.itertuples(), footprints, strict=True):
            xs, ys = corners(ds.transform, row)
            np.testing.assert_allclose(
                np.asarray(polygon.exterior.coords)[:4], np.c_[xs, ys], rtol=0, atol=1e-6
            )
