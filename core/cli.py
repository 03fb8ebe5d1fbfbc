"""``python -m core``: one subcommand per stage, each a thin wrapper over a library call.

Errors SceneSeek raises on purpose print as one plain line (exit 2); anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from core.errors import SceneSeekError

Command = Callable[[argparse.Namespace], int]


def _csv(kind: Callable[[str], object]) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        return tuple(kind(x) for x in text.split(",") if x.strip())

    return parse


def _configure_train(p: argparse.ArgumentParser) -> None:
    from core.train.config import TrainCfg

    d = TrainCfg()
    p.add_argument(
        "--dataset", type=_csv(str), default=d.datasets, help="comma-separated, e.g. rsicd,ucm"
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
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--cache", type=Path, help="feature cache folder (default: next to --out)")


def _run_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from core.factory import get_model_config
    from core.train.config import TrainCfg
    from core.train.trainer import Trainer

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
        seed=args.seed,
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
    best = Trainer(cfg, args.out, model_cfg, device=args.device, cache_root=args.cache).fit()
    print(f"best checkpoint: {best}")
    return 0


def _configure_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=["rsicd", "ucm", "rsitmd", "sydney"])
    p.add_argument("--split", default="test")
    p.add_argument("--checkpoint", required=True, help="a .safetensors file or a registry name")
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def _run_evaluate(args: argparse.Namespace) -> int:
    from core.eval.evaluate import evaluate_checkpoint
    from core.registry import resolve_checkpoint

    report = evaluate_checkpoint(
        resolve_checkpoint(args.checkpoint),
        args.dataset,
        args.split,
        device=args.device,
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


def _run_models(args: argparse.Namespace) -> int:
    from core.factory import list_models
    from core.registry import list_pretrained

    for name in list_models():
        print(name)
    for name, tag, path in list_pretrained():
        print(f"{name}:{tag}\t{path}")
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command, str]] = {
    "train": (_configure_train, _run_train, "train a model (resumable)"),
    "evaluate": (_configure_evaluate, _run_evaluate, "R@1/5/10 and mR on a test split"),
    "models": (lambda p: None, _run_models, "list architectures and shipped weights"),
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser; exposed for tests and docs."""
    parser = argparse.ArgumentParser(prog="python -m core", description="SceneSeek engine")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (configure, _, help_text) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m core``."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command][1](args)
    except SceneSeekError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
