"""GeoTIFFs of a few megabytes whose one internal block decodes to hundreds of megabytes.

GDAL writes the header (one tile or one strip, deflate, no block written: ``SPARSE_OK``);
the block, a deflate stream of zeros compressed here chunk by chunk, is appended and the
header's block offset and byte count are pointed at it. Making the file so takes tens of
megabytes of memory, where writing the pixels through GDAL would hold the whole block twice.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import rasterio
from affine import Affine

CHUNK = 1 << 24
TILE_TAGS = (324, 325)  # TileOffsets, TileByteCounts
STRIP_TAGS = (273, 279)  # StripOffsets, StripByteCounts
FORMATS = {3: "<H", 4: "<I"}  # SHORT, LONG


def _zeros_deflated(size: int) -> bytes:
    stream = zlib.compressobj(1)
    parts = [stream.compress(bytes(min(CHUNK, size - done))) for done in range(0, size, CHUNK)]
    return b"".join([*parts, stream.flush()])


def _point_block_at(path: Path, tags: tuple[int, int], offset: int, size: int) -> None:
    """Set the one-block offset and byte count entries of the first IFD (classic TIFF)."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"II*\x00", "a little-endian classic TIFF is expected"
    (ifd,) = struct.unpack_from("<I", data, 4)
    (entries,) = struct.unpack_from("<H", data, ifd)
    found = {}
    for entry in range(ifd + 2, ifd + 2 + 12 * entries, 12):
        tag, kind, count = struct.unpack_from("<HHI", data, entry)
        if tag in tags:
            assert count == 1 and kind in FORMATS, (tag, kind, count)
            found[tag] = (entry + 8, FORMATS[kind])
    for tag, value in zip(tags, (offset, size), strict=True):
        where, fmt = found[tag]
        struct.pack_into(fmt, data, where, value)
    path.write_bytes(bytes(data))


def make_block_bomb(path: Path, side: int, count: int = 3, *, tiled: bool = True) -> Path:
    """A ``side`` x ``side`` uint8 scene of zeros stored as one deflate tile (or strip)."""
    profile = dict(
        driver="GTiff",
        width=side,
        height=side,
        count=count,
        dtype="uint8",
        crs="EPSG:32633",
        transform=Affine(0.5, 0, 500000, 0, -0.5, 4200000),
        compress="deflate",
        tiled=tiled,
        blockysize=side,
        SPARSE_OK=True,
    )
    if tiled:
        profile["blockxsize"] = side
    with rasterio.open(path, "w", **profile):
        pass
    block = _zeros_deflated(side * side * count)
    header_size = path.stat().st_size
    _point_block_at(path, TILE_TAGS if tiled else STRIP_TAGS, header_size, len(block))
    with open(path, "ab") as file:
        file.write(block)
    return path
