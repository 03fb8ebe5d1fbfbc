"""Synthetic tile vectors made from real ones, for benchmarks at scales no CPU can embed.

Each synthetic tile is a random convex mix of the model's vectors of two real images (RSICD
test), as a tile straddling two kinds of ground is, plus 5 % Gaussian noise. Gates are mixed
the same way. A block of rows depends only on the seed and its first row, so parts can be
made in any order and a resumed run makes the same rows.
"""

from __future__ import annotations

import numpy as np
import torch

from core.learn.data.sources import load_dataset
from core.learn.eval.evaluate import encode_images
from core.model.amfmn import AMFMN

NOISE = 0.05


def real_vectors(model: AMFMN, n_images: int) -> tuple[np.ndarray, np.ndarray]:
    """Visual vectors and gates of the first ``n_images`` RSICD test images."""
    data = load_dataset("rsicd", "test")
    paths = list(data.image_paths)[:n_images]
    visual = encode_images(model, paths, torch.device("cpu"), progress=False)
    with torch.no_grad():
        gates = model.image_gates(visual)
    return visual.numpy(), gates.numpy()


def mixed_vectors(
    visual: np.ndarray, gates: np.ndarray, start: int, stop: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Float16 visual vectors and gates of synthetic tiles ``start..stop-1``."""
    rng = np.random.Generator(np.random.Philox(key=seed, counter=[start, 0, 0, 0]))
    n = stop - start
    first, second = rng.integers(0, len(visual), n), rng.integers(0, len(visual), n)
    w = rng.uniform(0, 1, (n, 1)).astype(np.float32)
    noise = rng.standard_normal((n, visual.shape[1])).astype(np.float32)
    noise *= visual.std(axis=0) * NOISE
    v = w * visual[first] + (1 - w) * visual[second] + noise
    g = np.clip(w * gates[first] + (1 - w) * gates[second], 0, 1)
    return v.astype(np.float16), g.astype(np.float16)
