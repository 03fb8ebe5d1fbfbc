"""Background jobs (ingest, re-index, fine-tune, refresh): a queue of processes, a limit at once.

Streamlit threads die with the browser session, so long work runs as ``python -m core
job-run ID`` in a new process session: it survives page reloads, closed tabs and even a
restarted app. Records live in ``WS/jobs/`` (``core.store.jobs``). A new job is queued; the
queue starts the oldest waiting jobs while fewer than ``SCENESEEK_MAX_JOBS`` are started,
and is run again whenever a job is added, ends or is cancelled, and when a reader finds a
slot free (after a job process died), all under ``jobs/.queue.lock``. A job process is the
only writer of its record while it runs (progress about twice a second); a reader that
finds a started job whose process has died reports it failed, so nothing stays "running"
forever. Cancel signals a process only when its pid and start time prove it is the job's.

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
from dataclasses import replace
from functools import partial
from typing import Any

import psutil
from filelock import FileLock

from core.errors import JobError, SceneSeekError
from core.ingest.jobs import ingest_params
from core.settings import PROJECT_ROOT, get_settings
from core.store.jobs import ACTIVE, Job, job_path, load_job, log_path, save_job, stored_jobs
from core.store.locks import WRITER
from core.store.workspace import Workspace
from tiles import TilesError, redact_text

__all__ = [
    "ACTIVE",
    "Job",
    "cancel",
    "get_job",
    "ingest_params",
    "job_path",
    "list_jobs",
    "log_path",
    "queue_positions",
    "start_job",
]
WRITE_INTERVAL_S = 0.5
CANCEL_GRACE_S = 5.0
QUEUE_LOCK_S = 60.0
SAME_PROCESS_S = 0.1  # start times this close are the same process (a pid reused is later)
KEEP_FINISHED = 50  # finished jobs kept in the registry (with their logs), newest first
Progress = Callable[[str, int, int, float], None]
JobFunction = Callable[[Workspace, dict[str, Any], Progress], dict[str, Any]]


class JobCancelled(BaseException):  # noqa: N818 - a signal, not an error
    """Raised inside the job process when it receives SIGTERM."""


def _queue_lock(workspace: Workspace) -> FileLock:
    workspace.jobs_dir.mkdir(parents=True, exist_ok=True)
    return FileLock(workspace.jobs_dir / ".queue.lock", timeout=QUEUE_LOCK_S, is_singleton=True)


def _process(job: Job) -> psutil.Process | None:
    """The job's own process, proven by pid and start time; None when gone or unprovable."""
    if job.pid is None or job.pid_started is None:
        return None
    try:
        process = psutil.Process(job.pid)
        if abs(process.create_time() - job.pid_started) > SAME_PROCESS_S:
            return None
        return None if process.status() == psutil.STATUS_ZOMBIE else process
    except psutil.Error:
        return None


def _alive(job: Job) -> bool:
    """Is the job's process still there? Without a start time, any process with its pid is."""
    if job.pid_started is None and job.pid is not None:
        return psutil.pid_exists(job.pid)
    return _process(job) is not None


def _checked(workspace: Workspace, job: Job) -> Job:
    """Turn a started job whose process is gone into a failed one."""
    if not job.active or job.pid is None or _alive(job):
        return job
    latest = load_job(workspace, job.id)  # it may have finished between our read and its exit
    if not latest.active or latest.pid != job.pid:
        return latest
    reason = "the job process died (killed, or out of memory); see its log"
    return save_job(workspace, replace(latest, status="failed", error=reason, finished=time.time()))


def get_job(workspace: Workspace, job_id: str) -> Job:
    """A job's current state.

    Raises:
        JobError: if there is no such job.
    """
    return _checked(workspace, load_job(workspace, job_id))


def _newest_first(workspace: Workspace) -> list[Job]:
    jobs = (_checked(workspace, job) for job in stored_jobs(workspace))
    return sorted(jobs, key=lambda j: j.created, reverse=True)


