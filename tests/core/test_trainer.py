"""Training on real images: the loss goes down; a killed run resumes, and a finished run
extends, to the same model as an uninterrupted run."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from core.learn.data.sources import load_dataset
from core.learn.train.features import image_cache, text_cache
from core.learn.train.loss import triplet_loss
from core.model.factory import create_model

ROOT = Path(__file__).resolve().parents[2]


def _subset(data_root: Path, dst: Path, n_train: int, n_test: int) -> Path:
    """A small RSICD in the precomp layout, pointing at the shared images (no copies)."""
    src = data_root / "rsicd" / "precomp"
    (dst / "rsicd" / "precomp").mkdir(parents=True)
    (dst / "rsicd" / "images").symlink_to(data_root / "rsicd" / "images")
    names = (src / "train_filename.txt").read_text().splitlines()[::40][:n_train]
    caps = (src / "train_caps.txt").read_text().splitlines()
    index = {n: i for i, n in enumerate((src / "train_filename.txt").read_text().splitlines())}
    (dst / "rsicd/precomp/train_filename.txt").write_text("\n".join(names) + "\n")
    (dst / "rsicd/precomp/train_caps.txt").write_text(
        "\n".join(c for n in names for c in caps[5 * index[n] : 5 * index[n] + 5]) + "\n"
    )
    for kind in ("filename", "caps"):
        lines = (src / f"test_{kind}.txt").read_text().splitlines()[: 5 * n_test]
        (dst / f"rsicd/precomp/test_{kind}.txt").write_text("\n".join(lines) + "\n")
    return dst


@pytest.mark.slow
def test_optimisation_steps_on_real_images_reduce_the_loss(data_root, tmp_path):
    torch.manual_seed(0)
    data = load_dataset("rsicd", "train", _subset(data_root, tmp_path / "data", 48, 1))
    model = create_model("amfmn-lite0-minilm")
    images = image_cache(model, data, tmp_path / "cache", torch.device("cpu"), workers=0)
    texts = text_cache(model, data, tmp_path / "cache", torch.device("cpu"))
    captions = torch.tensor([int(data.captions_of(i)[0]) for i in range(data.n_images)])
    positives = torch.eye(data.n_images, dtype=torch.bool)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-3)
    model.train()
    losses = []
    for _ in range(8):
        taps = images.batch(torch.arange(data.n_images), torch.device("cpu"))
        visual = model.visual_from_features(model.backbone.forward_from(model.frozen_stages, taps))
        text = model.text.forward_from(*texts.batch(captions))
        loss = triplet_loss(model.scores(visual, text), positives, 0.2, "sum")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def _train(out: Path, data: Path, cache: Path, epochs: int = 3) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "core",
        "train",
        "--dataset",
        "rsicd",
        "--out",
        str(out),
        "--cache",
        str(cache),
        "--epochs",
        str(epochs),
        "--batch-size",
        "16",
        "--workers",
        "0",
        "--device",
        "cpu",
    ]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**__import__("os").environ, "SCENESEEK_DATA": str(data)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def small_run(data_root, tmp_path_factory) -> tuple[Path, Path, Path]:
    """A clean 3-epoch run on a small RSICD subset: (data, cache, run folder)."""
    tmp = tmp_path_factory.mktemp("train")
    data = _subset(data_root, tmp / "data", 64, 1)
    cache = tmp / "cache"
    clean = _train(tmp / "clean", data, cache)
    assert clean.wait(timeout=900) == 0, clean.stdout.read()
    return data, cache, tmp / "clean"


def _assert_same_model(run: Path, other: Path) -> None:
    logs = [json.loads(line) for line in (other / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in logs] == [1, 2, 3]
    a, b = load_file(run / "last.safetensors"), load_file(other / "last.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_killed_training_resumes_to_the_same_model(small_run, tmp_path):
    data, cache, clean = small_run
    killed = _train(tmp_path / "killed", data, cache)
    log = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.time() + 600
    while not log.exists() and time.time() < deadline:
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    epochs_done = len((tmp_path / "killed" / "metrics.jsonl").read_text().splitlines())
    assert 1 <= epochs_done < 3
    resumed = _train(tmp_path / "killed", data, cache)
    output = resumed.communicate(timeout=900)[0]
    assert resumed.returncode == 0, output
    assert "resuming" in output
    _assert_same_model(clean, tmp_path / "killed")


@pytest.mark.slow
def test_a_finished_run_extended_by_one_epoch_matches_the_longer_run(small_run, tmp_path):
    data, cache, clean = small_run
    short = _train(tmp_path / "run", data, cache, epochs=2)
    assert short.wait(timeout=900) == 0, short.stdout.read()
    extended = _train(tmp_path / "run", data, cache, epochs=3)
    output = extended.communicate(timeout=900)[0]
    assert extended.returncode == 0, output
    assert "epochs 2 -> 3" in output
    assert json.loads((tmp_path / "run" / "run.json").read_text())["train"]["epochs"] == 3
    _assert_same_model(clean, tmp_path / "run")
