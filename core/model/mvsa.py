"""Multiscale visual self-attention (MVSA), as the official AMFMN code computes it."""

from __future__ import annotations

import torch
from torch import nn


class MVSA(nn.Module):
    """Salient mask from low- and high-level features, applied to the global vector.

    Follows ``VSA_Module`` of xiaoyuan1996/AMFMN rather than the paper's equations where the
    two differ:

    * the paper draws PReLU activations and L2-normalised branches; the code has neither, so
      neither is here;
    * the paper describes stacking several scales; the code fuses exactly two sets (low from
      stages 1-2, high from stages 3-4), as here;
    * the attention is a single-channel sigmoid gate (``out_channels=1`` in the released
      config) and the salient mask is ``sigmoid(Linear(flattened gated map))``.

    Steps: a 3x3 stride-4 conv brings the low set to the high set's grid, a 1x1 conv projects
    the high set, both are concatenated and the channel mean of the projected high set is
    added (the code's "residual"); two 1x1 convs give a feature map and a sigmoid gate, whose
    product is flattened into a ``sigmoid(Linear)`` mask that multiplies the global vector.
    """

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        channels: int,
        out_channels: int,
        grid: int,
        embed_dim: int,
    ) -> None:
        super().__init__()
        self.low_conv = nn.Conv2d(low_channels, channels, kernel_size=3, stride=4)
        self.high_conv = nn.Conv2d(high_channels, channels, kernel_size=1)
        self.feature_conv = nn.Conv2d(channels * 2, out_channels, kernel_size=1)
        self.gate_conv = nn.Conv2d(channels * 2, out_channels, kernel_size=1)
        self.mask = nn.Linear(out_channels * grid * grid, embed_dim)

    def forward(
        self, low: torch.Tensor, high: torch.Tensor, global_vec: torch.Tensor
    ) -> torch.Tensor:
        """Return the global vector multiplied by its salient mask."""
        high = self.high_conv(high)
        concat = torch.cat([self.low_conv(low), high], dim=1)
        concat = concat + high.mean(dim=1, keepdim=True)
        gated = self.feature_conv(concat) * torch.sigmoid(self.gate_conv(concat))
        mask = torch.sigmoid(self.mask(gated.flatten(1)))
        return global_vec * mask
