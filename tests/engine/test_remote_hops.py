"""Every byte of a remote scene passes the allow-list: a redirect on a later request or a DNS
answer that changes after the check reaches nothing that is not listed."""

import numpy as np
import pytest
from rasterio.windows import Window

from bench.cog import write_cog
from bench.range_server import RangeServer
from core.ingest.distributed import connect
from core.ingest.source import scene_source
from tests.conftest import DATA_ROOT
from tests.tiles.conftest import rebinding_dns
from tiles import (
    WINDOW_FIELDS,
    AllowList,
    RemoteRefusedError,
    TileReader,
    TilingConfig,
    build_catalog,
    resolve_remote,
)

TILING = TilingConfig(sizes=(256,), overlap=0.0)


@pytest.fixture(scope="module")
def cogs(tmp_path_factory):
    """The listed server's COG, and another file that only the unlisted service holds."""
    root = tmp_path_factory.mktemp("cogs")
    scenes = DATA_ROOT / "scenes"
    (root / "listed").mkdir()
    write_cog(
        scenes / "berkeley_z17_webmercator_naip.tif",
        root / "listed" / "cog.tif",
        Window(0, 0, 1024, 1024),
    )
    (root / "unlisted").mkdir()
    write_cog(
        scenes / "berkeley_z17_webmercator_naip.tif",
        root / "unlisted" / "cog.tif",
        Window(1024, 0, 1024, 1024),
    )
    return root


@pytest.fixture
def strict(monkeypatch):
    monkeypatch.setenv("SCENESEEK_REMOTE_RETRIES", "0")


def _ingest_start(url: str) -> None:
    """What ingest does first: check the source, then tile it."""
    checked = scene_source(url)
    with checked.environment():
        build_catalog(checked.read_path, TILING)


def test_a_redirect_after_the_second_request_reaches_nothing_unlisted(cogs, strict, monkeypatch):
    unlisted = RangeServer(cogs / "unlisted", host="127.0.0.2").start()
    listed = RangeServer(cogs / "listed", redirect_after=(2, f"http://127.0.0.2:{unlisted.port}"))
    listed.start()
    monkeypatch.setenv("SCENESEEK_REMOTE_ALLOW", "127.0.0.1")
    try:
        with pytest.raises(
            RemoteRefusedError, match="host 127.0.0.2 is not in SCENESEEK_REMOTE_ALLOW"
        ):
            _ingest_start(listed.url("cog.tif"))
        assert len(listed.requests()) > 2
        assert unlisted.requests() == []
    finally:
        listed.stop()
        unlisted.stop()


def test_a_dns_answer_that_changes_after_the_check_is_never_used(cogs, strict, monkeypatch):
    """The name resolves to the listed 127.0.0.1 twice, then to the unlisted 127.0.0.2.

    The range probe and the first open each look it up once and connect where they checked;
    tiling's open looks it up again, sees 127.0.0.2 and refuses it.
    """
    listed = RangeServer(cogs / "listed").start()
    rebound = RangeServer(cogs / "unlisted", host="127.0.0.2", port=listed.port).start()
    rebinding_dns(monkeypatch, "scenes.test", honest=2)
    monkeypatch.setenv("SCENESEEK_REMOTE_ALLOW", "scenes.test,127.0.0.1")
    try:
        with pytest.raises(RemoteRefusedError, match="resolves to 127.0.0.2"):
            _ingest_start(f"http://scenes.test:{listed.port}/cog.tif")
        assert listed.requests()
        assert rebound.requests() == []
    finally:
        listed.stop()
        rebound.stop()


def read_all(reader, windows):
    return [reader.read(w) for w in windows]


@pytest.mark.slow
def test_a_dask_worker_reads_a_remote_scene_through_the_allow_list(cogs):
    server = RangeServer(cogs / "listed").start()
    try:
        remote = resolve_remote(server.url("cog.tif"), AllowList.parse(["127.0.0.1"]))
        catalog = build_catalog(remote, TILING)
        windows = [tuple(int(v) for v in w) for w in catalog[list(WINDOW_FIELDS)].to_numpy()]
        expected = read_all(
            TileReader.from_catalog(catalog, path=cogs / "listed" / "cog.tif"), windows
        )
        asked = len(server.requests())
        client = connect("local:1")
        try:
            reader = TileReader.from_catalog(catalog, path=remote)
            got = client.submit(read_all, reader, windows).result(timeout=300)
        finally:
            client.close()
            client.cluster.close()
        for tile, want in zip(got, expected, strict=True):
            np.testing.assert_array_equal(tile, want)
        assert len(server.requests()) > asked  # the worker read the bytes itself, checked
    finally:
        server.stop()
