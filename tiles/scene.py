"""Open a scene safely and describe what tiling needs to know about it.

:func:`open_scene` turns every way a file can be unusable (missing, not a GeoTIFF, truncated,
not georeferenced, stored in blocks too big to decode) into one precise error before any
pixel work starts, so callers never write partial outputs. Every open repeats the GeoTIFF
check, so a scene file replaced after it came in is checked again. :func:`describe`
summarises the scene as a frozen :class:`SceneInfo`. :func:`check_gtiff` is the same
GeoTIFF gate on its own, for files from outside (an import folder).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import numpy as np
import rasterio
from affine import Affine
from pyproj import Geod
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from tiles.errors import (
    NotGeoreferencedError,
    NotGeoTiffError,
    RemoteRefusedError,
    SceneOpenError,
    SceneTooLargeError,
)
from tiles.footprint import pixel_to_crs, window_footprints
from tiles.grid import decimated_shape
from tiles.remote_file import RemoteScene, open_remote, remote_failure, shown_name

MaskSource = Literal["alpha", "mask", "nodata", "none"]

PathLike = str | os.PathLike[str]
ScenePath = PathLike | RemoteScene  # a file, or a remote scene that passed the allow-list
_NETWORK = re.compile(r"://|/vsi(curl|s3|gs|az|adls|oss|swift|webhdfs|hdfs)", re.IGNORECASE)

TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # TIFF, BigTIFF; LE, BE
MAX_BLOCK_MB = 64  # default of the SCENESEEK_MAX_BLOCK_MB setting, checked as scenes come in
# Any open: a read decodes whole blocks, and every read runs with a block cache this size
# (tiles.io.GDAL_CACHE_BYTES), so a bigger block would be decoded again for every tile.
BLOCK_CEILING_MB = 128
_ALPHA_SAMPLE_SIDE = 256
_ALPHA_BINARY_SHARE = 0.9
_WGS84 = Geod(ellps="WGS84")


@dataclass(frozen=True)
class SceneInfo:
    """What tiling needs to know about a scene, read from its header and a small sample.

    Attributes:
        path: The path the scene was opened from.
        driver: GDAL driver short name, e.g. ``"GTiff"``.
        width: Width in pixels.
        height: Height in pixels.
        count: Number of bands.
        dtypes: Data type name of each band.
        colorinterp: Lower-case colour interpretation of each band (``"red"``, ``"alpha"``...).
        nodata: The nodata value, or None.
        crs: Coordinate reference system.
        transform: Affine transform from (col, row) pixel corners to CRS coordinates.
        overviews: Overview decimation factors of band 1 (empty when there are none).
        block_shape: Internal (rows, cols) block shape of band 1.
        pixel_size: Pixel (x, y) size in CRS units (degrees for geographic CRSs).
        ground_pixel_size_m: Approximate pixel (x, y) size on the ground in metres, measured
            geodesically at the scene centre, so it is right for geographic CRSs and Web
            Mercator too.
        bounds_4326: (min_lon, min_lat, max_lon, max_lat) of the densified scene outline.
        mask_source: Where valid pixels come from: an ``"alpha"`` band, a per-dataset
            ``"mask"``, the ``"nodata"`` value, or ``"none"`` (all pixels valid).
        alpha_band: 1-based index of the alpha band used as mask, or None.
        mislabelled_alpha_bands: Bands tagged alpha whose values are image data, not a mask
            (NAIP stores near-infrared this way); they are ignored as masks.
    """

    path: str
    driver: str
    width: int
    height: int
    count: int
    dtypes: tuple[str, ...]
    colorinterp: tuple[str, ...]
    nodata: float | None
    crs: CRS
    transform: Affine
    overviews: tuple[int, ...]
    block_shape: tuple[int, int]
    pixel_size: tuple[float, float]
    ground_pixel_size_m: tuple[float, float]
    bounds_4326: tuple[float, float, float, float]
    mask_source: MaskSource
    alpha_band: int | None
    mislabelled_alpha_bands: tuple[int, ...]


def is_local_path(path: str) -> bool:
    """True for a file path, False for a URL or a GDAL virtual path (``/vsicurl/...``)."""
    return "://" not in path and not path.startswith("/vsi")


def _check_georeferenced(ds: DatasetReader, path: str) -> None:
    has_transform = ds.transform != Affine.identity()
    if ds.crs is not None and has_transform:
        return
    gcps, _ = ds.gcps
    if gcps:
        fix = (
            "it is georeferenced by ground control points only; warp it to a regular grid "
            f"first, e.g. `gdalwarp -t_srs EPSG:4326 {path} warped.tif`"
        )
    elif has_transform:
        fix = (
            "it has a geotransform but no CRS; assign the right one, e.g. "
            f"`gdal_edit.py -a_srs EPSG:32633 {path}`"
        )
    else:
        missing = "no geotransform" if ds.crs is not None else "no CRS and no geotransform"
        fix = (
            f"it has {missing} (pixel coordinates only); export it with georeferencing "
            "from your GIS, or assign it with "
            f"`gdal_edit.py -a_srs EPSG:<code> -a_ullr <ulx> <uly> <lrx> <lry> {path}`"
        )
    raise NotGeoreferencedError(f"{path} cannot be placed on a map: {fix}")


def _block_bytes(ds: DatasetReader) -> tuple[int, int, int]:
    """(bytes, cols, rows) of the largest block a read of every band decodes at once."""
    rows, cols = ds.block_shapes[0]
    return rows * cols * sum(np.dtype(dtype).itemsize for dtype in ds.dtypes), cols, rows


def _check_blocks(ds: DatasetReader, source: ScenePath, path: str, max_block_mb: float) -> None:
    """Refuse blocks (tiles or strips, of the image or an overview) that decode to too much.

    A file of a few megabytes can hold one deflate tile of 16,384 x 16,384 px that decodes
    to 768 MB; the header says so, so nothing is read.
    """
    limit = min(max_block_mb, BLOCK_CEILING_MB)
    levels = [(_block_bytes(ds), "")]
    for level, factor in enumerate(ds.overviews(1)):
        with _open(source, overview_level=level) as overview:
            levels.append((_block_bytes(overview), f" in its overview of factor {factor}"))
    (size, cols, rows), where = max(levels)
    if size <= limit * 2**20:
        return
    raise SceneTooLargeError(
        f"{path} stores its pixels in blocks of {cols:,} x {rows:,} px ({size / 2**20:,.0f} MB "
        f"each once decoded){where}, more than the limit of {limit:g} MB (setting "
        f"SCENESEEK_MAX_BLOCK_MB, at most {BLOCK_CEILING_MB}); a read decodes whole blocks, so "
        "nothing was read. Rewrite it with small internal tiles, e.g. "
        f"`gdal_translate -co TILED=YES -co COMPRESS=DEFLATE {path} tiled.tif`"
    )


def _probe_last_block(ds: DatasetReader, path: str) -> None:
    """Read one pixel of the last block, which is missing when a file is truncated.

    GDAL decodes that whole block (no bigger than the limit), and returns one pixel.
    """
    block_rows, block_cols = ds.block_shapes[0]
    window = Window(
        (math.ceil(ds.width / block_cols) - 1) * block_cols,
        (math.ceil(ds.height / block_rows) - 1) * block_rows,
        1,
        1,
    )
    try:
        ds.read(window=window)
    except RasterioError as exc:
        raise remote_failure(ds.name) or SceneOpenError(
            f"{path} opened but its pixels cannot be read ({exc}); the file is probably "
            "truncated or corrupt: copy or download it again"
        ) from exc


def _check_signature(path: str) -> None:
    """Refuse a local file that does not start like a TIFF, before GDAL parses it."""
    if not os.path.isfile(path):
        raise SceneOpenError(f"{path} does not exist or is not a file; check the path")
    with open(path, "rb") as file:
        signature = file.read(4)
    if signature not in TIFF_SIGNATURES:
        raise NotGeoTiffError(
            f"{path} is not a GeoTIFF: it starts with {signature!r}, not a TIFF or "
            "BigTIFF signature (a VRT, image or text file named .tif is refused). Export "
            f"the scene as GeoTIFF, e.g. `gdal_translate -of GTiff <source> {path}`"
        )


def _check_driver(ds: DatasetReader, path: str) -> None:
    if ds.driver != "GTiff":
        raise NotGeoTiffError(
            f"{path} is read by GDAL's {ds.driver} driver, not GTiff; only GeoTIFF files "
            "are accepted"
        )


def _open(path: ScenePath, **options: int) -> DatasetReader:
    """The dataset; a remote scene only as a checked :class:`RemoteScene`, never a URL string.

    Raises:
        RemoteRefusedError: A URL or GDAL network path given as a string.
        RasterioError: GDAL cannot open it.
    """
    if isinstance(path, RemoteScene):
        return open_remote(path, **options)
    path_str = os.fspath(path)
    if _NETWORK.search(path_str):  # also zip+https://..., /vsizip//vsicurl/...
        raise RemoteRefusedError(
            f"{shown_name(path_str)} is a remote scene: it is read only after the allow-list "
            "check (tiles.resolve_remote), never handed to GDAL as a URL"
        )
    return rasterio.open(path_str, **options)


@contextmanager
def open_scene(
    path: ScenePath, *, max_block_mb: float = BLOCK_CEILING_MB
) -> Iterator[DatasetReader]:
    """Open a scene for reading after checking that it can be tiled.

    Every open checks again that the file is a GeoTIFF (a file replaced since it came in,
    e.g. by a VRT naming other files or URLs, is refused before GDAL parses it) and that
    its blocks fit the limit before any pixel is read.

    Args:
        path: Local path of a GeoTIFF, or a checked remote scene.
        max_block_mb: Largest decoded block accepted (setting ``SCENESEEK_MAX_BLOCK_MB``
            where a scene comes in); never more than ``BLOCK_CEILING_MB``.

    Yields:
        The open rasterio dataset; it is closed when the block exits.

    Raises:
        SceneOpenError: The file does not exist, or is truncated or corrupt.
        NotGeoTiffError: The file is not a GeoTIFF.
        SceneTooLargeError: Its blocks decode to more than the limit.
        NotGeoreferencedError: The raster has no CRS or no geotransform.
        RemoteRefusedError: A remote scene given as a URL string, or a request the
            allow-list refuses (a redirect, say).
        RemoteReadError: A remote scene cannot be read.
    """
    path_str = str(path) if isinstance(path, RemoteScene) else os.fspath(path)
    if is_local_path(path_str):
        _check_signature(path_str)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = _open(path)
    except RasterioError as exc:
        raise SceneOpenError(
            f"{path_str} cannot be opened as a raster ({exc}); tiles needs a georeferenced "
            "GeoTIFF (or COG). If it is one, it is damaged: copy or download it again"
        ) from exc
    with ds:
        _check_driver(ds, path_str)
        _check_georeferenced(ds, path_str)
        _check_blocks(ds, path, path_str, max_block_mb)
        _probe_last_block(ds, path_str)
        yield ds


def check_gtiff(path: PathLike) -> None:
    """Accept only a real GeoTIFF: TIFF or BigTIFF bytes that GDAL reads as ``GTiff``.

    GDAL recognises formats by content, not by name, and some formats make it read other
    files: a VRT (XML, even when named ``.tif``) can point at any file the process may
    read. The first bytes are checked before GDAL sees the file, so such a file is
    refused without being parsed; the driver check then refuses anything else GDAL would
    read in place of a TIFF. :func:`open_scene` repeats both checks at every open.

    Args:
        path: Local path of the file.

    Raises:
        SceneOpenError: The file does not exist, or has TIFF bytes GDAL cannot open.
        NotGeoTiffError: The file is another format (VRT, PNG, JPEG2000, text...).
    """
    path_str = os.fspath(path)
    _check_signature(path_str)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path_str) as ds:
                _check_driver(ds, path_str)
    except RasterioError as exc:
        raise SceneOpenError(
            f"{path_str} starts like a TIFF but cannot be opened ({exc}); it is damaged: "
            "copy or download it again"
        ) from exc


def _alpha_is_mask(ds: DatasetReader, band: int) -> bool:
    """Tell a real alpha band (almost only 0 and full opacity) from mislabelled image data."""
    sample = ds.read(band, out_shape=decimated_shape(ds.width, ds.height, _ALPHA_SAMPLE_SIDE))
    opaque = np.iinfo(sample.dtype).max if sample.dtype.kind in "iu" else 1.0
    binary = np.count_nonzero((sample == 0) | (sample == opaque))
    return binary >= _ALPHA_BINARY_SHARE * sample.size


def _ground_pixel_size(ds: DatasetReader) -> tuple[float, float]:
    step = max(1.0, min(ds.width, ds.height) / 10)
    col, row = ds.width / 2, ds.height / 2
    cols = np.array([col - step / 2, col + step / 2, col, col])
    rows = np.array([row, row, row - step / 2, row + step / 2])
    xs, ys = pixel_to_crs(ds.transform, cols, rows)
    lons, lats = warp_transform(ds.crs, "EPSG:4326", xs, ys)
    _, _, dist = _WGS84.inv(lons[0::2], lats[0::2], lons[1::2], lats[1::2])
    return float(dist[0] / step), float(dist[1] / step)


def _mask_source(
    ds: DatasetReader,
) -> tuple[MaskSource, int | None, tuple[int, ...]]:
    alpha_tagged = [i + 1 for i, ci in enumerate(ds.colorinterp) if ci == ColorInterp.alpha]
    real_alpha = [band for band in alpha_tagged if _alpha_is_mask(ds, band)]
    mislabelled = tuple(band for band in alpha_tagged if band not in real_alpha)
    if real_alpha:
        return "alpha", real_alpha[0], mislabelled
    flags = ds.mask_flag_enums[0]
    if MaskFlags.per_dataset in flags and MaskFlags.alpha not in flags:
        return "mask", None, mislabelled
    if ds.nodata is not None:
        return "nodata", None, mislabelled
    return "none", None, mislabelled


def describe_dataset(ds: DatasetReader) -> SceneInfo:
    """Describe an already opened (and validated) dataset.

    Args:
        ds: A dataset opened with :func:`open_scene`.

    Returns:
        The scene description.
    """
    mask_source, alpha_band, mislabelled = _mask_source(ds)
    transform = ds.transform
    outline = window_footprints(
        transform, ds.crs, np.array([[0, 0, ds.width, ds.height]]), points_per_edge=32
    )[0]
    min_lon, min_lat, max_lon, max_lat = outline.bounds
    return SceneInfo(
        path=shown_name(ds.name),
        driver=ds.driver,
        width=ds.width,
        height=ds.height,
        count=ds.count,
        dtypes=tuple(ds.dtypes),
        colorinterp=tuple(ci.name for ci in ds.colorinterp),
        nodata=None if ds.nodata is None else float(ds.nodata),
        crs=ds.crs,
        transform=transform,
        overviews=tuple(ds.overviews(1)),
        block_shape=(int(ds.block_shapes[0][0]), int(ds.block_shapes[0][1])),
        pixel_size=(math.hypot(transform.a, transform.d), math.hypot(transform.b, transform.e)),
        ground_pixel_size_m=_ground_pixel_size(ds),
        bounds_4326=(min_lon, min_lat, max_lon, max_lat),
        mask_source=mask_source,
        alpha_band=alpha_band,
        mislabelled_alpha_bands=mislabelled,
    )


def describe(path: ScenePath, *, max_block_mb: float = MAX_BLOCK_MB) -> SceneInfo:
    """Open a scene and describe it.

    Args:
        path: Path of the GeoTIFF.
        max_block_mb: Largest decoded block accepted (setting ``SCENESEEK_MAX_BLOCK_MB``).

    Returns:
        The scene description.

    Raises:
        SceneOpenError: The file is missing or damaged.
        NotGeoTiffError: The file is not a GeoTIFF.
        SceneTooLargeError: Its blocks decode to more than ``max_block_mb``.
        NotGeoreferencedError: The raster has no CRS or no geotransform.
    """
    with open_scene(path, max_block_mb=max_block_mb) as ds:
        return describe_dataset(ds)
