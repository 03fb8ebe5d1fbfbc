"""``python -m core job-run``: run one registered background job (started by the app)."""

from __future__ import annotations

import argparse

from core.cli.common import (
    add_workspace_only,
    workspace_of,
)

HELP = "run a registered background job (internal)"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    p.add_argument("job_id", help="id of a job registered in WS/jobs/")
    add_workspace_only(p)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.jobs import run_job

    return run_job(workspace_of(args), args.job_id)
