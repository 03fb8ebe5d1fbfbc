"""Per-query adapters: a learned nudge of one marked query's caption vector, and nothing else.

Fine-tuning the shared text tower on one query flips near-ties of unrelated queries
(docs/RESULTS.md). An adapter instead moves only vectors near its anchor (the parent's
caption vector of the marked query ``q``)::

    t' = |t| * normalize(t/|t| + sum_q w_q(t) * delta_q),
    w_q(t) = clamp((cos(t, a_q) - tau) / (1 - tau), 0, 1)

``w`` is 1 at the anchor, shares part of the adapter with paraphrases, and is exactly 0 below
``tau``: a query whose every weight is 0 comes back bit for bit. The norm is kept, so nothing
downstream of the caption vector sees a different scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

# The 99th percentile of the cosines between the shipped model's caption vectors of the 39
# reference land-use terms (``reference_captions.REFERENCE_TERMS``, distinct classes, so
# unrelated by construction) is 0.598: above it a query is taken as related to an anchor.
# ``tests/core/test_adapters.py`` measures it again.
DEFAULT_TAU = 0.6


class QueryAdapters(nn.Module):
    """One residual ``delta_q`` per marked text query, applied after the text tower.

    ``anchors`` and ``tau`` are buffers, ``deltas`` the only parameter; ``queries`` names
    each row (saved in the checkpoint's metadata). ``learning`` marks the rows a fine-tune
    trains; it is not saved.
    """

    def __init__(self, dim: int, tau: float = DEFAULT_TAU) -> None:
        super().__init__()
        self.register_buffer("anchors", torch.zeros(0, dim))
        self.register_buffer("tau", torch.tensor(float(tau)))
        self.deltas = nn.Parameter(torch.zeros(0, dim))
        self.queries: list[str] = []
        self.learning = torch.zeros(0, dtype=torch.bool)
        self._mask: RemovableHandle | None = None

    def __len__(self) -> int:
        return len(self.queries)

    def resize(self, queries: list[str]) -> None:
        """Empty rows for ``queries`` (a checkpoint's values are loaded into them next)."""
        dim = self.anchors.shape[1]
        self.anchors = torch.zeros(len(queries), dim, device=self.anchors.device)
        self.deltas = nn.Parameter(torch.zeros(len(queries), dim, device=self.deltas.device))
        self.queries = list(queries)

    def extend(self, queries: list[str], anchors: torch.Tensor) -> None:
        """Add zero adapters for new queries, anchored at their current caption vectors."""
        if not queries:
            return
        zeros = torch.zeros_like(anchors)
        self.anchors = torch.cat([self.anchors, anchors.detach().to(self.anchors)])
        self.deltas = nn.Parameter(torch.cat([self.deltas.detach(), zeros.to(self.deltas)]))
        self.queries = [*self.queries, *queries]

    def learn_only(self, queries: set[str]) -> None:
        """Train the rows of ``queries`` only: the others (a parent's) keep their values.

        Their gradient is zeroed, so Adam's moments stay 0 and its step leaves them exact.
        """
        self.learning = torch.tensor([q in queries for q in self.queries])
        self.deltas.requires_grad_(True)
        if self._mask is not None:
            self._mask.remove()
        self._mask = self.deltas.register_hook(lambda grad: grad * self.learning[:, None].to(grad))

    def pull(self) -> torch.Tensor:
        """Mean squared norm of the learning rows, an L2 pull toward changing nothing."""
        if not self.learning.any():
            return torch.zeros(())
        return self.deltas[self.learning].pow(2).sum(-1).mean()

    def weights(self, text: torch.Tensor) -> torch.Tensor:
        """``[B, Q]`` kernel weights of caption vectors on every anchor."""
        cosine = F.normalize(text, dim=-1) @ F.normalize(self.anchors, dim=-1).T
        return ((cosine - self.tau) / (1 - self.tau)).clamp(0, 1)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        """Adapted caption vectors; rows far from every anchor are returned unchanged."""
        if not self.queries:
            return text
        weights = self.weights(text)
        norm = text.norm(dim=-1, keepdim=True)
        moved = F.normalize(text / norm.clamp_min(1e-12) + weights @ self.deltas, dim=-1) * norm
        return torch.where((weights > 0).any(-1, keepdim=True), moved, text)
