"""``python -m core jobs``: list or cancel background jobs."""

from __future__ import annotations

import argparse

from core.cli.common import (
    add_workspace_only,
    workspace_of,
)

HELP = "list or cancel background jobs"


def configure(p: argparse.ArgumentParser) -> None:
    """Declare this subcommand's arguments."""
    actions = p.add_subparsers(dest="action", required=True)
    add_workspace_only(actions.add_parser("list", help="every job, newest first"))
    stop = actions.add_parser("cancel", help="stop a queued or running job")
    stop.add_argument("job_id")
    add_workspace_only(stop)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; the return value is the exit status."""
    from core.jobs import cancel, list_jobs, queue_positions

    ws = workspace_of(args)
    if args.action == "cancel":
        job = cancel(ws, args.job_id)
        print(f"{job.id}: {job.status}")
        return 0
    jobs = list_jobs(ws)
    positions = queue_positions(jobs)
    for job in jobs:
        target = job.params.get("name", "")
        progress = f"{job.done}/{job.total}" if job.total else ""
        if job.id in positions:
            progress = f"#{positions[job.id]} in line"
        owner = job.owner or "-"
        line = (
            f"{job.id}  {job.kind:<8} {job.status:<9} {target:<24} {owner:<12} "
            f"{job.stage:<10} {progress}"
        )
        print(line.rstrip() + (f"  {job.error}" if job.error else ""))
    return 0
