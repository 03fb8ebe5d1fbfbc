"""``python -m core front``: the app behind its authenticating front (what ``make run`` runs).

It runs serve-check's refusal first, then listens on ``--host``/``--port`` (default
``SCENESEEK_HOST``/``SCENESEEK_PORT``) and starts Streamlit on a private loopback port that
only the front talks to (``core.front``).
"""

from __future__ import annotations

import argparse

from core.cli.common import add_workspace_only

HELP = "serve the app behind its front: uploads only from signed-in clients, bounded"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    add_workspace_only(p)
    p.add_argument("--host", help="the address people reach (default SCENESEEK_HOST)")
    p.add_argument("--port", type=int, help="the port people reach (default SCENESEEK_PORT)")


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.cli.serve_check import check
    from core.front.launch import serve
    from core.settings import get_settings
    from core.store.workspace import Workspace

    settings = get_settings()
    ws = Workspace(args.workspace) if args.workspace else Workspace(settings.workspace)
    host = settings.host if args.host is None else args.host
    port = settings.port if args.port is None else args.port
    print(check(ws, host, settings), flush=True)
    return serve(ws, settings, host, port)
