"""Live view of background jobs: progress, rate, ETA, cancel, and how recent jobs ended.

Jobs run in their own processes and write their state to the workspace, so this view only
reads the registry; a page reload or a second browser tab shows the same jobs.
"""

from __future__ import annotations

import time

import streamlit as st

from app import auth, notices
from app.text import md, plural
from core import Job, SceneSeekError, Workspace, cancel, log_path, queue_positions

RECENT = 5
LOG_LINES = 30
VERBS = {
    "ingest": "Ingesting",
    "reindex": "Re-indexing",
    "finetune": "Fine-tuning",
    "refresh": "Bringing the scenes to the active model",
}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    seconds = max(0, int(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _ago(timestamp: float) -> str:
    minutes = int(time.time() - timestamp) // 60
    if minutes < 1:
        return "just now"
    return f"{minutes} min ago" if minutes < 60 else f"{minutes // 60} h ago"


def progress_text(job: Job, position: int | None = None) -> str:
    """``embedding 320/1,200 tiles · 14.2 tiles/s · ETA 1 min 02 s``, or the place in line."""
    if position is not None:
        return f"queued: {'next' if position == 1 else f'number {position}'} in line"
    stage = job.stage or ("starting" if job.status == "running" else job.status)
    if not job.total or stage in ("tiling", "loading model"):
        return f"{stage}…"
    text = f"{stage} {job.done:,}/{job.total:,}"
    if stage == "embedding":
        text += f" tiles · {job.rate:.1f} tiles/s · ETA {_duration(job.eta_s)}"
    return text


def _title(job: Job) -> str:
    """The job in words, escaped for Markdown."""
    return md(f"{VERBS.get(job.kind, job.kind.title())} {job.params.get('name', '')}".strip())


def _may_cancel(job: Job) -> bool:
    """Admins cancel any job; others only the jobs they started."""
    user = auth.current()
    if user is None:
        return False
    return user.can("cancel_any_job") or bool(user.name and user.name == job.owner)


def _cancel(ws: Workspace, job: Job) -> None:
    if not _may_cancel(job):
        notices.notify("error", f"only {job.owner or 'an admin'} or an admin may cancel this job")
        return
    try:
        cancel(ws, job.id)
    except SceneSeekError as exc:
        notices.notify("error", str(exc))


def active_job(ws: Workspace, job: Job, position: int | None = None) -> None:
    """A running or queued job: progress bar (or place in line) and cancel button."""
    with st.container(border=True):
        left, right = st.columns([6, 1], vertical_alignment="center")
        owner = f" · {md(job.owner)}" if job.owner else ""
        left.markdown(f"**{_title(job)}**{owner}")
        left.progress(job.fraction, text=progress_text(job, position))
        if _may_cancel(job):
            right.button(
                "Cancel",
                key=f"cancel-{job.id}",
                icon=":material/cancel:",
                on_click=_cancel,
                args=(ws, job),
                width="stretch",
            )


def _log_tail(ws: Workspace, job: Job) -> str:
    path = log_path(ws, job.id)
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-LOG_LINES:])


def _outcome(job: Job) -> str:
    """What a finished job produced: a model version, or tiles."""
    if "version" in job.result:
        return f"done, v{job.result['version']} registered (parent v{job.result.get('parent')})"
    note = " (already up to date)" if job.result.get("skipped") else ""
    return f"done, {plural(job.result.get('n_tiles', 0), 'tile')}{note}"


def finished_job(ws: Workspace, job: Job) -> None:
    """How a job ended, in plain words.

    A failed job shows everyone the last line of its error, and only admins its log, whose
    tracebacks name server paths.
    """
    ago = _ago(job.finished or job.created)
    if job.status == "done":
        st.success(f"{_title(job)}: {_outcome(job)} · {ago}", icon=":material/check_circle:")
    elif job.status == "cancelled":
        st.info(f"{_title(job)}: cancelled · {ago}", icon=":material/stop_circle:")
    else:
        error = (job.error.strip().splitlines() or ["no reason recorded"])[-1]
        st.error(f"{_title(job)} failed: {md(error)} · {ago}", icon=":material/error:")
        if not auth.can("read_job_log"):
            return
        log = _log_tail(ws, job)
        if log:
            with st.expander("Job log"):
                st.code(log, language=None)


def jobs_view(ws: Workspace, jobs: list[Job]) -> None:
    """Active jobs first, then the last few that ended."""
    active = [j for j in jobs if j.active]
    ended = [j for j in jobs if not j.active][:RECENT]
    positions = queue_positions(jobs)
    for job in active:
        active_job(ws, job, positions.get(job.id))
    if ended:
        with st.expander(f"Recent jobs ({len(ended)})", expanded=not active):
            for job in ended:
                finished_job(ws, job)
