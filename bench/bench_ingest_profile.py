"""Where a CPU ingest with the ONNX engine spends its time, and which reader set-up keeps up.

On the generated scene (``bench.large_scene``, every tile of its default catalog, as
``bench_onnx`` ingests it):

1. CPU profile: one end-to-end pass (``LocalParts`` + ``embed_tiles``) with the reading in
   this process (0 loader workers), so every step shows in one ``cProfile`` run timed in
   CPU seconds (ONNX Runtime's threads included): the ONNX session, normalisation, the
   block reads (GDAL, mask), cutting tiles, writing parts; then the CPU seconds of this
   process and of its loader workers with 2 workers;
2. wall clock: forward-only tiles/s against end-to-end tiles/s for each number of loader
   workers and ONNX intra-op threads, rounds alternating so machine noise hits all alike;
   on a shared machine the best round of each is the nearest to an idle one.

    python -m bench.bench_ingest_profile [--size 4096] [--workers 0,1,2] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.bench_ingest import end_to_end, forward_only
from bench.large_scene import make_large_scene
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.embed.runner import LocalParts
from core.model.checkpoint import load_checkpoint
from core.model.inference import load_towers
from core.model.shipped import resolve_checkpoint
from tiles import WINDOW_FIELDS, TileReader, TilingConfig, build_catalog

CPU = torch.device("cpu")
STEPS = {  # profile row -> function names (file:name) whose cumulative CPU time it is
    "ONNX session": ["onnxruntime_inference_collection.py:run"],
    "normalise": ["mapper.py:normalise"],
    "read blocks (GDAL, mask)": ["reader.py:read_block"],
    "cut tiles": ["blocks.py:cut_tiles"],
    "write and merge parts": ["writer.py:write", "writer.py:merge"],
}


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds of this process and of its finished children (loader workers)."""
    own, children = (
        resource.getrusage(r) for r in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def profile_steps(parts: LocalParts, n_tiles: int) -> dict[str, float]:
    """CPU seconds per step of one end-to-end pass, and the total."""
    profiler = cProfile.Profile(time.process_time)
    profiler.runcall(end_to_end, parts, n_tiles)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    cumulative = {f"{Path(f).name}:{name}": row[3] for (f, _, name), row in stats.items()}
    out = {step: sum(cumulative.get(n, 0.0) for n in names) for step, names in STEPS.items()}
    out["total"] = max(cumulative.get("bench_ingest.py:end_to_end", 0.0), 1e-9)
    out["other"] = out["total"] - sum(out[s] for s in STEPS)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=4096, help="side of the generated scene")
    parser.add_argument("--tiles", type=int, default=384, help="random tiles for forward-only")
    parser.add_argument("--workers", default="0,1,2", help="loader workers to time")
    parser.add_argument("--threads", default="1,2", help="ONNX intra-op threads to time")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    scene = Path(tempfile.gettempdir()) / f"sceneseek_bench_{args.size}.tif"
    if not scene.exists():
        make_large_scene(scene, size=args.size)
    catalog = build_catalog(scene, TilingConfig())
    windows = catalog[list(WINDOW_FIELDS)].to_numpy(np.int64)
    reader = TileReader.from_catalog(catalog)
    pick = np.sort(np.random.default_rng(0).choice(len(windows), args.tiles, replace=False))
    batches = list(torch.from_numpy(reader.read_batch([tuple(w) for w in windows[pick]])).split(32))
    model, _ = load_checkpoint(resolve_checkpoint("default"))
    threads = [int(t) for t in args.threads.split(",")]
    workers = [int(w) for w in args.workers.split(",")]
    embedders = {
        t: TileEmbedder(model, CPU, load_towers(model, CPU, "onnx", threads=t)) for t in threads
    }
    for embedder in embedders.values():
        forward_only(embedder, batches[:2])  # warm-up

    most = embedders[max(threads)]
    steps = profile_steps(LocalParts(reader, windows, most, 32, 0), len(windows))
    print(
        f"{scene.name}: {len(windows)} tiles; one end-to-end pass, reading in this process, "
        f"ONNX threads {max(threads)}; CPU seconds (cProfile, process time)\n"
    )
    print("| step | CPU s | share | ms per tile |")
    print("|---|---:|---:|---:|")
    for step, seconds in steps.items():
        print(
            f"| {step} | {seconds:.2f} | {seconds / steps['total']:.0%} | "
            f"{1000 * seconds / len(windows):.2f} |"
        )
    own, children = cpu_seconds()
    wall = time.perf_counter()
    end_to_end(LocalParts(reader, windows, most, 32, 2), len(windows))
    wall = time.perf_counter() - wall
    own2, children2 = cpu_seconds()
    print(
        f"\nwith 2 loader workers: {wall:.1f} s wall; CPU s: this process {own2 - own:.2f}, "
        f"workers {children2 - children:.2f}"
    )

    fwd: dict[int, list[float]] = {t: [] for t in threads}
    e2e: dict[tuple[int, int], list[float]] = {(t, w): [] for t in threads for w in workers}
    for _ in range(args.rounds):
        for t in threads:
            fwd[t].append(forward_only(embedders[t], batches))
            for w in workers:
                parts = LocalParts(reader, windows, embedders[t], 32, w)
                e2e[(t, w)].append(end_to_end(parts, len(windows)))
    print(f"\nwall clock, batch 32, {args.rounds} rounds: medians, and the best round of each\n")
    print(
        "| ONNX threads | loader workers | forward-only tiles/s | end-to-end tiles/s | ratio "
        "| best forward-only | best end-to-end | ratio of bests |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (t, w), values in e2e.items():
        f, e = float(np.median(fwd[t])), float(np.median(values))
        bf, be = max(fwd[t]), max(values)
        print(
            f"| {t} | {w} | {f:.1f} | {e:.1f} | {e / f:.2f} | {bf:.1f} | {be:.1f} | {be / bf:.2f} |"
        )
    for key, values in [*fwd.items(), *e2e.items()]:
        print(f"rounds {key}: " + ", ".join(f"{v:.1f}" for v in values))


if __name__ == "__main__":
    main()
