"""Background jobs (ingest, re-index, fine-tune, refresh) run in their own process.

Streamlit threads die with the browser session, so long work runs as ``python -m core
job-run ID`` in a new process session: it survives page reloads, closed tabs and even a
restarted app. The registry is one JSON file per job in ``WS/jobs/``, replaced atomically;
the job process is its only writer while it runs (progress throttled to about two writes a
second), and ``cancel`` writes last, after the process group is gone. A reader that finds a
job "running" whose process has died reports it failed, so nothing stays "running" forever.

Job kinds map to plain functions in ``JOB_KINDS``; add an entry to add a kind. Starting a job
forgets finished ones beyond the newest ``KEEP_FINISHED``, so the registry (which every page
rerun lists) stays small in a workspace used for months.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import psutil

from core.errors import JobError, SceneSeekError
from core.settings import PROJECT_ROOT, get_settings
from core.store.workspace import Workspace, read_json, write_json
from tiles import TilesError

Status = Literal["queued", "running", "done", "failed", "cancelled"]
ACTIVE: tuple[Status, ...] = ("queued", "running")
WRITE_INTERVAL_S = 0.5
CANCEL_GRACE_S = 5.0
START_GRACE_S = 60.0
KEEP_FINISHED = 50  # finished jobs kept in the registry (with their logs), newest first
THROUGHPUT = ("batch_size", "workers", "device")  # job params that never change the vectors
Progress = Callable[[str, int, int, float], None]
JobFunction = Callable[[Workspace, dict[str, Any], Progress], dict[str, Any]]


class JobCancelled(BaseException):  # noqa: N818 - a signal, not an error
    """Raised inside the job process when it receives SIGTERM."""


@dataclass(frozen=True)
class Job:
    """One background job as stored in ``jobs/<id>.json``."""

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

    @property
    def active(self) -> bool:
        """True while queued or running."""
        return self.status in ACTIVE

    @property
    def fraction(self) -> float:
        """Share of the current stage done, 0..1."""
        return min(1.0, self.done / self.total) if self.total else 0.0


def job_path(workspace: Workspace, job_id: str) -> Path:
    """Registry file of a job."""
    return workspace.jobs_dir / f"{job_id}.json"


def log_path(workspace: Workspace, job_id: str) -> Path:
    """The job process's combined stdout and stderr."""
    return workspace.jobs_dir / f"{job_id}.log"


def _save(workspace: Workspace, job: Job) -> Job:
    write_json(job_path(workspace, job.id), asdict(job))
    return job


def _load(workspace: Workspace, job_id: str) -> Job:
    path = job_path(workspace, job_id)
    if not path.is_file():
        raise JobError(f"no job {job_id!r} in {workspace.jobs_dir}")
    return Job(**read_json(path))


def _alive(job: Job) -> bool:
    """Is the job's own process (not a reused pid, not a zombie) still there?"""
    if job.pid is None:
        return False
    try:
        process = psutil.Process(job.pid)
        if job.pid_started is not None and abs(process.create_time() - job.pid_started) > 1:
            return False
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _checked(workspace: Workspace, job: Job) -> Job:
    """Turn an active job whose process is gone into a failed one."""
    if not job.active:
        return job
    if job.pid is None:
        if time.time() - job.created < START_GRACE_S:
            return job
        reason = "the job process never started; see its log"
    elif _alive(job):
        return job
    else:
        reason = "the job process died (killed, or out of memory); see its log"
    latest = _load(workspace, job.id)  # it may have finished between our read and its exit
    if not latest.active:
        return latest
    return _save(workspace, replace(latest, status="failed", error=reason, finished=time.time()))


def get_job(workspace: Workspace, job_id: str) -> Job:
    """A job's current state.

    Raises:
        JobError: if there is no such job.
    """
    return _checked(workspace, _load(workspace, job_id))


