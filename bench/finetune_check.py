"""Does fine-tuning on marks help, and does it leave other queries alone? On a labelled mosaic.

1. Ingest a UCM mosaic (``bench.mosaic``; every 256 px tile is one image of known class)
   with the active model.
2. For a query an analyst would type (often a word the model never saw in training, such as
   "marina" for harbours), mark tiles as an analyst would: relevant tiles of its class, and
   the wrong tiles the model ranks highest as not relevant.
3. Fine-tune (``core.learn.finetune.loop``) and measure precision@10 over the tiles that were
   NOT marked, for that query and for every other query, before and after.

Precision is scored exactly from the stored vectors (what search ranks).
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.mosaic import UCM_CLASSES, Mosaic, cell_of, ingest_cells
from core.learn.finetune.config import FinetuneCfg
from core.learn.finetune.loop import finetune
from core.model.amfmn import AMFMN
from core.model.checkpoint import load_checkpoint
from core.model.versions import ModelRegistry, ModelVersion
from core.store.feedback import Mark, SQLiteFeedback
from core.store.reattach import tile_footprint
from core.store.workspace import Workspace
from tiles import WINDOW_FIELDS, read_catalog

SCENE = "ucm-mosaic"
# Analysts' words for UCM classes; none is a class name or in the reference queries.
ANALYST_QUERIES = {
    "marina": "harbor",
    "woodland": "forest",
    "trailer park": "mobile home park",
    "ballpark": "baseball diamond",
    "fuel depot": "storage tanks",
    "car park": "parking lot",
    "seaside": "beach",
    "housing estate": "medium residential",
    "flyover": "overpass",
    "suburb": "sparse residential",
}


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


def ingest_mosaic(workspace: Workspace, mosaic: Mosaic) -> dict[int, str]:
    """Ingest the mosaic with the active model (tile i is image i); its labels."""
    ingest_cells(workspace, mosaic.path, SCENE)
    return mosaic_labels(workspace, mosaic)


class Judge:
    """Precision@10 of any query over a scene's unmarked tiles, from its stored vectors."""

    def __init__(self, workspace: Workspace, labels: dict[int, str]) -> None:
        visual = np.load(workspace.scene(SCENE).embeddings / "visual.npy")
        self.visual = torch.from_numpy(visual.astype(np.float32))
        self.labels = np.array([labels.get(i, "") for i in range(len(visual))])

    @torch.no_grad()
    def ranking(self, model: AMFMN, query: str) -> np.ndarray:
        """Tile ids, best first."""
        text = model.encode_query(model.tokenize([query]))
        return torch.argsort(model.scores(self.visual, text)[:, 0], descending=True).numpy()

    def p10(self, model: AMFMN, query: str, cls: str, marked: set[int]) -> float:
        """Precision@10 over tiles that were not marked."""
        top = [t for t in self.ranking(model, query) if t not in marked][:10]
        return float(np.mean(self.labels[top] == cls))


def analyst_marks(
    judge: Judge, model: AMFMN, query: str, cls: str, n_marks: int, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Half relevant tiles of the class (at random), half the top-ranked wrong tiles."""
    n_relevant = n_marks // 2
    pool = [i for i, c in enumerate(judge.labels) if c == cls]
    relevant = random.Random(seed).sample(pool, n_relevant)
    wrong = [int(t) for t in judge.ranking(model, query) if judge.labels[t] not in (cls, "")]
    return relevant, wrong[: n_marks - n_relevant]


def store_marks(workspace: Workspace, query: str, relevant: list[int], wrong: list[int]) -> None:
    """Record the marks as the Search page does (with footprints)."""
    store = SQLiteFeedback(workspace.feedback_db)
    for tile, label in [(t, "relevant") for t in relevant] + [(t, "irrelevant") for t in wrong]:
        footprint = tile_footprint(workspace, SCENE, tile)
        store.mark(Mark("text", query, SCENE, tile, label, footprint=footprint, author="bench"))


@dataclass(frozen=True)
class QueryResult:
    """Before/after precision@10 on unmarked tiles for the marked query and every other."""

    query: str
    n_marks: int
    before: float
    after: float
    others: dict[str, tuple[float, float]]  # other query: (before, after)
    version: ModelVersion
    cpu_seconds: float  # CPU time of fine-tuning (all threads): less skewed by a busy machine

    @property
    def worst_other(self) -> tuple[str, float]:
        """The other query that lost most, and its change."""
        query = min(self.others, key=lambda q: self.others[q][1] - self.others[q][0])
        return query, self.others[query][1] - self.others[query][0]


def other_queries(query: str) -> dict[str, str]:
    """Every evaluated query but ``query``: the UCM class names and the analysts' words."""
    queries = {c: c for c in UCM_CLASSES} | ANALYST_QUERIES
    return {q: c for q, c in queries.items() if q != query}


def run_query(
    pristine: Workspace,
    scratch: Path,
    labels: dict[int, str],
    query: str,
    n_marks: int,
    cfg: FinetuneCfg,
) -> QueryResult:
    """Mark ``n_marks`` tiles for ``query`` in a copy of ``pristine``, fine-tune, measure."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(pristine.root, scratch)
    workspace = Workspace(scratch)
    base, _ = load_checkpoint(ModelRegistry(workspace).active().path)
    judge = Judge(workspace, labels)
    cls = ANALYST_QUERIES.get(query, query)
    relevant, wrong = analyst_marks(judge, base, query, cls, n_marks)
    store_marks(workspace, query, relevant, wrong)
    cpu = time.process_time()
    version = finetune(workspace, cfg)
    cpu = time.process_time() - cpu
    tuned, _ = load_checkpoint(version.path)
    marked = set(relevant) | set(wrong)
    others = {
        q: (judge.p10(base, q, c, marked), judge.p10(tuned, q, c, marked))
        for q, c in other_queries(query).items()
    }
    before, after = judge.p10(base, query, cls, marked), judge.p10(tuned, query, cls, marked)
    return QueryResult(query, n_marks, before, after, others, version, cpu)
