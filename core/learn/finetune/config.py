"""Fine-tuning settings and the progress callback type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Progress = Callable[[str, int, int, float], None]


@dataclass(frozen=True)
class FinetuneCfg:
    """Fine-tuning settings; the defaults take a few minutes on a 2-core CPU."""

    steps: int = 60
    pairs_per_step: int = 12
    negatives_per_pair: int = 8
    replay_images: int = 512
    replay_batch: int = 48
    replay_weight: float = 1.0
    lr: float = 1e-4
    holdout_fraction: float = 0.25
    eval_images: int = 200
    guard_points: float = 2.0
    min_relevant: int = 2
    seed: int = 0
