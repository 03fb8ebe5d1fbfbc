"""A picklable tile reader for DataLoader workers and batch embedding.

The reader stores only the path and settings; each process opens the scene on first use
and keeps it open, so tens of thousands of reads pay the open cost once per process and
fork- or spawn-started workers never share a GDAL handle.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
from numpy.typing import NDArray
from rasterio.io import DatasetReader

from tiles.bands import Stretch
from tiles.blocks import (
    READER_MB,
    Block,
    blocks_within_budget,
    cut_tiles,
    inexact_overview_sizes,
)
from tiles.catalog import CATALOG_KEY
from tiles.errors import CatalogError, TilingError
from tiles.grid import as_window
from tiles.io import ReadPlan, bounded_cache, clip_to_scene, plan_reads, read_rgb
from tiles.remote_file import RemoteScene
from tiles.scene import SceneInfo, ScenePath, describe_dataset, open_scene


class _Opened(NamedTuple):
    stack: ExitStack
    ds: DatasetReader
    info: SceneInfo
    plan: ReadPlan
    pid: int


class TileReader:
    """Reads tiles of one scene as model-ready uint8 RGB arrays.

    Picklable: the open dataset is dropped when pickled and reopened lazily in the
    receiving process (also after a fork). Reads use windowed ``read(out_shape=...)`` so
    coarse tiles come from overviews, stretch windows that are not square (clipped at a
    short scene side) to the square output instead of padding them, and run with a bounded
    GDAL block cache so memory stays flat over long runs.

    Args:
        path: The scene file, or a checked remote scene.
        bands: Optional 1-based RGB band override (1 or 3 indices).
        out_size: Side of the returned tiles in pixels.
        percentiles: Stretch percentiles for non-8-bit data.
        stretch: A known stretch (e.g. from the catalog) so every process maps pixels
            identically without re-estimating it.

    Raises:
        TilingError: ``out_size`` is below 1.
    """

    def __init__(
        self,
        path: ScenePath,
        *,
        bands: Sequence[int] | None = None,
        out_size: int = 256,
        percentiles: tuple[float, float] = (2, 98),
        stretch: Stretch | None = None,
    ) -> None:
        if out_size < 1:
            raise TilingError(f"out_size must be at least 1, got {out_size}")
        self.path = path if isinstance(path, RemoteScene) else os.fspath(path)
        self.bands = None if bands is None else tuple(bands)
        self.out_size = out_size
        self.percentiles = percentiles
        self.stretch = stretch
        self._plan: ReadPlan | None = None
        self._opened: _Opened | None = None

    @classmethod
    def from_catalog(
        cls, catalog: gpd.GeoDataFrame, out_size: int | None = None, path: ScenePath | None = None
    ) -> TileReader:
        """Reader with exactly the bands, stretch and output size a catalog was built with.

        Args:
            catalog: A catalog from :func:`tiles.catalog.build_catalog` or ``read_catalog``.
            out_size: Override of the catalog's model input size.
            path: Where to read the scene instead of the catalog's recorded source (a
                remote scene is read only as a checked ``RemoteScene``).

        Returns:
            The reader.

        Raises:
            CatalogError: The catalog carries no tiles metadata.
        """
        meta = catalog.attrs.get(CATALOG_KEY)
        if meta is None:
            raise CatalogError(
                f"this GeoDataFrame has no '{CATALOG_KEY}' attrs; build it with build_catalog "
                "or load it with read_catalog"
            )
        stretch = None if meta["stretch"] is None else Stretch.from_dict(meta["stretch"])
        return cls(
            meta["source"] if path is None else path,
            bands=meta["bands"],
            out_size=meta["config"]["out_size"] if out_size is None else out_size,
            percentiles=tuple(meta["config"]["percentiles"]),
            stretch=stretch,
        )

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_opened": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _open(self) -> _Opened:
        """The dataset opened by this process; a handle inherited through fork is not reused."""
        if self._opened is None or self._opened.pid != os.getpid():
            with ExitStack() as stack, bounded_cache():
                ds = stack.enter_context(open_scene(self.path))
                info = describe_dataset(ds)
                self._plan = self._plan or plan_reads(
                    ds, info, self.bands, self.percentiles, self.stretch
                )
                self._opened = _Opened(stack.pop_all(), ds, info, self._plan, os.getpid())
        return self._opened

    @property
    def info(self) -> SceneInfo:
        """Description of the scene (opens it if needed)."""
        return self._open().info

    @property
    def plan(self) -> ReadPlan:
        """Bands, mask source and stretch used for every read (opens the scene if needed)."""
        return self._open().plan

    def read_with_mask(self, tile: Any) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        """Read one tile with its valid mask.

        Args:
            tile: A ``Window``, catalog row or (col_off, row_off, width, height); it is
                clipped to the scene and stretched to the square output.

        Returns:
            (out_size, out_size, 3) uint8 RGB with invalid pixels 0, and the
            (out_size, out_size) bool valid mask.

        Raises:
            SceneOpenError: The scene cannot be opened.
            TilingError: The window lies wholly outside the scene.
            SceneReadError: Its pixels cannot be read.
        """
        opened = self._open()
        with bounded_cache():
            return read_rgb(opened.ds, opened.plan, as_window(tile), (self.out_size, self.out_size))

    def read(self, tile: Any) -> NDArray[np.uint8]:
        """Read one tile as model input.

        Args:
            tile: A ``Window``, catalog row or (col_off, row_off, width, height); it is
                clipped to the scene and stretched to the square output.

        Returns:
            (out_size, out_size, 3) uint8 RGB; masked (nodata) pixels are 0.

        Raises:
            SceneOpenError: The scene cannot be opened.
            TilingError: The window lies wholly outside the scene.
            SceneReadError: Its pixels cannot be read.
        """
        return self.read_with_mask(tile)[0]

    def read_batch(self, tiles: Iterable[Any]) -> NDArray[np.uint8]:
        """Read several tiles into one (n, out_size, out_size, 3) uint8 array.

        Args:
            tiles: Windows, catalog rows (e.g. ``catalog.itertuples()``) or 4-tuples.

        Returns:
            The stacked tiles, each stretched to the square as in :meth:`read`.

        Raises:
            SceneOpenError: The scene cannot be opened.
            TilingError: A window lies wholly outside the scene.
            SceneReadError: Its pixels cannot be read.
        """
        tiles = list(tiles)
        out = np.empty((len(tiles), self.out_size, self.out_size, 3), dtype=np.uint8)
        for i, tile in enumerate(tiles):
            out[i] = self.read(tile)
        return out

    def read_block(
        self, window: Any, out_shape: tuple[int, int] | None = None
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
        """Read a large window once, e.g. to cut many overlapping tiles from it in memory.

        Args:
            window: A ``Window``, catalog row or (col_off, row_off, width, height); it is
                clipped to the scene and what remains fills ``out_shape``.
            out_shape: (rows, cols) of the result; the clipped window's own size by
                default.

        Returns:
            (rows, cols, 3) uint8 RGB and the (rows, cols) bool valid mask.

        Raises:
            SceneOpenError: The scene cannot be opened.
            TilingError: The window lies wholly outside the scene.
            SceneReadError: Its pixels cannot be read.
        """
        opened = self._open()
        win = clip_to_scene(opened.ds, as_window(window))
        shape = (int(win.height), int(win.width)) if out_shape is None else out_shape
        with bounded_cache():
            return read_rgb(opened.ds, opened.plan, win, shape)

    def plan_blocks(
        self, windows: NDArray[np.integer], budget_mb: float = READER_MB
    ) -> list[Block]:
        """Blocks of ``windows`` for :meth:`read_tiles`, each within ``budget_mb`` of memory.

        Args:
            windows: (n, 4) col_off, row_off, width, height of the tiles.
            budget_mb: Memory one block may take while read and cut (``SCENESEEK_READER_MB``).

        Returns:
            Blocks whose cells are whole internal blocks of the file where the budget allows;
            sizes served from an inexact overview are read tile by tile.

        Raises:
            SceneOpenError: The scene cannot be opened.
        """
        info = self.info
        sizes = np.unique(windows[:, 2]).tolist()
        shape = (info.height, info.width)
        per_tile = inexact_overview_sizes(sizes, self.out_size, shape, info.overviews)
        budget = int(budget_mb * 2**20)
        return blocks_within_budget(windows, self.out_size, budget, info.block_shape[1], per_tile)

    def read_tiles(self, block: Block, out: NDArray[np.uint8] | None = None) -> NDArray[np.uint8]:
        """Read a block once and cut its tiles from memory.

        Args:
            block: From :meth:`plan_blocks` (or ``tiles.blocks.plan_blocks``).
            out: Optional (n, out_size, out_size, 3) uint8 array to cut the tiles into.

        Returns:
            (n, out_size, out_size, 3) uint8 tiles in ``block.members`` order, the pixels
            :meth:`read` gives for each (up to GDAL's rounding where a scene side is odd).

        Raises:
            SceneOpenError: The scene cannot be opened.
            TilingError: The block lies wholly outside the scene.
            SceneReadError: Its pixels cannot be read.
        """
        pixels, _ = self.read_block(block.window, block.out_shape)
        return cut_tiles(pixels, block.offsets, self.out_size, out)

    def close(self) -> None:
        """Close the dataset in this process; the next read reopens it."""
        if self._opened is not None and self._opened.pid == os.getpid():
            self._opened.stack.close()
        self._opened = None

    def __enter__(self) -> TileReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
