"""Windowed pixel reads shared by the catalog, the tile reader and quicklooks.

Every read goes through :func:`read_rgb` or :func:`read_valid`: a window is clipped to the
scene and what remains is read with ``out_shape`` (so GDAL serves coarse reads from
overviews), stretched when its aspect differs from the output's. Pixels outside the scene
are never read, invented or padded; nodata inside it is reported by the valid mask. No
function here reads a whole scene at full resolution. :func:`check_not_uniform` refuses a
scene with nothing to search from one decimated read.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from tiles.bands import RGB, Stretch, estimate_stretch, select_rgb_bands, to_uint8
from tiles.errors import (
    AlphaBandIgnoredWarning,
    NIRBandDroppedWarning,
    SceneReadError,
    TilesError,
    TilingError,
)
from tiles.grid import decimated_shape
from tiles.remote_file import remote_failure, shown_name
from tiles.scene import (
    BLOCK_CEILING_MB,
    MaskSource,
    SceneInfo,
    ScenePath,
    describe_dataset,
    open_scene,
)

STRETCH_SAMPLE_SIDE = 1024
VALID_GRID_MAX_SIDE = 2048
# Widest strip of a coverage read: the strip's row of internal blocks (up to 1024 px tall,
# 3 bands) then fits the bounded GDAL block cache, so each block is decoded once instead of
# once per output row; one read over a 200,000 px wide scene took 8x longer.
VALID_GRID_STRIP_PX = 16_384
GDAL_CACHE_BYTES = BLOCK_CEILING_MB * 2**20  # a block bigger than this is never opened
UNIFORM_SAMPLE_SIDE = 1024


def bounded_cache(cache_bytes: int = GDAL_CACHE_BYTES) -> rasterio.Env:
    """GDAL environment capping the block cache.

    GDAL's default cache is 5% of RAM (over 6 GB on a 128 GB machine); reads of many tiles
    would fill it, so every read in this package runs inside this environment.

    Args:
        cache_bytes: Block cache limit in bytes.

    Returns:
        A ``rasterio.Env`` to use as a context manager.
    """
    return rasterio.Env(GDAL_CACHEMAX=cache_bytes)


@dataclass(frozen=True)
class ReadPlan:
    """How to turn a scene's pixels into masked uint8 RGB, fixed once per scene.

    Attributes:
        bands: 1-based (red, green, blue) band indices.
        mask_source: Where valid pixels come from (see :class:`tiles.scene.SceneInfo`).
        alpha_band: The alpha band used as mask, or None.
        stretch: Percentile stretch for non-8-bit data, None when pixels are uint8.
    """

    bands: RGB
    mask_source: MaskSource
    alpha_band: int | None
    stretch: Stretch | None


def resampling_for(window: Window, out_shape: tuple[int, int]) -> Resampling:
    """Average when shrinking (anti-aliased, overview-friendly), bilinear when enlarging."""
    if out_shape[0] < window.height or out_shape[1] < window.width:
        return Resampling.average
    return Resampling.bilinear


def clip_to_scene(ds: DatasetReader, window: Window) -> Window:
    """The part of ``window`` inside the scene, so no read ever pads.

    Args:
        ds: The open scene.
        window: Pixel window; catalog windows always lie inside the scene, older or
            hand-made ones may not.

    Returns:
        The clipped window.

    Raises:
        TilingError: ``window`` lies wholly outside the scene.
    """
    col0, col1 = max(window.col_off, 0), min(window.col_off + window.width, ds.width)
    row0, row1 = max(window.row_off, 0), min(window.row_off + window.height, ds.height)
    if col1 <= col0 or row1 <= row0:
        raise TilingError(
            f"{window} lies outside {ds.name} ({ds.width} x {ds.height} px); nothing to read"
        )
    return Window(col0, row0, col1 - col0, row1 - row0)


def _read_error(ds: DatasetReader, window: Window, exc: Exception) -> TilesError:
    """A remote scene's own failure (a refused redirect, say), or what GDAL said."""
    return remote_failure(ds.name) or SceneReadError(
        f"reading {window} from {shown_name(ds.name)} failed ({exc}); the file may be truncated or "
        "corrupt, or was changed while being read: copy or download it again"
    )


