"""``python -m core versions``: list, promote or roll back model versions."""

from __future__ import annotations

import argparse

from core.cli.common import (
    add_workspace_only,
    default_device,
    print_refresh,
    stage_printer,
    workspace_of,
)

HELP = "list, promote or roll back model versions"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    actions = p.add_subparsers(dest="action", required=True)
    add_workspace_only(actions.add_parser("list", help="registered model versions"))
    for name, text in (("promote", "make a version active"), ("rollback", "return to a version")):
        action = actions.add_parser(name, help=text)
        action.add_argument("version", type=int)
        action.add_argument("--guard", type=float, default=2.0)
        action.add_argument("--device", default=default_device(), help="auto, cpu or cuda")
        add_workspace_only(action)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.ingest.launch import refresh_workspace
    from core.learn.finetune.guard import promote
    from core.model.versions import ModelRegistry

    ws = workspace_of(args)
    registry = ModelRegistry(ws)
    if args.action == "list":
        active = registry.active().version
        for v in registry.versions():
            flag = "*" if v.version == active else " "
            print(f"{flag} {v.label:<16} parent={v.parent} {v.note}")
        return 0
    chosen = promote(ws, args.version, args.guard if args.action == "promote" else float("inf"))
    print(f"active model: {chosen.label}")
    print_refresh(refresh_workspace(ws, args.device, progress=stage_printer()))
    return 0
