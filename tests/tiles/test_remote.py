"""Remote scenes: allow-list, redirects checked hop by hop, COG checks, STAC items, redaction."""

import json
import multiprocessing
import pickle
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from rasterio.windows import Window

import tiles
from bench.cog import write_cog
from bench.range_server import RangeServer
from tests.tiles.conftest import scene

LOOPBACK = tiles.AllowList.parse(["127.0.0.1"])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    berkeley = scene("berkeley")
    write_cog(berkeley, root / "cog.tif", Window(0, 0, 512, 512))
    write_cog(berkeley, root / "flat.tif", Window(0, 0, 512, 512), overviews=False)
    (root / "strips.tif").write_bytes(scene("usgs_hro").read_bytes())
    (root / "page.tif").write_text("<VRTDataset></VRTDataset>")
    server = RangeServer(root).start()
    server.redirects.update(
        {
            "/moved.tif": server.url("cog.tif"),
            "/away.tif": f"http://localhost:{server.port}/cog.tif",
            "/loop.tif": server.url("loop.tif"),
        }
    )
    server.stop()
    yield server.start()
    server.stop()


def test_remote_is_off_without_an_allow_list(served):
    with pytest.raises(tiles.RemoteRefusedError, match="SCENESEEK_REMOTE_ALLOW"):
        tiles.resolve_remote(served.url("cog.tif"), tiles.AllowList.parse([]))


def test_a_listed_cog_is_resolved_with_its_size_and_version(served):
    remote = tiles.resolve_remote(served.url("cog.tif"), LOOPBACK)
    assert remote.url == served.url("cog.tif") and remote.allow == LOOPBACK
    assert remote.size == (served.root / "cog.tif").stat().st_size
    assert remote.version
    with tiles.network_env(1, 0.1), warnings.catch_warnings():
        warnings.simplefilter("error", tiles.NoOverviewsWarning)
        tiles.check_remote_gtiff(remote)


def test_redirects_are_followed_only_to_listed_hosts(served):
    assert tiles.resolve_remote(served.url("moved.tif"), LOOPBACK).url == served.url("cog.tif")
    with pytest.raises(tiles.RemoteRefusedError, match="host localhost is not in"):
        tiles.resolve_remote(served.url("away.tif"), LOOPBACK)
    with pytest.raises(tiles.RemoteRefusedError, match="more than 5 redirects"):
        tiles.resolve_remote(served.url("loop.tif"), LOOPBACK)


def test_private_addresses_need_their_own_listing(served):
    by_name = f"http://localhost:{served.port}/cog.tif"
    with pytest.raises(tiles.RemoteRefusedError, match="resolves to 127.0.0.1"):
        tiles.resolve_remote(by_name, tiles.AllowList.parse(["localhost"]))
    both = tiles.AllowList.parse(["localhost", "127.0.0.0/8"])
    assert tiles.resolve_remote(by_name, both).url == by_name
    with pytest.raises(tiles.RemoteRefusedError, match="169.254.169.254 is not in"):
        LOOPBACK.check("http://169.254.169.254/latest/meta-data/")


def test_only_tiled_geotiffs_are_read(served):
    with pytest.raises(tiles.NotGeoTiffError, match="starts with"):
        tiles.resolve_remote(served.url("page.tif"), LOOPBACK)
    with tiles.network_env(1, 0.1):
        with pytest.raises(tiles.NotGeoTiffError, match="strips"):
            tiles.check_remote_gtiff(tiles.resolve_remote(served.url("strips.tif"), LOOPBACK))
        with pytest.warns(tiles.NoOverviewsWarning):
            tiles.check_remote_gtiff(tiles.resolve_remote(served.url("flat.tif"), LOOPBACK))
    with pytest.raises(tiles.RemoteReadError, match="HTTP 404"):
        tiles.resolve_remote(served.url("missing.tif"), LOOPBACK)


def test_credentials_never_show():
    url = "https://data.example.org/a/b.tif?X-Amz-Signature=s3cr3t&token=t0k&v=2"
    assert tiles.redact_url(url) == "https://data.example.org/a/b.tif?v=2"
    assert tiles.redact_url("https://me:pw@example.org/x.tif") == "https://example.org/x.tif"
    assert "s3cr3t" not in tiles.redact_text(f"error: {url} cannot be opened")
    assert tiles.has_credentials(url) and not tiles.has_credentials("https://example.org/x.tif")
    with pytest.raises(tiles.RemoteRefusedError, match="credentials in a URL") as refused:
        tiles.AllowList.parse(["example.org"]).check("https://me:pw@example.org/x.tif")
    assert "pw" not in str(refused.value)


def test_s3_prefixes_and_bad_entries():
    allow = tiles.AllowList.parse(["s3://open-data/naip"])
    allow.check("s3://open-data/naip/2020/x.tif")
    for refused in ("s3://open-data/other/x.tif", "s3://open-data-2/naip/x.tif"):
        with pytest.raises(tiles.RemoteRefusedError):
            allow.check(refused)
    assert tiles.resolve_remote("s3://open-data/naip/x.tif", allow).allow == allow
    with pytest.raises(tiles.RemoteRefusedError, match="not a host"):
        tiles.AllowList.parse(["http://example.org/path"])


def test_stac_item_lists_assets_and_picks_one(served, tmp_path):
    item = tmp_path / "item.json"
    assets = {"visual": {"href": served.url("cog.tif")}, "thumb": {"href": "thumb.png"}}
    item.write_text(json.dumps({"type": "Feature", "assets": assets}))
    assert tiles.is_stac_item(item)
    assert tiles.stac_asset(item, "visual", LOOPBACK) == served.url("cog.tif")
    assert tiles.stac_asset(item, "thumb", LOOPBACK) == str(tmp_path / "thumb.png")
    with pytest.raises(tiles.SceneOpenError, match="pick one of: thumb, visual"):
        tiles.stac_asset(item, None, LOOPBACK)
    (served.root / "item.json").write_text(json.dumps({"assets": {"visual": {"href": "cog.tif"}}}))
    assert tiles.stac_asset(served.url("item.json"), "visual", LOOPBACK) == served.url("cog.tif")


def test_urls_are_never_handed_to_gdal_as_strings(served):
    before = len(served.requests())
    url = served.url("cog.tif")
    for path in (url, "/vsicurl/" + url, "zip+" + url, f"/vsizip//vsicurl/{url}", "s3://b/k"):
        with pytest.raises(tiles.RemoteRefusedError, match="never handed to GDAL as a URL"):
            tiles.describe(path)
    assert len(served.requests()) == before


def read_in_worker(reader, windows):
    return [reader.read(w) for w in windows]


def test_remote_reads_match_the_file_also_in_worker_processes(served):
    remote = tiles.resolve_remote(served.url("cog.tif"), LOOPBACK)
    catalog = tiles.build_catalog(remote, tiles.TilingConfig(sizes=(128,), overlap=0.0))
    assert catalog.attrs[tiles.CATALOG_KEY]["source"] == served.url("cog.tif")
    windows = [tuple(w) for w in catalog[list(tiles.WINDOW_FIELDS)].to_numpy()[:8]]
    local = tiles.TileReader.from_catalog(catalog, path=served.root / "cog.tif")
    reader = tiles.TileReader.from_catalog(catalog, path=remote)
    expected = [local.read(w) for w in windows]
    assert len(pickle.dumps(reader)) < 10_000  # the URL and allow-list, no handle or bytes
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        results = list(pool.map(read_in_worker, [reader, reader], [windows[:4], windows[4:]]))
    for got, want in zip(results[0] + results[1], expected, strict=True):
        np.testing.assert_array_equal(got, want)
