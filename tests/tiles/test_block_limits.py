"""Internal blocks that decode to more than the limit are refused from the header."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling

import tiles
from tests.tiles.block_bomb import make_block_bomb
from tests.tiles.conftest import scene

REPO = Path(__file__).resolve().parents[2]
BOMB_SIDE = 16_384
FIX = "gdal_translate -co TILED=YES"

# Describes a scene in a fresh interpreter; how much its peak RSS grew, and how long it took.
DESCRIBE = """
import json, resource, sys, time
from tiles.errors import TilesError
from tiles.scene import describe
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
try:
    describe(sys.argv[1])
except TilesError as exc:
    outcome = f"{type(exc).__name__}: {exc}"
else:
    outcome = "accepted"
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
print(json.dumps({"outcome": outcome, "grown": grown, "seconds": time.perf_counter() - started}))
"""


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16,384 x 16,384 x 3 zeros in one deflate tile: 3.5 MB on disk, 768 MB decoded."""
    return make_block_bomb(tmp_path_factory.mktemp("bomb") / "bomb.tif", BOMB_SIDE)


def described(path: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", DESCRIBE, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_one_block_scene_is_refused_from_its_header_in_bounded_memory(bomb: Path) -> None:
    assert bomb.stat().st_size < 8 * 2**20
    with rasterio.open(bomb) as ds:
        assert ds.block_shapes[0] == (BOMB_SIDE, BOMB_SIDE)
    result = described(bomb)
    assert result["outcome"].startswith("SceneTooLargeError: "), result
    assert "16,384 x 16,384 px" in result["outcome"] and "768 MB" in result["outcome"]
    assert FIX in result["outcome"] and "SCENESEEK_MAX_BLOCK_MB" in result["outcome"]
    assert result["grown"] < 100 * 2**20, result  # reading the block took 2.5 GB
    assert result["seconds"] < 5, result


def test_every_shared_scene_is_accepted_in_bounded_memory() -> None:
    for path in (scene("berkeley"), scene("20200831_5m")):  # 256 and 512 px tiles, overviews
        result = described(path)
        assert result["outcome"] == "accepted" and result["grown"] < 100 * 2**20, result


def two_strips(path: Path) -> Path:
    """2,048 x 2,048 x 3 px in two strips of 1,024 rows: 6 MB a strip once decoded."""
    profile = dict(
        driver="GTiff",
        width=2048,
        height=2048,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=Affine(0.5, 0, 500000, 0, -0.5, 4200000),
        compress="lzw",
        blockysize=1024,
    )
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((3, 2048, 2048), np.uint8))
    return path


def test_strips_count_like_tiles(tmp_path: Path) -> None:
    path = two_strips(tmp_path / "strips.tif")
    assert tiles.describe(path, max_block_mb=6.5).block_shape == (1024, 2048)
    with pytest.raises(tiles.SceneTooLargeError, match=r"2,048 x 1,024 px \(6 MB") as excinfo:
        tiles.describe(path, max_block_mb=4)
    assert FIX in str(excinfo.value) and str(path) in str(excinfo.value)


def test_overview_blocks_are_checked_too(tmp_path: Path) -> None:
    """256 px tiles (192 KB) but a 512 x 512 overview stored as one block (768 KB)."""
    path = tmp_path / "overview.tif"
    profile = dict(
        driver="GTiff",
        width=1024,
        height=1024,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=Affine(0.5, 0, 500000, 0, -0.5, 4200000),
        tiled=True,
        blockxsize=256,
        blockysize=256,
    )
    with rasterio.Env(GDAL_TIFF_OVR_BLOCKSIZE=512), rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((3, 1024, 1024), np.uint8))
        dst.build_overviews([2], Resampling.average)
    assert tiles.describe(path, max_block_mb=1).overviews == (2,)
    with pytest.raises(tiles.SceneTooLargeError, match=r"512 x 512 px .*overview"):
        tiles.describe(path, max_block_mb=0.5)


def test_every_open_is_bounded_whatever_the_limit_asked(bomb: Path) -> None:
    """Tile reads and previews open scenes at the ceiling: no setting lets a read decode 768 MB."""
    with pytest.raises(tiles.SceneTooLargeError, match="at most 128"):
        tiles.describe(bomb, max_block_mb=1024)
    with pytest.raises(tiles.SceneTooLargeError, match=FIX):
        tiles.TileReader(bomb).read((0, 0, 256, 256))
    with pytest.raises(tiles.SceneTooLargeError, match=FIX):
        tiles.quicklook(bomb)
