"""``python -m core feedback``: list, export or import the analysts' marks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli.common import (
    add_workspace_only,
    print_reattachment,
    workspace_of,
)

HELP = "list, export or import analysts' marks"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    actions = p.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="marks, newest first")
    listing.add_argument("--query")
    listing.add_argument("--scene")
    export = actions.add_parser("export", help="JSON lines to stdout or --out")
    export.add_argument("--out", type=Path)
    load = actions.add_parser(
        "import", help="merge JSON lines from a file; marks move to the tiles covering their ground"
    )
    load.add_argument("file", type=Path)
    for action in (listing, export, load):
        add_workspace_only(action)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.store.feedback import SQLiteFeedback

    store = SQLiteFeedback(workspace_of(args).feedback_db)
    if args.action == "list":
        for m in store.marks(args.query, args.scene):
            extra = f"  {m.caption!r}" if m.caption else ""
            print(
                f"{m.id:>6}  {m.label:<10} {m.scene}:{m.tile_id:<8} {m.query_kind}:{m.query}{extra}"
            )
    elif args.action == "export":
        lines = "".join(line + "\n" for line in store.export_jsonl())
        if args.out:
            args.out.write_text(lines)
        else:
            sys.stdout.write(lines)
    else:
        import getpass

        from core.store.reattach import reconcile

        with open(args.file) as handle:
            print(f"imported {store.import_jsonl(handle, author=getpass.getuser())} marks")
        print_reattachment(reconcile(workspace_of(args), store))
    return 0
