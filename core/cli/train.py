"""``python -m core train``: train AMFMN with the paper's protocol (resumable)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from core.cli.common import (
    csv_of,
    default_device,
)

if TYPE_CHECKING:
    from core.learn.train.config import TrainCfg
    from core.model.config import AMFMNCfg

HELP = "train a model (resumable)"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    from core.learn.train.config import TrainCfg

    d = TrainCfg()
    p.add_argument(
        "--dataset", type=csv_of(str), default=d.datasets, help="comma-separated, e.g. rsicd,ucm"
    )
    p.add_argument("--out", type=Path, required=True, help="run folder (rerun to resume)")
    p.add_argument("--model", default=d.model, help="architecture name (see `models`)")
    p.add_argument("--attention", choices=["soft", "fusion", "similarity"])
    p.add_argument("--text", choices=["minilm", "bigru"], help="text encoder")
    p.add_argument("--trainable-stages", type=int, help="backbone stages to fine-tune (0 = frozen)")
    p.add_argument("--text-layers", type=int, help="MiniLM top layers to fine-tune")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--decay-every", type=int, default=d.decay_every)
    p.add_argument("--margin", choices=["dynamic", "fixed"], default=d.margin)
    p.add_argument("--fixed-margin", type=float, default=d.fixed_margin)
    p.add_argument("--negatives", choices=["sum", "hardest"], default=d.negatives)
    p.add_argument(
        "--sum-warmup-epochs",
        type=int,
        default=d.sum_warmup_epochs,
        help="first epochs that sum over all violating negatives before --negatives applies",
    )
    p.add_argument(
        "--views",
        type=int,
        default=d.views,
        help="image-space views (turns, flips) cached per image for the trained stages (1-4)",
    )
    p.add_argument(
        "--no-feature-turns",
        dest="feature_turns",
        action="store_false",
        help="no rotation/flip of cached features (use with --views when stages 2+ train)",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--device", default=default_device(), help="auto, cpu or cuda")
    p.add_argument("--cache", type=Path, help="feature cache folder (default: next to --out)")


def configs(args: argparse.Namespace) -> tuple[TrainCfg, AMFMNCfg]:
    """The run and model configuration the arguments ask for."""
    from core.learn.train.config import TrainCfg
    from core.model.factory import get_model_config

    cfg = TrainCfg(
        datasets=args.dataset,
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        decay_every=args.decay_every,
        margin=args.margin,
        fixed_margin=args.fixed_margin,
        negatives=args.negatives,
        sum_warmup_epochs=args.sum_warmup_epochs,
        seed=args.seed,
        views=args.views,
        feature_turns=args.feature_turns,
        workers=args.workers,
    )
    model_cfg = get_model_config(args.model)
    if args.attention:
        model_cfg = replace(model_cfg, attention=args.attention)
    if args.text:
        model_cfg = replace(model_cfg, text=replace(model_cfg.text, encoder=args.text))
    if args.text_layers is not None:
        model_cfg = replace(
            model_cfg, text=replace(model_cfg.text, trainable_layers=args.text_layers)
        )
    if args.trainable_stages is not None:
        model_cfg = replace(
            model_cfg, vision=replace(model_cfg.vision, trainable_stages=args.trainable_stages)
        )
    return cfg, model_cfg


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.learn.train.trainer import Trainer

    cfg, model_cfg = configs(args)
    best = Trainer(cfg, args.out, model_cfg, device=args.device, cache_root=args.cache).fit()
    print(f"best checkpoint: {best}")
    return 0
