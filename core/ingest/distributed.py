"""Embedding on a Dask cluster, for scene archives that outgrow one machine.

The client keeps doing what is cheap (tiling, writing parts, merging, indexing); workers
read blocks of tiles (one read each, ``tiles.blocks``) and run the model, which each worker
process loads once and keeps. Workers must see the scene and the checkpoint at the same
paths as the client (a shared filesystem or object-store mount) and have SceneSeek's
requirements installed. A remote scene travels as a checked ``tiles.RemoteScene``: each
worker reads it through the allow-list it carries, with its own environment's credentials.

    python -m core ingest scene.tif --dask tcp://scheduler:8786
    python -m core ingest scene.tif --dask local:4      # LocalCluster with 4 workers
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from core.errors import ClusterError, ConfigError
from core.ingest.embed.reader import block_batches
from core.ingest.embed.runner import Part
from core.settings import get_settings
from tiles import TileReader
from tiles.blocks import READER_MB, Block

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


def embed_block(
    checkpoint: str, reader: TileReader, block: Block, batch_size: int, threads: int
) -> dict[str, np.ndarray]:
    """Worker task: read one block of tiles once and embed them, in batches like the runner."""
    import torch

    embedder = _embedder(checkpoint, threads)
    tiles = torch.from_numpy(reader.read_tiles(block))
    chunks = [embedder(tiles[batch]) for batch in block_batches(len(tiles), batch_size)]
    return {name: np.concatenate([c[name] for c in chunks]) for name in embedder.names}


class DaskParts:
    """``PartComputer`` that submits one task per block and yields each part once complete."""

    def __init__(
        self,
        client: Any,
        checkpoint: str,
        names: list[str],
        reader: TileReader,
        windows: np.ndarray,
        batch_size: int = 32,
        threads: int = 1,
        reader_mb: float = READER_MB,
    ) -> None:
        self.client, self.checkpoint, self.names = client, checkpoint, names
        self.reader, self.windows = reader, windows
        self.batch_size, self.threads, self.reader_mb = batch_size, threads, reader_mb
        self.engine = "torch"  # workers load the checkpoint into torch

    def run(self, ranges: list[tuple[int, int]], on_tiles: Callable[[int], None]) -> Iterator[Part]:
        """Submit every block, then yield each part as soon as its last block returns."""
        from dask.distributed import as_completed

        futures = {}
        left = []
        for part, (start, stop) in enumerate(ranges):
            blocks = self.reader.plan_blocks(self.windows[start:stop], self.reader_mb)
            left.append(len(blocks))
            for block in blocks:
                future = self.client.submit(
                    embed_block,
                    self.checkpoint,
                    self.reader,
                    block,
                    self.batch_size,
                    self.threads,
                    pure=False,
                )
                futures[future] = (part, block.members)
        arrays: list[dict[str, np.ndarray]] = [{} for _ in ranges]
        for future in as_completed(futures):
            part, members = futures.pop(future)
            start, stop = ranges[part]
            for name, values in future.result().items():
                if name not in arrays[part]:
                    arrays[part][name] = np.empty((stop - start, values.shape[1]), values.dtype)
                arrays[part][name][members] = values
            on_tiles(len(members))
            left[part] -= 1
            if not left[part]:
                yield start, stop, arrays[part]
                arrays[part] = {}
