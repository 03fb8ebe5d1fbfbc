"""Fine-tuning settings and the progress callback type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.model.adapters import DEFAULT_TAU

Progress = Callable[[str, int, int, float], None]
RECIPES = ("adapter", "tower")


@dataclass(frozen=True)
class FinetuneCfg:
    """Fine-tuning settings; the defaults need only the workspace and take about a minute.

    By default (``recipe="adapter"``) each trained text query (or tile caption) gets its own
    adapter (``core.model.adapters``): the text tower and the gate stay as they are, so a
    new version shares every scene file of its parent, and a query whose caption vector is
    not within ``adapter_tau`` of a trained one is not moved at all. ``recipe="tower"``
    trains the shared text tower and the soft-attention gate instead, which lifts paraphrases
    more but moves near-ties of unrelated queries (docs/RESULTS.md). Either way forgetting
    is held back by distillation toward the parent on generic queries and unmarked tiles.

    Attributes:
        steps: Optimisation steps.
        recipe: ``adapter`` (per-query adapters) or ``tower`` (text tower and gate). Marks on
            image queries train neither: they have no text to anchor an adapter on.
        lr: Adam learning rate of the text tower, gate and image tower; small, because a few
            steps already lift a marked query and larger steps move the rankings of unrelated
            queries (docs/RESULTS.md).
        adapter_lr: Adam learning rate of the adapters (their residuals are unit-free).
        adapter_tau: Cosine to an adapter's anchor below which a query gets none of it
            (``adapters.DEFAULT_TAU``: the 99th percentile of the cosines between unrelated
            reference terms under the shipped model).
        adapter_decay: Weight of the L2 pull of the trained residuals toward 0.
        margin: Hinge margin between a relevant tile and a negative.
        pairs_per_step: (query, relevant tile) pairs per step.
        negatives_per_pair: Negatives per pair: up to half from the query's not-relevant
            marks, the rest random unmarked tiles of the same scene.
        distill_queries: Generic queries per step in the distillation terms.
        distill_tiles: Unmarked tiles per step in the ranking-distillation term.
        text_distill: Weight of ``1 - cos`` between new and parent caption vectors of the
            generic queries.
        rank_distill: Weight of the KL divergence between new and parent rankings of unmarked
            tiles for the generic queries.
        temperature: Softmax temperature of the ranking distillation (scores are cosines).
        holdout_fraction: Share of each query's marks held out to check the result; a query
            keeps at least ``min_relevant`` relevant marks for training.
        min_relevant: Relevant marks (or captions) training needs in all.
        gate: With the tower recipe, also fine-tune the soft-attention gate (``attention``),
            which every query's ranking goes through.
        image_tower: Also fine-tune the image tower (the backbone's trainable stages, MVSA
            and its projection); promotion then re-embeds every scene.
        check_tiles: Most tiles the before/after checks rank (a seeded sample beyond).
        image_pool: Tiles whose pixels are read for the checks when the image tower learns.
        replay_images: With the RSICD and UCM datasets installed, also replay that many of
            their training images (0: the workspace alone).
        replay_batch: Replayed images per step.
        replay_weight: Weight of the replay loss.
        eval_images: With the datasets installed, also measure the paper's test mR on that
            many images before and after (0: not measured).
        guard_points: Largest fall of that mR allowed to promote, when it is measured.
        seed: Seed of every random choice.
    """

    steps: int = 60
    recipe: str = "adapter"
    lr: float = 2e-6
    adapter_lr: float = 0.01
    adapter_tau: float = DEFAULT_TAU
    adapter_decay: float = 0.1
    margin: float = 0.2
    pairs_per_step: int = 12
    negatives_per_pair: int = 16
    distill_queries: int = 8
    distill_tiles: int = 128
    text_distill: float = 1.0
    rank_distill: float = 1.0
    temperature: float = 0.05
    holdout_fraction: float = 0.25
    min_relevant: int = 2
    gate: bool = True
    image_tower: bool = False
    check_tiles: int = 100_000
    image_pool: int = 512
    replay_images: int = 0
    replay_batch: int = 48
    replay_weight: float = 1.0
    eval_images: int = 0
    guard_points: float = 2.0
    seed: int = 0
