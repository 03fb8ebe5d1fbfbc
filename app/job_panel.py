"""Live view of background jobs: progress, rate, ETA, cancel, and how recent jobs ended.

Jobs run in their own processes and write their state to the workspace, so this view only
reads the registry; a page reload or a second browser tab shows the same jobs.
"""

from __future__ import annotations

import time

import streamlit as st

from app.text import md
from core import Job, Workspace, cancel, log_path

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


def progress_text(job: Job) -> str:
    """``embedding 320/1,200 tiles · 14.2 tiles/s · ETA 1 min 02 s``."""
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


def active_job(ws: Workspace, job: Job) -> None:
    """A running or queued job: progress bar and cancel button."""
    with st.container(border=True):
        left, right = st.columns([6, 1], vertical_alignment="center")
        left.markdown(f"**{_title(job)}**")
        left.progress(job.fraction, text=progress_text(job))
        right.button(
            "Cancel",
            key=f"cancel-{job.id}",
            icon=":material/cancel:",
            on_click=cancel,
            args=(ws, job.id),
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
    return f"done, {job.result.get('n_tiles', 0):,} tiles{note}"


def finished_job(ws: Workspace, job: Job) -> None:
    """How a job ended, in plain words; a failed job offers its log."""
    ago = _ago(job.finished or job.created)
    if job.status == "done":
        st.success(f"{_title(job)}: {_outcome(job)} · {ago}", icon=":material/check_circle:")
    elif job.status == "cancelled":
        st.info(f"{_title(job)}: cancelled · {ago}", icon=":material/stop_circle:")
    else:
        st.error(f"{_title(job)} failed: {md(job.error)} · {ago}", icon=":material/error:")
        log = _log_tail(ws, job)
        if log:
            with st.expander("Job log"):
                st.code(log, language=None)


def jobs_view(ws: Workspace, jobs: list[Job]) -> None:
    """Active jobs first, then the last few that ended."""
    active = [j for j in jobs if j.active]
    ended = [j for j in jobs if not j.active][:RECENT]
    for job in active:
        active_job(ws, job)
    if ended:
        with st.expander(f"Recent jobs ({len(ended)})", expanded=not active):
            for job in ended:
                finished_job(ws, job)
