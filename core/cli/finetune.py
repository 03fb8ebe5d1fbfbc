"""``python -m core finetune``: fine-tune the active model on the marks."""

from __future__ import annotations

import argparse
import json

from core.cli.common import (
    add_workspace_only,
    default_device,
    print_reattachment,
    print_refresh,
    stage_printer,
    workspace_of,
)
from core.learn.finetune.config import RECIPES, FinetuneCfg

HELP = "fine-tune the active model on the marks (needs only the workspace)"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    add_workspace_only(p)
    p.add_argument("--steps", type=int, help=f"optimisation steps (default {FinetuneCfg.steps})")
    p.add_argument(
        "--recipe",
        choices=RECIPES,
        default=FinetuneCfg.recipe,
        help="adapter: one adapter per marked text query, nothing else moves (default); "
        "tower: the shared text tower and gate learn (lifts paraphrases, moves near-ties)",
    )
    p.add_argument(
        "--lr",
        type=float,
        help=f"learning rate of the towers and gate (default {FinetuneCfg.lr:g}); "
        f"--adapter-lr for the adapters (default {FinetuneCfg.adapter_lr:g})",
    )
    p.add_argument("--adapter-lr", type=float, help="learning rate of the adapters")
    p.add_argument(
        "--image-tower",
        action="store_true",
        help="also fine-tune the image tower; promotion then re-embeds every scene",
    )
    p.add_argument(
        "--replay",
        type=int,
        default=0,
        metavar="N",
        help="also replay N RSICD + UCM training images (needs the datasets)",
    )
    p.add_argument(
        "--eval-images",
        type=int,
        default=0,
        metavar="N",
        help="also measure the paper's test mR on N images before and after (needs the datasets)",
    )
    p.add_argument("--guard", type=float, help="max test mR drop to promote, when measured")
    p.add_argument(
        "--promote",
        action="store_true",
        help="make the new version active if it passes the guard, and bring every scene to it",
    )
    p.add_argument("--device", default=default_device(), help="for re-embedding: auto, cpu, cuda")


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.ingest.launch import reembed_seconds, refresh_workspace
    from core.learn.finetune.guard import promote, summary
    from core.learn.finetune.loop import finetune
    from core.store.reattach import reconcile

    ws = workspace_of(args)
    print_reattachment(reconcile(ws))
    d = FinetuneCfg()
    cfg = FinetuneCfg(
        steps=args.steps or d.steps,
        recipe=args.recipe,
        lr=args.lr or d.lr,
        adapter_lr=args.adapter_lr or d.adapter_lr,
        image_tower=args.image_tower,
        replay_images=args.replay,
        eval_images=args.eval_images,
        guard_points=d.guard_points if args.guard is None else args.guard,
    )
    version = finetune(ws, cfg, stage_printer())
    print(json.dumps({"version": version.version, "parent": version.parent, **summary(version)}))
    if args.promote:
        stale, seconds = reembed_seconds(ws, version.data["image_tower"])
        if stale:
            took = f"about {seconds / 60:.0f} min" if seconds is not None else "a while"
            print(f"promotion re-embeds {len(stale)} scene(s) ({took}): {', '.join(stale)}")
        promote(ws, version.version, cfg.guard_points)
        print(f"v{version.version} is active")
        print_refresh(refresh_workspace(ws, args.device, stage_printer()))
    return 0
