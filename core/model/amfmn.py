"""AMFMN: multiscale image encoder + text encoder + visual-guided attention scoring."""

from __future__ import annotations

import torch
from torch import nn

from core.model.adapters import QueryAdapters
from core.model.attention import ATTENTIONS, SoftAttention, VisualGuidedAttention
from core.model.backbones import N_STAGES, MultiscaleFeatures, StagedBackbone
from core.model.config import AMFMNCfg
from core.model.mvsa import MVSA
from core.model.text import TextTower, TokenBatch


class AMFMN(nn.Module):
    """The retrieval model of Yuan et al. (TGRS 2021) on a pluggable backbone and text tower.

    ``encode_image`` gives the MVSA visual vector ``v``; ``encode_text`` the text tower's
    caption vector ``t``, and ``encode_query`` that vector after the version's per-query
    adapters (``core.model.adapters``), which is what a query searches with; ``scores`` the
    matrix ``cos(v_i, VGA(v_i, t_j))``. The backbone's first
    ``N_STAGES - cfg.vision.trainable_stages`` stages stay frozen and in eval mode.
    """

    def __init__(self, cfg: AMFMNCfg, backbone: StagedBackbone, text: TextTower) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone
        self.text = text
        spec = backbone.spec
        dim = cfg.embed_dim
        grid = cfg.preprocess.image_size // 16
        self.global_proj = nn.Linear(spec.pooled_channels, dim)
        self.mvsa = MVSA(
            spec.low_channels,
            spec.high_channels,
            cfg.vision.mvsa_channels,
            cfg.vision.mvsa_out_channels,
            grid,
            dim,
        )
        self.attention: VisualGuidedAttention = ATTENTIONS[cfg.attention](dim)
        self.adapters = QueryAdapters(dim)
        self.frozen_stages = N_STAGES - cfg.vision.trainable_stages
        backbone.requires_grad_(False)
        for stage in backbone.stages[self.frozen_stages :]:
            stage.requires_grad_(True)

    def train(self, mode: bool = True) -> AMFMN:
        """Keep frozen backbone stages in eval mode so their BatchNorm statistics never drift."""
        super().train(mode)
        for stage in self.backbone.stages[: self.frozen_stages]:
            stage.eval()
        return self

    def visual_from_features(self, feats: MultiscaleFeatures) -> torch.Tensor:
        """MVSA visual vector from the backbone's feature sets."""
        return self.mvsa(feats.low, feats.high, self.global_proj(feats.pooled))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, embed_dim]`` visual vectors for normalised ``[B, 3, S, S]`` images."""
        return self.visual_from_features(self.backbone(images))

    def encode_text(self, tokens: TokenBatch) -> torch.Tensor:
        """``[B, embed_dim]`` caption vectors of the text tower (before the adapters)."""
        return self.text(tokens)

    def encode_query(self, tokens: TokenBatch) -> torch.Tensor:
        """``[B, embed_dim]`` caption vectors as queries search with them (adapters applied)."""
        return self.adapters(self.encode_text(tokens))

    def tokenize(self, captions: list[str]) -> TokenBatch:
        """Tokenize with the tower's own tokenizer."""
        return self.text.tokenize(captions)

    def scores(self, visual: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """``[N, M]`` AMFMN scores between visual and caption vectors."""
        return self.attention.scores(visual, text)

    @property
    def has_gates(self) -> bool:
        """True when search must store per-tile gates to score exactly (soft attention)."""
        return isinstance(self.attention, SoftAttention)

    def image_gates(self, visual: torch.Tensor) -> torch.Tensor | None:
        """Soft-attention gates search stores per tile for exact re-ranking (None otherwise)."""
        if isinstance(self.attention, SoftAttention):
            return self.attention.gates(visual)
        return None

    def forward(self, images: torch.Tensor, tokens: TokenBatch) -> torch.Tensor:
        """Score a batch of images against a batch of captions."""
        return self.scores(self.encode_image(images), self.encode_query(tokens))

    def trained_modules(self) -> dict[str, nn.Module]:
        """Modules whose weights differ from the pip-shipped pretrained ones.

        Checkpoints store exactly these, so a shipped model stays small; the query adapters
        only once there are some, so a model without them saves as it always did.
        """
        modules: dict[str, nn.Module] = {
            "global_proj": self.global_proj,
            "mvsa": self.mvsa,
            "attention": self.attention,
        }
        for index in range(self.frozen_stages, N_STAGES):
            modules[f"backbone.stages.{index}"] = self.backbone.stages[index]
        text_modules = self.text.trainable_modules()
        named = {id(m): n for n, m in self.text.named_modules()}
        for module in text_modules:
            name = named[id(module)]
            modules["text" + (f".{name}" if name else "")] = module
        if len(self.adapters):
            modules["adapters"] = self.adapters
        return modules
