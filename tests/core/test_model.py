"""AMFMN model: shapes for every combination, exact factorised scoring, frozen-prefix split."""

from dataclasses import replace

import pytest
import torch

from core.model.attention import ATTENTIONS, SoftAttention, pairwise_cosine, soft_scores
from core.model.backbones import ResNet18, build_backbone
from core.model.config import AMFMNCfg, TextCfg, VisionCfg
from core.model.factory import create_model, get_model_config, list_models
from core.model.vocab import Vocabulary

CAPTIONS = ["many planes are parked next to a long building in an airport .", "a baseball field ."]
VOCAB = Vocabulary.build(CAPTIONS)


@pytest.mark.parametrize("backbone", ["efficientnet_lite0", "resnet18"])
@pytest.mark.parametrize("encoder", ["minilm", "bigru"])
@pytest.mark.parametrize("attention", ["soft", "fusion", "similarity"])
def test_shapes_for_every_combination(backbone, encoder, attention):
    cfg = AMFMNCfg(
        attention=attention, vision=VisionCfg(backbone=backbone), text=TextCfg(encoder=encoder)
    )
    model = create_model(cfg, vocab=VOCAB, allow_random_init=True).eval()
    with torch.no_grad():
        feats = model.backbone(torch.randn(2, 3, 256, 256))
        spec = model.backbone.spec
        assert feats.low.shape == (2, spec.low_channels, 64, 64)
        assert feats.high.shape == (2, spec.high_channels, 16, 16)
        assert feats.pooled.shape == (2, spec.pooled_channels)
        visual = model.visual_from_features(feats)
        text = model.encode_text(model.tokenize(CAPTIONS + ["tennis court"]))
        scores = model.scores(visual, text)
    assert visual.shape == (2, 512) and text.shape == (3, 512)
    assert scores.shape == (2, 3)
    assert torch.all(scores.abs() <= 1 + 1e-5)


@pytest.mark.parametrize("attention", sorted(ATTENTIONS))
def test_scores_equal_pairwise_reference(attention):
    torch.manual_seed(0)
    module = ATTENTIONS[attention](64)
    visual, text = torch.randn(37, 64), torch.randn(53, 64)
    reference = pairwise_cosine(visual, module.pairwise(visual, text))
    torch.testing.assert_close(module.scores(visual, text), reference, atol=1e-5, rtol=0)


def test_soft_factorisation_is_exact_and_never_builds_nmd():
    torch.manual_seed(1)
    soft = SoftAttention(512)
    visual, text = torch.randn(300, 512), torch.randn(400, 512)
    gates = soft.gates(visual)
    reference = pairwise_cosine(visual, gates.unsqueeze(1) * text.unsqueeze(0))
    torch.testing.assert_close(soft_scores(visual, gates, text), reference, atol=1e-5, rtol=0)


def test_official_shapes_match_resnet18_paper_channels():
    net = build_backbone("resnet18", None, allow_random_init=True)
    assert isinstance(net, ResNet18)
    assert (net.spec.low_channels, net.spec.high_channels) == (192, 768)


def test_resnet18_refuses_random_init_outside_tests():
    from core.errors import WeightsNotFoundError

    with pytest.raises(WeightsNotFoundError, match="weights_path"):
        build_backbone("resnet18", None, allow_random_init=False)


def test_resnet18_loads_torchvision_layout(tmp_path):
    source = ResNet18()
    state = {}
    names = {
        "0.conv1": "conv1",
        "0.bn1": "bn1",
        "0.layer1": "layer1",
        "1": "layer2",
        "2": "layer3",
        "3": "layer4",
    }
    for key, value in source.stages.state_dict().items():
        for ours, theirs in sorted(names.items(), key=lambda kv: -len(kv[0])):
            if key.startswith(ours + "."):
                state[theirs + key[len(ours) :]] = value
                break
    state["fc.weight"] = torch.zeros(1000, 512)
    torch.save(state, tmp_path / "r18.pth")
    loaded = ResNet18()
    loaded.load_torchvision_state(tmp_path / "r18.pth")
    for a, b in zip(source.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_prefix_then_suffix_equals_full_forward():
    model = create_model(get_model_config("amfmn-lite0-minilm")).eval()
    images = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        full = model.encode_image(images)
        taps = model.backbone.prefix(images, model.frozen_stages)
        split = model.visual_from_features(model.backbone.forward_from(model.frozen_stages, taps))
        tokens = model.tokenize(CAPTIONS)
        text_full = model.encode_text(tokens)
        text_split = model.text.forward_from(*model.text.prefix(tokens))
    torch.testing.assert_close(full, split, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(text_full, text_split)


def test_minilm_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    from core.model.text import minilm_path

    model = create_model(get_model_config("amfmn-lite0-minilm")).eval()
    reference = SentenceTransformer(str(minilm_path()), device="cpu").encode(
        CAPTIONS, convert_to_tensor=True
    )
    with torch.no_grad():
        tokens = model.tokenize(CAPTIONS)
        ours = model.text.sentence_vectors(*model.text.prefix(tokens))
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)


def test_only_configured_parts_are_trainable():
    frozen = create_model(
        replace(
            get_model_config("amfmn-lite0-minilm"),
            vision=VisionCfg(trainable_stages=0),
            text=TextCfg(trainable_layers=0),
        )
    )
    assert not any(p.requires_grad for p in frozen.backbone.parameters())
    assert not any(p.requires_grad for p in frozen.text.bert.parameters())
    tuned = create_model(get_model_config("amfmn-lite0-minilm"))
    trainable = [
        i
        for i, s in enumerate(tuned.backbone.stages)
        if any(p.requires_grad for p in s.parameters())
    ]
    assert trainable == [4]
    tuned.train()
    assert not tuned.backbone.stages[0].training and tuned.backbone.stages[4].training


def test_registry_lists_configs():
    assert {"amfmn-lite0-minilm", "amfmn-resnet18-bigru"} <= set(list_models())
