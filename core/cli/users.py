"""``python -m core users``: add, list, remove accounts or change a password (operator only).

Passwords are read from a prompt (twice) on a terminal, else as one line from stdin, so
scripts can pipe them in; they never appear on the command line or in the shell history.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time

from core.cli.common import add_workspace_only, workspace_of

HELP = "add, list or remove user accounts, or change a password"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    actions = p.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create an account (password from a prompt or stdin)")
    add.add_argument("name")
    add.add_argument("--role", default="viewer", choices=["viewer", "editor", "admin"])
    add_workspace_only(actions.add_parser("list", help="accounts, roles and lockouts"))
    for name, text in (("remove", "delete an account"), ("passwd", "change a password")):
        action = actions.add_parser(name, help=text)
        action.add_argument("name")
        add_workspace_only(action)
    add_workspace_only(add)


def read_password(name: str) -> str:
    """A new password: prompted twice on a terminal, else the first line of stdin.

    Raises:
        AccountError: when the two entries differ or stdin is empty.
    """
    from core.errors import AccountError

    if sys.stdin.isatty():
        first = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != first:
            raise AccountError("the two passwords differ; nothing was changed")
        return first
    line = sys.stdin.readline()
    if not line:
        raise AccountError("no password on stdin; nothing was changed")
    return line.removesuffix("\n").removesuffix("\r")


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.store.users import UserStore, check_name

    if args.action == "list":
        accounts = UserStore(workspace_of(args)).accounts()
        for account in accounts:
            created = time.strftime("%Y-%m-%d %H:%M", time.localtime(account.created))
            left = account.locked_until - time.time()
            locked = f"  locked for {left:.0f} s" if left > 0 else ""
            print(f"{account.name:<24} {account.role:<7} created {created}{locked}")
        if not accounts:
            print("no accounts: the app serves anonymously, on a loopback address only")
        return 0
    store = UserStore(workspace_of(args, create=args.action in ("add", "passwd")))
    if args.action == "remove":
        store.remove(args.name)
        print(f"removed {args.name}")
    elif args.action == "add":
        store.add(check_name(args.name), read_password(args.name), args.role)
        print(f"added {args.name} ({args.role}) to the workspace {store.workspace.root.resolve()}")
    else:
        store.set_password(args.name, read_password(args.name))
        print(f"changed the password of {args.name}; their sessions have ended")
    return 0
