"""``python -m core change``: what is new, or gone, between two dates of the same place."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.cli.common import add_workspace, csv_of, workspace_of

HELP = "change search between two scenes of one place: biggest changes, or new/gone by query"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    add_workspace(p)
    p.add_argument("--before", required=True, help="the earlier scene")
    p.add_argument("--after", required=True, help="the later scene; hits use its tiles")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--text", help="what appeared or went, e.g. 'storage tanks'")
    what.add_argument("--image", type=Path, help="an example PNG/JPEG/TIFF of it")
    p.add_argument(
        "--direction",
        choices=["new", "gone"],
        default="new",
        help="new: later minus earlier score; gone: the reverse",
    )
    p.add_argument("--k", type=int, default=10)
    p.add_argument(
        "--min-change",
        type=float,
        help="only tiles whose change score (robust z) is at least this",
    )
    p.add_argument(
        "--scale", type=csv_of(int), default=(), help="restrict to tile sizes, e.g. 256,512"
    )
    p.add_argument(
        "--heat",
        type=Path,
        help="also write the change heat map as this GeoTIFF, with a .png overlay beside it",
    )
    p.add_argument("--format", choices=["json", "geojson", "table", "csv"], default="json")


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.errors import QueryError
    from core.ingest.embed.mapper import TileEmbedder
    from core.model.loading import load_model
    from core.search.change.align import align_pair, scene_manifests
    from core.search.change.pair import change_heat, load_pair
    from core.search.change.query import MAX_K, ChangeQuery, change_search
    from core.search.localize import write_heat_png, write_heat_tif
    from core.search.scenes import SearchResources

    if not 1 <= args.k <= MAX_K:
        raise QueryError(f"--k must be between 1 and {MAX_K}")
    ws = workspace_of(args)
    loaded = load_model(ws, args.checkpoint, args.device)
    scene_manifests(ws, args.before, args.after, loaded.scene_key)

    def progress(done: int, total: int, rate: float) -> None:
        print(f"aligning {args.before}: {done}/{total} tiles, {rate:.1f}/s", file=sys.stderr)

    embedder = TileEmbedder(loaded.model, loaded.device)
    align_pair(ws, args.before, args.after, embedder, loaded.scene_key, progress)
    res = SearchResources.load(ws, loaded.model, loaded.tag, loaded.device)
    pair = load_pair(res, args.before, args.after)
    query = ChangeQuery(
        text=args.text,
        image=args.image,
        direction=args.direction,
        k=args.k,
        min_change=args.min_change,
        scales=tuple(args.scale),
    )
    result = change_search(res, pair, query)
    if args.heat:
        heat = change_heat(pair)
        write_heat_tif(heat, args.heat)
        bounds = write_heat_png(heat, args.heat.with_suffix(".png"))
        print(json.dumps({"heat": str(args.heat), "bounds": list(bounds)}), file=sys.stderr)
    print(result.render(args.format))
    return 0
