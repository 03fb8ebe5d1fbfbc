"""Per-query adapters: the kernel, the threshold's measurement, checkpoints, engines, training."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.learn.finetune.config import FinetuneCfg
from core.learn.finetune.loop import add_adapters, trainable_parameters
from core.model.adapters import DEFAULT_TAU
from core.model.checkpoint import (
    checkpoint_image_tower,
    checkpoint_scene_key,
    load_checkpoint,
    save_checkpoint,
    scene_fingerprint,
    trained_state,
)
from core.model.inference import load_towers, torch_towers
from core.model.reference_captions import REFERENCE_TERMS

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def adapted(model_checkpoint, tmp_path_factory):
    """The shipped model with a trained-looking adapter for "marina", saved and loaded back."""
    model, _ = load_checkpoint(model_checkpoint)
    add_adapters(model, {"marina"}, DEFAULT_TAU)
    with torch.no_grad():
        model.adapters.deltas.copy_(0.3 * torch.randn(model.adapters.deltas.shape))
    path = save_checkpoint(model, tmp_path_factory.mktemp("adapted") / "v1.safetensors")
    return model, path


@torch.no_grad()
def test_default_threshold_is_the_99th_percentile_of_unrelated_terms(model_checkpoint):
    model, _ = load_checkpoint(model_checkpoint)
    terms = F.normalize(model.encode_text(model.tokenize(list(REFERENCE_TERMS))), dim=-1)
    cosines = (terms @ terms.T).numpy()[np.triu_indices(len(REFERENCE_TERMS), 1)]
    assert abs(np.percentile(cosines, 99) - DEFAULT_TAU) < 0.01


@torch.no_grad()
def test_the_kernel_is_1_at_the_anchor_and_exactly_0_for_an_unrelated_query(adapted):
    model, _ = adapted
    raw = model.encode_text(model.tokenize(["marina", "a dense forest with dark green trees"]))
    weights = model.adapters.weights(raw)[:, 0]
    assert weights[0].item() == pytest.approx(1.0, abs=1e-6) and weights[1].item() == 0.0
    out = model.adapters(raw)
    assert torch.equal(out[1], raw[1])  # untouched bit for bit
    assert F.cosine_similarity(out[0], raw[0], dim=0) < 0.99  # the anchor moved
    assert out[0].norm().item() == pytest.approx(raw[0].norm().item(), rel=1e-5)


def test_a_checkpoint_with_adapters_round_trips(adapted, model_checkpoint):
    model, path = adapted
    loaded, info = load_checkpoint(path)
    assert info.adapters == ["marina"] == loaded.adapters.queries
    for key in ("anchors", "deltas", "tau"):
        assert torch.equal(getattr(loaded.adapters, key), getattr(model.adapters, key))
    assert checkpoint_scene_key(path) == checkpoint_scene_key(model_checkpoint)
    assert checkpoint_scene_key(path) == scene_fingerprint(loaded)
    assert checkpoint_image_tower(path) == checkpoint_image_tower(model_checkpoint)
    half, _ = load_checkpoint(save_checkpoint(loaded, path.with_name("half"), dtype=torch.float16))
    assert half.adapters.queries == ["marina"]  # as ``python -m core export --half`` ships it
    torch.testing.assert_close(half.adapters.deltas, model.adapters.deltas, atol=1e-3, rtol=1e-2)
    parent, _ = load_checkpoint(model_checkpoint)  # a model without adapters saves none
    assert not any(k.startswith("adapters.") for k in trained_state(parent))


@pytest.mark.slow  # exports the text tower to ONNX
def test_onnx_and_torch_give_the_same_adapted_vector(adapted, tmp_path):
    model, _ = adapted
    tokens = model.tokenize(["marina", "a marina with boats", "a parking lot"])
    by_torch = torch_towers(model, CPU).encode_query(tokens)
    onnx = load_towers(model, CPU, "onnx", tmp_path)
    assert onnx.text.engine == "onnx"
    by_onnx = onnx.encode_query(tokens)
    cosine = (by_torch * by_onnx).sum(1) / np.linalg.norm(by_torch, axis=1)
    cosine /= np.linalg.norm(by_onnx, axis=1)
    assert cosine.min() >= 0.9999
    with torch.no_grad():
        raw = model.encode_text(tokens).numpy()
    assert 1 - (by_torch[0] @ raw[0]) / np.linalg.norm(by_torch[0]) / np.linalg.norm(raw[0]) > 0.01


def test_a_new_fine_tune_keeps_the_adapters_of_queries_not_trained_again(adapted, model_checkpoint):
    _, path = adapted
    model, _ = load_checkpoint(path)
    kept = model.adapters.deltas.detach().clone()
    groups = trainable_parameters(model, FinetuneCfg(), {"woodland", "marina"})
    assert model.adapters.queries == ["marina", "woodland"]
    assert len(groups) == 1
    assert model.adapters.learning.tolist() == [True, True]
    groups = trainable_parameters(model, FinetuneCfg(), {"woodland"})
    assert len(groups) == 1
    assert model.adapters.learning.tolist() == [False, True]
    assert torch.allclose(model.adapters.pull(), model.adapters.deltas[1].pow(2).sum())
    optimizer = torch.optim.Adam(groups)
    vectors = model.adapters(model.encode_text(model.tokenize(["marina", "woodland"])))
    vectors.sum().backward()
    optimizer.step()
    assert torch.equal(model.adapters.deltas[0], kept[0])
    assert not torch.equal(model.adapters.deltas[1], torch.zeros_like(kept[0]))
    assert not any(p.requires_grad for p in model.text.parameters())
    assert not any(p.requires_grad for p in model.attention.parameters())
