"""``python -m core finetune``: fine-tune the active model on the marks."""

from __future__ import annotations

import argparse
import json
import sys

from core.cli.common import (
    add_workspace_only,
    workspace_of,
)

HELP = "fine-tune the active model on the marks"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    add_workspace_only(p)
    p.add_argument("--steps", type=int, help="optimisation steps (default 60)")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-4)")
    p.add_argument("--guard", type=float, help="max base mR drop allowed to promote (default 2)")
    p.add_argument(
        "--promote", action="store_true", help="make the new version active if it passes"
    )


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.learn.finetune.config import FinetuneCfg
    from core.learn.finetune.guard import promote, summary
    from core.learn.finetune.loop import finetune

    ws = workspace_of(args)

    def progress(stage: str, done: int, total: int, rate: float) -> None:
        print(f"{stage} {done}/{total}", file=sys.stderr)

    d = FinetuneCfg()
    cfg = FinetuneCfg(
        steps=args.steps or d.steps,
        lr=args.lr or d.lr,
        guard_points=d.guard_points if args.guard is None else args.guard,
    )
    version = finetune(ws, cfg, progress)
    print(json.dumps({"version": version.version, "parent": version.parent, **summary(version)}))
    if args.promote:
        promote(ws, version.version, cfg.guard_points)
        print(f"v{version.version} is active; re-embed scenes with: python -m core ingest ...")
    return 0
