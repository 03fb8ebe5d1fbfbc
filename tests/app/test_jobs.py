"""core/jobs.py: real job processes, cancellation, and jobs whose process died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from core.errors import JobError
from core.jobs import Job, cancel, get_job, ingest_params, list_jobs, log_path, start_job
from core.store.workspace import Workspace
from tests.app.conftest import ROOT, SMALL_SCENE, SMALL_TILING, busy_slot
from tests.conftest import DATA_ROOT

BIG_SCENE = DATA_ROOT / "scenes" / "berkeley_z17_webmercator_naip.tif"


def wait_for(ws: Workspace, job_id: str, done: callable, timeout: float = 120) -> Job:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = get_job(ws, job_id)
        if done(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {get_job(ws, job_id)} after {timeout} s")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_ingest_job_runs_to_done(env: Workspace) -> None:
    job = start_job(env, "ingest", ingest_params(SMALL_SCENE, "small", SMALL_TILING, workers=0))
    assert job.status in ("queued", "running") and job.pid
    seen_progress = False
    deadline = time.time() + 120
    while (current := get_job(env, job.id)).active and time.time() < deadline:
        seen_progress |= current.stage == "embedding" and current.total > 0
        time.sleep(0.1)
    assert current.status == "done", current.error
    assert current.result["n_tiles"] == 60 and current.result["scene"] == "small"
    assert current.done == current.total == 60
    assert env.scene("small").is_ready()
    assert seen_progress or current.rate == 0.0  # fast machines may finish between polls
    assert [j.id for j in list_jobs(env)] == [job.id]
    assert log_path(env, job.id).is_file()


def test_reindex_of_an_up_to_date_scene_is_a_no_op(ready_env: Workspace) -> None:
    job = start_job(ready_env, "reindex", {"name": "naip", "workers": 0})
    done = wait_for(ready_env, job.id, lambda j: not j.active)
    assert done.status == "done" and done.result["skipped"] is True


def test_reindex_keeps_a_scene_s_shared_stages(env: Workspace) -> None:
    params = ingest_params(SMALL_SCENE, "fast", SMALL_TILING, shared_stages=1, workers=0)
    first = wait_for(env, start_job(env, "ingest", params).id, lambda j: not j.active)
    assert first.status == "done", first.error
    assert env.scene("fast").read_manifest().fingerprint["shared_stages"] == 1
    again = start_job(env, "reindex", {"name": "fast", "workers": 0})
    done = wait_for(env, again.id, lambda j: not j.active)
    assert done.status == "done" and done.result["skipped"] is True  # same vectors: nothing to do


def test_cancel_stops_the_process_group(env: Workspace) -> None:
    params = ingest_params(BIG_SCENE, "big", {"sizes": (64,)}, workers=1, batch_size=8)
    job = start_job(env, "ingest", params)
    running = wait_for(env, job.id, lambda j: j.stage == "embedding" or not j.active)
    assert running.status == "running", running.error
    group = [running.pid, *(c.pid for c in psutil.Process(running.pid).children(recursive=True))]
    cancelled = cancel(env, job.id)
    assert cancelled.status == "cancelled" and cancelled.finished
    assert all(gone(pid) for pid in group)
    assert get_job(env, job.id).status == "cancelled"


def test_a_killed_job_is_reported_failed(env: Workspace) -> None:
    job = start_job(env, "ingest", ingest_params(BIG_SCENE, "big", {"sizes": (64,)}, workers=0))
    running = wait_for(env, job.id, lambda j: j.status == "running" or not j.active)
    os.killpg(os.getpgid(running.pid), signal.SIGKILL)
    failed = wait_for(env, job.id, lambda j: not j.active, timeout=10)
    assert failed.status == "failed"
    assert "died" in failed.error


def test_failure_is_reported_in_plain_words(env: Workspace, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00 not really a tiff")
    job = start_job(env, "ingest", ingest_params(bad, "bad", SMALL_TILING, workers=0))
    failed = wait_for(env, job.id, lambda j: not j.active)
    assert failed.status == "failed"
    assert "cannot be opened as a raster" in failed.error
    assert not env.scene("bad").root.exists()


def test_unknown_kind_and_job_are_refused(env: Workspace) -> None:
    with pytest.raises(JobError, match="unknown job kind"):
        start_job(env, "teleport", {})
    with pytest.raises(JobError, match="no job"):
        get_job(env, "nope")


def test_cli_lists_jobs(env: Workspace) -> None:
    job = start_job(env, "reindex", {"name": "missing"})
    wait_for(env, job.id, lambda j: not j.active)
    out = subprocess.run(
        [sys.executable, "-m", "core", "jobs", "list", "--workspace", str(env.root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert job.id in out and "failed" in out and "no recorded source" in out


def test_finetune_job_without_marks_fails_in_plain_words(env: Workspace) -> None:
    job = start_job(env, "finetune", {"cfg": {"steps": 1}})
    failed = wait_for(env, job.id, lambda j: not j.active)
    assert failed.status == "failed"
    assert "fine-tuning cannot start yet: it needs 2 more relevant marks" in failed.error


def test_starting_a_job_forgets_old_finished_ones(
    env: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCENESEEK_MAX_JOBS", "2")  # "busy" below holds one slot
    from dataclasses import asdict

    from core.jobs import KEEP_FINISHED, job_path
    from core.store.workspace import write_json

    for i in range(KEEP_FINISHED + 5):
        old = Job(id=f"old{i:03d}", kind="reindex", params={}, status="done", created=1000.0 + i)
        write_json(job_path(env, old.id), asdict(old))
        log_path(env, old.id).write_text("log")
    running = Job(
        id="busy",
        kind="reindex",
        params={},
        status="running",
        created=1.0,
        pid=os.getpid(),
        pid_started=psutil.Process().create_time(),
    )
    write_json(job_path(env, running.id), asdict(running))
    job = start_job(env, "reindex", {"name": "missing"})
    wait_for(env, job.id, lambda j: not j.active)
    kept = {j.id for j in list_jobs(env)}
    assert "busy" in kept and job.id in kept  # active and new jobs stay
    assert {f"old{i:03d}" for i in range(5, KEEP_FINISHED + 5)} <= kept  # the newest finished
    assert not any(f"old{i:03d}" in kept for i in range(5))
    assert not log_path(env, "old000").exists() and log_path(env, "old005").exists()


def test_jobs_wait_in_line_beyond_the_concurrency_limit(
    env: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import asdict, replace

    from core.jobs import job_path, queue_positions
    from core.store.workspace import write_json

    monkeypatch.setenv("SCENESEEK_MAX_JOBS", "1")
    busy = busy_slot(env)
    first = start_job(env, "reindex", {"name": "missing"}, owner="ed")
    second = start_job(env, "reindex", {"name": "missing"}, owner="ed")
    assert first.waiting and second.waiting and first.pid is None and first.owner == "ed"
    assert queue_positions(list_jobs(env)) == {first.id: 1, second.id: 2}
    cancel(env, second.id)  # leaves the queue; nothing to signal
    assert get_job(env, second.id).status == "cancelled"
    write_json(job_path(env, busy.id), asdict(replace(busy, status="done")))
    started = list_jobs(env)  # a reader finds the slot free and starts the next job
    assert next(j for j in started if j.id == first.id).pid is not None
    assert wait_for(env, first.id, lambda j: not j.active).status == "failed"
    assert get_job(env, second.id).pid is None


def test_a_model_switch_queues_one_refresh_job(env: Workspace, monkeypatch) -> None:
    from app.model_versions import switch_model
    from core.model.versions import ModelRegistry
    from core.store.manifest import SceneManifest

    monkeypatch.setenv("SCENESEEK_MAX_JOBS", "1")
    monkeypatch.setenv("SCENESEEK_ENGINE", "torch")  # the queue, not ONNX exports
    for name in ("a", "b", "c"):
        env.scene(name).root.mkdir(parents=True)
        SceneManifest(name, status="ready").save(env.scene(name).manifest)
    ModelRegistry(env).versions()
    busy_slot(env)
    switch = switch_model(env, 0, owner="admin")
    assert switch.scenes == 3 and switch.job is not None
    queued = [j for j in list_jobs(env) if j.kind == "refresh" and j.id != "busy"]
    assert len(queued) == 1 and queued[0].waiting and queued[0].owner == "admin"


def test_cancel_never_signals_a_process_it_cannot_prove_is_the_job(env: Workspace) -> None:
    from dataclasses import asdict

    from core.jobs import job_path
    from core.store.workspace import write_json

    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        unknown_start = Job(
            id="nostart", kind="ingest", params={}, status="running", pid=stranger.pid
        )
        write_json(job_path(env, unknown_start.id), asdict(unknown_start))
        with pytest.raises(JobError, match="cannot prove that process"):
            cancel(env, "nostart")
        wrong_start = Job(
            id="reused",
            kind="ingest",
            params={},
            status="running",
            pid=stranger.pid,
            pid_started=psutil.Process(stranger.pid).create_time() - 3600,  # a reused pid
        )
        write_json(job_path(env, wrong_start.id), asdict(wrong_start))
        assert cancel(env, "reused").status in ("failed", "cancelled")
        assert stranger.poll() is None  # still running: never signalled
    finally:
        stranger.kill()
        stranger.wait()


def test_a_failed_upload_ingest_removes_its_upload(env: Workspace, tmp_path: Path) -> None:
    upload = env.root / "uploads" / "bad.tif"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"II*\x00 not really a tiff")
    params = ingest_params(upload, "bad", SMALL_TILING, new=True, upload=True, workers=0)
    failed = wait_for(env, start_job(env, "ingest", params).id, lambda j: not j.active)
    assert failed.status == "failed" and "cannot be opened as a raster" in failed.error
    assert not upload.exists()
