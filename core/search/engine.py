"""``Engine``: one workspace's loaded model and indexes, shared by every search of a server.

A server (the app) keeps one ``Engine`` per (workspace, model version) and hands it to every
session and thread, so everything that mutates it (``SearchResources.refresh``) or reads it
while it may change (a search) runs under its lock. Nothing is reloaded per query. Work that
depends on one person's input alone, such as finding an area of interest's tiles, is done
before the lock is taken, so nobody waits behind it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from core.model.loading import load_model
from core.model.versions import ModelRegistry, ModelVersion
from core.search.aoi import tiles_in
from core.search.ranking import Filters
from core.search.scenes import SearchResources
from core.search.shards import ShardedSearch
from core.settings import get_settings
from core.store.workspace import Workspace


@dataclass
class Engine:
    """The loaded model and indexes of one workspace, with the lock that guards them."""

    resources: SearchResources
    version: ModelVersion
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(
        cls,
        workspace: Workspace,
        version: int,
        device: str = "auto",
        engine: str | None = None,
        dask: str | None = None,
    ) -> Engine:
        """Load model version ``version`` and every ready scene of ``workspace``.

        With a Dask address (``dask``, else ``SCENESEEK_DASK``) the scenes are searched as
        shards on that cluster's workers and only the model is loaded here.

        Raises:
            CheckpointError: when the version's checkpoint is missing or invalid.
            ClusterError: when the Dask scheduler does not answer.
        """
        chosen = ModelRegistry(workspace).get(version)
        loaded = load_model(workspace, str(chosen.path), device, engine)
        address = get_settings().dask if dask is None else dask
        shards = ShardedSearch.connect(address) if address else None
        resources = SearchResources.load(
            workspace, loaded.model, chosen.tag, loaded.device, loaded.towers, shards
        )
        return cls(resources, chosen)

    @property
    def image_size(self) -> int:
        """Side of the square the model reads: example images are decoded to it first."""
        return self.resources.model.cfg.preprocess.image_size

    @contextmanager
    def searching(self, f: Filters | None = None) -> Iterator[SearchResources]:
        """Hold the lock, pick up scenes ingested since the last query, and yield them.

        The tiles of an area of interest in ``f`` are found first, without the lock
        (``prepare_area``).
        """
        if f is not None:
            self.prepare_area(f)
        with self.lock:
            self.resources.refresh()
            yield self.resources

    def prepare_area(self, f: Filters) -> None:
        """Find ``f.area``'s tiles in the loaded scenes ``f`` searches; the area keeps them.

        Runs without the lock: the scene table is copied in one step (``dict.copy``), and
        loaded scenes are never changed, only replaced. A scene the search's refresh loads
        or replaces afterwards has its tiles found under the lock, once.
        """
        if f.area is None:
            return
        scenes = self.resources.scenes.copy()
        for name in f.scenes or list(scenes):
            if name in scenes:
                tiles_in(scenes[name].tiles, f.area)
