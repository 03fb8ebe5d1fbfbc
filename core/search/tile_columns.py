"""A scene's tile catalog as search holds it: small integer columns, footprints only for hits.

A loaded catalog ``GeoDataFrame`` costs hundreds of bytes per tile, mostly footprint polygons
that only a query's few hits need. Search keeps each tile's window (int32) and scale (uint16)
and rebuilds a hit's footprint from its window and the scene's transform and CRS, exactly as
``tiles`` built it when cutting the scene. That is checked against the catalog's first stored
footprints on load; a catalog whose footprints were made another way keeps its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import shapely
from affine import Affine

from core.errors import IndexMismatchError
from tiles import CATALOG_KEY, WINDOW_FIELDS, read_catalog
from tiles.footprint import window_footprints

Footprints = Callable[[np.ndarray], np.ndarray]  # rows -> their stored footprints
CHECKED_ROWS = 16  # stored footprints compared with rebuilt ones when a catalog is loaded


def _narrowest(values: np.ndarray, *kinds: type[np.integer]) -> np.ndarray:
    """``values`` in the first integer type that holds their largest value."""
    top = int(values.max(initial=0))
    kind = next((k for k in kinds if top <= np.iinfo(k).max), np.int64)
    return values.astype(kind)


@dataclass(frozen=True)
class TileColumns:
    """Windows, scales and grid of a scene's tiles; row ``i`` is tile id ``i``."""

    windows: np.ndarray  # (n, 4) col_off, row_off, width, height
    scales: np.ndarray
    meta: dict[str, Any]  # the catalog's ``attrs[CATALOG_KEY]``: grid size, transform, CRS
    stored: np.ndarray | None = None  # footprints of a catalog whose own cannot be rebuilt

    @classmethod
    def of(cls, frame: pd.DataFrame, meta: dict[str, Any], geometry: Footprints) -> TileColumns:
        """Columns of a catalog's rows; ``geometry(rows)`` gives their stored footprints.

        Raises:
            IndexMismatchError: when tile ids are not the rows' positions.
        """
        if not np.array_equal(frame["tile_id"].to_numpy(), np.arange(len(frame))):
            raise IndexMismatchError("catalog tile ids are not 0..n-1; re-ingest the scene")
        windows = frame[list(WINDOW_FIELDS)].to_numpy(np.int64)
        ends = np.concatenate([windows[:, 0] + windows[:, 2], windows[:, 1] + windows[:, 3]])
        narrow = _narrowest(ends, np.int32).dtype
        columns = cls(
            windows.astype(narrow),
            _narrowest(frame["scale"].to_numpy(np.int64), np.uint16, np.int32),
            meta,
        )
        if "transform" in meta and "crs_wkt" in meta:
            sample = np.arange(min(CHECKED_ROWS, len(frame)))
            rebuilt = shapely.to_wkb(columns.footprints(sample))
            if rebuilt.tolist() == shapely.to_wkb(geometry(sample)).tolist():
                return columns
        return cls(columns.windows, columns.scales, meta, geometry(np.arange(len(frame))))

    @classmethod
    def read(cls, path: Path) -> TileColumns:
        """The columns search needs from a saved catalog, without loading its footprints.

        Raises:
            FileNotFoundError: when the catalog is missing.
            CatalogError: when the file is not a tile catalog.
            IndexMismatchError: when tile ids are not the rows' positions.
        """
        try:
            frame = pd.read_parquet(path, columns=["tile_id", "scale", *WINDOW_FIELDS])
        except ValueError:  # not a catalog: let ``tiles`` say why
            frame = read_catalog(path)
        meta = frame.attrs.get(CATALOG_KEY) or read_catalog(path).attrs[CATALOG_KEY]

        def stored(rows: np.ndarray) -> np.ndarray:
            if len(rows) == len(frame):
                return read_catalog(path).geometry.to_numpy()
            batches = pq.ParquetFile(path).iter_batches(batch_size=len(rows), columns=["geometry"])
            first = next(batches, None)
            return shapely.from_wkb(first.column(0).to_numpy(zero_copy_only=False)[rows])

        return cls.of(frame, meta, stored)

    @classmethod
    def from_catalog(cls, catalog: gpd.GeoDataFrame) -> TileColumns:
        """The columns of a catalog already in memory (a generated one, say)."""
        footprints = catalog.geometry.to_numpy()
        return cls.of(catalog, catalog.attrs[CATALOG_KEY], lambda rows: footprints[rows])

    def __len__(self) -> int:
        return len(self.windows)

    def footprints(self, tiles: np.ndarray) -> np.ndarray:
        """EPSG:4326 footprint polygons of the tiles at rows ``tiles``."""
        if self.stored is not None:
            return self.stored[tiles]
        if len(tiles) == 0:
            return np.empty(0, dtype=object)
        transform = Affine(*self.meta["transform"])
        return window_footprints(transform, self.meta["crs_wkt"], self.windows[tiles])

    def nbytes(self) -> int:
        """Memory the columns hold (the stored footprints' objects not included)."""
        return self.windows.nbytes + self.scales.nbytes
