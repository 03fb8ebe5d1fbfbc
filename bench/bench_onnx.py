"""ONNX Runtime against torch on the CPU, side by side in one run (``core.model.inference``).

* forward-only tiles/s: the same uint8 tiles already in memory (``--tiles`` drawn at random
  from the scene's catalog) through ``TileEmbedder`` (normalisation + image tower + gates)
  with each engine, at 256 px, batches of 32 and 64;
* end-to-end tiles/s: embedding the whole scene as an ingest does, every tile of its default
  catalog in catalog order, read from the GeoTIFF (by as many DataLoader workers as an
  ingest picks for the engine), embedded and written as parts (``core.ingest.embed.runner.embed_tiles``), with each engine, and its ratio to the
  engine's forward-only rate at batch 32; with ``--shared-stages N`` also torch with N shared
  backbone stages (``core.ingest.embed.shared``), the other way to speed up CPU ingest;
* text-query encoding p50 / p95 ms (tokenize + text tower, one query at a time, numpy's
  BLAS on one thread as ``SearchResources.load`` sets it) over real RSICD test captions, and
  image-query encoding of one tile;
* evaluation seconds of the shipped model on the RSICD test split with each engine
  (``core.learn.eval.evaluate``), with its mR;
* with ``--int8``: the image graph statically quantised (QDQ, per-channel int8 weights,
  uint8 activations calibrated on 128 tiles of the scene; the stem, the head stage and the
  heads stay float) against the float graph: forward-only tiles/s, cosine of the vectors of
  every tile of the shared scenes, and the overlap of the top 10 of those tiles for 20 RSICD
  test captions under exact soft-attention scoring.

Rounds alternate engines so machine noise hits both alike. The scene is a generated tiled
GeoTIFF of real UCM images (``bench/large_scene.py``), as in ``bench_ingest``. The
ONNX graphs are exported (and verified) before timing starts. Prints markdown tables.

    python -m bench.bench_onnx --size 4096 --tiles 384 --rounds 2 [--shared-stages 1] [--int8]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import torch

from bench.bench_ingest import end_to_end, forward_only
from bench.large_scene import make_large_scene
from core.device import limit_blas_threads
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.embed.runner import LocalParts, reader_workers
from core.ingest.embed.shared import SharedParts
from core.learn.data.sources import load_dataset
from core.learn.eval.evaluate import evaluate
from core.model.amfmn import AMFMN
from core.model.attention import soft_scores
from core.model.checkpoint import load_checkpoint
from core.model.inference import Towers, load_towers, new_session
from core.model.onnx_export import cache_dir_for, ensure_exported
from core.model.shipped import resolve_checkpoint
from core.settings import get_settings
from tiles import TileReader, TilesError, TilingConfig, build_catalog

ENGINES = ("torch", "onnx")
CPU = torch.device("cpu")


def percentiles(ms: list[float]) -> str:
    return f"{np.percentile(ms, 50):.1f} | {np.percentile(ms, 95):.1f}"


def text_latency(model: torch.nn.Module, towers: Towers, queries: list[str]) -> list[float]:
    """Milliseconds per query, as ``SearchResources.encode_text`` runs it."""
    out = []
    for query in queries:
        t0 = time.perf_counter()
        with torch.inference_mode():
            towers.text(model.tokenize([query]))
        out.append((time.perf_counter() - t0) * 1000)
    return out


def image_latency(towers: Towers, tile: torch.Tensor, repeats: int) -> list[float]:
    """Milliseconds per single normalised tile through the image tower."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        towers.image(tile)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def int8_check(model: AMFMN, embedder: TileEmbedder, calibration: torch.Tensor) -> None:
    """Static int8 image graph against the float one (see the module docstring)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    graph = ensure_exported(model, cache_dir_for(None))["image"]
    batches = [embedder.normalise(b).contiguous().numpy() for b in calibration.split(16)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter([{"images": b} for b in batches])

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    folder = Path(tempfile.mkdtemp())
    quant_pre_process(str(graph), str(folder / "pre.onnx"), skip_symbolic_shape=True)
    names = [n.name for n in onnx.load(str(folder / "pre.onnx")).graph.node]
    quantize_static(
        str(folder / "pre.onnx"),
        str(folder / "int8.onnx"),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=[
            n
            for n in names
            if not n.startswith("/backbone/stages.") or "stages.4" in n or "stem" in n
        ],
    )
    threads = torch.get_num_threads()
    sessions = {
        "float": new_session(graph, threads),
        "int8": new_session(folder / "int8.onnx", threads),
    }
    tiles = []
    for path in sorted((get_settings().data_root / "scenes").glob("*.tif")):
        try:
            catalog = build_catalog(path, TilingConfig())
        except TilesError:
            continue
        windows = catalog[["col_off", "row_off", "width", "height"]].to_numpy(np.int64)
        tiles.append(TileReader.from_catalog(catalog).read_batch([tuple(w) for w in windows]))
    test = embedder.normalise(torch.from_numpy(np.concatenate(tiles))).contiguous().numpy()
    out = {
        k: [
            np.concatenate(v)
            for v in zip(
                *(s.run(None, {"images": b}) for b in np.array_split(test, 16)), strict=True
            )
        ]
        for k, s in sessions.items()
    }
    a, b = out["float"][0], out["int8"][0]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    captions = list(dict.fromkeys(load_dataset("rsicd", "test").captions))[::50][:20]
    text = torch.from_numpy(load_towers(model, CPU, "onnx").text(model.tokenize(captions)))
    tops = {
        k: np.argsort(-soft_scores(*(torch.from_numpy(x) for x in v), text).numpy(), axis=0)[:10]
        for k, v in out.items()
    }
    overlap = np.mean(
        [len(set(tops["float"][:, q]) & set(tops["int8"][:, q])) / 10 for q in range(len(captions))]
    )
    speed: dict[str, list[float]] = {k: [] for k in sessions}
    batch = calibration[:32]
    feed = {"images": embedder.normalise(batch).contiguous().numpy()}
    for _ in range(3):
        for k, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, feed)
            speed[k].append(32 / (time.perf_counter() - t0))
    f, q = (float(np.median(speed[k][1:])) for k in sessions)
    print(
        f"\nstatic int8 image graph, {len(test)} tiles of the shared scenes, {len(captions)} captions\n"
    )
    print("| float tiles/s | int8 tiles/s | speed-up | cos mean | cos min | top-10 overlap |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {f:.1f} | {q:.1f} | {q / f:.2f} | {cos.mean():.4f} | {cos.min():.4f} | {overlap:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=4096, help="side of the generated scene")
    parser.add_argument("--tiles", type=int, default=384, help="random tiles for forward-only")
    parser.add_argument("--batches", default="32,64")
    parser.add_argument(
        "--workers", type=int, help="reader workers; default: what an ingest picks per engine"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--shared-stages", type=int, default=0)
    parser.add_argument("--eval", default="rsicd", help="datasets to evaluate; '' to skip")
    parser.add_argument("--eval-rounds", type=int, default=1)
    parser.add_argument("--int8", action="store_true", help="also try static int8 (QDQ)")
    args = parser.parse_args()
    model, _ = load_checkpoint(resolve_checkpoint(args.checkpoint))
    t0 = time.perf_counter()
    towers = {e: load_towers(model, CPU, e, cache_dir_for(None)) for e in ENGINES}
    print(f"towers ready (exported if missing) in {time.perf_counter() - t0:.1f} s")
    assert towers["onnx"].engine == "onnx", "an export was refused; see the log"
    embedders = {e: TileEmbedder(model, CPU, towers[e]) for e in ENGINES}

    scene = Path(tempfile.gettempdir()) / f"sceneseek_bench_{args.size}.tif"
    if not scene.exists():
        make_large_scene(scene, size=args.size)
    catalog = build_catalog(scene, TilingConfig())
    windows = catalog[["col_off", "row_off", "width", "height"]].to_numpy(np.int64)
    pick = np.sort(np.random.default_rng(0).choice(len(catalog), args.tiles, replace=False))
    reader = TileReader.from_catalog(catalog)
    pixels = torch.from_numpy(reader.read_batch([tuple(w) for w in windows[pick]]))
    sizes = [int(b) for b in args.batches.split(",")]

    chosen = {e: reader_workers(e) if args.workers is None else args.workers for e in ENGINES}
    workers = ", ".join(f"{e} {w}" for e, w in chosen.items())
    fwd: dict[tuple[str, int], list[float]] = {(e, b): [] for e in ENGINES for b in sizes}
    e2e: dict[str, list[float]] = {e: [] for e in [*ENGINES, "shared"]}
    for e in ENGINES:
        forward_only(embedders[e], list(pixels[:64].split(32)))  # warm-up
    for _ in range(args.rounds):
        for b in sizes:
            for e in ENGINES:
                fwd[(e, b)].append(forward_only(embedders[e], list(pixels.split(b))))
        for e in ENGINES:
            parts = LocalParts(reader, windows, embedders[e], 32, chosen[e])
            e2e[e].append(end_to_end(parts, len(windows)))
        if args.shared_stages:
            shared = SharedParts(reader, windows, embedders["torch"], args.shared_stages)
            e2e["shared"].append(end_to_end(shared, len(windows)))

    print(
        f"\n{args.size} px scene, {len(windows)} tiles (scales "
        f"{sorted(int(s) for s in set(windows[:, 2]))}), forward-only on {len(pixels)} of them, "
        f"{args.rounds} rounds, torch threads {torch.get_num_threads()}, "
        f"cpus {os.cpu_count()}, reader workers {workers}\n"
    )
    print("| path | torch tiles/s | ONNX tiles/s | ONNX / torch |")
    print("|---|---:|---:|---:|")
    for b in sizes:
        t, o = (float(np.median(fwd[(e, b)])) for e in ENGINES)
        print(f"| forward-only, batch {b} | {t:.1f} | {o:.1f} | {o / t:.2f} |")
    t, o = (float(np.median(e2e[e])) for e in ENGINES)
    print(f"| end-to-end, whole scene, batch 32 | {t:.1f} | {o:.1f} | {o / t:.2f} |")
    ft, fo = (float(np.median(fwd[(e, sizes[0])])) for e in ENGINES)
    print(f"| end-to-end / forward-only | {t / ft:.2f} | {o / fo:.2f} | |")
    if args.shared_stages:
        s = float(np.median(e2e["shared"]))
        print(
            f"\nend-to-end, torch with {args.shared_stages} shared stage(s): {s:.1f} tiles/s "
            f"({s / t:.2f} x torch per tile, {s / o:.2f} x ONNX per tile)"
        )
    for key, values in [*fwd.items(), *e2e.items()]:
        if values:
            print(f"rounds {key}: " + ", ".join(f"{v:.1f}" for v in values))

    limit_blas_threads()  # as SearchResources.load does
    captions = list(dict.fromkeys(load_dataset("rsicd", "test").captions))[: args.queries]
    tile = embedders["onnx"].normalise(pixels[:1])
    text_ms: dict[str, list[float]] = {e: [] for e in ENGINES}
    image_ms: dict[str, list[float]] = {e: [] for e in ENGINES}
    for e in ENGINES:
        text_latency(model, towers[e], captions[:5])  # warm-up
        image_latency(towers[e], tile, 2)
    for _ in range(args.rounds):
        for e in ENGINES:
            text_ms[e] += text_latency(model, towers[e], captions)
            image_ms[e] += image_latency(towers[e], tile, 20)
    print(f"\n{len(captions)} RSICD test captions x {args.rounds} rounds, one BLAS thread\n")
    print("| query encoding | torch p50 ms | torch p95 ms | ONNX p50 ms | ONNX p95 ms |")
    print("|---|---:|---:|---:|---:|")
    print(f"| text | {percentiles(text_ms['torch'])} | {percentiles(text_ms['onnx'])} |")
    print(
        f"| image (one tile) | {percentiles(image_ms['torch'])} | {percentiles(image_ms['onnx'])} |"
    )

    if args.int8:
        int8_check(model, embedders["onnx"], pixels[:128])
    if args.eval:
        print("\n| evaluation | images | captions | torch s | ONNX s | torch mR | ONNX mR |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name in args.eval.split(","):
            data = load_dataset(name, "test")
            seconds: dict[str, list[float]] = {e: [] for e in ENGINES}
            mr = {}
            for _ in range(args.eval_rounds):
                for e in ENGINES:
                    report = evaluate(model, data, CPU, progress=False, engine=e)
                    seconds[e].append(report.seconds)
                    mr[e] = report.metrics.mr
            t, o = (float(np.median(seconds[e])) for e in ENGINES)
            print(
                f"| {name} test | {data.n_images} | {data.n_captions} | {t:.1f} | {o:.1f} | "
                f"{mr['torch']:.2f} | {mr['onnx']:.2f} |"
            )


if __name__ == "__main__":
    main()
