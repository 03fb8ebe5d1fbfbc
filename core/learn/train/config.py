"""Training run configuration: one frozen dataclass, saved beside every run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class TrainCfg:
    """How a model is trained. Defaults are the recipe of the shipped model.

    The paper's schedule (Adam, lr 2e-4, x0.7 every 20 epochs) is the starting point; the
    pretrained parts (backbone stages, MiniLM layers) train with ``pretrained_lr_scale``.
    """

    datasets: tuple[str, ...] = ("rsicd", "ucm")
    model: str = "amfmn-lite0-minilm"
    epochs: int = 16
    batch_size: int = 128
    lr: float = 2e-4
    lr_decay: float = 0.7
    decay_every: int = 6
    pretrained_lr_scale: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 2.0
    negatives: Literal["sum", "hardest"] = "hardest"
    sum_warmup_epochs: int = 1
    margin: Literal["dynamic", "fixed"] = "dynamic"
    fixed_margin: float = 0.2
    gamma: float = 0.6
    beta: float = 5.0
    val_fraction: float = 0.05
    augment: bool = True
    # Image-space views cached per training image (see ``features.VIEW_CODES``); each step
    # draws one of them per image. 1 is the shipped recipe.
    views: int = 1
    # Turn cached features in feature space as augmentation. Sound only while the trained
    # backbone part is pointwise (the 1x1 head): CNN features are not rotation-equivariant,
    # so turned stride-16 maps are not the features of a turned image (real ones: ``views``).
    feature_turns: bool = True
    seed: int = 0
    workers: int = 2

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form for ``run.json`` and checkpoint metadata."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainCfg:
        """Inverse of ``to_dict``."""
        values = dict(data)
        values["datasets"] = tuple(values["datasets"])
        return cls(**values)
