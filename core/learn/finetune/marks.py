"""Marks turned into training pairs, negatives and held-out judgements.

A text query (or a caption written for a tile) is paired with the tiles marked relevant; its
negatives are the tiles marked not relevant. Marks on image and tile queries carry no text,
so they anchor no adapter and train nothing (``Readiness.textless`` counts them). A
deterministic share of each query's marks is held out to check the result, but never so many
that the query keeps fewer than ``min_relevant`` relevant marks to train on: the first marks
of a query always train.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from core.store.feedback import Mark, SQLiteFeedback
from core.store.reattach import Unattached, reconcile
from core.store.workspace import Workspace


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

    @property
    def trained_queries(self) -> set[str]:
        """Texts with at least one training pair."""
        return {p.text for p in self.train_pairs}

    @property
    def train_tiles(self) -> set[tuple[str, int]]:
        """Every tile a training pair or negative names."""
        tiles = {(p.scene, p.tile_id) for p in self.train_pairs}
        return tiles | {t for negatives in self.train_negatives.values() for t in negatives}


def _order(mark: Mark) -> str:
    """Deterministic order of marks, stable across runs and machines."""
    return hashlib.sha256(f"{mark.query}|{mark.scene}|{mark.tile_id}".encode()).hexdigest()


def _held_out(marks: list[Mark], fraction: float, keep: int) -> set[int]:
    """Positions (in ``marks``) of the share held out, leaving at least ``keep`` to train."""
    count = max(0, min(int(fraction * len(marks)), len(marks) - keep))
    ranked = sorted(range(len(marks)), key=lambda i: _order(marks[i]))
    return set(ranked[:count])


def split_feedback(
    marks: list[Mark], holdout_fraction: float, min_relevant: int = 2
) -> FeedbackSplit:
    """Training pairs, their negatives, and held-out judgements per text query."""
    split = FeedbackSplit()
    by_query: dict[str, dict[str, list[Mark]]] = {}
    for mark in marks:
        if mark.label == "caption":
            split.train_pairs.append(Pair(mark.caption, mark.scene, mark.tile_id))
            if mark.id is not None:
                split.used_marks.add(mark.id)
        elif mark.query_kind == "text":
            by_query.setdefault(mark.query, {}).setdefault(mark.label, []).append(mark)
    for query, labels in by_query.items():
        for label, group in labels.items():
            keep = min_relevant if label == "relevant" else 0
            held = _held_out(group, holdout_fraction, keep)
            for i, mark in enumerate(group):
                tile = (mark.scene, mark.tile_id)
                if i in held:
                    split.heldout.setdefault(query, {})[tile] = label == "relevant"
                    continue
                if label == "relevant":
                    split.train_pairs.append(Pair(query, *tile))
                else:
                    split.train_negatives.setdefault(query, []).append(tile)
                if mark.id is not None:
                    split.used_marks.add(mark.id)
    return split


@dataclass(frozen=True)
class QueryMarks:
    """How one text query's marks are used."""

    query: str
    relevant: int
    irrelevant: int
    train_relevant: int
    heldout_relevant: int
    heldout_irrelevant: int


@dataclass(frozen=True)
class Readiness:
    """What the marks give fine-tuning now, and what is missing to start."""

    queries: list[QueryMarks]
    captions: int
    train_pairs: int
    train_negatives: int
    heldout: int
    min_relevant: int
    textless: int = 0  # marks on image or tile queries: no text to train

    @property
    def ready(self) -> bool:
        """True when fine-tuning can start."""
        return self.train_pairs >= self.min_relevant

    @property
    def missing(self) -> str:
        """What to add before fine-tuning can start, in words ("" when ready)."""
        if self.ready:
            return ""
        short = self.min_relevant - self.train_pairs
        marks = f"{short} more relevant mark{'s' if short > 1 else ''}"
        best = max(self.queries, key=lambda q: (q.relevant, q.query), default=None)
        if best is None:
            return f"{marks} on a text query (or {short} tile caption{'s' if short > 1 else ''})"
        return f"{marks} for '{best.query}' (or {short} tile caption{'s' if short > 1 else ''})"


def readiness(marks: list[Mark], holdout_fraction: float, min_relevant: int) -> Readiness:
    """Count what ``split_feedback`` makes of the marks, per text query."""
    split = split_feedback(marks, holdout_fraction, min_relevant)
    queries = []
    for query in sorted(
        {m.query for m in marks if m.query_kind == "text" and m.label != "caption"}
    ):
        own = [m for m in marks if m.query_kind == "text" and m.query == query]
        held = split.heldout.get(query, {})
        queries.append(
            QueryMarks(
                query,
                relevant=sum(m.label == "relevant" for m in own),
                irrelevant=sum(m.label == "irrelevant" for m in own),
                train_relevant=sum(p.text == query for p in split.train_pairs),
                heldout_relevant=sum(held.values()),
                heldout_irrelevant=sum(not v for v in held.values()),
            )
        )
    return Readiness(
        queries,
        captions=sum(m.label == "caption" for m in marks),
        train_pairs=len(split.train_pairs),
        train_negatives=sum(map(len, split.train_negatives.values())),
        heldout=sum(map(len, split.heldout.values())),
        min_relevant=min_relevant,
        textless=sum(m.query_kind != "text" and m.label != "caption" for m in marks),
    )


@dataclass(frozen=True)
class FinetunePlan:
    """The marks fine-tuning would use now, and the ones no tile covers any more."""

    marks: list[Mark]
    readiness: Readiness
    unattached: list[Unattached]


def finetune_plan(workspace: Workspace, holdout_fraction: float, min_relevant: int) -> FinetunePlan:
    """Re-attach the marks to the current tiles, then count what fine-tuning would use."""
    store = SQLiteFeedback(workspace.feedback_db)
    placed = reconcile(workspace, store)
    marks = [m for m in store.marks() if m.id not in placed.unattached_ids]
    return FinetunePlan(marks, readiness(marks, holdout_fraction, min_relevant), placed.unattached)
