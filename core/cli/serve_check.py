"""``python -m core serve-check``: may the app start on this address with these accounts?

``make run`` and the Docker entry point run this before Streamlit: with no user account the
app serves anonymously, which is only allowed on a loopback address.
"""

from __future__ import annotations

import argparse

from core.cli.common import add_workspace_only

HELP = "refuse to serve anonymously on a non-loopback address (run before the app)"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    add_workspace_only(p)
    p.add_argument("--host", help="the address the app will listen on (default SCENESEEK_HOST)")


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.errors import AccountError
    from core.settings import get_settings
    from core.store.users import UserStore, anonymous_refusal
    from core.store.workspace import Workspace

    settings = get_settings()
    ws = Workspace(args.workspace) if args.workspace else Workspace(settings.workspace)
    host = settings.host if args.host is None else args.host
    refusal = anonymous_refusal(ws, host, settings)
    if refusal:
        raise AccountError(refusal)
    accounts = len(UserStore(ws, settings).accounts())
    mode = f"{accounts} account(s), sign-in required" if accounts else "anonymous (loopback)"
    print(f"serving {ws.root} on {host or 'every address'}: {mode}")
    return 0