def list_jobs(workspace: Workspace) -> list[Job]:
    """Every job, newest first; starts waiting jobs if a dead one left a slot free."""
    _reap()
    jobs = _newest_first(workspace)
    started = sum(1 for j in jobs if j.active and j.pid is not None)
    if any(j.waiting for j in jobs) and started < get_settings().max_jobs:
        dispatch(workspace)
        jobs = _newest_first(workspace)
    return jobs


def queue_positions(jobs: list[Job]) -> dict[str, int]:
    """Place in the queue (1 = next to start) of every waiting job."""
    waiting = sorted((j for j in jobs if j.waiting), key=lambda j: j.created)
    return {job.id: number for number, job in enumerate(waiting, start=1)}


def prune_jobs(workspace: Workspace, keep: int = KEEP_FINISHED) -> int:
    """Delete finished jobs (registry file and log) beyond the newest ``keep``; returns how many."""
    finished = sorted(
        (j for j in stored_jobs(workspace) if not j.active), key=lambda j: j.created, reverse=True
    )[keep:]
    for job in finished:
        job_path(workspace, job.id).unlink(missing_ok=True)
        log_path(workspace, job.id).unlink(missing_ok=True)
    return len(finished)


_CHILDREN: list[subprocess.Popen] = []


def _reap() -> None:
    """Collect exit codes of finished jobs this process started, so none stays a zombie."""
    _CHILDREN[:] = [child for child in _CHILDREN if child.poll() is None]


def start_job(workspace: Workspace, kind: str, params: dict[str, Any], owner: str = "") -> Job:
    """Queue a job; it starts at once when fewer than ``SCENESEEK_MAX_JOBS`` are running.

    Raises:
        JobError: for an unknown kind or when the process cannot be started.
    """
    if kind not in JOB_KINDS:
        raise JobError(f"unknown job kind {kind!r}; known: {', '.join(sorted(JOB_KINDS))}")
    _reap()
    prune_jobs(workspace)
    job = save_job(workspace, Job(id=uuid.uuid4().hex[:12], kind=kind, params=params, owner=owner))
    dispatch(workspace)
    current = get_job(workspace, job.id)
    if current.status == "failed":
        raise JobError(f"cannot start the {kind} job: {current.error}")
    return current


def dispatch(workspace: Workspace) -> list[Job]:
    """Start the oldest waiting jobs while fewer than ``SCENESEEK_MAX_JOBS`` are started."""
    launched = []
    with _queue_lock(workspace):
        jobs = [_checked(workspace, job) for job in stored_jobs(workspace)]
        started = sum(1 for j in jobs if j.active and j.pid is not None)
        waiting = sorted((j for j in jobs if j.waiting), key=lambda j: j.created)
        for job in waiting[: max(0, get_settings().max_jobs - started)]:
            launched.append(_launch(workspace, job))
    return launched


def _launch(workspace: Workspace, job: Job) -> Job:
    """Start a queued job's process, detached from the caller (under the queue lock)."""
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
        failed = replace(job, status="failed", error=str(exc), finished=time.time())
        return save_job(workspace, failed)
    _CHILDREN.append(child)
    try:
        started = psutil.Process(child.pid).create_time()
    except psutil.Error:
        started = None
    return save_job(workspace, replace(job, pid=child.pid, pid_started=started))


def cancel(workspace: Workspace, job_id: str) -> Job:
    """Stop a job: a waiting one leaves the queue, a started one's process group is stopped.

    The group gets SIGTERM, then SIGKILL, but only once the pid and start time prove that
    the process is the job's.

    Raises:
        JobError: if there is no such job, or its process cannot be proven to be the job's.
    """
    with _queue_lock(workspace):
        job = get_job(workspace, job_id)
        if not job.active:
            return job
        process = _process(job)
        if process is None and _alive(job):
            raise JobError(
                f"job {job_id}: cannot prove that process {job.pid} is this job's (no start "
                "time recorded), so it was not signalled; stop it by hand if it is"
            )
        if process is None:  # still waiting, or its process is gone: nothing to signal
            job = save_job(workspace, replace(job, status="cancelled", finished=time.time()))
    if process is not None:
        _stop(process)
        latest = load_job(workspace, job_id)
        if latest.active or latest.status == "failed":  # a child killed by our signal first
            latest = replace(latest, status="cancelled", error="", finished=time.time())
            job = save_job(workspace, latest)
        else:
            job = latest  # it finished (or saved its cancellation) first
    dispatch(workspace)
    return job


