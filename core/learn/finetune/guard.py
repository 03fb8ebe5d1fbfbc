"""Measure a fine-tuned model against its parent, and decide whether it may be promoted.

Two checks need nothing but the workspace:

- **Held-out marks**: for every text query with held-out relevant marks, precision@10 over
  the workspace's tiles minus those used for training, the held-out relevant tiles counting
  as hits. It must not fall by more than ``guard_heldout_drop`` (a setting, 0.1).
- **Generic queries** (the reference captions and land-use terms, and the workspace's marked
  queries that were not trained on): the share of each one's top 10 tiles over the workspace
  that stays in its top 10. Its mean must stay at least ``guard_top10_overlap`` (a setting,
  0.8), so that teaching one query does not reshuffle every other.

With the RSICD and UCM datasets installed, fine-tuning may also measure the paper's test mR
(``FinetuneCfg.eval_images``); a fall of more than ``guard_points`` then refuses promotion too.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.errors import FinetuneError
from core.learn.data.sources import load_dataset
from core.learn.eval.evaluate import evaluate
from core.learn.finetune.config import FinetuneCfg
from core.learn.finetune.features import Tile, TileVectors, encode_texts
from core.learn.finetune.marks import FeedbackSplit
from core.model.amfmn import AMFMN
from core.model.reference_captions import REFERENCE_CAPTIONS, REFERENCE_TERMS
from core.model.versions import ModelRegistry, ModelVersion
from core.settings import get_settings
from core.store.workspace import Workspace

K = 10


def generic_queries(split: FeedbackSplit, texts: list[str]) -> list[str]:
    """Reference captions and terms, and the marked text queries that were not trained on."""
    trained = split.trained_queries
    fixed = [q for q in (*REFERENCE_CAPTIONS, *REFERENCE_TERMS) if q not in trained]
    return fixed + sorted({t for t in texts if t not in trained} - set(fixed))


def check_tiles(
    vectors: TileVectors, scenes: list[str], split: FeedbackSplit, limit: int, seed: int
) -> list[Tile]:
    """The tiles both checks rank: every tile, or a seeded sample plus the held-out ones."""
    tiles = [(s, t) for s in scenes for t in range(vectors.n_tiles(s))]
    if len(tiles) <= limit:
        return tiles
    held = {t for judged in split.heldout.values() for t in judged}
    sample = random.Random(seed).sample(tiles, limit)
    return sorted(set(sample) | held)


@torch.no_grad()
def measure(
    model: AMFMN,
    visual: torch.Tensor,
    tiles: list[Tile],
    split: FeedbackSplit,
    generic: list[str],
) -> dict[str, Any]:
    """Held-out precision@10 per query and the top 10 tiles of every generic query."""
    model.eval()
    held = [q for q, judged in split.heldout.items() if any(judged.values())]
    queries = held + generic
    text = torch.cat([encode_texts(model, queries[i : i + 64]) for i in range(0, len(queries), 64)])
    scores = model.scores(visual, text) if queries else torch.empty(len(tiles), 0)
    excluded = torch.tensor([t in split.train_tiles for t in tiles], dtype=torch.bool)
    heldout = {}
    for column, query in enumerate(held):
        judged = split.heldout[query]
        scenes = {s for s, _ in judged}
        ranked = scores[:, column].clone()
        ranked[excluded | torch.tensor([s not in scenes for s, _ in tiles])] = -torch.inf
        top = torch.topk(ranked, min(K, len(tiles))).indices.tolist()
        heldout[query] = sum(judged.get(tiles[i], False) for i in top) / max(1, len(top))
    top10 = {
        query: [
            list(tiles[i])
            for i in torch.topk(scores[:, len(held) + j], min(K, len(tiles))).indices.tolist()
        ]
        for j, query in enumerate(generic)
    }
    return {"heldout_p10": heldout, "top10": top10}


def overlaps(before: dict[str, list], after: dict[str, list]) -> dict[str, float]:
    """Share of each query's top 10 kept, before to after."""
    return {
        q: len({tuple(t) for t in before[q]} & {tuple(t) for t in after.get(q, [])})
        / max(1, len(before[q]))
        for q in before
    }


