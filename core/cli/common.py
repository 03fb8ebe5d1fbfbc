"""Arguments and helpers every subcommand shares."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import WorkspaceError
from core.store.workspace import Workspace

if TYPE_CHECKING:
    from core.ingest.launch import RefreshReport
    from core.search.aoi import AreaOfInterest
    from core.store.reattach import Reattachment

Command = Callable[[argparse.Namespace], int]


def default_device() -> str:
    """The device setting (``SCENESEEK_DEVICE``), read when the parser is built."""
    from core.settings import get_settings

    return get_settings().device


def csv_of(kind: Callable[[str], object]) -> Callable[[str], tuple]:
    """An argparse type for comma-separated values of ``kind``."""

    def parse(text: str) -> tuple:
        return tuple(kind(x) for x in text.split(",") if x.strip())

    return parse


def workspace_of(args: argparse.Namespace, create: bool = False) -> Workspace:
    """The workspace named by ``--workspace``, else the configured one.

    Only commands that write (``create``) may make a new workspace, so a mistyped path
    given to a read command is an error instead of a new, empty workspace.

    Raises:
        WorkspaceError: when the folder is missing (and not ``create``) or cannot be made.
    """
    ws = Workspace(args.workspace) if args.workspace else Workspace.default()
    if create:
        try:
            ws.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(
                f"cannot create the workspace {ws.root}: {exc.strerror or exc}"
            ) from exc
    elif not ws.root.is_dir():
        raise WorkspaceError(
            f"no workspace at {ws.root}; check --workspace (or SCENESEEK_WORKSPACE), "
            "or ingest a scene to create one"
        )
    return ws


def add_workspace(p: argparse.ArgumentParser) -> None:
    """``--workspace``, ``--checkpoint`` and ``--device``: for commands that run the model."""
    p.add_argument(
        "--workspace",
        type=Path,
        help="workspace folder (default SCENESEEK_WORKSPACE or ./workspace)",
    )
    p.add_argument(
        "--checkpoint", help="use this checkpoint instead of the workspace's active model"
    )
    p.add_argument("--device", default=default_device(), help="auto, cpu or cuda")
    add_engine(p)


def add_engine(p: argparse.ArgumentParser) -> None:
    """``--engine``: what runs the model's towers (inference only)."""
    p.add_argument(
        "--engine",
        choices=["onnx", "torch"],
        help="what runs the model: default SCENESEEK_ENGINE, else onnx on a CPU (about 4x "
        "faster there), torch on CUDA",
    )


def add_area(p: argparse.ArgumentParser) -> None:
    """``--aoi``: only tiles whose footprint intersects a GeoJSON polygon (EPSG:4326)."""
    p.add_argument(
        "--aoi",
        type=Path,
        help="area of interest: a GeoJSON file of a Polygon or MultiPolygon in lon/lat; only "
        "tiles whose footprint intersects it are scored",
    )


def area_of(args: argparse.Namespace) -> AreaOfInterest | None:
    """The area of interest named by ``--aoi``, read and checked, or None.

    A repaired or simplified area is named on stderr, so the change is not silent.

    Raises:
        AreaError: when the file is unreadable, too large or not a usable polygon.
    """
    from core.search.aoi import read_aoi

    if not args.aoi:
        return None
    area = read_aoi(args.aoi)
    if area.repaired or area.simplified_from:
        print(f"note: searching inside {area.describe()}", file=sys.stderr)
    return area


def add_workspace_only(p: argparse.ArgumentParser) -> None:
    """``--workspace`` alone: for commands that only read or write the workspace."""
    p.add_argument(
        "--workspace",
        type=Path,
        help="workspace folder (default SCENESEEK_WORKSPACE or ./workspace)",
    )


def stage_printer() -> Callable[[str, int, int, float], None]:
    """A progress callback that prints each stage to stderr."""

    def progress(stage: str, done: int, total: int, rate: float) -> None:
        print(f"{stage} {done}/{total}", file=sys.stderr)

    return progress


def print_refresh(report: RefreshReport) -> None:
    """Say how the scenes were brought to the active model, one line per kind of outcome."""
    if report.current:
        print(f"shared as they are (nothing recomputed): {', '.join(report.current)}")
    if report.refreshed:
        print(f"gates and text index recomputed (no re-embedding): {', '.join(report.refreshed)}")
    if report.reembedded:
        print(f"embedded again (another image tower): {', '.join(report.reembedded)}")
    for name, reason in report.failed.items():
        print(f"error: scene {name} is not searchable with the active model: {reason}")
    if not report.failed:
        print(f"every scene is searchable with {report.model} ({report.seconds:.1f} s)")


def print_reattachment(report: Reattachment) -> None:
    """Say which marks moved to new tiles and list those no tile covers."""
    if report.moved:
        print(f"{report.moved} marks moved to the tile that covers their ground now")
    if report.unattached:
        print(f"{len(report.unattached)} marks cannot be re-attached (left out of fine-tuning):")
    for item in report.unattached:
        m = item.mark
        where = f"{m.scene}:{m.tile_id}"
        print(f"  {m.id:>6}  {m.label:<10} {where}  {m.query_kind}:{m.query}  {item.reason}")