def list_jobs(workspace: Workspace) -> list[Job]:
    """Every job, newest first."""
    _reap()
    if not workspace.jobs_dir.is_dir():
        return []
    jobs = []
    for path in workspace.jobs_dir.glob("*.json"):
        try:
            jobs.append(_checked(workspace, Job(**read_json(path))))
        except (OSError, ValueError, TypeError):
            continue  # a foreign or damaged file is not a job
    return sorted(jobs, key=lambda j: j.created, reverse=True)


def prune_jobs(workspace: Workspace, keep: int = KEEP_FINISHED) -> int:
    """Delete finished jobs (registry file and log) beyond the newest ``keep``; returns how many."""
    finished = [job for job in list_jobs(workspace) if not job.active][keep:]
    for job in finished:
        job_path(workspace, job.id).unlink(missing_ok=True)
        log_path(workspace, job.id).unlink(missing_ok=True)
    return len(finished)


_CHILDREN: list[subprocess.Popen] = []


def _reap() -> None:
    """Collect exit codes of finished jobs this process started, so none stays a zombie."""
    _CHILDREN[:] = [child for child in _CHILDREN if child.poll() is None]


def start_job(workspace: Workspace, kind: str, params: dict[str, Any]) -> Job:
    """Register a job and start its process, detached from the caller.

    Raises:
        JobError: for an unknown kind or when the process cannot be started.
    """
    if kind not in JOB_KINDS:
        raise JobError(f"unknown job kind {kind!r}; known: {', '.join(sorted(JOB_KINDS))}")
    _reap()
    prune_jobs(workspace)
    job = _save(workspace, Job(id=uuid.uuid4().hex[:12], kind=kind, params=params))
    command = [sys.executable, "-m", "core", "job-run", job.id, "--workspace", str(workspace.root)]
    try:
        with open(log_path(workspace, job.id), "ab") as log:
            child = subprocess.Popen(
                command,
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    except OSError as exc:
        _save(workspace, replace(job, status="failed", error=str(exc), finished=time.time()))
        raise JobError(f"cannot start the {kind} job: {exc}") from exc
    _CHILDREN.append(child)
    try:
        started = psutil.Process(child.pid).create_time()
    except psutil.Error:
        started = None
    current = _load(workspace, job.id)
    if current.status == "queued" and current.pid is None:
        current = _save(workspace, replace(current, pid=child.pid, pid_started=started))
    return current


def cancel(workspace: Workspace, job_id: str) -> Job:
    """Stop a job's whole process group (SIGTERM, then SIGKILL) and mark it cancelled.

    Raises:
        JobError: if there is no such job.
    """
    job = get_job(workspace, job_id)
    if not job.active:
        return job
    if job.pid is not None and _alive(job):
        _signal_group(job.pid, signal.SIGTERM)
        deadline = time.time() + CANCEL_GRACE_S
        while _alive(job) and time.time() < deadline:
            _reap()
            time.sleep(0.1)
        if _alive(job):
            _signal_group(job.pid, signal.SIGKILL)
        _reap()
    latest = _load(workspace, job_id)
    if latest.status == "done":  # it finished before the signal arrived
        return latest
    return _save(workspace, replace(latest, status="cancelled", error="", finished=time.time()))


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the job's process group (its id is the job's pid: a new session leader)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


class _Reporter:
    """Progress callback of a running job: updates the record, at most every 0.5 s."""

    def __init__(self, workspace: Workspace, job: Job) -> None:
        self.workspace = workspace
        self.job = job
        self.last_write = 0.0

    def __call__(self, stage: str, done: int, total: int, rate: float) -> None:
        remaining = max(total - done, 0)
        eta = remaining / rate if rate > 0 else None
        changed_stage = stage != self.job.stage
        self.job = replace(self.job, stage=stage, done=done, total=total, rate=rate, eta_s=eta)
        now = time.monotonic()
        if changed_stage or now - self.last_write >= WRITE_INTERVAL_S:
            self.save()
            self.last_write = now

    def save(self, **changes: Any) -> None:
        self.job = _save(self.workspace, replace(self.job, **changes))


