"""Typed model configuration: everything needed to rebuild a model from a checkpoint.

The dataclasses here are the single source of truth for architecture choices; JSON files in
``core/configs/`` name common combinations, and every checkpoint embeds the full config so
``factory.load_checkpoint`` needs no extra flags (an extension of open_clip's pattern).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Backbone = Literal["efficientnet_lite0", "resnet18"]
TextEncoderKind = Literal["minilm", "bigru"]
AttentionKind = Literal["soft", "fusion", "similarity"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PreprocessCfg:
    """How pixels become tensors; travels with the model so callers never hard-code it.

    The paper trains on random 256 crops of images resized to 278 and tests on 256 resizes.
    """

    image_size: int = 256
    train_resize: int = 278
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True)
class VisionCfg:
    """Image tower: a CNN backbone wired into AMFMN's low / high / global feature sets."""

    backbone: Backbone = "efficientnet_lite0"
    # Path to a ResNet-18 state dict (torchvision layout); None means ImageNet weights are
    # required from the installed package for EfficientNet and random init for ResNet-18
    # (which is refused outside tests by the factory).
    weights_path: str | None = None
    mvsa_channels: int = 256  # official opt['multiscale']['multiscale_input_channel']
    mvsa_out_channels: int = 1  # official opt['multiscale']['multiscale_output_channel']
    # Backbone stages left trainable, counted from the end (0 = frozen backbone).
    trainable_stages: int = 0


@dataclass(frozen=True)
class TextCfg:
    """Text tower: MiniLM sentence encoder (default) or the paper's BiGRU."""

    encoder: TextEncoderKind = "minilm"
    # MiniLM: how many of its top transformer layers are fine-tuned (0 = frozen).
    trainable_layers: int = 0
    max_tokens: int = 48
    # BiGRU (paper): 300-d word embeddings, hidden 512, directions averaged.
    word_dim: int = 300
    gru_hidden: int = 512
    vocab_min_count: int = 1
    dropout: float = 0.1


@dataclass(frozen=True)
class AMFMNCfg:
    """Whole-model configuration."""

    embed_dim: int = 512
    attention: AttentionKind = "soft"
    vision: VisionCfg = field(default_factory=VisionCfg)
    text: TextCfg = field(default_factory=TextCfg)
    preprocess: PreprocessCfg = field(default_factory=PreprocessCfg)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, for checkpoints and model cards."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AMFMNCfg:
        """Rebuild from ``to_dict`` output, rejecting unknown keys so typos fail loudly.

        Raises:
            ConfigError: if a key is unknown or a value has the wrong shape.
        """
        from core.errors import ConfigError

        def build(klass: type, values: dict[str, Any]) -> Any:
            known = {f.name for f in fields(klass)}
            unknown = set(values) - known
            if unknown:
                raise ConfigError(f"unknown {klass.__name__} keys: {sorted(unknown)}")
            return klass(**values)

        values = dict(data)
        try:
            vision = build(VisionCfg, values.pop("vision", {}))
            text = build(TextCfg, values.pop("text", {}))
            pre = dict(values.pop("preprocess", {}))
            for key in ("mean", "std"):
                if key in pre:
                    pre[key] = tuple(pre[key])
            preprocess = build(PreprocessCfg, pre)
            return build(cls, {**values, "vision": vision, "text": text, "preprocess": preprocess})
        except TypeError as exc:
            raise ConfigError(f"malformed model config: {exc}") from exc
