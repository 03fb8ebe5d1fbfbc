"""Fixtures for the tiles tests: every shared scene, and one large generated scene."""

from __future__ import annotations

import socket
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling

import tiles
from bench.large_scene import make_large_scene
from tests.conftest import DATA_ROOT

SCENES = sorted((DATA_ROOT / "scenes").glob("*.tif"))
LARGE_SIZE = 20_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Band-guess warnings are expected on NAIP scenes; tests checking them use pytest.warns."""
    here = Path(__file__).parent
    for item in items:
        if here not in item.path.parents:
            continue
        for category in ("AlphaBandIgnoredWarning", "NIRBandDroppedWarning"):
            item.add_marker(pytest.mark.filterwarnings(f"ignore::tiles.errors.{category}"))


def scene(name_part: str) -> Path:
    """The one shared scene whose file name contains ``name_part``."""
    matches = [p for p in SCENES if name_part in p.name]
    if len(matches) != 1:
        pytest.fail(
            f"expected one shared scene named *{name_part}* in {DATA_ROOT / 'scenes'}, "
            f"found {len(matches)}; set SCENESEEK_DATA to the shared data folder"
        )
    return matches[0]


@pytest.fixture(params=SCENES, ids=[p.name for p in SCENES])
def scene_path(request: pytest.FixtureRequest) -> Path:
    return request.param


@pytest.fixture(scope="session")
def catalog_of():
    """Build (once per session) the default catalog of a scene."""
    cache: dict[Path, gpd.GeoDataFrame] = {}

    def build(path: Path) -> gpd.GeoDataFrame:
        if path not in cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", tiles.AlphaBandIgnoredWarning)
                warnings.simplefilter("ignore", tiles.NIRBandDroppedWarning)
                cache[path] = tiles.build_catalog(path)
        return cache[path].copy()

    return build


@pytest.fixture(scope="session")
def large_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20,000 x 20,000 px JPEG-tiled GeoTIFF with overviews, generated once per session."""
    return make_large_scene(tmp_path_factory.mktemp("large") / "large.tif", LARGE_SIZE)


def write_scene(path: Path, pixels: np.ndarray, **options: object) -> Path:
    """A GeoTIFF of ``pixels`` (bands, rows, cols) at 0.5 m in UTM 33N, 256 px deflate tiles."""
    profile = dict(
        driver="GTiff",
        width=pixels.shape[2],
        height=pixels.shape[1],
        count=pixels.shape[0],
        dtype=pixels.dtype.name,
        crs="EPSG:32633",
        transform=Affine(0.5, 0, 500000, 0, -0.5, 4200000),
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
    )
    with rasterio.open(path, "w", **(profile | options)) as dst:
        dst.write(pixels)
    return path


def rebinding_dns(monkeypatch: pytest.MonkeyPatch, host: str, honest: int) -> None:
    """``host`` resolves to 127.0.0.1 for its first ``honest`` lookups, then to 127.0.0.2.

    A DNS-rebinding attacker's answer: checked once, different when connected.
    """
    answers = iter(["127.0.0.1"] * honest)
    real = socket.getaddrinfo

    def lookup(name, port, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - getaddrinfo's
        if name == host:
            return real(next(answers, "127.0.0.2"), port, *args, **kwargs)
        return real(name, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)


def berkeley_with_overviews(path: Path) -> Path:
    """The Berkeley scene rewritten with 256 px internal blocks and overviews 2 and 4."""
    with rasterio.open(scene("berkeley")) as src:
        profile = src.profile | {"tiled": True, "blockxsize": 256, "blockysize": 256}
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(src.read())
            dst.build_overviews([2, 4], Resampling.average)
    return path
