"""``python -m core serve-check``: may the app start on this address with these accounts?

``python -m core front`` (what ``make run`` and the Docker image start) runs the same check
before it listens: with no user account the app serves anonymously, which is only allowed on
a loopback address. The front then stands before Streamlit, which listens on a private
loopback port, so ``--host`` is the address people reach, the front's.
"""

from __future__ import annotations

import argparse

from core.cli.common import add_workspace_only
from core.settings import Settings
from core.store.workspace import Workspace

HELP = "refuse to serve anonymously on a non-loopback address (run before the app)"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    add_workspace_only(p)
    p.add_argument("--host", help="the address the front will listen on (default SCENESEEK_HOST)")


def check(ws: Workspace, host: str, settings: Settings) -> str:
    """What the front would serve at ``host``, in one line.

    Raises:
        AccountError: when it would serve anonymously beyond this machine.
    """
    from core.errors import AccountError
    from core.store.users import UserStore, anonymous_refusal

    refusal = anonymous_refusal(ws, host, settings)
    if refusal:
        raise AccountError(refusal)
    accounts = len(UserStore(ws, settings).accounts())
    mode = f"{accounts} account(s), sign-in required" if accounts else "anonymous (loopback)"
    return f"serving {ws.root} on {host or 'every address'}: {mode}"


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.settings import get_settings

    settings = get_settings()
    ws = Workspace(args.workspace) if args.workspace else Workspace(settings.workspace)
    print(check(ws, settings.host if args.host is None else args.host, settings))
    return 0
