"""One writer per scene, a locked model registry, run-tagged parts, stray scene folders."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from core.errors import SceneBusyError
from core.ingest.embed.writer import PartWriter
from core.model.versions import ModelRegistry
from core.store.workspace import Workspace
from tests.app.conftest import ROOT
from tiles.atomic import atomic_path

HOLD = """
import sys, time
from core.store.workspace import Workspace
with Workspace(sys.argv[1]).writing("berkeley", who="job abc123"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_writer_fails_at_once_naming_the_first(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    ws.scene("berkeley").root.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(SceneBusyError, match=rf"berkeley is being written by pid {holder.pid}"):
            with ws.writing("berkeley"):
                pass
        assert time.monotonic() - started < 1
        with pytest.raises(SceneBusyError, match=r"\(job abc123\)"):
            ws.delete_scene("berkeley")
        assert ws.scene("berkeley").root.is_dir()
        with ws.writing("other"):  # other scenes are free
            pass
    finally:
        holder.kill()
        holder.wait()
    ws.delete_scene("berkeley")  # the holder died: the kernel released its lock
    assert not ws.scene("berkeley").root.exists()


def test_the_lock_is_reentrant_in_a_thread_but_not_across_threads(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    refused = []

    def other() -> None:
        try:
            with ws.writing("s"):
                pass
        except SceneBusyError as exc:
            refused.append(str(exc))

    with ws.writing("s"), ws.writing("s"):  # an ingest inside a job that holds it
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert refused and "being written" in refused[0]


def test_parts_of_another_run_are_never_reused(tmp_path: Path) -> None:
    mine, theirs = PartWriter(tmp_path, "aaaa"), PartWriter(tmp_path, "bbbb")
    theirs.write(0, 4, {"visual": np.ones((4, 2), np.float16)})
    assert mine.done() == set() and theirs.done() == {(0, 4)}
    mine.write(0, 4, {"visual": np.zeros((4, 2), np.float16)})
    merged = mine.merge([(0, 4)], ["visual"])
    assert not np.load(merged["visual"]).any()
    assert not list(tmp_path.glob("part-*"))  # the other run's part is gone too


def test_concurrent_registrations_lose_no_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCENESEEK_ENGINE", "torch")  # the registry's lock, not ONNX exports
    checkpoint = tmp_path / "base.safetensors"
    checkpoint.write_bytes(bytes(4 * 2**20))
    ws = Workspace(tmp_path / "ws")
    ModelRegistry(ws, checkpoint).versions()
    start = threading.Barrier(4)
    failures = []

    def register() -> None:
        start.wait()
        try:
            ModelRegistry(ws, checkpoint).register(checkpoint, 0)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=register) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    versions = ModelRegistry(ws, checkpoint).versions()
    assert [v.version for v in versions] == [0, 1, 2, 3, 4]
    assert all(Path(v.path).is_file() for v in versions[1:])


def test_scene_names_must_match_in_full(tmp_path: Path) -> None:
    from core.errors import WorkspaceError

    with pytest.raises(WorkspaceError, match="invalid scene name"):
        Workspace(tmp_path).scene("berkeley\n")


def test_atomic_writes_reach_the_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real(fd))
    with atomic_path(tmp_path / "a.json") as tmp:
        Path(tmp).write_text(json.dumps({"a": 1}))
    assert len(synced) == 2  # the file, then its folder
    assert json.loads((tmp_path / "a.json").read_text()) == {"a": 1}
