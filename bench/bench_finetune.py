"""Fine-tuning on marks with no datasets: what it lifts, what it leaves alone, what it costs.

``quality``: on the labelled UCM mosaic (``bench.finetune_check``), for each analyst query
and each number of marks (half relevant, half the top-ranked wrong tiles), precision@10 on
unmarked tiles before and after, for that query and for every other one (the 21 class names
and the other analyst words), and which other queries get a share of the marked query's
adapter. ``--set recipe=tower`` trains the shared text tower and gate instead of adapters;
``--recipe replay`` runs the first recipe (image tower too, replay of 512 RSICD + UCM training
images, no distillation; needs the datasets).

``promotion``: time to bring a scene of N synthetic tiles (``bench.synthetic``) to a version
that shares its image tower: with the tower recipe, gates from stored vectors and the text
index (no embedding); with adapters, nothing (``refresh_workspace`` finds every file shared).

    python -m bench.bench_finetune quality --marks 5,10,20 [--set recipe=tower]
    python -m bench.bench_finetune promotion --tiles 10000,100000
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from bench.finetune_check import ANALYST_QUERIES, QueryResult, ingest_mosaic, run_query
from bench.mosaic import Mosaic, make_ucm_mosaic, ucm_class, ucm_images
from bench.synthetic import mixed_vectors, real_vectors
from core.ingest.launch import refresh_workspace
from core.ingest.refresh import refresh_scene
from core.learn.finetune.config import FinetuneCfg
from core.learn.finetune.guard import guard_violations, promote
from core.learn.finetune.loop import add_adapters
from core.model.amfmn import AMFMN
from core.model.checkpoint import image_tower_fingerprint, load_checkpoint, save_checkpoint
from core.model.versions import ModelRegistry
from core.store.index import INDEX_DIM, VISUAL_METRIC, build_index
from core.store.manifest import READY, SceneManifest
from core.store.workspace import Workspace

RECIPES = {
    "workspace": FinetuneCfg(),
    "replay": FinetuneCfg(
        lr=1e-4, image_tower=True, replay_images=512, text_distill=0.0, rank_distill=0.0
    ),
}


def quality(queries: list[str], marks: list[int], recipe: str, keep: Path | None) -> None:
    cfg = RECIPES[recipe]
    with tempfile.TemporaryDirectory() as scratch:
        tmp = keep or Path(scratch)  # with --keep, a later run reuses the ingested mosaic
        path = Path(tmp) / "mosaic.tif"
        if path.exists():
            mosaic = Mosaic(path, tuple(ucm_class(p.name) for p in ucm_images()), 21)
        else:
            mosaic = make_ucm_mosaic(path)
        pristine = Workspace(Path(tmp) / "pristine")
        labels = ingest_mosaic(pristine, mosaic)
        print(f"recipe {recipe!r}: {cfg}\n")
        print(
            "| query | marks | P@10 before | after | worst other query (change) | others' mean change | others down > 0.1 | others with adapter weight (w: change) | guard | fine-tune s |"
        )
        print("|---|---:|---:|---:|---|---:|---:|---|---|---:|")
        rows = []
        for n in marks:
            for query in queries:
                r = run_query(pristine, Path(tmp) / "run", labels, query, n, cfg)
                changes = [a - b for b, a in r.others.values()]
                worst, change = r.worst_other
                down = sum(c < -0.1 - 1e-9 for c in changes)
                guard = "refused" if guard_violations(r.version) else "passes"
                seconds = r.version.metrics["seconds"]
                print(
                    f"| {query} | {n} | {r.before:.1f} | {r.after:.1f} | {worst} ({change:+.1f}) | {np.mean(changes):+.3f} | {down} | {shared_adapters(r)} | {guard} | {seconds:.0f} ({r.cpu_seconds:.0f}) |",
                    flush=True,
                )
                rows.append((n, r.before, r.after, down, min(changes), seconds))
        print()
        for n in marks:
            low = [(b, a) for m, b, a, *_ in rows if m == n and b <= 0.5]
            mine = [r for r in rows if r[0] == n]
            lift = np.mean([a - b for b, a in low]) if low else float("nan")
            print(
                f"- {n} marks: mean lift {lift:+.2f} over {len(low)} queries starting <= 0.5; other queries down > 0.1: {sum(r[3] for r in mine)} of {len(mine) * 30}; worst other change {min(r[4] for r in mine):+.1f}; fine-tuning {np.mean([r[5] for r in mine]):.0f} s on average"
            )


@torch.no_grad()
def shared_adapters(result: QueryResult) -> str:
    """Other queries the tuned version's adapters reach (kernel weight > 0), and their change."""
    tuned, _ = load_checkpoint(result.version.path)
    if not len(tuned.adapters):
        return "(no adapters)"
    others = list(result.others)
    weights = tuned.adapters.weights(tuned.encode_text(tuned.tokenize(others))).max(-1).values
    reached = [
        f"{q} ({w:.2f}: {result.others[q][1] - result.others[q][0]:+.1f})"
        for q, w in zip(others, weights.tolist(), strict=True)
        if w > 0
    ]
    return ", ".join(reached) or "none"


