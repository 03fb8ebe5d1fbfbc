"""Does fine-tuning on marks help? Measured on a labelled UCM mosaic, end to end.

1. Ingest the mosaic (``bench.mosaic``) with the active model.
2. Pick the class query the model finds worst (precision@10 over all tiles).
3. Mark 20 tiles as an analyst would: relevant tiles of that class, and the wrong tiles the
   model ranks highest as not relevant; store them in the workspace's feedback database.
4. Fine-tune (``core.learn.finetune.loop``) and measure precision@10 for that query over the tiles
   that were NOT marked, before and after, plus the RSICD / UCM test mR guard.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from bench.mosaic import UCM_CLASSES, Mosaic, cell_of
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.pipeline import IngestOptions, ingest
from core.learn.finetune.config import FinetuneCfg
from core.learn.finetune.features import TileFeatures
from core.learn.finetune.guard import precision_at_k
from core.learn.finetune.loop import finetune
from core.model.amfmn import AMFMN
from core.model.checkpoint import load_checkpoint
from core.model.loading import load_model
from core.model.versions import ModelVersion
from core.store.feedback import Mark, SQLiteFeedback
from core.store.workspace import Workspace
from tiles import WINDOW_FIELDS, TilingConfig, read_catalog

SCENE = "ucm-mosaic"


@dataclass(frozen=True)
class CheckResult:
    """Before/after numbers of one fine-tuning check."""

    query: str
    marked_relevant: int
    marked_irrelevant: int
    p10_before: float
    p10_after: float
    version: ModelVersion


def query_for(cls: str) -> str:
    """The analyst's phrasing of a UCM class."""
    return f"{cls}"


def mosaic_labels(workspace: Workspace, mosaic: Mosaic) -> dict[int, str]:
    """Class of every ingested mosaic tile that covers exactly one image."""
    catalog = read_catalog(workspace.scene(SCENE).catalog)
    windows = catalog[list(WINDOW_FIELDS)].itertuples(index=False)
    out = {}
    for tile_id, window in zip(catalog["tile_id"], windows, strict=True):
        cell = cell_of(mosaic, tuple(window))
        if cell is not None:
            out[int(tile_id)] = mosaic.classes[cell]
    return out


def _p10(
    model: AMFMN,
    features: TileFeatures,
    query: str,
    labels: dict[int, str],
    cls: str,
    marked: set[int],
) -> float:
    """Precision@10 of ``query`` over the unmarked tiles, with class labels as the truth."""
    judged = {(SCENE, t): c == cls for t, c in labels.items() if t not in marked}
    exclude = {(SCENE, t) for t in marked}
    return precision_at_k(model, features, query, judged, exclude)


def _ranking(model: AMFMN, features: TileFeatures, query: str, ids: list[int]) -> list[int]:
    with torch.no_grad():
        visual = torch.cat(
            [
                model.visual_from_features(
                    model.backbone.forward_from(
                        model.frozen_stages, features.taps([(SCENE, t) for t in ids[i : i + 64]])
                    )
                )
                for i in range(0, len(ids), 64)
            ]
        )
        scores = model.scores(visual, model.encode_text(model.tokenize([query])))[:, 0]
    return [ids[i] for i in torch.argsort(scores, descending=True).tolist()]


def run_check(
    workspace: Workspace, mosaic: Mosaic, cfg: FinetuneCfg, n_marks: int = 20, n_relevant: int = 8
) -> CheckResult:
    """Run steps 1-4 and return the numbers (the new version is registered, not promoted)."""
    loaded = load_model(workspace, device="cpu")
    options = IngestOptions(
        tiling=TilingConfig(sizes=(256,), overlap=0.0, min_valid=0.5), workers=0
    )
    ingest(
        mosaic.path,
        workspace,
        TileEmbedder(loaded.model, loaded.device, loaded.towers),
        loaded.tag,
        SCENE,
        options,
    )
    labels = mosaic_labels(workspace, mosaic)
    present = sorted(set(labels.values()))
    model = loaded.model
    features = TileFeatures(workspace, model)
    scores = {c: _p10(model, features, query_for(c), labels, c, set()) for c in present}
    target = min(present, key=lambda c: (scores[c], UCM_CLASSES.index(c)))
    query = query_for(target)
    ids = sorted(labels)
    ranked = _ranking(model, features, query, ids)
    relevant = random.Random(0).sample([t for t in ids if labels[t] == target], n_relevant)
    irrelevant = [t for t in ranked if labels[t] != target][: n_marks - n_relevant]
    store = SQLiteFeedback(workspace.feedback_db)
    for tile, label in [(t, "relevant") for t in relevant] + [
        (t, "irrelevant") for t in irrelevant
    ]:
        store.mark(Mark("text", query, SCENE, tile, label, model=loaded.tag))
    marked = set(relevant) | set(irrelevant)
    before = _p10(model, features, query, labels, target, marked)
    version = finetune(workspace, cfg)
    tuned, _ = load_checkpoint(Path(version.path))
    after = _p10(tuned, TileFeatures(workspace, tuned), query, labels, target, marked)
    return CheckResult(query, len(relevant), len(irrelevant), before, after, version)
