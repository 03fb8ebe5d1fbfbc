"""``python -m core``: one subcommand per stage, each a thin wrapper over a library call.

Each subcommand is a module of this package with ``HELP``, ``configure(parser)`` and
``run(args) -> int``. Errors SceneSeek raises on purpose print as one plain line (exit 2);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from core.errors import SceneSeekError
from tiles import TilesError, redact_text

COMMANDS = {
    "train": "train",
    "evaluate": "evaluate",
    "ingest": "ingest",
    "search": "search",
    "localize": "localize",
    "change": "change",
    "models": "models",
    "export": "export",
    "job-run": "job_run",
    "jobs": "jobs",
    "feedback": "feedback",
    "finetune": "finetune",
    "versions": "versions",
    "users": "users",
    "serve-check": "serve_check",
    "front": "front",
}


def _command(name: str) -> ModuleType:
    return importlib.import_module(f"core.cli.{COMMANDS[name]}")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser; exposed for tests and docs."""
    parser = argparse.ArgumentParser(prog="python -m core", description="SceneSeek engine")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = _command(name)
        module.configure(sub.add_parser(name, help=module.HELP, description=module.HELP))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m core``."""
    try:
        args = build_parser().parse_args(argv)  # defaults read settings, which may be malformed
        return _command(args.command).run(args)
    except (SceneSeekError, TilesError) as exc:
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
