"""A scene file replaced after it came in: every open checks it again, and its stamp tells."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

import tiles
from tests.tiles.conftest import scene


@contextmanager
def recording_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 that answers 404 and records every path asked for."""
    seen: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            seen.append(self.path)
            self.send_error(404)

        do_HEAD = do_GET  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def vrt_over(path: Path, sources: list[str]) -> Path:
    """Replace ``path`` by a VRT, named like it, whose bands read ``sources``."""
    bands = "".join(
        f"""<VRTRasterBand dataType="Byte" band="{band}"><SimpleSource>
  <SourceFilename relativeToVRT="{int(not source.startswith("/"))}">{source}</SourceFilename>
  <SourceBand>1</SourceBand>
</SimpleSource></VRTRasterBand>"""
        for band, source in enumerate(sources, start=1)
    )
    path.write_text(
        f'<VRTDataset rasterXSize="266" rasterYSize="204"><SRS>EPSG:32611</SRS>'
        f"<GeoTransform>500000, 0.6, 0, 3700000, 0, -0.6</GeoTransform>{bands}</VRTDataset>"
    )
    return path


def test_a_vrt_swapped_in_is_refused_by_every_open_before_gdal_reads_it(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir()
    shutil.copy(scene("naip_m_3211605"), private / "secret.tif")
    ortho = tmp_path / "import" / "ortho.tif"
    ortho.parent.mkdir()
    shutil.copy(scene("naip_m_3211605"), ortho)
    tiles.describe(ortho)  # checked as it came in
    with recording_server() as (url, seen):
        vrt_over(ortho, ["../private/secret.tif", f"/vsicurl/{url}/secret.tif"])
        with rasterio.open(ortho) as ds:  # what GDAL alone does: read outside, and ask
            assert ds.read(1, window=Window(0, 0, 64, 64)).any()
            with pytest.raises(RasterioIOError):
                ds.read(2, window=Window(0, 0, 1, 1))
        assert seen, "the VRT's URL source was not requested: the test proves nothing"
        seen.clear()
        opens = {
            "describe": lambda: tiles.describe(ortho),
            "catalog": lambda: tiles.build_catalog(ortho),
            "reader": lambda: tiles.TileReader(ortho).read((0, 0, 64, 64)),
            "thumbnail": lambda: tiles.tile_thumbnail(ortho, (0, 0, 64, 64), 32),
            "quicklook": lambda: tiles.quicklook(ortho),
            "uniform check": lambda: tiles.check_not_uniform(ortho),
        }
        for name, open_ in opens.items():
            with pytest.raises(tiles.NotGeoTiffError, match="not a TIFF or BigTIFF") as excinfo:
                open_()
            assert str(ortho) in str(excinfo.value), name
        assert seen == []


def test_a_rewrite_of_the_same_size_and_time_is_another_file(tmp_path: Path) -> None:
    path = tmp_path / "ortho.tif"
    shutil.copy(scene("naip_m_3211605"), path)  # uncompressed: a rewrite keeps the size
    recorded = tiles.file_stamp(path)
    tiles.check_unchanged(path, recorded)
    with rasterio.open(path, "r+") as ds:
        ds.write(np.full((4, 8, 266), 255, np.uint8), window=Window(0, 0, 266, 8))
    os.utime(path, ns=(recorded["mtime_ns"], recorded["mtime_ns"]))
    now = tiles.file_stamp(path)
    assert (now["size"], now["mtime_ns"]) == (recorded["size"], recorded["mtime_ns"])
    with pytest.raises(tiles.SourceChangedError, match=r"\(head_sha256 changed\)") as excinfo:
        tiles.check_unchanged(path, recorded)
    assert tiles.SOURCE_CHANGED in str(excinfo.value) and isinstance(excinfo.value, OSError)


def test_a_scene_ingested_before_stamps_is_read_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "ortho.tif"
    shutil.copy(scene("naip_m_3211605"), path)
    tiles.check_unchanged(path, None)
    with pytest.raises(FileNotFoundError):
        tiles.check_unchanged(tmp_path / "gone.tif", tiles.file_stamp(path))