def _raise_cancelled(signum: int, frame: object) -> None:
    raise JobCancelled


def run_job(workspace: Workspace, job_id: str) -> int:
    """Body of the job process: run the kind's function and record how it ended.

    Returns the process exit code: 0 done, 1 failed, 130 cancelled.
    """
    job = _load(workspace, job_id)
    if job.status != "queued":  # cancelled before this process got going
        return 130 if job.status == "cancelled" else 1
    reporter = _Reporter(workspace, job)
    signal.signal(signal.SIGTERM, _raise_cancelled)
    pid = os.getpid()
    reporter.save(
        status="running",
        pid=pid,
        pid_started=psutil.Process(pid).create_time(),
        started=time.time(),
    )
    try:
        result = JOB_KINDS[job.kind](workspace, job.params, reporter)
    except JobCancelled:
        reporter.save(status="cancelled", finished=time.time())
        return 130
    except (SceneSeekError, TilesError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        reporter.save(status="failed", error=str(exc), finished=time.time())
        return 1
    except Exception as exc:
        traceback.print_exc()
        reporter.save(status="failed", error=f"{type(exc).__name__}: {exc}", finished=time.time())
        return 1
    reporter.save(status="done", stage="done", result=result, eta_s=0.0, finished=time.time())
    return 0


def _ingest(workspace: Workspace, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Ingest ``params["source"]`` as scene ``params["name"]`` with the active model."""
    from core.ingest.launch import ingest_scene
    from core.ingest.pipeline import IngestOptions
    from tiles import TilingConfig

    tiling = {k: tuple(v) if isinstance(v, list) else v for k, v in params["tiling"].items()}
    options = IngestOptions(
        tiling=TilingConfig(**tiling),
        batch_size=int(params.get("batch_size", 32)),
        workers=int(params.get("workers", 2)),
        shared_stages=int(params.get("shared_stages", 0)),
    )
    result = ingest_scene(
        params["source"],
        workspace,
        params["name"],
        options,
        device=params.get("device") or get_settings().device,
        progress=progress,
    )
    return {
        "scene": result.scene,
        "n_tiles": result.n_tiles,
        "skipped": result.skipped,
        "seconds": round(result.seconds, 1),
        "model": result.model_tag,
    }


def ingest_params(
    source: str | Path, name: str, tiling: dict[str, Any], shared_stages: int = 0, **throughput: Any
) -> dict[str, Any]:
    """Parameters of an ``ingest`` job.

    ``tiling`` holds ``TilingConfig`` fields; ``shared_stages`` is ``IngestOptions``'s, left out
    when 0 so that older jobs and manifests read the same.
    """
    params = {"source": str(source), "name": name, "tiling": tiling, **throughput}
    return {**params, "shared_stages": shared_stages} if shared_stages else params


def _reindex(workspace: Workspace, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Ingest a scene again from its recorded source and tiling, with the active model."""
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
    return _ingest(workspace, recorded, progress)


def _finetune(workspace: Workspace, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Fine-tune the active model on the marks and register the result as a new version.

    ``params["cfg"]`` holds ``FinetuneCfg`` fields; the version is not promoted here, so the
    analyst can compare it with its parent first.
    """
    from core.learn.finetune.config import FinetuneCfg
    from core.learn.finetune.guard import summary
    from core.learn.finetune.loop import finetune

    version = finetune(workspace, FinetuneCfg(**params.get("cfg", {})), progress)
    return {"version": version.version, "parent": version.parent, **summary(version)}


def _refresh(workspace: Workspace, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Bring every scene to the active model version, after a promotion or rollback."""
    from core.ingest.launch import refresh_workspace

    device = params.get("device") or get_settings().device
    return refresh_workspace(workspace, device, progress).to_dict()


JOB_KINDS: dict[str, JobFunction] = {
    "ingest": _ingest,
    "reindex": _reindex,
    "finetune": _finetune,
    "refresh": _refresh,
}
