"""Checkpoints: round trip, no pickle, clear errors for foreign or mismatched files."""

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file, save_file

from core.errors import CheckpointError
from core.model.checkpoint import load_checkpoint, read_info, save_checkpoint
from core.model.factory import create_model, get_model_config


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = create_model(get_model_config("amfmn-lite0-minilm")).eval()
    with torch.no_grad():
        for p in m.mvsa.parameters():
            p.add_(0.01)
    return m


def test_round_trip_rebuilds_identical_model(model, tmp_path):
    path = save_checkpoint(model, tmp_path / "m.safetensors", {"epochs": 3}, {"mR": 12.5})
    loaded, info = load_checkpoint(path)
    assert info.training == {"epochs": 3} and info.metrics == {"mR": 12.5}
    assert info.config == model.cfg and len(info.sha256) == 64
    images = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        tokens = model.tokenize(["a port with boats"])
        torch.testing.assert_close(loaded(images, tokens), model(images, tokens))


def test_checkpoint_stores_only_trained_parts(model, tmp_path):
    path = save_checkpoint(model, tmp_path / "m.safetensors", dtype=torch.float16)
    keys = load_file(path).keys()
    assert not any(k.startswith(("backbone.stages.0", "text.bert.embeddings")) for k in keys)
    assert any(k.startswith("backbone.stages.4") for k in keys)
    assert path.stat().st_size < 30 * 1024 * 1024


def test_foreign_safetensors_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="not a SceneSeek"):
        read_info(path)


def test_garbage_file_is_refused(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="not a readable"):
        read_info(path)


def _rewrite_metadata(path, **changes):
    from safetensors import safe_open

    tensors = load_file(path)
    with safe_open(str(path), "pt") as f:
        meta = {**f.metadata(), **changes}
    save_file(tensors, str(path), metadata=meta)


def test_other_format_version_is_refused(model, tmp_path):
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    _rewrite_metadata(path, format_version="99")
    with pytest.raises(CheckpointError, match="format version 99"):
        read_info(path)


def test_other_architecture_is_refused(model, tmp_path):
    path = save_checkpoint(model, tmp_path / "m.safetensors")
    _rewrite_metadata(path, config=json.dumps(replace(model.cfg, attention="fusion").to_dict()))
    with pytest.raises(CheckpointError, match="does not match its architecture"):
        load_checkpoint(path)
