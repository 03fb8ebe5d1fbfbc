"""Two ingests of one scene name started together: one writes, the other fails at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.store.workspace import Workspace
from tests.app.conftest import ROOT, SMALL_NAME, SMALL_SCENE
from tiles import read_catalog

pytestmark = pytest.mark.slow


def test_the_ready_scene_equals_a_solo_ingest_and_the_loser_exits_2(
    env: Workspace, ingested: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "core",
        "ingest",
        str(SMALL_SCENE),
        "--workspace",
        str(env.root),
        "--name",
        SMALL_NAME,
        "--tile-size",
        "64,128",
        "--workers",
        "0",
        "--device",
        "cpu",
    ]
    runs = [
        subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=600) for run in runs]
    codes = [run.returncode for run in runs]
    assert sorted(codes) == [0, 2], outputs
    loser = outputs[codes.index(2)][1]
    assert loser.startswith(f"error: scene {SMALL_NAME} is being written by pid "), loser
    assert "Traceback" not in loser
    raced, solo = env.scene(SMALL_NAME), Workspace(ingested).scene(SMALL_NAME)
    assert raced.is_ready()
    a, b = raced.read_manifest(), solo.read_manifest()
    assert (a.n_tiles, a.model, a.fingerprint["tiling"]) == (
        b.n_tiles,
        b.model,
        b.fingerprint["tiling"],
    )
    assert (
        read_catalog(raced.catalog)
        .drop(columns="geometry")
        .equals(read_catalog(solo.catalog).drop(columns="geometry"))
    )
    for name in ("visual.npy", "gate.npy"):
        np.testing.assert_allclose(
            np.load(raced.embeddings / name), np.load(solo.embeddings / name), atol=2e-3
        )
    assert not list(raced.embeddings.glob("part-*"))