def synthetic_workspace(root: Path, n: int, visual: np.ndarray, gates: np.ndarray) -> Workspace:
    """A workspace with one ready scene of ``n`` synthetic tiles, embedded by version 0."""
    workspace = Workspace(root)
    registry = ModelRegistry(workspace)
    model, _ = load_checkpoint(registry.active().path)
    tower = image_tower_fingerprint(model)
    scene = workspace.scene(f"synthetic{n}")
    scene.embeddings.mkdir(parents=True)
    v = np.lib.format.open_memmap(
        scene.embeddings / "visual.npy", "w+", np.float16, (n, visual.shape[1])
    )
    g = np.lib.format.open_memmap(
        scene.embeddings / "gate.npy", "w+", np.float16, (n, visual.shape[1])
    )
    for start in range(0, n, 65536):
        stop = min(n, start + 65536)
        v[start:stop], g[start:stop] = mixed_vectors(visual, gates, start, stop)
    v.flush()
    build_index(np.asarray(v), scene.visual_index, tower, VISUAL_METRIC, index_dim=INDEX_DIM)
    SceneManifest(
        scene.name, status=READY, n_tiles=n, model=registry.active().tag, image_tower=tower
    ).save(scene.manifest)
    return workspace


def candidates(model: AMFMN, folder: Path) -> dict[str, Path]:
    """Stand-ins for fine-tuned versions: text tower and gate moved, or one adapter added."""
    adapted = copy.deepcopy(model)
    add_adapters(adapted, {"marina"}, FinetuneCfg.adapter_tau)
    with torch.no_grad():
        adapted.adapters.deltas.add_(0.1 * torch.randn_like(adapted.adapters.deltas))
        for module in (model.attention, model.text.proj):
            for p in module.parameters():
                p.add_(0.01 * torch.randn_like(p))
    return {
        "tower": save_checkpoint(model, folder / "tower.safetensors"),
        "adapter": save_checkpoint(adapted, folder / "adapter.safetensors"),
    }


def promotion(sizes: list[int], images: int = 500) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        probe = ModelRegistry(Workspace(Path(tmp) / "probe")).active()
        model, _ = load_checkpoint(probe.path)
        visual, gates = real_vectors(model, images)
        made = candidates(model, Path(tmp))
        print(
            "| tiles | recipe | gates s | text index s | total s | visual.npy, gate.npy unchanged |"
        )
        print("|---:|---|---:|---:|---:|---|")
        for n in sizes:
            for recipe, candidate in made.items():
                workspace = synthetic_workspace(Path(tmp) / f"ws{n}-{recipe}", n, visual, gates)
                version = ModelRegistry(workspace).register(candidate, 0)
                scene = workspace.scene(f"synthetic{n}")
                files = [scene.embeddings / "visual.npy", scene.embeddings / "gate.npy"]
                before = [f.read_bytes() for f in files]
                stages: dict[str, float] = {}
                t0 = time.time()
                if recipe == "tower":
                    tuned, _ = load_checkpoint(version.path)
                    total = refresh_scene(
                        scene,
                        tuned,
                        version.tag,
                        image_tower_fingerprint(tuned),
                        lambda stage, *_, seen=stages: seen.__setitem__(stage, time.time()),
                    )
                    split = f"{stages['text index'] - t0:.1f} | {stages['done'] - stages['text index']:.1f}"
                else:  # as the promotion job runs it: load the version, find every file shared
                    promote(workspace, version.version)
                    report = refresh_workspace(workspace, "cpu")
                    total, split = report.seconds, "- | -"
                    assert report.current == [scene.name], report
                same = ", ".join(
                    str(f.read_bytes() == b) for f, b in zip(files, before, strict=True)
                )
                print(f"| {n:,} | {recipe} | {split} | {total:.2f} | {same} |", flush=True)


def overridden(cfg: FinetuneCfg, pairs: list[str]) -> FinetuneCfg:
    """``cfg`` with ``FIELD=VALUE`` overrides, each value cast to the field's type."""
    changes = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        kind = type(getattr(cfg, name))
        changes[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return replace(cfg, **changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    actions = parser.add_subparsers(dest="action", required=True)
    q = actions.add_parser("quality")
    q.add_argument("--queries", default=",".join(list(ANALYST_QUERIES)[:6]))
    q.add_argument("--marks", default="5,10,20")
    q.add_argument("--recipe", choices=sorted(RECIPES), default="workspace")
    q.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a FinetuneCfg field of the recipe, e.g. --set steps=30",
    )
    q.add_argument("--keep", type=Path, help="folder to keep the ingested mosaic in, for reruns")
    p = actions.add_parser("promotion")
    p.add_argument("--tiles", default="10000,100000")
    p.add_argument("--images", type=int, default=500, help="RSICD images the tiles mix")
    args = parser.parse_args()
    if args.action == "quality":
        RECIPES[args.recipe] = overridden(RECIPES[args.recipe], args.set)
        marks = [int(m) for m in args.marks.split(",")]
        quality(args.queries.split(","), marks, args.recipe, args.keep)
    else:
        promotion([int(n) for n in args.tiles.split(",")], args.images)


if __name__ == "__main__":
    main()
