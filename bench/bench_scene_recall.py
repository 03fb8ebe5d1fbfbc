"""Scene-level recall: does an image's caption find that image's place in a scene?

The paper's metrics rank 1,093 separate images. An analyst searches one scene instead, through
the index, the gates and the overlap suppression. Here the RSICD test images are laid out one
per 256 px cell of a GeoTIFF (``bench.mosaic``), ingested at 256 px without overlap so every
tile is one image, and each image's first caption is searched as an analyst would type it.
R@K counts the captions whose own tile is among the first K hits.

    python -m bench.bench_scene_recall [--checkpoint default,runs/x/best.safetensors]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.mosaic import Mosaic, cell_of, ingest_cells, write_mosaic
from core.learn.data.sources import load_dataset
from core.model.loading import load_model
from core.search.ranking import Filters, search_text
from core.search.scenes import SearchResources
from core.store.workspace import Workspace

SCENE = "rsicd-test"
COLUMNS = 33  # 1,093 images: 33 x 34 cells
KS = (1, 5, 10)


def rsicd_test_mosaic(path: Path, images: int | None = None) -> tuple[Mosaic, list[str]]:
    """The first ``images`` RSICD test images (default all) as one mosaic, and each one's first caption."""
    test = load_dataset("rsicd", "test")
    paths = list(test.image_paths)[:images]
    write_mosaic(path, paths, COLUMNS)
    firsts = [test.captions[int(test.captions_of(i)[0])] for i in range(len(paths))]
    return Mosaic(path, tuple(p.name for p in paths), COLUMNS), firsts


def scene_recall(
    root: Path, mosaic: Mosaic, captions: list[str], checkpoint: str
) -> dict[bool, dict[str, float]]:
    """Per search path (exact or not): R@1/5/10 (percent) and the median query time."""
    workspace = Workspace(root)
    ingest_cells(workspace, mosaic.path, SCENE, checkpoint)
    loaded = load_model(workspace, checkpoint, device="cpu")
    resources = SearchResources.load(
        workspace, loaded.model, loaded.tag, loaded.device, loaded.towers
    )
    return {exact: _recall(resources, mosaic, captions, exact) for exact in (False, True)}


def _recall(
    resources: SearchResources, mosaic: Mosaic, captions: list[str], exact: bool
) -> dict[str, float]:
    filters = Filters(k=max(KS), exact=exact)
    ranks, seconds = [], []
    for cell, caption in enumerate(captions):
        started = time.perf_counter()
        hits = search_text(resources, caption, filters).hits
        seconds.append(time.perf_counter() - started)
        found = [cell_of(mosaic, h.window) for h in hits]
        ranks.append(found.index(cell) + 1 if cell in found else max(KS) + 1)
    ranked = np.array(ranks)
    out = {f"R@{k}": 100.0 * float(np.mean(ranked <= k)) for k in KS}
    out["query ms p50"] = 1000.0 * float(np.median(seconds))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", default="default", help="comma-separated checkpoints to compare"
    )
    parser.add_argument("--images", type=int, help="first N test images only (default: all)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        mosaic, captions = rsicd_test_mosaic(Path(tmp) / "rsicd-test.tif", args.images)
        for n, checkpoint in enumerate(args.checkpoint.split(",")):
            found = scene_recall(Path(tmp) / f"ws{n}", mosaic, captions, checkpoint)
            rows.extend((checkpoint, exact, r) for exact, r in found.items())
    print(f"RSICD test mosaic: {len(captions)} images, first caption of each searched, k=10\n")
    print("| model | search | R@1 | R@5 | R@10 | query ms p50 |")
    print("|---|---|---:|---:|---:|---:|")
    for checkpoint, exact, r in rows:
        search = "exact (every tile)" if exact else "index (as the app)"
        print(
            f"| {checkpoint} | {search} | {r['R@1']:.2f} | {r['R@5']:.2f} | {r['R@10']:.2f} "
            f"| {r['query ms p50']:.1f} |"
        )


if __name__ == "__main__":
    main()