def read_valid(
    ds: DatasetReader,
    plan: ReadPlan,
    window: Window,
    out_shape: tuple[int, int],
    resampling: Resampling = Resampling.average,
) -> NDArray[np.float32]:
    """Fraction of valid pixels behind each output pixel of a window stretched to ``out_shape``.

    Args:
        ds: The open scene.
        plan: The scene's read plan.
        window: Pixel window, clipped to the scene (see :func:`clip_to_scene`).
        out_shape: (rows, cols) of the output.
        resampling: How an alpha band is resampled; ``average`` gives coverage fractions.
            Mask and nodata masks are always point-sampled (nearest): GDAL returns other
            resamplings of them as biased 0/255 values.

    Returns:
        float32 array of ``out_shape`` with values in [0, 1].

    Raises:
        TilingError: ``window`` lies wholly outside the scene.
        SceneReadError: GDAL fails to read the mask.
    """
    src = clip_to_scene(ds, window)
    try:
        if plan.mask_source == "alpha" and plan.alpha_band is not None:
            alpha = ds.read(plan.alpha_band, window=src, out_shape=out_shape, resampling=resampling)
            opaque = np.iinfo(alpha.dtype).max if alpha.dtype.kind in "iu" else 1.0
            return (alpha / np.float32(opaque)).astype(np.float32)
        if plan.mask_source in ("mask", "nodata"):
            bands = sorted(set(plan.bands)) if plan.mask_source == "nodata" else [plan.bands[0]]
            masks = ds.read_masks(
                bands, window=src, out_shape=(len(bands), *out_shape), resampling=Resampling.nearest
            )
            return masks.max(axis=0) / np.float32(255)
    except RasterioError as exc:
        raise _read_error(ds, window, exc) from exc
    return np.ones(out_shape, dtype=np.float32)


def read_raw(
    ds: DatasetReader,
    bands: Sequence[int],
    window: Window,
    out_shape: tuple[int, int],
    resampling: Resampling,
) -> NDArray[np.generic]:
    """Pixels of ``bands`` for a window stretched to ``out_shape``.

    Args:
        ds: The open scene.
        bands: 1-based band indices, repeats allowed.
        window: Pixel window, clipped to the scene (see :func:`clip_to_scene`).
        out_shape: (rows, cols) of the output.
        resampling: Resampling used when ``out_shape`` differs from the window size.

    Returns:
        (len(bands), rows, cols) array in the scene's data type.

    Raises:
        TilingError: ``window`` lies wholly outside the scene.
        SceneReadError: GDAL fails to read the pixels.
    """
    unique = sorted(set(bands))
    src = clip_to_scene(ds, window)
    try:
        out = ds.read(
            unique, window=src, out_shape=(len(unique), *out_shape), resampling=resampling
        )
    except RasterioError as exc:
        raise _read_error(ds, window, exc) from exc
    return out[[unique.index(b) for b in bands]] if list(bands) != unique else out


