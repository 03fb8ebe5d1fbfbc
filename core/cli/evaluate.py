"""``python -m core evaluate``: recall metrics of a checkpoint on a dataset split."""

from __future__ import annotations

import argparse
import json

from core.cli.common import (
    add_engine,
    default_device,
)

HELP = "R@1/5/10 and mR on a test split"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    p.add_argument("--dataset", required=True, choices=["rsicd", "ucm", "rsitmd", "sydney"])
    p.add_argument("--split", default="test")
    p.add_argument("--checkpoint", required=True, help="a .safetensors file or a registry name")
    p.add_argument("--device", default=default_device())
    add_engine(p)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.learn.eval.evaluate import evaluate_checkpoint
    from core.model.shipped import resolve_checkpoint

    report = evaluate_checkpoint(
        resolve_checkpoint(args.checkpoint),
        args.dataset,
        args.split,
        device=args.device,
        engine=args.engine,
        workers=args.workers,
        progress=not args.json,
    )
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        m = report.metrics
        print(
            f"{report.dataset}/{report.split}: "
            f"{report.n_images} images, {report.n_captions} captions"
        )
        print("i2t R@1 {r1:.2f}  R@5 {r5:.2f}  R@10 {r10:.2f}".format(**m.i2t))
        print("t2i R@1 {r1:.2f}  R@5 {r5:.2f}  R@10 {r10:.2f}".format(**m.t2i))
        print(f"mR {m.mr:.2f}  ({report.seconds:.1f} s)")
    return 0
