"""Evaluation encoding: captions batched by length come back in their own order, unchanged."""

import numpy as np
import torch

from core.learn.eval.evaluate import encode_captions
from core.model.checkpoint import load_checkpoint

CAPTIONS = [
    "many green trees and several buildings are around a playground with a red running track",
    "a port",
    "some cars are parked in a parking lot next to a road with a few trees on both sides",
    "a baseball field",
    "two storage tanks",
]


def test_captions_batched_by_length_match_one_by_one(model_checkpoint):
    model = load_checkpoint(model_checkpoint)[0]
    cpu = torch.device("cpu")
    batched = encode_captions(model, CAPTIONS, cpu, batch_size=2).numpy()
    with torch.inference_mode():
        alone = np.stack([model.encode_text(model.tokenize([c]))[0].numpy() for c in CAPTIONS])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert encode_captions(model, [], cpu).shape == (0, model.cfg.embed_dim)
