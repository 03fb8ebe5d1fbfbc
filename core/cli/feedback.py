"""``python -m core feedback``: list, export or import the analysts' marks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from core.cli.common import (
    add_workspace_only,
    print_reattachment,
    workspace_of,
)

if TYPE_CHECKING:
    from core.store.feedback import Mark

HELP = "list, export or import analysts' marks"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    actions = p.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="marks, newest first")
    listing.add_argument("--query")
    listing.add_argument("--scene")
    export = actions.add_parser("export", help="JSON lines or GeoJSON to stdout or --out")
    export.add_argument("--out", type=Path)
    export.add_argument(
        "--format",
        choices=["jsonl", "geojson"],
        default="jsonl",
        help="jsonl: one mark per line (re-importable); geojson: marks on tile footprints",
    )
    load = actions.add_parser(
        "import", help="merge JSON lines from a file; marks move to the tiles covering their ground"
    )
    load.add_argument("file", type=Path)
    for action in (listing, export, load):
        add_workspace_only(action)


def _left_out(mark: Mark, reason: str) -> None:
    """One warning line for a stored mark an export cannot carry."""
    print(f"warning: mark {mark.id} left out: {reason}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.errors import FeedbackError
    from core.store.feedback import SQLiteFeedback

    store = SQLiteFeedback(workspace_of(args, create=args.action == "import").feedback_db)
    if args.action == "list":
        for m in store.marks(args.query, args.scene):
            extra = f"  {m.caption!r}" if m.caption else ""
            print(
                f"{m.id:>6}  {m.label:<10} {m.scene}:{m.tile_id:<8} {m.query_kind}:{m.query}{extra}"
            )
    elif args.action == "export":
        if args.format == "geojson":
            from core.store.mark_export import marks_geojson

            collection = marks_geojson(workspace_of(args), reversed(store.marks()), _left_out)
            lines = json.dumps(collection) + "\n"
        else:
            lines = "".join(line + "\n" for line in store.export_jsonl(_left_out))
        if not args.out:
            sys.stdout.write(lines)
            return 0
        try:
            args.out.write_text(lines)
        except OSError as exc:
            raise FeedbackError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
    else:
        import getpass

        from core.store.reattach import reconcile

        try:
            text = args.file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise FeedbackError(f"cannot read {args.file}: {reason or exc}") from exc
        imported = store.import_jsonl(text.splitlines(), author=getpass.getuser())
        print(f"imported {imported} marks")
        print_reattachment(reconcile(workspace_of(args), store))
    return 0