def base_metrics(model: AMFMN, n_images: int, data_root: Path | None) -> dict[str, float]:
    """Mean recall on a fixed subset (first ``n_images``) of the RSICD and UCM test splits.

    Raises:
        DatasetNotFoundError: when a dataset is not installed.
    """
    out = {}
    for name in ("rsicd", "ucm"):
        test = load_dataset(name, "test", data_root)
        subset = test.subset(np.arange(min(n_images, test.n_images)))
        # torch: this model is being trained; its ONNX graphs are exported once, at registration
        report = evaluate(model, subset, "cpu", workers=0, progress=False, engine="torch")
        out[name] = report.metrics.mr
    return out


def guard_violations(
    version: ModelVersion,
    heldout_drop: float | None = None,
    top10_overlap: float | None = None,
    guard_points: float | None = None,
) -> list[str]:
    """Reasons to refuse promoting ``version`` (the limits default to the settings)."""
    settings = get_settings()
    heldout_drop = settings.guard_heldout_drop if heldout_drop is None else heldout_drop
    top10_overlap = settings.guard_top10_overlap if top10_overlap is None else top10_overlap
    numbers = summary(version)
    reasons = []
    for query, (before, after) in numbers.get("heldout_p10", {}).items():
        if before is not None and before - after > heldout_drop + 1e-9:
            reasons.append(
                f"held-out precision@10 of '{query}' fell {before - after:.2f} "
                f"({before:.2f} -> {after:.2f}), more than {heldout_drop:g}"
            )
    mean = numbers.get("top10_overlap_mean")
    if mean is not None and mean < top10_overlap - 1e-9:
        worst = min(numbers["top10_overlap"].items(), key=lambda kv: kv[1])
        reasons.append(
            f"generic queries kept {mean:.2f} of their top 10 on average, less than "
            f"{top10_overlap:g} (least: '{worst[0]}', {worst[1]:.1f})"
        )
    limit = FinetuneCfg.guard_points if guard_points is None else guard_points
    for name, (before, after) in numbers.get("base_mR", {}).items():
        if before - after > limit:
            reasons.append(
                f"{name} test mR fell {before - after:.2f} points ({before:.2f} -> {after:.2f}), "
                f"more than the {limit:g}-point guard"
            )
    return reasons


def promote(workspace: Workspace, version: int, guard_points: float | None = None) -> ModelVersion:
    """Make ``version`` active if it passes the guard (rollback to an older one always may).

    Its ONNX graphs are exported first where this machine runs ONNX (a cache hit when it was
    registered here), so the first query after the switch does not export them.

    Scenes still hold the previous version's gates and text index: bring them along with
    ``core.ingest.launch.refresh_workspace`` (the CLI does, the app runs a refresh job).

    Raises:
        FinetuneError: when the guard refuses it.
    """
    from core.model.inference import prepare_checkpoint
    from core.model.onnx_export import cache_dir_for

    registry = ModelRegistry(workspace)
    chosen = registry.get(version)
    newer = version > registry.active().version
    reasons = guard_violations(chosen, guard_points=guard_points) if newer else []
    if reasons:
        raise FinetuneError("promotion refused: " + "; ".join(reasons))
    prepare_checkpoint(chosen.path, cache_dir_for(workspace))
    return registry.set_active(version)


def summary(version: ModelVersion) -> dict[str, Any]:
    """Before/after numbers side by side, for the page and the CLI."""
    m = version.metrics
    if not m:
        return {}
    before, after = m.get("before", {}), m.get("after", {})
    out: dict[str, Any] = {
        "heldout_p10": {
            q: (before.get("heldout_p10", {}).get(q), v)
            for q, v in after.get("heldout_p10", {}).items()
        }
    }
    if "top10_overlap" in m:
        out["top10_overlap"] = m["top10_overlap"]
        out["top10_overlap_mean"] = m["top10_overlap_mean"]
    if after.get("base_mR"):
        out["base_mR"] = {d: (before["base_mR"][d], v) for d, v in after["base_mR"].items()}
    return out
