"""Sharded search on a Dask cluster: scenes spread over workers that keep them loaded.

The client encodes a query once and sends the vector to every worker that holds scenes; each
answers with its scenes' best tiles and exact scores (``shard_worker.shard_search``), and
``ranking.merge`` picks the final hits exactly as one process would. Scenes stay on the worker
they were first given to (new scenes go to the worker with the fewest tiles), so each worker
loads its shard once. A worker lost during a query has its scenes moved to the others and the
query retried; scenes no worker could answer for are named in the result (``missing``).
"""

from __future__ import annotations

import time
from concurrent.futures import CancelledError
from typing import Any

import numpy as np

from core.errors import ClusterError
from core.ingest.distributed import connect
from core.search.aoi import AreaOfInterest
from core.search.ranking import merge
from core.search.shard_contract import Candidate, Filters, HeatMap, ShardSpec
from core.search.shard_worker import shard_area_tiles, shard_facts, shard_heat, shard_search
from core.settings import get_settings

ROUNDS = 3  # a query is tried this often while workers keep disappearing
POLL_S = 0.5  # how often a waiting client checks that its workers are still alive


class ShardedSearch:
    """A Dask client and which worker serves which scene."""

    def __init__(self, client: Any, timeout_s: float) -> None:
        self.client, self.timeout_s = client, timeout_s
        self.assignment: dict[str, str] = {}  # scene -> worker address

    @classmethod
    def connect(cls, address: str) -> ShardedSearch:
        """Shards on the cluster at ``tcp://host:port``, or on a new ``local:N`` one.

        Raises:
            ConfigError: for a malformed address.
            ClusterError: when no scheduler answers.
        """
        return cls(connect(address), get_settings().dask_timeout_s)

    def close(self) -> None:
        """Disconnect; a ``local:N`` cluster this client started is shut down with it."""
        cluster = getattr(self.client, "cluster", None)
        self.client.close()
        if cluster is not None:
            cluster.close()

    def workers(self) -> list[str]:
        """Addresses of the workers alive now, sorted."""
        return sorted(self.client.scheduler_info()["workers"])

    def plan(
        self, names: list[str], sizes: dict[str, int], alive: list[str]
    ) -> dict[str, list[str]]:
        """Worker -> scenes: known scenes stay put; others go to the least loaded worker."""
        load = dict.fromkeys(alive, 0)
        for name, worker in self.assignment.items():
            if worker in load:
                load[worker] += sizes.get(name, 0)
        for name in sorted(names, key=lambda n: (-sizes.get(n, 0), n)):
            if self.assignment.get(name) not in load:
                worker = min(alive, key=lambda w: (load[w], w))
                self.assignment[name] = worker
                load[worker] += sizes.get(name, 0)
        shards: dict[str, list[str]] = {}
        for name in names:
            shards.setdefault(self.assignment[name], []).append(name)
        return shards

    def _gather(self, tasks: dict[Any, str]) -> dict[str, Any]:
        """Results by worker of ``tasks`` (future -> worker); lost workers are left out.

        Raises:
            SceneSeekError: what a worker raised for a scene (e.g. an index of another model).
        """
        from dask.distributed import wait
        from distributed.scheduler import KilledWorker

        lost = (OSError, CancelledError, KilledWorker)
        answers: dict[str, Any] = {}
        deadline = time.monotonic() + self.timeout_s
        while tasks:
            try:
                done = wait(list(tasks), timeout=POLL_S, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                done = set()
            for future in done:
                worker = tasks.pop(future)
                if future.status == "finished":
                    answers[worker] = future.result()
                elif not isinstance(future.exception(), lost):
                    future.result()  # re-raises what the worker raised
            if done:
                continue
            alive = set(self.workers())
            for future, worker in list(tasks.items()):
                if worker not in alive or time.monotonic() > deadline:
                    future.cancel()
                    del tasks[future]
        return answers

    def _run(
        self, task: Any, spec: ShardSpec, sizes: dict[str, int], *args: Any
    ) -> tuple[dict[str, Any], tuple[str, ...]]:
        """``task(shard_spec, *args)`` on every shard, per scene, retried on lost workers."""
        pending = [name for name, _ in spec.scenes]
        found: dict[str, Any] = {}
        for _ in range(ROUNDS):
            alive = self.workers()
            if not pending or not alive:
                break
            tasks = {
                self.client.submit(
                    task,
                    spec.subset(names),
                    *args,
                    workers=[worker],
                    allow_other_workers=False,
                    pure=False,
                ): worker
                for worker, names in self.plan(pending, sizes, alive).items()
            }
            for answer in self._gather(tasks).values():
                found.update(answer)
            pending = [name for name in pending if name not in found]
        return found, tuple(pending)

    def rank(
        self,
        spec: ShardSpec,
        sizes: dict[str, int],
        kind: str,
        vector: np.ndarray,
        f: Filters,
    ) -> tuple[list[Candidate], tuple[str, ...]]:
        """The merged best tiles of the spec's scenes, and the scenes that did not answer.

        Raises:
            ClusterError: when the cluster has no worker at all.
        """
        self._need_workers()
        found, missing = self._run(shard_search, spec, sizes, kind, vector, f)
        return merge([found[name] for name, _ in spec.scenes if name in found], f.k), missing

    def area_tiles(self, spec: ShardSpec, sizes: dict[str, int], f: Filters) -> int:
        """Tiles of the spec's scenes that lie in ``f``'s area, counted where they are held.

        Raises:
            ClusterError: when the cluster has no worker at all.
        """
        self._need_workers()
        return sum(self._run(shard_area_tiles, spec, sizes, f)[0].values())

    def heat(
        self,
        spec: ShardSpec,
        sizes: dict[str, int],
        vector: np.ndarray,
        kind: str,
        area: AreaOfInterest | None = None,
    ) -> HeatMap:
        """The heat map of the spec's one scene, drawn by the worker that holds it.

        Raises:
            ClusterError: when the cluster has no worker, or none answered for the scene.
        """
        self._need_workers()
        found, missing = self._run(shard_heat, spec, sizes, vector, kind, area)
        if missing:
            raise ClusterError(f"no Dask worker answered for scene {missing[0]!r}; try again")
        return found[spec.scenes[0][0]]

    def facts(
        self, spec: ShardSpec, sizes: dict[str, int]
    ) -> dict[str, tuple[int, tuple[int, ...]]]:
        """Tile count and tile sizes of each scene that answered; also loads every shard."""
        self._need_workers()
        return self._run(shard_facts, spec, sizes)[0]

    def _need_workers(self) -> None:
        if not self.workers():
            raise ClusterError(
                "the Dask cluster has no worker; start some: dask worker tcp://SCHEDULER:8786"
            )
