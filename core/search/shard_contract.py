"""What search sends to the scenes' holders and gets back, in one process or on Dask workers.

A query's ``Filters`` and a ``ShardSpec`` go out; each scene's ``Candidate`` tiles or its
``HeatMap`` come back. ``Shards`` is what ``scenes.SearchResources`` asks of a shard client
(``shards.ShardedSearch``). These sit below ``scenes``, so the resources can hold a client
without importing ``shards``, whose worker tasks import the ranking that imports ``scenes``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry.base import BaseGeometry

from core.search.aoi import AreaOfInterest


@dataclass(frozen=True)
class Filters:
    """Which tiles a query may return."""

    scenes: tuple[str, ...] = ()
    scales: tuple[int, ...] = ()
    k: int = 10
    exact: bool = False
    suppress_overlaps: bool = True
    area: AreaOfInterest | None = None  # only tiles whose footprint intersects it


@dataclass(frozen=True)
class Candidate:
    """A tile one scene puts forward, with all a hit needs, so shards can send it as is."""

    score: float
    scene: str
    tile: int  # row in the scene's catalog and vectors
    tile_id: int
    scale: int
    window: tuple[int, int, int, int]
    geometry: BaseGeometry


@dataclass(frozen=True)
class HeatMap:
    """Mean tile score per cell (NaN outside tiles) and where it sits."""

    values: np.ndarray
    transform: Affine
    crs: CRS


@dataclass(frozen=True)
class ShardSpec:
    """What one worker searches: scenes of a workspace as the client last saw them."""

    root: str
    scene_key: str  # the searching model's checkpoint.scene_digest
    dim: int
    scenes: tuple[tuple[str, float | None], ...]  # (name, finished) of the shard's scenes
    known: frozenset[str] = frozenset()  # every ready scene of the workspace

    def subset(self, names: list[str]) -> ShardSpec:
        """The same spec restricted to ``names``."""
        chosen = set(names)
        return replace(self, scenes=tuple(s for s in self.scenes if s[0] in chosen))


class Shards(Protocol):
    """Scenes held by Dask workers, asked per spec; ``sizes`` are the scenes' tile counts."""

    def rank(
        self,
        spec: ShardSpec,
        sizes: dict[str, int],
        kind: str,
        vector: np.ndarray,
        f: Filters,
    ) -> tuple[list[Candidate], tuple[str, ...]]:
        """The merged best tiles of the spec's scenes, and the scenes that did not answer."""

    def area_tiles(self, spec: ShardSpec, sizes: dict[str, int], f: Filters) -> int:
        """Tiles of the spec's scenes that lie in ``f``'s area."""

    def heat(
        self,
        spec: ShardSpec,
        sizes: dict[str, int],
        vector: np.ndarray,
        kind: str,
        area: AreaOfInterest | None = None,
    ) -> HeatMap:
        """The heat map of the spec's one scene."""

    def facts(
        self, spec: ShardSpec, sizes: dict[str, int]
    ) -> dict[str, tuple[int, tuple[int, ...]]]:
        """Tile count and tile sizes of each scene that answered."""

    def close(self) -> None:
        """Disconnect from the cluster."""
