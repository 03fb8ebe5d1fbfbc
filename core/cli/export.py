"""``python -m core export``: re-save a checkpoint, e.g. as float16 to ship."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "re-save a checkpoint, e.g. as float16 to ship"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    p.add_argument("checkpoint", help="checkpoint to export (.safetensors or a registry name)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--half", action="store_true", help="store weights as float16 (for shipping)")


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    import torch

    from core.model.checkpoint import file_sha256, load_checkpoint, save_checkpoint
    from core.model.shipped import resolve_checkpoint

    model, info = load_checkpoint(resolve_checkpoint(args.checkpoint))
    dtype = torch.float16 if args.half else None
    save_checkpoint(model, args.out, info.training, info.metrics, dtype=dtype)
    size = args.out.stat().st_size / 2**20
    print(
        json.dumps({"path": str(args.out), "sha256": file_sha256(args.out), "mib": round(size, 2)})
    )
    return 0
