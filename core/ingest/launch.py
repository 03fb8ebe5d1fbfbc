"""One call that loads the model, picks where embedding runs (here or on Dask) and ingests.

The CLI and the background jobs both start ingests through ``ingest_scene``, so they wire
the model, the embedder and the cluster the same way; ``refresh_workspace`` brings every
scene to the active version after a promotion or rollback, loading the model once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError, SceneSeekError
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.embed.runner import PartComputer
from core.ingest.pipeline import IngestOptions, IngestResult, Stage, check_declared, ingest
from core.ingest.refresh import (
    adopt_scene,
    can_refresh,
    recorded_image_tower,
    recorded_scene_key,
    refresh_scene,
)
from core.model.checkpoint import (
    checkpoint_image_tower,
    checkpoint_scene_key,
    image_tower_fingerprint,
)
from core.model.loading import load_model
from core.model.versions import ModelVersion
from core.settings import get_settings
from core.store.reattach import reconcile
from core.store.workspace import Workspace, scene_name_from
from tiles import TileReader, TilesError, TilingConfig, is_remote


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
        tiles.TilesError: for unreadable, non-georeferenced or empty scenes, and (before
            the model loads) for a local file whose header declares too much.
    """
    options = options or IngestOptions()
    if dask and options.shared_stages:
        raise ConfigError("--shared-stages runs in this process; leave it out with --dask")
    name = name or scene_name_from(source)
    with workspace.writing(name):  # before the model loads: a second writer fails at once
        if not is_remote(source):  # a refused file costs no model load either
            check_declared(str(source), options.tiling)
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
                client,
                str(loaded.path),
                embedder.names,
                reader,
                windows,
                options.batch_size,
                reader_mb=get_settings().reader_mb,
            )

    reconcile(workspace)  # marks of the current tiling record their footprints first
    result = ingest(source, workspace, embedder, loaded.tag, name, options, progress, factory)
    if not result.skipped:
        reconcile(workspace)  # a re-tiled scene: marks move to the tiles covering their ground
    return result


@dataclass
class RefreshReport:
    """What ``refresh_workspace`` did to each scene."""

    model: str
    refreshed: list[str] = field(default_factory=list)  # gates and text index recomputed
    reembedded: list[str] = field(default_factory=list)  # another image tower: embedded again
    current: list[str] = field(default_factory=list)  # already on the active version
    failed: dict[str, str] = field(default_factory=dict)  # scene: why it could not be brought
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form, for a job's result and the CLI."""
        return self.__dict__.copy()


def options_of(fingerprint: dict[str, Any]) -> IngestOptions:
    """The ingest options a scene's recorded fingerprint names."""
    tiling = {k: tuple(v) if isinstance(v, list) else v for k, v in fingerprint["tiling"].items()}
    return IngestOptions(
        tiling=TilingConfig(**tiling), shared_stages=int(fingerprint.get("shared_stages", 0))
    )


def refresh_workspace(
    workspace: Workspace, device: str = "auto", progress: Stage | None = None
) -> RefreshReport:
    """Bring every ready scene to the active model version; returns what was done.

    Scenes whose gates and text index the active version shares (it differs only in its
    query adapters) are current as they are; those that share its image tower get new gates
    and a new text index from their stored vectors (seconds); the others are embedded again
    from their recorded source (as long as ingestion took). A scene that fails is reported
    and the others still proceed.
    """
    started = time.time()
    loaded = load_model(workspace, device=device)
    tower = image_tower_fingerprint(loaded.model)
    report = RefreshReport(loaded.tag)
    names = workspace.scene_names()
    for number, name in enumerate(names):
        if progress:
            progress(f"bringing {name} to the active model", number, len(names), 0.0)
        scene = workspace.scene(name)
        manifest = scene.read_manifest()
        if manifest.ready and recorded_scene_key(workspace, manifest) == loaded.scene_key:
            adopt_scene(scene, loaded.tag, loaded.scene_key)
            report.current.append(name)
        elif can_refresh(workspace, scene, tower):
            refresh_scene(scene, loaded.model, loaded.tag, tower)
            report.refreshed.append(name)
        elif manifest.source is None:
            report.failed[name] = "no recorded source; delete the scene and add it again"
        else:
            try:
                embedder = TileEmbedder(loaded.model, loaded.device, loaded.towers)
                options = options_of(manifest.fingerprint)
                ingest(manifest.source, workspace, embedder, loaded.tag, name, options, progress)
                report.reembedded.append(name)
            except (SceneSeekError, TilesError, OSError) as exc:
                report.failed[name] = str(exc)
    report.seconds = round(time.time() - started, 2)
    return report


def embed_seconds(workspace: Workspace, names: list[str]) -> float | None:
    """About how long embedding these scenes again takes, from their recorded rates.

    A scene without a recorded rate counts at the mean rate of the others; None when no
    scene recorded one.
    """
    manifests = [workspace.scene(n).read_manifest() for n in workspace.scene_names()]
    rates = [m.embed_tiles_per_second for m in manifests if m.embed_tiles_per_second]
    if not rates:
        return None if names else 0.0
    mean = sum(rates) / len(rates)
    chosen = [m for m in manifests if m.name in names]
    return sum((m.n_tiles or 0) / (m.embed_tiles_per_second or mean) for m in chosen)


def reembed_seconds(workspace: Workspace, image_tower: str) -> tuple[list[str], float | None]:
    """Scenes a version with ``image_tower`` would embed again, and about how long it takes."""
    stale = [
        n
        for n in workspace.scene_names()
        if recorded_image_tower(workspace, workspace.scene(n).read_manifest()) != image_tower
    ]
    return stale, embed_seconds(workspace, stale)


def scenes_to_refresh(workspace: Workspace, version: ModelVersion) -> list[str]:
    """Ready scenes whose gates and text index making ``version`` active would recompute.

    Empty for a version that differs from the scenes' model only in its query adapters.
    """
    key = checkpoint_scene_key(version.path)
    return [
        name
        for name in workspace.scene_names()
        if recorded_scene_key(workspace, workspace.scene(name).read_manifest()) != key
    ]


def promotion_cost(workspace: Workspace, version: ModelVersion) -> tuple[list[str], float | None]:
    """Scenes that making ``version`` active would embed again, and about how long (s).

    Empty when it shares the image tower of every scene's vectors: promotion then only
    recomputes gates and text indexes.
    """
    tower = version.data.get("image_tower") or checkpoint_image_tower(version.path)
    return reembed_seconds(workspace, tower)
