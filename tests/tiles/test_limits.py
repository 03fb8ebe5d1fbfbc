"""Declared sizes are bounded: limits checked from the header, memory bounded for any size."""

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rasterio.windows import Window

import tiles
from tests.tiles.conftest import scene
from tests.tiles.sparse_scene import make_sparse_scene
from tests.tiles.test_tiling import build_everything
from tiles.io import plan_reads, valid_grid

REPO = Path(__file__).resolve().parents[2]
MEMORY_LIMIT_BYTES = 1024**3
TIME_LIMIT_S = 30

# Runs a command as its only child and reports that child's peak RSS: a fresh small
# interpreter, so the child's ru_maxrss does not inherit pytest's own memory at spawn.
RUNNER = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"rc": done.returncode, "out": done.stdout, "err": done.stderr, "peak": peak}))
"""

BUILD = """
import json, sys, time
import tiles
start = time.perf_counter()
try:
    catalog = tiles.build_catalog(sys.argv[1], max_pixels=float(sys.argv[2]))
except tiles.SceneTooLargeError as exc:
    result = {"refused": str(exc)}
else:
    result = {"tiles": len(catalog), "scales": sorted(set(catalog["scale"].tolist()))}
result["seconds"] = time.perf_counter() - start
print(json.dumps(result))
"""


def measured_build(path, max_pixels=tiles.MAX_PIXELS):
    """Build a catalog in a child process; its result, peak RSS in bytes and wall time."""
    start = time.perf_counter()
    runner = subprocess.run(
        [sys.executable, "-c", RUNNER, sys.executable, "-c", BUILD, str(path), str(max_pixels)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.perf_counter() - start
    assert runner.returncode == 0, runner.stderr
    child = json.loads(runner.stdout)
    assert child["rc"] == 0, child["err"]
    return json.loads(child["out"]), child["peak"], seconds


def test_count_tiles_is_the_grid_size_every_scene(scene_path):
    info = tiles.describe(scene_path)
    assert tiles.count_tiles(info) == len(build_everything(scene_path))
    assert tiles.check_scene_size(info) == tiles.count_tiles(info)


def test_pixel_limit_names_size_limit_and_setting():
    info = dataclasses.replace(tiles.describe(scene("berkeley")), width=10**6, height=10**6)
    with pytest.raises(tiles.SceneTooLargeError) as excinfo:
        tiles.check_scene_size(info)
    message = str(excinfo.value)
    for part in ("1,000,000 x 1,000,000 px", "4,000,000,000 pixels", "SCENESEEK_MAX_PIXELS"):
        assert part in message
    assert isinstance(excinfo.value, tiles.TilingError | ValueError)
    assert tiles.check_scene_size(info, max_pixels=1e12, max_tiles=1e8) == 80_098_389


def test_tile_limit_counts_without_building_windows():
    info = dataclasses.replace(tiles.describe(scene("berkeley")), width=60_000, height=60_000)
    small = tiles.TilingConfig(sizes=(16,))
    assert tiles.count_tiles(info, small) == 7_499**2  # ceil((60000 - 16) / 8) + 1 a side
    with pytest.raises(tiles.SceneTooLargeError) as excinfo:
        tiles.check_scene_size(info, small)
    message = str(excinfo.value)
    for part in ("56,235,001 tiles", "5,000,000 tiles", "SCENESEEK_MAX_TILES"):
        assert part in message
    berkeley = tiles.describe(scene("berkeley"))
    assert tiles.count_tiles(berkeley) == 60 + 15 + 2  # 1024 px windows clipped to 827 rows
    with pytest.raises(tiles.SceneTooLargeError):
        tiles.check_scene_size(berkeley, max_tiles=76)
    assert tiles.check_scene_size(berkeley, max_tiles=77) == 77


def test_build_catalog_refuses_before_reading_any_pixel(monkeypatch):
    def no_reads(*args, **kwargs):
        raise AssertionError("pixels were read before the size check")

    monkeypatch.setattr("tiles.catalog.plan_reads", no_reads)
    monkeypatch.setattr("tiles.catalog.valid_grid", no_reads)
    with pytest.raises(tiles.SceneTooLargeError, match="SCENESEEK_MAX_PIXELS"):
        tiles.build_catalog(scene("berkeley"), max_pixels=1_000_000)
    with pytest.raises(tiles.SceneTooLargeError, match="SCENESEEK_MAX_TILES"):
        tiles.build_catalog(scene("berkeley"), max_tiles=10)


def test_million_pixel_sided_bigtiff_is_refused_from_its_header(tmp_path):
    path = make_sparse_scene(tmp_path / "huge.tif", 1_000_000, valid=Window(0, 0, 512, 512))
    assert path.stat().st_size < 20 * 2**20  # the file is small; only its header is huge
    result, peak, seconds = measured_build(path)
    assert "1,000,000 x 1,000,000 px" in result["refused"]
    assert "SCENESEEK_MAX_PIXELS" in result["refused"]
    assert peak < MEMORY_LIMIT_BYTES, f"peak RSS {peak / 2**20:.0f} MiB"
    assert seconds < TIME_LIMIT_S and result["seconds"] < 5


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("berkeley", tiles.TilingConfig()),
        ("rasterio_RGB", tiles.TilingConfig(sizes=(100, 256), overlap=0.25)),
        ("pix4d", tiles.TilingConfig(sizes=(600, 700), min_valid=1.0)),  # keeps the best one
    ],
)
def test_row_blocks_give_the_same_catalog(monkeypatch, name, config):
    whole = tiles.build_catalog(scene(name), config)
    monkeypatch.setattr("tiles.catalog.ROW_BLOCK_TILES", 5)  # one tile row per block, or two
    blocked = tiles.build_catalog(scene(name), config)
    pd.testing.assert_frame_equal(
        pd.DataFrame(whole.drop(columns="geometry")), pd.DataFrame(blocked.drop(columns="geometry"))
    )
    assert whole.geometry.geom_equals_exact(blocked.geometry, 0).all()
    if config.min_valid == 1.0:
        assert len(blocked) == 1 and blocked["valid_fraction"].iloc[0] < 1.0


def test_hundred_thousand_pixel_sided_sparse_scene_builds_in_bounded_memory(tmp_path):
    """With the pixel limit raised, a declared 100,000 x 100,000 px scene holding one small
    valid window is tiled block by block: the catalog is its few tiles, memory stays flat."""
    valid = Window(30_000, 40_000, 600, 600)
    path = make_sparse_scene(tmp_path / "sparse.tif", 100_000, valid=valid)
    result, peak, seconds = measured_build(path, max_pixels=1e10)
    assert 0 < result["tiles"] < 40 and result["scales"] == [256, 512]
    assert peak < MEMORY_LIMIT_BYTES, f"peak RSS {peak / 2**20:.0f} MiB"
    assert seconds < TIME_LIMIT_S


@pytest.mark.parametrize("name", ["rasterio_RGB", "pix4d", "spacenet"])
def test_coverage_read_in_strips_gives_the_same_grid(monkeypatch, name):
    """Strips (float windows, cells not whole pixels) sample exactly where one read does."""
    monkeypatch.setattr("tiles.io.VALID_GRID_MAX_SIDE", 100)
    with tiles.open_scene(scene(name)) as ds:
        plan = plan_reads(ds, tiles.describe(scene(name)))
        whole, cell = valid_grid(ds, plan)
        monkeypatch.setattr("tiles.io.VALID_GRID_STRIP_PX", 50)  # 5 to 7 cells a strip
        strips, strip_cell = valid_grid(ds, plan)
    assert cell == strip_cell and cell[0] > 7
    np.testing.assert_array_equal(strips, whole)
