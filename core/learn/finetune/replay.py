"""A fixed sample of the base training data, replayed so fine-tuning does not forget."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.learn.data.captions import CaptionSet, concat
from core.learn.data.sources import load_dataset
from core.learn.train.prior import PriorSimilarity
from core.model.amfmn import AMFMN
from core.model.transforms import ImageTransform


@dataclass
class Replay:
    """A fixed sample of the base training data with its frozen features."""

    captions: CaptionSet
    taps: list[torch.Tensor]
    prior: PriorSimilarity


@torch.no_grad()
def build_replay(model: AMFMN, n_images: int, seed: int, data_root: Path | None) -> Replay:
    """Sample base training images and compute their frozen-prefix features once."""
    base = concat([load_dataset(name, "train", data_root) for name in ("rsicd", "ucm")])
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(base.n_images, size=min(n_images, base.n_images), replace=False))
    sample = base.subset(chosen)
    transform = ImageTransform(model.cfg.preprocess, train=False)
    from core.model.transforms import load_image

    taps: list[list[torch.Tensor]] = []
    for start in range(0, sample.n_images, 32):
        images = torch.stack(
            [transform(load_image(p)) for p in sample.image_paths[start : start + 32]]
        )
        taps.append(model.backbone.prefix(images, model.frozen_stages))
    stacked = [torch.cat([t[k] for t in taps]) for k in range(model.frozen_stages)]
    return Replay(sample, stacked, PriorSimilarity.from_caption_set(sample))
