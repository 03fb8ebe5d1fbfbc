"""``python -m core search``: text, example-image or tile queries over a workspace."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from core.cli.common import (
    add_area,
    add_workspace,
    area_of,
    csv_of,
    workspace_of,
)

if TYPE_CHECKING:
    from core.search.aoi import AreaOfInterest
    from core.search.scenes import SearchResources

HELP = "search ingested scenes by text, image or tile"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    add_workspace(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="a description, e.g. 'a baseball field next to a parking lot'")
    what.add_argument("--image", type=Path, help="an example PNG/JPEG/TIFF")
    what.add_argument("--tile", help="SCENE:TILE_ID of an indexed tile")
    what.add_argument(
        "--queries", type=Path, help="file of text queries, one per line (JSON lines out)"
    )
    p.add_argument("--scene", action="append", default=[], help="restrict to a scene (repeatable)")
    p.add_argument(
        "--scale", type=csv_of(int), default=(), help="restrict to tile sizes, e.g. 256,512"
    )
    p.add_argument("--k", type=int, default=10)
    p.add_argument(
        "--exact", action="store_true", help="score every tile instead of index candidates"
    )
    p.add_argument(
        "--no-suppress", action="store_true", help="keep overlapping near-duplicate hits"
    )
    p.add_argument(
        "--exclude-query",
        action="store_true",
        help="with --tile: leave out the tile and the tiles of its scene covering half of it",
    )
    add_area(p)
    p.add_argument("--format", choices=["json", "geojson", "table", "csv"], default="table")
    p.add_argument(
        "--dask",
        help="search scenes as shards on Dask: tcp://scheduler:8786, or local:N workers "
        "(default SCENESEEK_DASK)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.errors import QueryError
    from core.model.loading import load_model
    from core.search.scenes import SearchResources
    from core.search.shards import ShardedSearch
    from core.settings import get_settings

    if not 1 <= args.k <= 1000:
        raise QueryError("--k must be between 1 and 1000")
    if args.exclude_query and args.tile is None:
        raise QueryError("--exclude-query goes with --tile: it leaves out the tile asked about")
    area = area_of(args)
    ws = workspace_of(args)
    address = args.dask or get_settings().dask
    shards = ShardedSearch.connect(address) if address else None
    try:
        loaded = load_model(ws, args.checkpoint, args.device, args.engine)
        res = SearchResources.load(
            ws, loaded.model, loaded.tag, loaded.device, loaded.towers, shards
        )
        return _answer(res, args, area)
    finally:
        if shards is not None:
            shards.close()


def _answer(res: SearchResources, args: argparse.Namespace, area: AreaOfInterest | None) -> int:
    """Print the answers to the query (or queries) that ``args`` names, inside ``area``."""
    from core.errors import QueryError
    from core.search.ranking import Filters, search_image, search_text, search_tile
    from core.search.similar import search_similar
    from core.store.tileref import TileRef

    f = Filters(
        scenes=tuple(args.scene),
        scales=tuple(args.scale),
        k=args.k,
        exact=args.exact,
        suppress_overlaps=not args.no_suppress,
        area=area,
    )
    if args.queries:
        lines = [line.strip() for line in Path(args.queries).read_text().splitlines()]
        for line in lines:
            if not line:
                continue
            try:
                print(json.dumps(search_text(res, line, f).to_dict()), flush=True)
            except QueryError as exc:
                print(json.dumps({"query": {"text": line}, "error": str(exc)}), flush=True)
        return 0
    if args.text is not None:
        result = search_text(res, args.text, f)
    elif args.image is not None:
        result = search_image(res, args.image, f)
    else:
        ref = TileRef.parse(args.tile)
        similar = search_similar if args.exclude_query else search_tile
        result = similar(res, ref.scene, ref.tile_id, f)
    print(result.render(args.format))
    if result.partial and args.format != "table":
        print(result.partial_note, file=sys.stderr)
    if result.notice:
        print(f"note: {result.notice}", file=sys.stderr)
    return 0
