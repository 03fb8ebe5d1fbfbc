"""The shipped model: verified by checksum, loadable offline without shared data, and its card's
scores reproduce."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.model.shipped import MODELS_DIR, PRETRAINED, resolve_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SCORES = MODELS_DIR / "scores.json"


def test_default_is_registered_small_and_checksummed():
    path = resolve_checkpoint("default")
    assert path.stat().st_size < 30 * 1024 * 1024
    entry = PRETRAINED["amfmn-lite0-minilm"]["default"]
    assert entry["sha256"] in (MODELS_DIR / "README.md").read_text()


def test_loads_offline_without_shared_data(tmp_path):
    code = (
        "import torch; from core.model.shipped import resolve_checkpoint; "
        "from core.model.checkpoint import load_checkpoint; "
        "m, _ = load_checkpoint(resolve_checkpoint('default')); "
        "v = m.encode_image(torch.zeros(1, 3, 256, 256)); t = m.encode_text(m.tokenize(['a port'])); "
        "print(tuple(m.scores(v, t).shape))"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "SCENESEEK_DATA": str(tmp_path / "none"),
        "NO_PROXY": "*",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(1, 1)"


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["ucm", "rsicd"])
def test_evaluate_reproduces_the_card(dataset):
    expected = json.loads(SCORES.read_text())[dataset]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "evaluate",
            "--dataset",
            dataset,
            "--split",
            "test",
            "--checkpoint",
            "default",
            "--json",
            "--device",
            "cpu",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["n_images"] == expected["n_images"] and got["n_captions"] == expected["n_captions"]
    assert abs(got["mR"] - expected["mR"]) <= 0.1
    for direction in ("i2t", "t2i"):
        for k in ("r1", "r5", "r10"):
            assert abs(got[direction][k] - expected[direction][k]) <= 0.1
