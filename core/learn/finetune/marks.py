"""Marks turned into training pairs, negatives and held-out judgements.

A text query (or a caption written for a tile) is paired with the tiles marked relevant;
its negatives are the tiles marked not relevant. Image-query marks carry no text and are not
used. A deterministic share of the marks is held out to measure the result.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from core.store.feedback import Mark


@dataclass(frozen=True)
class Pair:
    """A text and a tile it describes."""

    text: str
    scene: str
    tile_id: int


@dataclass
class FeedbackSplit:
    """Marks turned into training pairs and held-out judgements."""

    train_pairs: list[Pair] = field(default_factory=list)
    train_negatives: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    heldout: dict[str, dict[tuple[str, int], bool]] = field(default_factory=dict)
    used_marks: set[int] = field(default_factory=set)


def _held_out(mark: Mark, fraction: float) -> bool:
    """Deterministic split of marks, stable across runs and machines."""
    key = f"{mark.query}|{mark.scene}|{mark.tile_id}".encode()
    return int(hashlib.sha256(key).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def split_feedback(marks: list[Mark], holdout_fraction: float) -> FeedbackSplit:
    """Training pairs, their negatives, and held-out judgements per text query."""
    split = FeedbackSplit()
    for mark in marks:
        if mark.label == "caption":
            split.train_pairs.append(Pair(mark.caption, mark.scene, mark.tile_id))
            continue
        if mark.query_kind != "text":
            continue
        if _held_out(mark, holdout_fraction):
            split.heldout.setdefault(mark.query, {})[(mark.scene, mark.tile_id)] = (
                mark.label == "relevant"
            )
            continue
        if mark.label == "relevant":
            split.train_pairs.append(Pair(mark.query, mark.scene, mark.tile_id))
        else:
            split.train_negatives.setdefault(mark.query, []).append((mark.scene, mark.tile_id))
        if mark.id is not None:
            split.used_marks.add(mark.id)
    return split
