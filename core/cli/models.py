"""``python -m core models``: the architectures and the shipped weights."""

from __future__ import annotations

import argparse

HELP = "list architectures and shipped weights"


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.model.factory import list_models
    from core.model.shipped import list_pretrained

    for name in list_models():
        print(name)
    for name, tag, path in list_pretrained():
        print(f"{name}:{tag}\t{path}")
    return 0


def configure(p: argparse.ArgumentParser) -> None:
    """No arguments."""
