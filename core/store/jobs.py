"""Background job records on disk: ``WS/jobs/<id>.json`` (state) and ``<id>.log`` (output).

Each record is replaced atomically. ``core.jobs`` starts, queues, runs and cancels the
processes these records describe.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.errors import JobError
from core.store.workspace import Workspace, read_json, write_json

Status = Literal["queued", "running", "done", "failed", "cancelled"]
ACTIVE: tuple[Status, ...] = ("queued", "running")
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class Job:
    """One background job as stored in ``jobs/<id>.json``.

    A queued job has no ``pid`` until the queue starts its process; ``owner`` is the user
    who started it (empty for the CLI or an anonymous local session).
    """

    id: str
    kind: str
    params: dict[str, Any]
    status: Status = "queued"
    stage: str = ""
    done: int = 0
    total: int = 0
    rate: float = 0.0
    eta_s: float | None = None
    error: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    pid: int | None = None
    pid_started: float | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    owner: str = ""

    @property
    def active(self) -> bool:
        """True while queued or running."""
        return self.status in ACTIVE

    @property
    def waiting(self) -> bool:
        """True while queued behind other jobs (no process yet)."""
        return self.status == "queued" and self.pid is None

    @property
    def fraction(self) -> float:
        """Share of the current stage done, 0..1."""
        return min(1.0, self.done / self.total) if self.total else 0.0


def job_path(workspace: Workspace, job_id: str) -> Path:
    """Registry file of a job.

    Raises:
        JobError: for an id that is not a plain name (it becomes part of a path).
    """
    if not JOB_ID.fullmatch(job_id):
        raise JobError(f"no job {job_id!r}: job ids are letters and digits")
    return workspace.jobs_dir / f"{job_id}.json"


def log_path(workspace: Workspace, job_id: str) -> Path:
    """The job process's combined stdout and stderr."""
    return job_path(workspace, job_id).with_suffix(".log")


def save_job(workspace: Workspace, job: Job) -> Job:
    """Write a job's record atomically; returns it."""
    write_json(job_path(workspace, job.id), asdict(job))
    return job


def load_job(workspace: Workspace, job_id: str) -> Job:
    """A job's record as stored.

    Raises:
        JobError: if there is no such job.
    """
    path = job_path(workspace, job_id)
    if not path.is_file():
        raise JobError(f"no job {job_id!r} in {workspace.jobs_dir}")
    return Job(**read_json(path))


def stored_jobs(workspace: Workspace) -> list[Job]:
    """Every readable record, in no particular order (foreign or damaged files skipped)."""
    if not workspace.jobs_dir.is_dir():
        return []
    jobs = []
    for path in workspace.jobs_dir.glob("*.json"):
        try:
            jobs.append(Job(**read_json(path)))
        except (OSError, ValueError, TypeError):
            continue
    return jobs
