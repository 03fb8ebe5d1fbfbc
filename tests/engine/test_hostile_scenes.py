"""``python -m core ingest`` of hostile scenes: one ``error:`` line, exit status 2, nothing kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.store.workspace import Workspace
from tests.tiles.block_bomb import make_block_bomb
from tests.tiles.conftest import write_scene

pytestmark = pytest.mark.slow  # each runs the CLI in a fresh interpreter

REPO = Path(__file__).resolve().parents[2]
# Runs a command as its only child and reports that child's peak RSS.
RUNNER = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
print(json.dumps({"rc": done.returncode, "err": done.stderr, "peak": peak}))
"""


def ingest_cli(scene: Path, workspace: Path, model: Path) -> dict:
    command = [sys.executable, "-m", "core", "ingest", str(scene), "--workspace", str(workspace)]
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SCENESEEK_MODEL": str(model)},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def error_lines(result: dict) -> list[str]:
    return [line for line in result["err"].splitlines() if line.startswith("error:")]


def test_a_one_block_bomb_is_refused_before_the_model_loads(
    tmp_path: Path, model_checkpoint: Path
) -> None:
    bomb = make_block_bomb(tmp_path / "bomb.tif", 16_384)  # 768 MB in one tile
    text = tmp_path / "notes.tif"
    text.write_text("not an image\n")
    workspace = tmp_path / "ws"
    baseline = ingest_cli(text, workspace, model_checkpoint)  # refused with no pixel read
    assert baseline["rc"] == 2 and len(error_lines(baseline)) == 1, baseline
    result = ingest_cli(bomb, workspace, model_checkpoint)
    assert result["rc"] == 2, result
    (line,) = result["err"].strip().splitlines()  # nothing else: no model was loaded
    assert line.startswith(f"error: {bomb} stores its pixels in blocks of 16,384 x 16,384 px")
    assert "gdal_translate -co TILED=YES" in line and "SCENESEEK_MAX_BLOCK_MB" in line
    assert result["peak"] < baseline["peak"] + 100 * 2**20, (result["peak"], baseline["peak"])
    assert Workspace(workspace).scene_names() == []


def test_a_constant_scene_is_refused_with_one_error_line(
    tmp_path: Path, model_checkpoint: Path
) -> None:
    path = write_scene(tmp_path / "grey.tif", np.full((3, 2048, 2048), 128, np.uint8))
    result = ingest_cli(path, tmp_path / "ws", model_checkpoint)
    assert result["rc"] == 2, result
    (line,) = error_lines(result)
    assert result["err"].strip().endswith(line)
    assert "every valid pixel holds the same value" in line and "band 1: 128" in line
    assert Workspace(tmp_path / "ws").scene_names() == []
