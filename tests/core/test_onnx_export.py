"""ONNX towers of the shipped model: same vectors as torch, keyed cache, no trust in bad files."""

import logging
import shutil

import numpy as np
import pytest
import torch

from core.errors import ConfigError
from core.learn.data.sources import load_dataset
from core.model import onnx_export
from core.model.checkpoint import load_checkpoint
from core.model.factory import create_model
from core.model.inference import load_towers, resolve_engine, torch_towers
from core.model.onnx_export import ensure_exported, graph_path, tower_fingerprint
from core.model.transforms import ImageTransform, load_image

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def model(model_checkpoint):
    return load_checkpoint(model_checkpoint)[0]


@pytest.fixture(scope="module")
def cache(model, tmp_path_factory):
    """Both towers exported (and verified) once for the module."""
    folder = tmp_path_factory.mktemp("onnx")
    paths = ensure_exported(model, folder)
    assert all(paths.values()), paths
    return folder


@pytest.fixture(scope="module")
def rsicd(data_root):
    return load_dataset("rsicd", "test", data_root)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_onnx_and_torch_vectors_agree_on_real_images_and_captions(model, cache, rsicd):
    onnx, torch_ = load_towers(model, CPU, "onnx", cache), torch_towers(model, CPU)
    assert (onnx.engine, torch_.engine) == ("onnx", "torch")
    transform = ImageTransform(model.cfg.preprocess, train=False)
    images = torch.stack([transform(load_image(p)) for p in rsicd.image_paths[:12:2]])
    for batch in (images, images[:1]):
        ours, theirs = onnx.image(batch), torch_.image(batch)
        assert set(ours) == set(theirs) == {"visual", "gate"}
        for name in ours:
            assert cosines(ours[name], theirs[name]).min() >= 0.9999
    captions = list(rsicd.captions[:40:3])
    for batch in (captions, captions[:1], ["a"]):
        tokens = model.tokenize(batch)
        assert cosines(onnx.text(tokens), torch_.text(tokens)).min() >= 0.9999


def test_cache_key_follows_each_towers_own_weights(model, model_checkpoint):
    image, text = tower_fingerprint(model, "image"), tower_fingerprint(model, "text")
    other = create_model(model.cfg)  # same architecture, fresh heads: another checkpoint
    assert tower_fingerprint(other, "image") != image
    assert tower_fingerprint(other, "text") != text
    tuned = load_checkpoint(model_checkpoint)[0]
    with torch.no_grad():
        tuned.text.proj.weight[0, 0] += 1e-3  # a text-only fine-tune
    assert tower_fingerprint(tuned, "text") != text
    assert tower_fingerprint(tuned, "image") == image
    with torch.no_grad():
        tuned.mvsa.mask.bias[0] += 1e-3
    assert tower_fingerprint(tuned, "image") != image
    tuned = load_checkpoint(model_checkpoint)[0].to(memory_format=torch.channels_last)
    assert tower_fingerprint(tuned, "image") == image  # the layout is not the weights


def test_broken_cache_files_are_exported_again(model, cache, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SCENESEEK_CACHE", str(tmp_path / "user"))  # no good copy to take
    folder = tmp_path / "cache"
    shutil.copytree(cache, folder)
    text = graph_path(folder, "text", tower_fingerprint(model, "text"))
    image = graph_path(folder, "image", tower_fingerprint(model, "image"))
    image_bytes = image.read_bytes()
    text.write_bytes(text.read_bytes()[: text.stat().st_size // 2])  # truncated
    with caplog.at_level(logging.INFO, logger=onnx_export.__name__):
        paths = ensure_exported(model, folder)
    assert paths == {"image": image, "text": text}
    assert "truncated or replaced" in caplog.text
    assert "exporting the text tower" in caplog.text
    assert "exporting the image tower" not in caplog.text  # untouched, still trusted
    assert image.read_bytes() == image_bytes
    assert load_towers(model, CPU, "onnx", folder).engine == "onnx"

    caplog.clear()
    text.with_suffix(".json").write_text("{ garbage")  # garbage record
    with caplog.at_level(logging.INFO, logger=onnx_export.__name__):
        ensure_exported(model, folder)
    assert "unreadable ONNX cache record" in caplog.text
    assert "exporting the text tower" in caplog.text
    assert "exporting the image tower" not in caplog.text
    assert load_towers(model, CPU, "onnx", folder).engine == "onnx"


def test_refused_export_falls_back_to_torch_with_a_clear_message(
    model, tmp_path, monkeypatch, caplog
):
    monkeypatch.setattr(onnx_export, "MIN_COSINE", 2.0)  # no graph can pass
    with caplog.at_level(logging.WARNING, logger=onnx_export.__name__):
        towers = load_towers(model, CPU, "onnx", tmp_path)
    assert towers.engine == "torch"
    assert "ONNX export of the image tower refused: its vectors match torch's only to" in (
        caplog.text
    )
    assert "the text tower runs on torch" in caplog.text
    assert not list(tmp_path.glob("*.onnx"))  # nothing unverified is left to be trusted
    tokens = model.tokenize(["a baseball field"])
    np.testing.assert_array_equal(towers.text(tokens), torch_towers(model, CPU).text(tokens))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=onnx_export.__name__):
        assert load_towers(model, CPU, "onnx", tmp_path).engine == "torch"
    assert "exporting" not in caplog.text  # the refusal is remembered, not retried
    assert "refused" in caplog.text


def test_engine_choice(monkeypatch):
    monkeypatch.delenv("SCENESEEK_ENGINE", raising=False)
    assert resolve_engine(None, CPU) == "onnx"
    assert resolve_engine(None, torch.device("cuda")) == "torch"
    assert resolve_engine("torch", CPU) == "torch"
    monkeypatch.setenv("SCENESEEK_ENGINE", "torch")
    assert resolve_engine(None, CPU) == "torch"
    assert resolve_engine("onnx", CPU) == "onnx"
    with pytest.raises(ConfigError, match="runs on the CPU"):
        resolve_engine("onnx", torch.device("cuda"))
    with pytest.raises(ConfigError, match="unknown engine"):
        resolve_engine("tensorrt", CPU)


def test_a_new_cache_takes_verified_graphs_from_the_user_cache(model, tmp_path, caplog):
    first, second = tmp_path / "ws1" / "onnx", tmp_path / "ws2" / "onnx"
    ensure_exported(model, first)  # exports, or takes them from the session's user cache
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=onnx_export.__name__):
        paths = ensure_exported(model, second)
    assert "exporting" not in caplog.text
    for path in paths.values():
        assert path.parent == second
        assert path.read_bytes() == (first / path.name).read_bytes()
