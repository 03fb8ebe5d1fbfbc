"""The library's service calls: list scenes with their state, add, re-index and delete."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from app.errors import AppError
from app.uploads import uploads_dir
from core import (
    NAME_PATTERN,
    Job,
    ModelVersion,
    SceneManifest,
    Workspace,
    delete_pairs_of,
    ingest_params,
    list_jobs,
    scene_name_from,
    start_job,
)
from tiles import TilingConfig


@dataclass(frozen=True)
class SceneRow:
    """One line of the scene table."""

    name: str
    crs: str
    size: str
    resolution_m: float | None
    tiles: int | None
    model: str
    status: str
    job: Job | None
    source: str = ""


def _status(manifest: SceneManifest, job: Job | None, active: ModelVersion) -> str:
    if job is not None:
        return "indexing" if job.status == "running" else "queued"
    if not manifest.ready:
        return "incomplete"
    current = manifest.model == active.tag and not manifest.outdated_tiling
    return "ready" if current else "needs re-index"


def _active_jobs(jobs: list[Job]) -> dict[str, Job]:
    return {j.params["name"]: j for j in reversed(jobs) if j.active and j.params.get("name")}


def scene_rows(
    ws: Workspace, jobs: list[Job], versions: list[ModelVersion], active: ModelVersion
) -> list[SceneRow]:
    """Every scene on disk or being ingested, with its model version and status."""
    busy = _active_jobs(jobs)
    labels = {v.tag: v.label for v in versions}
    rows = []
    for name in sorted(set(ws.scene_names(ready_only=False)) | set(busy)):
        manifest = ws.scene(name).read_manifest()
        scene, tag = manifest.scene, manifest.model
        rows.append(
            SceneRow(
                name=name,
                crs=scene.get("crs") or "",
                size=f"{scene['width']:,} × {scene['height']:,} px" if scene else "",
                resolution_m=scene.get("resolution_m"),
                tiles=manifest.n_tiles,
                model=labels.get(tag, tag),
                status=_status(manifest, busy.get(name), active),
                job=busy.get(name),
                source=source_label(manifest.source),
            )
        )
    return rows


def source_label(source: str | None) -> str:
    """Where a scene came from, short: the file name, or host and file name of a URL."""
    if not source:
        return ""
    parts = urlsplit(source)
    name = PurePosixPath(parts.path).name
    return f"{parts.hostname}/…/{name}" if parts.scheme and parts.hostname else Path(source).name


def tiling(sizes: list[int], overlap: float, min_valid: float) -> dict[str, Any]:
    """``TilingConfig`` fields for an ingest job, validated now rather than in the job.

    Raises:
        AppError: for settings the tiler refuses.
    """
    try:
        config = TilingConfig(sizes=tuple(sorted(sizes)), overlap=overlap, min_valid=min_valid)
    except ValueError as exc:
        raise AppError(str(exc)) from exc
    return asdict(config)


def valid_name(wanted: str) -> str:
    """What the analyst typed if it is a valid scene name, else one made from it."""
    return wanted if NAME_PATTERN.fullmatch(wanted) else scene_name_from(wanted)


def new_scene_name(ws: Workspace, wanted: str, jobs: list[Job]) -> str:
    """A valid, unused scene name from what the analyst typed or the file name.

    Raises:
        AppError: when the name is taken or being ingested.
    """
    name = valid_name(wanted)
    if ws.scene(name).root.exists() or name in _active_jobs(jobs):
        raise AppError(
            f"a scene named {name!r} already exists; choose another name, or delete it first"
        )
    return name


def add_scene(
    ws: Workspace,
    wanted: str,
    save: Callable[[str], Path | str],
    tiles: dict[str, Any],
    owner: str = "",
    upload: bool = False,
) -> tuple[str, Job]:
    """Check the name is free, ``save`` the file and queue its ingest, as the scene's writer.

    Two sessions adding the same name at once cannot both pass the check: the second waits
    for nothing and is refused. The job takes the scene's lock over when it starts; an
    uploaded file (``upload``) is deleted if the job cannot be queued or later fails.

    Raises:
        AppError: when the name is taken or being ingested, or the file is refused.
        SceneBusyError: while another process writes a scene of that name.
    """
    name = valid_name(wanted)
    with ws.writing(name, who=f"the app ({owner or 'local session'})"):
        name = new_scene_name(ws, name, list_jobs(ws))
        source = save(name)
        params = ingest_params(source, name, tiles, new=True, upload=upload)
        try:
            job = start_job(ws, "ingest", params, owner=owner)
        except BaseException:
            if upload:
                Path(source).unlink(missing_ok=True)
            raise
    return name, job


def start_reindex(ws: Workspace, name: str, jobs: list[Job], owner: str = "") -> Job:
    """Ingest a scene again with the active model (resumes an incomplete one).

    Raises:
        AppError: while another job works on the scene.
    """
    _refuse_busy(name, jobs, "re-index")
    return start_job(ws, "reindex", {"name": name}, owner=owner)


def delete_scene(ws: Workspace, name: str, jobs: list[Job]) -> None:
    """Remove a scene, its indexes, and its source file when it was an upload.

    Raises:
        AppError: while a job works on the scene.
    """
    _refuse_busy(name, jobs, "delete")
    source = ws.scene(name).read_manifest().source
    ws.delete_scene(name)
    delete_pairs_of(ws, name)
    if source and Path(source).resolve().is_relative_to(uploads_dir(ws).resolve()):
        Path(source).unlink(missing_ok=True)


def _refuse_busy(name: str, jobs: list[Job], action: str) -> None:
    job = _active_jobs(jobs).get(name)
    if job is not None:
        raise AppError(f"cannot {action} {name!r} while job {job.id} is {job.status}; cancel it")
