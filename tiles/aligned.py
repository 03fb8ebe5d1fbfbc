"""Read one scene on another scene's pixel grid, for comparing two dates tile by tile.

Two acquisitions of one place rarely share a grid: the NAIP 2009 and 2020 files of the
same quarter quad differ by 1 m in origin and one row in height, so tile ``(col, row)`` of
one never covers exactly the ground of the other. :class:`AlignedTileReader` opens a scene
through a ``rasterio.vrt.WarpedVRT`` onto a target :class:`PixelGrid` (CRS, transform and
size of the other scene), so that the other scene's catalog windows read the same ground
from it. Bands and stretch stay the scene's own; pixels the scene does not cover come back
invalid (masked), never invented.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.io import DatasetReader, MemoryFile
from rasterio.shutil import copy
from rasterio.vrt import WarpedVRT

from tiles.bands import Stretch
from tiles.catalog import CATALOG_KEY
from tiles.errors import CatalogError
from tiles.grid import summed_area_table, table_valid_fractions
from tiles.io import ReadPlan, bounded_cache, plan_reads, valid_grid
from tiles.reader import TileReader, _Opened
from tiles.scene import ScenePath, describe_dataset, open_scene


def _meta(catalog: gpd.GeoDataFrame) -> dict[str, Any]:
    meta = catalog.attrs.get(CATALOG_KEY)
    if meta is None:
        raise CatalogError(
            f"this GeoDataFrame has no '{CATALOG_KEY}' attrs; build it with build_catalog "
            "or load it with read_catalog"
        )
    return meta


def _untag_alpha(stack: ExitStack, src: DatasetReader, bands: tuple[int, ...]) -> DatasetReader:
    """The scene as an in-memory VRT whose mislabelled alpha bands are plain bands.

    GDAL's warper takes any band tagged alpha as the mask, and NAIP tags near-infrared so;
    warped, it would blank and weight pixels by their near-infrared value.
    """
    memory = stack.enter_context(MemoryFile(ext=".vrt"))
    copy(src, memory.name, driver="VRT")
    with rasterio.open(memory.name, "r+") as vrt:
        vrt.colorinterp = [
            ColorInterp.undefined if i + 1 in bands else c for i, c in enumerate(vrt.colorinterp)
        ]
    return stack.enter_context(rasterio.open(memory.name))


@dataclass(frozen=True)
class PixelGrid:
    """A raster grid: CRS (as WKT, so it pickles), affine transform and size in pixels."""

    crs_wkt: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int

    @classmethod
    def from_catalog(cls, catalog: gpd.GeoDataFrame) -> PixelGrid:
        """The grid of the scene a catalog was built from.

        Raises:
            CatalogError: The catalog carries no tiles metadata.
        """
        meta = _meta(catalog)
        return cls(
            meta["crs_wkt"],
            tuple(float(v) for v in meta["transform"][:6]),  # type: ignore[arg-type]
            int(meta["width"]),
            int(meta["height"]),
        )


class AlignedTileReader(TileReader):
    """A :class:`TileReader` of one scene resampled onto another scene's grid.

    Windows are in the target grid's pixels. The warp resamples bilinearly and adds an
    alpha band, so ground outside the scene and its nodata read as invalid; a scene with
    its own alpha band keeps it as the warped mask. Picklable like ``TileReader``.

    Args:
        path: The scene to read.
        grid: The grid to read it on.
        bands: Optional 1-based RGB band override (1 or 3 indices).
        out_size: Side of the returned tiles in pixels.
        percentiles: Stretch percentiles for non-8-bit data.
        stretch: The scene's known stretch, e.g. from its own catalog.

    Raises:
        TilingError: ``out_size`` is below 1.
    """

    def __init__(
        self,
        path: ScenePath,
        grid: PixelGrid,
        *,
        bands: Sequence[int] | None = None,
        out_size: int = 256,
        percentiles: tuple[float, float] = (2, 98),
        stretch: Stretch | None = None,
    ) -> None:
        super().__init__(
            path, bands=bands, out_size=out_size, percentiles=percentiles, stretch=stretch
        )
        self.grid = grid

    @classmethod
    def from_catalogs(
        cls, source: gpd.GeoDataFrame, target: gpd.GeoDataFrame, path: ScenePath | None = None
    ) -> AlignedTileReader:
        """Read ``source``'s scene as its catalog does, on ``target``'s grid and tile size.

        ``path`` reads the scene from there instead of the recorded source (a remote scene
        is read only as a checked ``RemoteScene``).

        Raises:
            CatalogError: A catalog carries no tiles metadata.
        """
        meta, target_meta = _meta(source), _meta(target)
        return cls(
            meta["source"] if path is None else path,
            PixelGrid.from_catalog(target),
            bands=meta["bands"],
            out_size=target_meta["config"]["out_size"],
            percentiles=tuple(meta["config"]["percentiles"]),
            stretch=None if meta["stretch"] is None else Stretch.from_dict(meta["stretch"]),
        )

    def _open(self) -> _Opened:
        """The warped view opened by this process (a forked handle is not reused)."""
        if self._opened is None or self._opened.pid != os.getpid():
            with ExitStack() as stack, bounded_cache():
                src = stack.enter_context(open_scene(self.path))
                info = describe_dataset(src)
                own = self._plan or plan_reads(
                    src, info, self.bands, self.percentiles, self.stretch
                )
                if info.mislabelled_alpha_bands:
                    src = _untag_alpha(stack, src, info.mislabelled_alpha_bands)
                has_alpha = info.alpha_band is not None
                vrt = stack.enter_context(
                    WarpedVRT(
                        src,
                        crs=CRS.from_wkt(self.grid.crs_wkt),
                        transform=Affine(*self.grid.transform),
                        width=self.grid.width,
                        height=self.grid.height,
                        resampling=Resampling.bilinear,
                        add_alpha=not has_alpha,
                    )
                )
                # The added alpha band is last; a scene's own alpha is the warped mask.
                alpha = None if has_alpha else vrt.count
                self._plan = ReadPlan(
                    own.bands, "mask" if has_alpha else "alpha", alpha, own.stretch
                )
                self._opened = _Opened(stack.pop_all(), vrt, info, self._plan, os.getpid())
        return self._opened

    def coverage(self, windows: NDArray[np.integer]) -> NDArray[np.float64]:
        """Share of each target window that this scene covers with valid pixels.

        Read once on a coarse grid of the warped mask (see ``tiles.io.valid_grid``).

        Args:
            windows: (n, 4) (col_off, row_off, width, height) in the target grid.

        Returns:
            (n,) fractions in [0, 1].

        Raises:
            SceneOpenError: The scene cannot be opened.
            SceneReadError: Its mask cannot be read.
        """
        opened = self._open()
        with bounded_cache():
            grid, cell = valid_grid(opened.ds, opened.plan)
        return table_valid_fractions(summed_area_table(grid), cell, np.asarray(windows))
