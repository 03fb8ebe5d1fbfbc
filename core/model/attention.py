"""Visual-guided text attention (VGA) and the scores it induces.

For an image vector ``v`` and a caption vector ``t`` the model scores ``cos(v, VGA(v, t))``.
Scoring N images against M captions naively builds an N x M x d tensor; ``soft`` attention
factorises exactly into two matrix products, the other variants score in bounded chunks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

EPS = 1e-8
CHUNK_ELEMENTS = 1 << 24  # N*M*d elements materialised at once by the chunked variants


class VisualGuidedAttention(nn.Module):
    """Base class: subclasses define the pairwise attended caption ``VGA(v_i, t_j)``."""

    def pairwise(self, visual: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Attended text for every pair: ``[N, M, d]`` (the reference, memory-hungry path)."""
        raise NotImplementedError

    def scores(self, visual: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """``[N, M]`` cosine scores, in chunks so memory stays bounded."""
        n, d = visual.shape
        step = max(1, CHUNK_ELEMENTS // max(1, text.shape[0] * d))
        rows = [
            pairwise_cosine(visual[i : i + step], self.pairwise(visual[i : i + step], text))
            for i in range(0, n, step)
        ]
        return torch.cat(rows, dim=0)


def pairwise_cosine(visual: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
    """cos(v_i, a_ij) as the official ``cosine_similarity`` (norm product clamped at EPS)."""
    dot = (visual.unsqueeze(1) * attended).sum(-1)
    norms = visual.norm(dim=-1).unsqueeze(1) * attended.norm(dim=-1)
    return dot / norms.clamp(min=EPS)


class SoftAttention(VisualGuidedAttention):
    """``sigmoid(W v) * t``: the image gates the caption's dimensions."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gate = nn.Linear(dim, dim)

    def gates(self, visual: torch.Tensor) -> torch.Tensor:
        """Per-image gate ``g = sigmoid(W v)``; stored with each tile for exact search."""
        return torch.sigmoid(self.gate(visual))

    @override
    def pairwise(self, visual: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.gates(visual).unsqueeze(1) * text.unsqueeze(0)

    @override
    def scores(self, visual: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return soft_scores(visual, self.gates(visual), text)


def soft_scores(visual: torch.Tensor, gates: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Exact ``cos(v_i, g_i * t_j)`` for all pairs with two matrix products.

    numerator ``(V * G) T^T``; ``||g_i * t_j||^2 = (G * G)(T * T)^T``; no N x M x d tensor.
    """
    numerator = (visual * gates) @ text.T
    attended_sq = (gates * gates) @ (text * text).T
    norms = visual.norm(dim=-1, keepdim=True) * attended_sq.clamp(min=0).sqrt()
    return numerator / norms.clamp(min=EPS)


class FusionAttention(VisualGuidedAttention):
    """``sigmoid(W1 [v; t]) * (W2 [v; t])`` as the official ``fusion_att``.

    A linear map of a concatenation splits into an image part plus a caption part, so each
    chunk only adds two precomputed projections.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gate = nn.Linear(2 * dim, dim)
        self.value = nn.Linear(2 * dim, dim)
        self.dim = dim

    @override
    def pairwise(self, visual: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        d = self.dim
        gate_v = F.linear(visual, self.gate.weight[:, :d], self.gate.bias)
        gate_t = F.linear(text, self.gate.weight[:, d:])
        value_v = F.linear(visual, self.value.weight[:, :d], self.value.bias)
        value_t = F.linear(text, self.value.weight[:, d:])
        gate = torch.sigmoid(gate_v.unsqueeze(1) + gate_t.unsqueeze(0))
        return gate * (value_v.unsqueeze(1) + value_t.unsqueeze(0))


class SimilarityAttention(VisualGuidedAttention):
    """``sigmoid(V'(v) * T'(t)) * T'(t)`` as the official ``similarity_att``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.visual_fc = nn.Linear(dim, dim)
        self.text_fc = nn.Linear(dim, dim)

    @override
    def pairwise(self, visual: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        v = self.visual_fc(visual).unsqueeze(1)
        t = self.text_fc(text).unsqueeze(0)
        return torch.sigmoid(v * t) * t


ATTENTIONS: dict[str, type[VisualGuidedAttention]] = {
    "soft": SoftAttention,
    "fusion": FusionAttention,
    "similarity": SimilarityAttention,
}
