"""Names turn into models: the config registry and model construction.

Mirrors open_clip's factory: every JSON in ``core/model/configs`` is a named architecture;
``create_model`` resolves a name or config and builds the model with pretrained weights from
installed packages. The tokenizer is the text tower's own (``AMFMN.tokenize``) and the image
transforms derive from ``model.cfg.preprocess`` (``core.model.transforms``).
"""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import ConfigError
from core.model.amfmn import AMFMN
from core.model.backbones import build_backbone
from core.model.config import AMFMNCfg
from core.model.text import BiGRUText, MiniLMText, TextTower
from core.model.vocab import Vocabulary

CONFIG_DIR = Path(__file__).with_name("configs")
_REGISTRY: dict[str, AMFMNCfg] = {}


def _load_registry() -> None:
    for path in sorted(CONFIG_DIR.glob("*.json")):
        _REGISTRY[path.stem] = AMFMNCfg.from_dict(json.loads(path.read_text()))


def list_models() -> list[str]:
    """Names of the known architectures."""
    return sorted(_REGISTRY)


def get_model_config(name: str) -> AMFMNCfg:
    """Config of a named architecture.

    Raises:
        ConfigError: if the name is unknown.
    """
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(list_models())}")
    return _REGISTRY[name]


def create_model(
    cfg: AMFMNCfg | str,
    vocab: Vocabulary | None = None,
    allow_random_init: bool = False,
) -> AMFMN:
    """Build an AMFMN with pretrained backbone and text weights from installed packages.

    Args:
        cfg: a config or the name of one in ``core/configs``.
        vocab: the BiGRU vocabulary (required for ``text.encoder == "bigru"``).
        allow_random_init: let ResNet-18 start from random weights (tests only).

    Raises:
        ConfigError: for an unknown name or a BiGRU model without vocabulary.
        WeightsNotFoundError: when pretrained weights are missing.
    """
    if isinstance(cfg, str):
        cfg = get_model_config(cfg)
    backbone = build_backbone(cfg.vision.backbone, cfg.vision.weights_path, allow_random_init)
    text: TextTower
    if cfg.text.encoder == "minilm":
        text = MiniLMText(cfg.text, cfg.embed_dim)
    elif cfg.text.encoder == "bigru":
        if vocab is None:
            raise ConfigError(
                "a bigru text encoder needs a vocabulary built from training captions"
            )
        text = BiGRUText(cfg.text, cfg.embed_dim, vocab)
    else:
        raise ConfigError(f"unknown text encoder {cfg.text.encoder!r}")
    return AMFMN(cfg, backbone, text)


_load_registry()
