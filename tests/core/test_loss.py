"""Triplet loss and the paper's dynamic margin."""

import math

import pytest
import torch

from core.learn.train.loss import dynamic_margin, triplet_loss


@pytest.mark.parametrize(
    ("s", "expected"),
    [(0.0, 0.6), (0.5, 0.6 * (math.exp(5) - math.exp(2.5)) / (math.exp(5) - 1)), (1.0, 0.0)],
)
def test_dynamic_margin_values(s, expected):
    assert float(dynamic_margin(torch.tensor(s))) == pytest.approx(expected, abs=1e-6)


def test_dynamic_margin_at_half_is_about_0555():
    assert float(dynamic_margin(torch.tensor(0.5))) == pytest.approx(0.5545, abs=1e-3)


def test_hardest_and_sum_by_hand():
    scores = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.8, 0.7], [0.3, 0.0, 0.6]])
    positives = torch.eye(3, dtype=torch.bool)
    # image->caption costs (margin 0.2): row0: [-, 0, 0], row1: [0, -, 0.1], row2: [0, 0, -]
    # caption->image costs: col0: [-, 0, 0], col1: [0, -, 0], col2: [0, 0.3, -]
    assert float(triplet_loss(scores, positives, 0.2, "sum")) == pytest.approx((0.1 + 0.3) / 3)
    assert float(triplet_loss(scores, positives, 0.2, "hardest")) == pytest.approx((0.1 + 0.3) / 3)
    scores[1, 0] = 0.75  # a second violation in row 1 -> sum adds it, hardest keeps the max
    assert float(triplet_loss(scores, positives, 0.2, "sum")) == pytest.approx(
        (0.15 + 0.1 + 0.3 + 0.05) / 3
    )
    assert float(triplet_loss(scores, positives, 0.2, "hardest")) == pytest.approx(
        (0.15 + 0.3 + 0.05) / 3
    )


def test_captions_of_the_same_image_are_not_negatives():
    scores = torch.tensor([[0.5, 0.9], [0.1, 0.5]])
    none_shared = triplet_loss(scores, torch.eye(2, dtype=torch.bool), 0.2, "sum")
    shared = triplet_loss(scores, torch.tensor([[True, True], [False, True]]), 0.2, "sum")
    assert float(none_shared) > 0
    assert float(shared) == pytest.approx(0.0)


def test_per_pair_margin_matrix():
    scores = torch.zeros(2, 2)
    margin = torch.tensor([[0.0, 0.6], [0.0, 0.0]])
    loss = triplet_loss(scores, torch.eye(2, dtype=torch.bool), margin, "sum")
    assert float(loss) == pytest.approx(2 * 0.6 / 2)
