"""Bidirectional triplet loss with AMFMN's dynamic margin."""

from __future__ import annotations

import math
from typing import Literal

import torch

Negatives = Literal["sum", "hardest"]


def dynamic_margin(prior: torch.Tensor, gamma: float = 0.6, beta: float = 5.0) -> torch.Tensor:
    """Margin ``gamma * (e^beta - e^(beta*S)) / (e^beta - 1)`` of the paper.

    A negative caption that already describes the image well (prior similarity ``S`` near 1)
    gets almost no margin; an unrelated one (``S = 0``) gets the full ``gamma``.
    """
    eb = math.exp(beta)
    return gamma * (eb - torch.exp(beta * prior)) / (eb - 1.0)


def triplet_loss(
    scores: torch.Tensor,
    positives: torch.Tensor,
    margin: torch.Tensor | float,
    negatives: Negatives = "hardest",
) -> torch.Tensor:
    """Hinge loss over image->caption and caption->image negatives.

    Args:
        scores: ``[B, B]`` scores, image ``i`` against caption ``j``; the diagonal pairs match.
        positives: ``[B, B]`` bool, True where caption ``j`` belongs to image ``i`` (so
            captions of the same image are never each other's negatives).
        margin: a float, or ``[B, B]`` per-pair margins (e.g. ``dynamic_margin(prior)``).
        negatives: ``"sum"`` over all violating negatives or only the ``"hardest"``.

    Returns:
        Scalar loss, summed over both directions and averaged over the batch.
    """
    diagonal = scores.diagonal().unsqueeze(1)
    cost_caption = (margin + scores - diagonal).clamp(min=0).masked_fill(positives, 0)
    cost_image = (margin + scores - diagonal.T).clamp(min=0).masked_fill(positives, 0)
    if negatives == "hardest":
        total = cost_caption.max(dim=1).values.sum() + cost_image.max(dim=0).values.sum()
    else:
        total = cost_caption.sum() + cost_image.sum()
    return total / scores.shape[0]


def ranking_loss(
    positive: torch.Tensor, negatives: torch.Tensor, margin: torch.Tensor | float
) -> torch.Tensor:
    """Hinge loss of each positive score against its own negatives (sum over negatives).

    Used for analyst feedback, where a query has a few relevant tiles and its own list of
    irrelevant ones rather than a square batch of matched pairs.

    Args:
        positive: ``[P]`` scores of (query, relevant tile) pairs.
        negatives: ``[P, N]`` scores of the same queries against negative tiles.
        margin: scalar or ``[P, N]`` margins.
    """
    return (margin + negatives - positive.unsqueeze(1)).clamp(min=0).sum(1).mean()