def _stop(process: psutil.Process) -> None:
    """SIGTERM the job's process group (it leads a new session), then SIGKILL after a grace."""
    try:
        if os.getpgid(process.pid) != process.pid:
            raise JobError(f"process {process.pid} does not lead its own group; not signalled")
        os.killpg(process.pid, signal.SIGTERM)
        deadline = time.time() + CANCEL_GRACE_S
        while _running(process):
            if time.time() > deadline:
                os.killpg(process.pid, signal.SIGKILL)
                break
            _reap()
            time.sleep(0.1)
    except ProcessLookupError:
        pass  # it ended on its own meanwhile
    _reap()


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


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
        self.job = save_job(self.workspace, replace(self.job, **changes))


def _raise_cancelled(signum: int, frame: object) -> None:
    raise JobCancelled


def _claim(workspace: Workspace, job_id: str) -> Job | None:
    """Mark the job running with this process, unless it was cancelled meanwhile."""
    with _queue_lock(workspace):
        job = load_job(workspace, job_id)
        if job.status != "queued":
            return None
        pid = os.getpid()
        running = replace(
            job,
            status="running",
            pid=pid,
            pid_started=psutil.Process(pid).create_time(),
            started=time.time(),
        )
        return save_job(workspace, running)


def run_job(workspace: Workspace, job_id: str) -> int:
    """Body of the job process: run the kind's function, record how it ended, start the next.

    Returns the process exit code: 0 done, 1 failed, 130 cancelled.
    """
    signal.signal(signal.SIGTERM, _raise_cancelled)
    try:
        job = _claim(workspace, job_id)
        if job is None:  # cancelled before this process got going
            return 130
        return _run(workspace, job)
    except JobCancelled:
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        dispatch(workspace)


def _run(workspace: Workspace, job: Job) -> int:
    reporter = _Reporter(workspace, job)
    WRITER.set(f"job {job.id}")
    try:
        result = JOB_KINDS[job.kind](workspace, job.params, reporter)
    except JobCancelled:
        reporter.save(status="cancelled", finished=time.time())
        return 130
    except (SceneSeekError, TilesError) as exc:
        message = redact_text(str(exc))  # a URL's credentials never reach the record
        print(f"error: {message}", file=sys.stderr)
        reporter.save(status="failed", error=message, finished=time.time())
        return 1
    except Exception as exc:
        print(redact_text(traceback.format_exc()), file=sys.stderr)  # the log: admins only
        first = (str(exc).strip().splitlines() or [""])[0]  # one line (of 300 at most) for all
        error = redact_text(f"{type(exc).__name__}: {first}".removesuffix(": "))[:300]
        reporter.save(status="failed", error=error, finished=time.time())
        return 1
    reporter.save(status="done", stage="done", result=result, eta_s=0.0, finished=time.time())
    return 0


def _ingest(workspace: Workspace, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    from core.ingest.jobs import ingest_job

    return ingest_job(workspace, params, progress)


def _reindex(workspace: Workspace, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    from core.ingest.jobs import reindex_job

    return reindex_job(workspace, params, progress)


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


def _align(workspace: Workspace, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Embed the earlier scene of a pair on the later scene's tiles (change search)."""
    from core.search.change.align import prepare_pair

    device = params.get("device") or get_settings().device
    stage = partial(progress, "aligning")
    pair = prepare_pair(workspace, params["before"], params["after"], device=device, progress=stage)
    return {"before": pair.before, "after": pair.after, "comparable": pair.comparable}


JOB_KINDS: dict[str, JobFunction] = {
    "ingest": _ingest,
    "reindex": _reindex,
    "finetune": _finetune,
    "refresh": _refresh,
    "align": _align,
}
