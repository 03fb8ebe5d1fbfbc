"""Measure a fine-tuned model and decide whether it may be promoted.

Before and after, the model is measured on (a) held-out marks: for every labelled query,
precision@10 over the scene's tiles that were not used for training, counting held-out
relevant tiles as hits, and (b) a fixed subset of the RSICD and UCM test splits. Promotion
is refused when a base mR drops by more than the guard.
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
from core.learn.finetune.features import TileFeatures, encode_taps, encode_texts
from core.learn.finetune.marks import FeedbackSplit
from core.model.amfmn import AMFMN
from core.model.versions import ModelRegistry, ModelVersion
from core.store.workspace import Workspace


@torch.no_grad()
def precision_at_k(
    model: AMFMN,
    features: TileFeatures,
    query: str,
    judged: dict[tuple[str, int], bool],
    exclude: set[tuple[str, int]],
    k: int = 10,
    max_tiles: int = 4000,
) -> float:
    """Precision@k of ``query`` over its scenes' tiles minus ``exclude``; judged-True are hits.

    Scenes larger than ``max_tiles`` are subsampled, always keeping the judged tiles.
    """
    model.eval()
    scenes = sorted({s for s, _ in judged})
    candidates = [
        (s, t) for s in scenes for t in range(features.n_tiles(s)) if (s, t) not in exclude
    ]
    if len(candidates) > max_tiles:
        rest = [c for c in candidates if c not in judged]
        sample = random.Random(query).sample(rest, max(0, max_tiles - len(judged)))
        candidates = [c for c in candidates if c in judged] + sample
    visual = torch.cat(
        [
            encode_taps(model, features.taps(candidates[i : i + 64]))
            for i in range(0, len(candidates), 64)
        ]
    )
    scores = model.scores(visual, encode_texts(model, [query]))[:, 0]
    top = torch.argsort(scores, descending=True)[:k].tolist()
    return sum(judged.get(candidates[i], False) for i in top) / min(k, len(candidates))


def heldout_precision(
    model: AMFMN, features: TileFeatures, split: FeedbackSplit
) -> dict[str, float]:
    """Precision@10 per held-out query, excluding every tile used for training."""
    exclude = {(p.scene, p.tile_id) for p in split.train_pairs}
    exclude |= {t for negs in split.train_negatives.values() for t in negs}
    return {
        query: precision_at_k(model, features, query, judged, exclude)
        for query, judged in split.heldout.items()
        if any(judged.values())
    }


def base_metrics(model: AMFMN, n_images: int, data_root: Path | None) -> dict[str, float]:
    """Mean recall on a fixed subset (first ``n_images``) of the RSICD and UCM test splits."""
    out = {}
    for name in ("rsicd", "ucm"):
        test = load_dataset(name, "test", data_root)
        subset = test.subset(np.arange(min(n_images, test.n_images)))
        # torch: this model is being trained; its ONNX graphs are exported once, at registration
        report = evaluate(model, subset, "cpu", workers=0, progress=False, engine="torch")
        out[name] = report.metrics.mr
    return out


def guard_violations(version: ModelVersion, guard_points: float) -> list[str]:
    """Reasons to refuse promoting ``version``: base mR drops larger than the guard."""
    metrics = version.metrics
    if not metrics:
        return []
    reasons = []
    for name, before in metrics["before"]["base_mR"].items():
        after = metrics["after"]["base_mR"][name]
        if before - after > guard_points:
            reasons.append(
                f"{name} test mR fell {before - after:.2f} points ({before:.2f} -> {after:.2f}), "
                f"more than the {guard_points:g}-point guard"
            )
    return reasons


def promote(
    workspace: Workspace, version: int, guard_points: float = FinetuneCfg.guard_points
) -> ModelVersion:
    """Make ``version`` active if it passes the guard (rollback to an older one always may).

    Its ONNX graphs are exported first where this machine runs ONNX (a cache hit when it was
    registered here), so the first query after the switch does not export them.

    Raises:
        FinetuneError: when the guard refuses it.
    """
    from core.model.inference import prepare_checkpoint
    from core.model.onnx_export import cache_dir_for

    registry = ModelRegistry(workspace)
    chosen = registry.get(version)
    reasons = guard_violations(chosen, guard_points) if version > registry.active().version else []
    if reasons:
        raise FinetuneError("promotion refused: " + "; ".join(reasons))
    prepare_checkpoint(chosen.path, cache_dir_for(workspace))
    return registry.set_active(version)


def summary(version: ModelVersion) -> dict[str, Any]:
    """Before/after numbers side by side, for the page and the CLI."""
    m = version.metrics
    if not m:
        return {}
    return {
        "heldout_p10": {
            q: (m["before"]["heldout_p10"].get(q), v) for q, v in m["after"]["heldout_p10"].items()
        },
        "base_mR": {d: (m["before"]["base_mR"][d], v) for d, v in m["after"]["base_mR"].items()},
    }
