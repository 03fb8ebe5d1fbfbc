"""End-to-end tiling of a generated 20,000 x 20,000 px scene: correctness and memory."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.windows import Window

import tiles
from bench.large_scene import CELL, image_at, ucm_images
from tests.tiles.conftest import LARGE_SIZE
from tests.tiles.test_tiling import check_inside
from tiles.grid import tile_count

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MEMORY_LIMIT_BYTES = 1024**3

MEMORY_SCRIPT = """
import sys
import numpy as np
import tiles
from bench.large_scene import peak_rss_bytes

catalog = tiles.build_catalog(sys.argv[1])
tiles.write_catalog(catalog, sys.argv[2])
reader = tiles.TileReader.from_catalog(tiles.read_catalog(sys.argv[2]))
count = 0
for _, group in catalog.groupby("scale"):
    picks = np.unique(np.linspace(0, len(group) - 1, 600).astype(int))
    for row in group.iloc[picks].itertuples():
        assert reader.read(row).shape == (256, 256, 3)
        count += 1
tiles.quicklook(sys.argv[1], 1024)
print(count, peak_rss_bytes())
"""


def test_large_scene_catalog_and_tiles(large_scene):
    info = tiles.describe(large_scene)
    assert (info.width, info.height, info.overviews) == (LARGE_SIZE, LARGE_SIZE, (2, 4, 8, 16))
    catalog = tiles.build_catalog(large_scene)
    check_inside(large_scene, catalog)
    for scale in (256, 512, 1024):  # the scene is all valid: every grid window is kept
        expected = tile_count(LARGE_SIZE, LARGE_SIZE, scale, scale // 2)
        assert (catalog["scale"] == scale).sum() == expected
    reader = tiles.TileReader.from_catalog(catalog)
    rng = np.random.default_rng(0)

    # full resolution: tiles aligned with the UCM grid show exactly one source image
    aligned = catalog[
        (catalog["scale"] == 256)
        & (catalog["col_off"] % CELL == 0)
        & (catalog["row_off"] % CELL == 0)
    ]
    images = ucm_images()
    for row in aligned.iloc[rng.choice(len(aligned), 12, replace=False)].itertuples():
        source = image_at(images, row.row_off // CELL, row.col_off // CELL, LARGE_SIZE)
        expected = np.asarray(Image.open(source).convert("RGB"), dtype=float)
        assert np.abs(reader.read(row) - expected).mean() < 6  # JPEG re-encoding only

    # coarse scales (served from overviews) match an area average of full-resolution pixels
    with rasterio.open(large_scene) as ds:
        for scale in (512, 1024):
            group = catalog[catalog["scale"] == scale]
            factor = scale // 256
            for row in group.iloc[rng.choice(len(group), 6, replace=False)].itertuples():
                full = ds.read(window=Window(row.col_off, row.row_off, scale, scale)).astype(float)
                averaged = full.reshape(3, 256, factor, 256, factor).mean(axis=(2, 4))
                assert np.abs(reader.read(row) - np.moveaxis(averaged, 0, -1)).mean() < 6

    # the last tile of a row is shifted inward to end at the edge: no padding, no wrapping
    edge = catalog[catalog["scale"] == 256].sort_values("col_off").iloc[-1]
    assert edge["col_off"] + edge["width"] == LARGE_SIZE
    rgb, valid = reader.read_with_mask(edge)
    assert valid.all()
    window = Window(edge["col_off"], edge["row_off"], 256, 256)
    with rasterio.open(large_scene) as ds:
        np.testing.assert_array_equal(rgb, np.moveaxis(ds.read(window=window), 0, -1))


def test_large_scene_memory_stays_under_1gb(large_scene, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(large_scene), str(tmp_path / "catalog.parquet")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    count, peak = map(int, result.stdout.split())
    assert count == 1800
    assert peak < MEMORY_LIMIT_BYTES, f"peak RSS {peak / 2**20:.0f} MiB"
