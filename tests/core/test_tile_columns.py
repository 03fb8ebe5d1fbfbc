"""Search's compact catalog: the same windows, scales and footprints as the stored catalog."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from core.errors import IndexMismatchError
from core.search.scoring import text_scores, visual_scores
from core.search.tile_columns import TileColumns
from tiles import WINDOW_FIELDS, CatalogError, TilingConfig, build_catalog, write_catalog

pytestmark = pytest.mark.filterwarnings("ignore::tiles.errors.AlphaBandIgnoredWarning")
SCENES = (
    "berkeley_z17_webmercator_naip.tif",  # Web Mercator
    "rasterio_RGB.byte.tif",  # UTM, rotated footprint with a nodata collar
    "usgs_hro_colorado_0.15m_201404_13SED190110_201404_0x1500m_CL_1.tif",
)


@pytest.fixture(scope="module", params=SCENES)
def catalog(request, scenes_dir):
    return build_catalog(scenes_dir / request.param, TilingConfig(sizes=(64, 128), overlap=0.5))


def test_read_keeps_small_columns_and_rebuilds_every_footprint_exactly(catalog, tmp_path):
    write_catalog(catalog, tmp_path / "catalog.parquet")
    columns = TileColumns.read(tmp_path / "catalog.parquet")
    assert columns.stored is None
    assert columns.windows.dtype == np.int32 and columns.scales.dtype == np.uint16
    np.testing.assert_array_equal(columns.windows, catalog[list(WINDOW_FIELDS)].to_numpy())
    np.testing.assert_array_equal(columns.scales, catalog["scale"].to_numpy())
    assert columns.nbytes() == 18 * len(catalog)
    every = np.arange(len(catalog))
    assert (
        shapely.to_wkb(columns.footprints(every)).tolist()
        == shapely.to_wkb(catalog.geometry.to_numpy()).tolist()
    )
    assert columns.meta["crs_wkt"] == catalog.attrs["sceneseek_tiles"]["crs_wkt"]


def test_footprints_made_another_way_are_kept_as_stored(catalog, tmp_path):
    other = catalog.copy()
    other.attrs = catalog.attrs
    other["geometry"] = [box(*g.bounds) for g in catalog.geometry]
    write_catalog(other, tmp_path / "catalog.parquet")
    columns = TileColumns.read(tmp_path / "catalog.parquet")
    rows = np.array([0, len(other) // 2, len(other) - 1])
    assert columns.stored is not None
    assert [g.wkt for g in columns.footprints(rows)] == [g.wkt for g in other.geometry.iloc[rows]]


def test_tile_ids_must_be_row_positions(catalog):
    shuffled = catalog.copy()
    shuffled.attrs = catalog.attrs
    shuffled["tile_id"] = shuffled["tile_id"][::-1].to_numpy()
    with pytest.raises(IndexMismatchError, match="0..n-1"):
        TileColumns.from_catalog(shuffled)


def test_a_file_that_is_no_catalog_is_a_catalog_error(tmp_path):
    pd.DataFrame({"a": [1, 2]}).to_parquet(tmp_path / "table.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"junk")
    for name in ("table.parquet", "junk.parquet"):
        with pytest.raises(CatalogError, match="not a GeoParquet tile catalog"):
            TileColumns.read(tmp_path / name)


def test_scores_from_candidate_rows_equal_scores_with_norms_of_every_row():
    """Norms taken per candidate give the very scores a full pass over the scene gave."""
    rng = np.random.default_rng(0)
    visual = rng.standard_normal((5000, 512)).astype(np.float16)
    gate = rng.uniform(0, 1, (5000, 512)).astype(np.float16)
    query = rng.standard_normal(512).astype(np.float32)
    scene = SimpleNamespace(visual=visual, gate=gate)
    ids = np.sort(rng.choice(5000, 700, replace=False))
    norms = np.linalg.norm(visual.astype(np.float32), axis=1)
    v, g = visual[ids].astype(np.float32), gate[ids].astype(np.float32)
    attended = np.sqrt(np.clip((g * g) @ (query * query), 0, None))
    old_text = ((v * g) @ query) / np.maximum(norms[ids] * attended, 1e-8)
    old_visual = (v @ query) / np.maximum(norms[ids] * np.linalg.norm(query), 1e-8)
    np.testing.assert_array_equal(text_scores(scene, ids, query), old_text)
    np.testing.assert_array_equal(visual_scores(scene, ids, query), old_visual)