def read_rgb(
    ds: DatasetReader,
    plan: ReadPlan,
    window: Window,
    out_shape: tuple[int, int],
    resampling: Resampling | None = None,
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """Masked uint8 RGB of a window resampled (stretched if need be) to ``out_shape``.

    A clipped edge window that is not square, e.g. 256 x 232 px, fills the whole square
    output: it is stretched, never padded, so the model sees no artificial black border.

    Args:
        ds: The open scene.
        plan: The scene's read plan.
        window: Pixel window, clipped to the scene (see :func:`clip_to_scene`).
        out_shape: (rows, cols) of the output.
        resampling: Resampling method; by default :func:`resampling_for`.

    Returns:
        (rows, cols, 3) uint8 RGB with invalid pixels set to 0, and the (rows, cols) bool
        valid mask (False for nodata and masked pixels).

    Raises:
        TilingError: ``window`` lies wholly outside the scene.
        SceneReadError: GDAL fails to read the pixels.
    """
    window = clip_to_scene(ds, window)
    method = resampling_for(window, out_shape) if resampling is None else resampling
    raw = read_raw(ds, plan.bands, window, out_shape, method)
    rgb = np.moveaxis(to_uint8(raw, plan.stretch), 0, -1)
    if plan.mask_source == "none":  # no mask to read and no pixel to zero
        return np.ascontiguousarray(rgb), np.ones(out_shape, dtype=bool)
    valid = read_valid(ds, plan, window, out_shape, method) >= 0.5
    return np.where(valid[..., np.newaxis], rgb, np.uint8(0)), valid


def plan_reads(
    ds: DatasetReader,
    info: SceneInfo,
    bands: Sequence[int] | None = None,
    percentiles: tuple[float, float] = (2, 98),
    stretch: Stretch | None = None,
) -> ReadPlan:
    """Choose bands and, for non-8-bit data, estimate the stretch from a decimated read.

    The stretch sample is read with ``out_shape`` at most ``STRETCH_SAMPLE_SIDE`` pixels a
    side (from overviews when present), never at full resolution; masked pixels are left
    out of the percentiles.

    Args:
        ds: The open scene.
        info: Its description.
        bands: Optional 1-based band override.
        percentiles: Low and high percentiles of the stretch.
        stretch: A known stretch to reuse instead of estimating one.

    Returns:
        The read plan.

    Raises:
        BandSelectionError: No RGB composite can be made.
        SceneReadError: GDAL fails to read the sample.
    """
    rgb = select_rgb_bands(info, bands)
    plan = ReadPlan(rgb, info.mask_source, info.alpha_band, None)
    if stretch is None and all(info.dtypes[b - 1] == "uint8" for b in rgb):
        return plan
    if stretch is None:
        window = Window(0, 0, ds.width, ds.height)
        shape = decimated_shape(ds.width, ds.height, STRETCH_SAMPLE_SIDE)
        sample = read_raw(ds, rgb, window, shape, Resampling.nearest)
        valid = read_valid(ds, plan, window, shape, Resampling.nearest) >= 0.5
        stretch = estimate_stretch(sample, valid, percentiles)
    return ReadPlan(rgb, info.mask_source, info.alpha_band, stretch)


def valid_grid(
    ds: DatasetReader, plan: ReadPlan
) -> tuple[NDArray[np.float32], tuple[float, float]]:
    """Valid-pixel coverage of the whole scene on a coarse grid that ends at its edges.

    The grid is at most ``VALID_GRID_MAX_SIDE`` cells a side, so its memory is fixed for
    any scene size, and the read uses overviews when present; scenes that fit get one cell
    per pixel. Cells divide the scene exactly (they need not be square or whole pixels), so
    no cell reaches past the edge and edge tiles are not undercounted. Wide scenes are read
    in strips at most ``VALID_GRID_STRIP_PX`` wide, which keeps the time proportional to
    the scene's blocks.

    Args:
        ds: The open scene.
        plan: The scene's read plan.

    Returns:
        The (rows, cols) float32 grid of valid fractions, and the cell (width, height) in
        pixels.

    Raises:
        SceneReadError: GDAL fails to read the mask.
    """
    rows, cols = decimated_shape(ds.width, ds.height, VALID_GRID_MAX_SIDE)
    cell_w = ds.width / cols
    strip = max(1, math.floor(VALID_GRID_STRIP_PX / cell_w))
    strips = []
    for start in range(0, cols, strip):
        stop = min(cols, start + strip)
        window = Window(start * cell_w, 0, (stop - start) * cell_w, ds.height)
        strips.append(read_valid(ds, plan, window, (rows, stop - start)))
    return np.concatenate(strips, axis=1), (cell_w, ds.height / rows)


def check_not_uniform(path: ScenePath, bands: Sequence[int] | None = None) -> None:
    """Refuse a scene whose valid pixels all hold one value, from one decimated read.

    Such a file (an empty export, or a crafted one: a few megabytes of zeros can declare a
    large scene) gives tiles that all look alike, so embedding it costs hours for nothing.
    The read has at most ``UNIFORM_SAMPLE_SIDE`` pixels a side (from overviews when
    present); uniform parts of a real scene (a lake, a desert) are sampled with the rest and
    keep their tiles.

    Args:
        path: The scene file.
        bands: Optional 1-based RGB band override: the bands the model would see.

    Raises:
        TilingError: Every sampled valid pixel holds the same value in those bands.
        SceneOpenError: The file is missing or damaged.
        NotGeoTiffError: The file is not a GeoTIFF.
        BandSelectionError: The band override is invalid.
        SceneReadError: Pixels cannot be read.
    """
    with bounded_cache(), open_scene(path) as ds, warnings.catch_warnings():
        warnings.simplefilter("ignore", AlphaBandIgnoredWarning)  # tiling warns about bands
        warnings.simplefilter("ignore", NIRBandDroppedWarning)
        info = describe_dataset(ds)
        plan = ReadPlan(select_rgb_bands(info, bands), info.mask_source, info.alpha_band, None)
        window = Window(0, 0, ds.width, ds.height)
        shape = decimated_shape(ds.width, ds.height, UNIFORM_SAMPLE_SIDE)
        unique = sorted(set(plan.bands))
        sample = read_raw(ds, unique, window, shape, Resampling.nearest)
        valid = read_valid(ds, plan, window, shape, Resampling.nearest) >= 0.5
    values = sample[:, valid]
    if values.size and bool((values == values[:, :1]).all()):
        held = ", ".join(
            f"band {b}: {v}" for b, v in zip(unique, values[:, 0].tolist(), strict=True)
        )
        raise TilingError(
            f"{info.path}: every valid pixel holds the same value ({held}) on a "
            f"{shape[1]} x {shape[0]} px sample of the whole scene, so all its tiles would look "
            "alike; it was not tiled. Check that the file was exported with its image"
        )
