"""Word tokens and the vocabulary of the paper's BiGRU text encoder.

The vocabulary is built from training captions only and stored inside checkpoints as plain
JSON (``to_dict``), so a loaded model always encodes text exactly as it was trained.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from core.errors import CheckpointError, QueryError

TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")
PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1


def tokenize(text: str) -> list[str]:
    """Lowercased word and punctuation tokens: runs of word characters, or one symbol.

    A dependency-free stand-in for nltk's ``word_tokenize`` (whose punkt data is not
    available offline). It differs on contractions and some punctuation: ``"it's"`` gives
    ``it ' s`` here but ``it 's`` there, and ``"..."`` gives three tokens here.
    """
    return TOKEN_PATTERN.findall(text.lower())


@dataclass(frozen=True, repr=False)
class Vocabulary:
    """Token <-> id mapping with ``<pad>`` = 0 and ``<unk>`` = 1.

    Attributes:
        tokens: Token of each id; ``tokens[0]`` is ``<pad>`` and ``tokens[1]`` is ``<unk>``.
    """

    tokens: tuple[str, ...]
    _ids: dict[str, int] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if self.tokens[:2] != (PAD, UNK):
            raise ValueError(f"a vocabulary must start with {PAD!r}, {UNK!r}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("vocabulary tokens must be unique")
        object.__setattr__(self, "_ids", {t: i for i, t in enumerate(self.tokens)})

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1) -> Vocabulary:
        """Collect tokens seen at least ``min_count`` times, most frequent first.

        Ties are broken alphabetically so the same captions always give the same ids.

        Raises:
            ValueError: if ``min_count`` is below 1.
        """
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}")
        counts = Counter(t for caption in captions for t in tokenize(caption))
        counts.pop(PAD, None)
        counts.pop(UNK, None)
        kept = sorted(
            (t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t)
        )
        return cls((PAD, UNK, *kept))

    def encode(self, caption: str, max_len: int) -> list[int]:
        """Token ids of ``caption``, unknown words as ``<unk>``, cut to ``max_len``.

        Raises:
            QueryError: if the caption has no tokens (a GRU cannot encode nothing).
            ValueError: if ``max_len`` is below 1.
        """
        if max_len < 1:
            raise ValueError(f"max_len must be at least 1, got {max_len}")
        ids = [self._ids.get(t, UNK_ID) for t in tokenize(caption)[:max_len]]
        if not ids:
            raise QueryError(f"text {caption!r} has no words to encode")
        return ids

    def encode_batch(
        self, captions: Sequence[str], max_len: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode captions into a ``<pad>``-padded ``[B, L]`` id tensor and their lengths.

        ``L`` is the longest encoded caption, at most ``max_len``.

        Raises:
            QueryError: if a caption has no tokens.
            ValueError: if ``captions`` is empty or ``max_len`` is below 1.
        """
        if not captions:
            raise ValueError("encode_batch needs at least one caption")
        encoded = [self.encode(c, max_len) for c in captions]
        lengths = torch.tensor([len(e) for e in encoded], dtype=torch.long)
        ids = torch.full((len(encoded), int(lengths.max())), PAD_ID, dtype=torch.long)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = torch.tensor(e, dtype=torch.long)
        return ids, lengths

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, stored inside checkpoints."""
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        """Rebuild from ``to_dict`` output.

        Raises:
            CheckpointError: if ``data`` is not a valid stored vocabulary.
        """
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise CheckpointError("stored vocabulary must be {'tokens': [str, ...]}")
        try:
            return cls(tuple(tokens))
        except ValueError as exc:
            raise CheckpointError(f"stored vocabulary is invalid: {exc}") from exc
