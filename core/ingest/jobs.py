"""The ``ingest`` and ``reindex`` background jobs (``core.jobs`` runs them in their process).

Importing this module stays cheap (no torch) so that ``core.jobs`` can offer ``ingest_params``.

An ingest job started by the app for a new scene (``new``) takes over the scene's writer
lock from the app and refuses to overwrite a scene of that name that appeared meanwhile;
when it fails or is cancelled, the uploaded file it was given (``upload``) is deleted, so
failed uploads never pile up in the workspace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import JobError, SceneBusyError
from core.settings import get_settings
from core.store.workspace import Workspace
from tiles import TilingConfig

THROUGHPUT = ("batch_size", "workers", "device", "engine")  # params that keep the vectors
Stage = Callable[[str, int, int, float], None]
HANDOVER_S = 30.0  # how long a job waits for the app to hand it the scene's writer lock


def ingest_params(
    source: str | Path,
    name: str,
    tiling: dict[str, Any],
    shared_stages: int = 0,
    *,
    new: bool = False,
    upload: bool = False,
    **throughput: Any,
) -> dict[str, Any]:
    """Parameters of an ``ingest`` job.

    ``tiling`` holds ``TilingConfig`` fields; ``shared_stages`` is ``IngestOptions``'s, left out
    when 0 so that older jobs and manifests read the same. ``new``: the scene must not exist
    when the job starts; ``upload``: ``source`` is the job's own copy, deleted if it fails.
    """
    params = {"source": str(source), "name": name, "tiling": tiling, **throughput}
    flags = {"shared_stages": shared_stages, "new": new, "upload": upload}
    return {**params, **{key: value for key, value in flags.items() if value}}


@contextmanager
def _cleaning_upload(workspace: Workspace, params: dict[str, Any]) -> Iterator[None]:
    """Delete the job's uploaded file when the block fails (or the job is cancelled)."""
    try:
        yield
    except BaseException:
        source = Path(params["source"])
        scene = workspace.scene(params["name"])
        if params.get("upload") and scene.read_manifest().source != str(source):
            source.unlink(missing_ok=True)
        raise


def ingest_job(workspace: Workspace, params: dict[str, Any], progress: Stage) -> dict[str, Any]:
    """Ingest ``params["source"]`` as scene ``params["name"]`` with the active model.

    Raises:
        SceneBusyError: when another process writes the scene, or a new scene's name was
            taken meanwhile.
    """
    from core.ingest.launch import ingest_scene
    from core.ingest.pipeline import IngestOptions
    from core.ingest.source import recorded_source

    tiling = {k: tuple(v) if isinstance(v, list) else v for k, v in params["tiling"].items()}
    options = IngestOptions(
        tiling=TilingConfig(**tiling),
        batch_size=int(params.get("batch_size", 32)),
        workers=None if params.get("workers") is None else int(params["workers"]),
        shared_stages=int(params.get("shared_stages", 0)),
    )
    name = params["name"]
    with _cleaning_upload(workspace, params), workspace.writing(name, wait_s=HANDOVER_S):
        recorded = workspace.scene(name).read_manifest().source
        if params.get("new") and workspace.scene(name).root.exists():
            if recorded != recorded_source(params["source"]):
                raise SceneBusyError(f"a scene named {name} was added meanwhile; nothing changed")
        result = ingest_scene(
            params["source"],
            workspace,
            name,
            options,
            device=params.get("device") or get_settings().device,
            engine=params.get("engine"),
            progress=progress,
        )
    return {
        "scene": result.scene,
        "n_tiles": result.n_tiles,
        "skipped": result.skipped,
        "seconds": round(result.seconds, 1),
        "model": result.model_tag,
    }


def reindex_job(workspace: Workspace, params: dict[str, Any], progress: Stage) -> dict[str, Any]:
    """Ingest a scene again from its recorded source and tiling, with the active model.

    Raises:
        JobError: when the scene has no recorded source.
    """
    fingerprint = workspace.scene(params["name"]).read_manifest().fingerprint
    if not fingerprint:
        raise JobError(
            f"scene {params['name']!r} has no recorded source; delete it and add it again"
        )
    throughput = {k: v for k, v in params.items() if k in THROUGHPUT}
    recorded = ingest_params(
        fingerprint["source"],
        params["name"],
        fingerprint["tiling"],
        fingerprint.get("shared_stages", 0),
        **throughput,
    )
    return ingest_job(workspace, recorded, progress)
