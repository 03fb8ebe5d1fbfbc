"""Embedding on a Dask cluster, for scene archives that outgrow one machine.

The client keeps doing what is cheap (tiling, writing parts, merging, indexing); workers
read tiles and run the model, which each worker process loads once and keeps. Workers must
see the scene and the checkpoint at the same paths as the client (a shared filesystem or
object-store mount) and have SceneSeek's requirements installed.

    python -m core ingest scene.tif --dask tcp://scheduler:8786
    python -m core ingest scene.tif --dask local:4      # LocalCluster with 4 workers
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from core.errors import ClusterError, ConfigError
from core.ingest.embed.runner import Part
from core.settings import get_settings
from tiles import TileReader

_MODELS: dict[str, Any] = {}


def connect(address: str) -> Any:
    """A Dask client for ``tcp://host:port`` or ``local:N`` (N single-threaded processes).

    Raises:
        ConfigError: for a malformed address or when dask.distributed is missing.
        ClusterError: when no scheduler answers at the address in ``SCENESEEK_DASK_TIMEOUT_S``.
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as exc:
        raise ConfigError("--dask needs dask[distributed]; install requirements.txt") from exc
    if address.startswith("local:"):
        count = address.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise ConfigError(f"--dask local:N needs a worker count, got {address!r}")
        cluster = LocalCluster(
            n_workers=int(count), threads_per_worker=1, processes=True, dashboard_address=None
        )
        return Client(cluster)
    if "://" not in address:
        raise ConfigError(f"--dask takes tcp://host:port or local:N, got {address!r}")
    timeout = get_settings().dask_timeout_s
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"no Dask scheduler answered at {address} within {timeout:g} s "
            f"(SCENESEEK_DASK_TIMEOUT_S); start one (dask scheduler) or check the address"
        ) from exc


def _embedder(checkpoint: str, threads: int) -> Any:
    """The worker's model, loaded on first use and kept for every later part."""
    if checkpoint not in _MODELS:
        import torch

        from core.ingest.embed.mapper import TileEmbedder
        from core.model.checkpoint import load_checkpoint

        torch.set_num_threads(threads)
        model, _ = load_checkpoint(checkpoint)
        _MODELS[checkpoint] = TileEmbedder(model, torch.device("cpu"))
    return _MODELS[checkpoint]


def embed_part(
    checkpoint: str,
    reader: TileReader,
    windows: np.ndarray,
    batch_size: int,
    threads: int,
) -> dict[str, np.ndarray]:
    """Worker task: read and embed one part's tiles, in batches like the local runner."""
    import torch

    embedder = _embedder(checkpoint, threads)
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in embedder.names}
    for start in range(0, len(windows), batch_size):
        batch = windows[start : start + batch_size]
        pixels = torch.from_numpy(reader.read_batch([tuple(int(v) for v in w) for w in batch]))
        for name, array in embedder(pixels).items():
            chunks[name].append(array)
    return {name: np.concatenate(v) for name, v in chunks.items()}


class DaskParts:
    """``PartComputer`` that submits one task per part and yields parts as they finish."""

    def __init__(
        self,
        client: Any,
        checkpoint: str,
        names: list[str],
        reader: TileReader,
        windows: np.ndarray,
        batch_size: int = 32,
        threads: int = 1,
    ) -> None:
        self.client, self.checkpoint, self.names = client, checkpoint, names
        self.reader, self.windows = reader, windows
        self.batch_size, self.threads = batch_size, threads
        self.engine = "torch"  # workers load the checkpoint into torch

    def run(self, ranges: list[tuple[int, int]], on_tiles: Callable[[int], None]) -> Iterator[Part]:
        """Submit every part, then yield each as soon as its worker returns it."""
        from dask.distributed import as_completed

        futures = {
            self.client.submit(
                embed_part,
                self.checkpoint,
                self.reader,
                self.windows[start:stop],
                self.batch_size,
                self.threads,
                pure=False,
            ): (start, stop)
            for start, stop in ranges
        }
        for future in as_completed(futures):
            start, stop = futures[future]
            arrays = future.result()
            on_tiles(stop - start)
            yield start, stop, arrays
