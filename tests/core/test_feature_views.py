"""Cached views: the trained stages get real features of turned images, lined up below."""

from pathlib import Path

import numpy as np
import pytest
import torch

from core.learn.data.sources import load_dataset
from core.learn.train.features import VIEW_CODES, image_cache, turn
from core.model.factory import create_model
from core.model.transforms import ImageTransform, load_image
from tests.core.test_trainer import _subset


def _layout(a: torch.Tensor, b: torch.Tensor) -> float:
    """Correlation of two feature maps' per-location energy: do they put things in one place?"""
    x, y = a.norm(dim=1).flatten(), b.norm(dim=1).flatten()
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / (x.norm() * y.norm()))


def test_turn_applies_each_rows_own_code():
    x = torch.arange(2 * 1 * 3 * 3, dtype=torch.float32).view(2, 1, 3, 3)
    out = turn(x, torch.tensor([0, 5]))
    assert torch.equal(out[0], x[0])
    assert torch.equal(out[1], torch.flip(torch.rot90(x[1], 1, dims=(1, 2)), dims=(2,)))
    # The eight codes are the eight symmetries of the square: all different.
    views = {tuple(turn(x[1:], torch.tensor([c])).flatten().tolist()) for c in range(8)}
    assert len(views) == 8


@pytest.mark.slow
def test_cached_views_are_the_backbone_on_turned_images(data_root: Path, tmp_path: Path):
    data = load_dataset("rsicd", "train", _subset(data_root, tmp_path / "data", 6, 1))
    model = create_model("amfmn-lite0-minilm")
    cache = image_cache(model, data, tmp_path / "cache", torch.device("cpu"), workers=0, views=3)
    assert cache.views == 3
    assert [t.shape[0] for t in cache.taps] == [data.n_images] * model.frozen_stages
    transform = ImageTransform(model.cfg.preprocess, train=False)
    image = transform(load_image(data.image_paths[4]))[None]
    with torch.inference_mode():
        unturned = model.backbone.prefix(image, model.frozen_stages)[:-1]
        for view, code in enumerate(VIEW_CODES[:3]):
            seen = turn(image, torch.tensor([code]))
            expected = model.backbone.prefix(seen, model.frozen_stages)
            got = cache.batch(torch.tensor([4]), torch.device("cpu"), torch.tensor([view]))
            # The trained stages' input is the backbone's output on the turned image...
            assert torch.allclose(got[-1], expected[-1], atol=2e-2, rtol=1e-2)
            # ...and the single-view stages below are turned so that where things are lines
            # up (their channels stay those of the unturned image: CNN features are not
            # rotation-equivariant, so only the layout can match).
            for low, want, plain in zip(got[:-1], expected[:-1], unturned, strict=True):
                if view:
                    assert _layout(low, want) > _layout(plain, want) + 0.2, view
    # A batch mixing views keeps each image's rows where they were asked for.    # A batch mixing views keeps each image's rows where they were asked for.
    mixed = cache.batch(torch.tensor([5, 0, 4]), torch.device("cpu"), torch.tensor([0, 2, 1]))
    plain = cache.batch(torch.tensor([5]), torch.device("cpu"))
    assert all(torch.equal(m[:1], p) for m, p in zip(mixed, plain, strict=True))
    assert not np.shares_memory(cache.taps[0], mixed[0].numpy())
