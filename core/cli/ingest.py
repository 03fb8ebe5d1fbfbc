"""``python -m core ingest``: tile, embed and index a GeoTIFF (resumable, idempotent)."""

from __future__ import annotations

import argparse
import sys

import tiles
from core.cli.common import (
    add_workspace,
    csv_of,
    workspace_of,
)

HELP = "tile, embed and index a GeoTIFF (resumable)"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    p.add_argument(
        "scene",
        help="GeoTIFF to ingest: a file, an allowed http(s):// or s3:// COG URL "
        "(SCENESEEK_REMOTE_ALLOW), or a STAC item (.json file or URL) with --asset",
    )
    p.add_argument("--asset", help="the STAC item's asset to ingest, e.g. visual")
    add_workspace(p)
    p.add_argument("--name", help="scene name (default: from the file name)")
    sizes = p.add_mutually_exclusive_group()
    sizes.add_argument(
        "--tile-size", type=csv_of(int), help="tile sides in pixels, e.g. 256,512,1024"
    )
    sizes.add_argument(
        "--tile-metres", type=csv_of(float), help="tile sides in metres on the ground"
    )
    p.add_argument(
        "--overlap", type=float, help="shared tile fraction; default 0.5 (half-tile shift)"
    )
    p.add_argument(
        "--min-valid", type=float, help="skip tiles with a smaller valid fraction; default 0.5"
    )
    p.add_argument("--bands", type=csv_of(int), help="1-based RGB bands, e.g. 3,2,1")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--workers",
        type=int,
        help="tile-reading processes; default SCENESEEK_READER_WORKERS, else 0 on ONNX, 2 on torch",
    )
    p.add_argument("--dask", help="embed on Dask: tcp://scheduler:8786, or local:N workers")
    p.add_argument(
        "--shared-stages",
        type=int,
        default=0,
        choices=range(6),
        metavar="N",
        help="run the first N (1-5) backbone stages once per block of overlapping tiles: "
        "1.7x (N=1) to 2.9x (N=5) faster, vectors a little different (docs/BENCHMARKS.md); "
        "default 0, every tile on its own",
    )


def _tiling(args: argparse.Namespace) -> tiles.TilingConfig:
    d = tiles.TilingConfig()
    return tiles.TilingConfig(
        sizes=args.tile_metres or args.tile_size or d.sizes,
        size_unit="m" if args.tile_metres else "px",
        overlap=d.overlap if args.overlap is None else args.overlap,
        min_valid=d.min_valid if args.min_valid is None else args.min_valid,
        bands=args.bands,
    )


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from tqdm import tqdm

    from core.ingest.launch import ingest_scene
    from core.ingest.pipeline import IngestOptions
    from core.ingest.source import stac_href

    source = args.scene
    if args.asset or tiles.is_stac_item(source):
        source = stac_href(source, args.asset)

    options = IngestOptions(
        tiling=_tiling(args),
        batch_size=args.batch_size,
        workers=args.workers,
        shared_stages=args.shared_stages,
    )
    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int, rate: float) -> None:
        if stage != "embedding":
            print(f"{stage}...", file=sys.stderr)
            return
        bar = bars.setdefault(stage, tqdm(total=total, desc="embedding", unit="tile", initial=done))
        bar.update(done - bar.n)
        bar.set_postfix_str(f"{rate:.1f} tiles/s")

    result = ingest_scene(
        source,
        workspace_of(args, create=True),
        args.name,
        options,
        checkpoint=args.checkpoint,
        device=args.device,
        engine=args.engine,
        dask=args.dask,
        progress=progress,
    )
    for bar in bars.values():
        bar.close()
    if result.skipped:
        print(f"{result.scene}: already ingested with these settings; nothing to do")
    else:
        print(f"{result.scene}: {result.n_tiles} tiles in {result.seconds:.1f} s")
    return 0
