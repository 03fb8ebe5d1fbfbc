"""``python -m core localize``: a heat map of where a description fits a scene."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.cli.common import (
    add_area,
    add_workspace,
    area_of,
    workspace_of,
)

HELP = "heat map of where a description fits a scene"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    add_workspace(p)
    p.add_argument("--scene", required=True)
    p.add_argument("--text", required=True)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="heat map GeoTIFF; a .png overlay is written beside it",
    )
    add_area(p)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.model.loading import load_model
    from core.search.localize import heat_map, write_heat_png, write_heat_tif
    from core.search.query import clean_text_query
    from core.search.scenes import SearchResources

    ws = workspace_of(args)
    text = clean_text_query(args.text)
    area = area_of(args)
    loaded = load_model(ws, args.checkpoint, args.device, args.engine)
    res = SearchResources.load(ws, loaded.model, loaded.tag, loaded.device, loaded.towers)
    scene = res.select([args.scene])[0]
    heat = heat_map(scene, res.encode_text(text), area=area)
    write_heat_tif(heat, args.out)
    png = args.out.with_suffix(".png")
    bounds = write_heat_png(heat, png)
    print(json.dumps({"tif": str(args.out), "png": str(png), "bounds": list(bounds)}))
    return 0
