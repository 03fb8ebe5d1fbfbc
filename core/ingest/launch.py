"""One call that loads the model, picks where embedding runs (here or on Dask) and ingests.

The CLI and the background jobs both start ingests through ``ingest_scene``, so they wire
the model, the embedder and the cluster the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import ConfigError
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.embed.runner import PartComputer
from core.ingest.pipeline import IngestOptions, IngestResult, Stage, ingest
from core.model.loading import load_model
from core.store.workspace import Workspace, scene_name_from
from tiles import TileReader


def ingest_scene(
    source: str | Path,
    workspace: Workspace,
    name: str | None = None,
    options: IngestOptions | None = None,
    *,
    checkpoint: str | None = None,
    device: str = "auto",
    engine: str | None = None,
    dask: str | None = None,
    progress: Stage | None = None,
) -> IngestResult:
    """Ingest ``source`` with the workspace's active model (or ``checkpoint``).

    Args:
        source: GeoTIFF path.
        workspace: Where the scene is written.
        name: Scene name; default from the file name.
        options: Tiling and throughput settings.
        checkpoint: A checkpoint to use instead of the active model version.
        device: ``auto``, ``cpu`` or ``cuda``.
        engine: ``onnx`` or ``torch`` runs the image tower; default ``SCENESEEK_ENGINE``.
        dask: ``tcp://scheduler:8786`` or ``local:N`` to embed on a Dask cluster.
        progress: Called with (stage, done, total, tiles/s).

    Raises:
        SceneBusyError: when another process is writing the scene (before the model loads).
        ConfigError: for shared stages together with Dask.
        CheckpointError: when the model cannot be loaded.
        tiles.TilesError: for unreadable, non-georeferenced or empty scenes.
    """
    options = options or IngestOptions()
    if dask and options.shared_stages:
        raise ConfigError("--shared-stages runs in this process; leave it out with --dask")
    name = name or scene_name_from(source)
    with workspace.writing(name):  # before the model loads: a second writer fails at once
        return _launch(source, workspace, name, options, checkpoint, device, engine, dask, progress)


def _launch(
    source: str | Path,
    workspace: Workspace,
    name: str,
    options: IngestOptions,
    checkpoint: str | None,
    device: str,
    engine: str | None,
    dask: str | None,
    progress: Stage | None,
) -> IngestResult:
    if progress:
        progress("loading model", 0, 0, 0.0)
    loaded = load_model(workspace, checkpoint, device, engine)
    embedder = TileEmbedder(loaded.model, loaded.device, loaded.towers)
    factory = None
    if dask:
        from core.ingest.distributed import DaskParts, connect

        client = connect(dask)

        def factory(reader: TileReader, windows: np.ndarray) -> PartComputer:
            return DaskParts(
                client, str(loaded.path), embedder.names, reader, windows, options.batch_size
            )

    return ingest(source, workspace, embedder, loaded.tag, name, options, progress, factory)
