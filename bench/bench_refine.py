"""Does "Refine with marks" lift precision@10? Measured on the labelled UCM mosaic.

Ingest the mosaic (``bench.mosaic``), run each class query, mark its top-10 hits by
ground truth (relevant / not relevant) as an analyst would, re-rank with ``core.search.refine``
and compare precision@10 over tiles that were not marked, before and after. Prints a table.

    python -m bench.bench_refine [--classes beach,forest,harbor]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from bench.finetune_check import SCENE, mosaic_labels
from bench.mosaic import make_ucm_mosaic
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.pipeline import IngestOptions, ingest
from core.model.loading import load_model
from core.search.ranking import Filters, search_text
from core.search.refine import refine
from core.search.scenes import SearchResources
from core.store.workspace import Workspace
from tiles import TilingConfig


def _precision(hits: list, labels: dict[int, str], cls: str, marked: set[int]) -> float:
    kept = [h.tile_id for h in hits if h.tile_id not in marked][:10]
    return sum(labels[t] == cls for t in kept) / 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", help="comma-separated UCM classes to keep (default: all 21)")
    args = parser.parse_args()
    classes = tuple(args.classes.split(",")) if args.classes else None
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        mosaic = make_ucm_mosaic(Path(tmp) / "mosaic.tif", classes=classes)
        loaded = load_model(ws, device="cpu")
        options = IngestOptions(tiling=TilingConfig(sizes=(256,), overlap=0.0), workers=0)
        ingest(
            mosaic.path, ws, TileEmbedder(loaded.model, loaded.device), loaded.tag, SCENE, options
        )
        res = SearchResources.load(ws, loaded.model, loaded.tag, loaded.device)
        labels = mosaic_labels(ws, mosaic)
        wide = Filters(k=30, suppress_overlaps=False)
        rows = []
        for cls in sorted(set(labels.values())):
            first = search_text(res, cls, wide)
            marked = [h.tile_id for h in first.hits[:10]]
            relevant = [(SCENE, t) for t in marked if labels[t] == cls]
            irrelevant = [(SCENE, t) for t in marked if labels[t] != cls]
            if not relevant or not irrelevant:
                continue
            refined = refine(res, first, relevant, irrelevant, wide)
            rows.append(
                (
                    cls,
                    _precision(first.hits, labels, cls, set(marked)),
                    _precision(refined.hits, labels, cls, set(marked)),
                )
            )
    print("| query | P@10 unmarked, before | after refine |")
    print("|---|---:|---:|")
    for cls, before, after in rows:
        print(f"| {cls} | {before:.2f} | {after:.2f} |")
    before, after = np.mean([r[1] for r in rows]), np.mean([r[2] for r in rows])
    print(
        f"| **mean over {len(rows)} queries with mixed marks** | **{before:.2f}** | **{after:.2f}** |"
    )


if __name__ == "__main__":
    main()
