"""The Change page's service calls: pick and align a pair, ask it, and picture both dates.

A change query is a small dict kept in session state (``{"text": ..., "image": bytes,
"name": ..., "direction": "new"|"gone", "k": ..., "min_change": ...}``), so reruns can
answer it again. The loaded pair (vectors and change scores) is shared by every session
until it is aligned again.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from pathlib import Path
from typing import Any

import streamlit as st
from PIL import Image

from app.images import OVERLAY_SIDE, THUMB_SIDE, webp_data_url
from app.resources import Engine
from core import (
    ChangeQuery,
    ChangeResult,
    Job,
    ScenePair,
    Workspace,
    catalog_scene,
    change_heat,
    change_search,
    is_aligned,
    list_jobs,
    load_pair,
    pair_dir,
    start_job,
    write_heat_png,
)
from tiles import AlignedTileReader, TilesError, check_unchanged, read_catalog

Query = dict[str, Any]


def pair_finished(ws: Workspace, before: str, after: str, scene_key: str) -> float | None:
    """When the pair was aligned for the scenes and model as they are now; None if not.

    ``scene_key`` is the engine's (``SearchResources.scene_key``): versions that differ only
    in query adapters share aligned pairs.

    Raises:
        PairError: for one scene twice or scenes that do not overlap.
        SceneNotFoundError, IndexMismatchError: for a scene that cannot be compared.
    """
    if not is_aligned(ws, before, after, scene_key):
        return None
    return pair_dir(ws, before, after).read_manifest().finished


def align_jobs(ws: Workspace, before: str, after: str) -> list[Job]:
    """The background jobs that embed this pair, newest first."""
    wanted = {"before": before, "after": after}
    return [j for j in list_jobs(ws) if j.kind == "align" and j.params == wanted]


def start_align(ws: Workspace, before: str, after: str, owner: str) -> Job:
    """Embed the earlier scene on the later scene's tiles in the background (once per pair).

    Raises:
        JobError: when the job cannot be queued.
    """
    return start_job(ws, "align", {"before": before, "after": after}, owner=owner)


@st.cache_resource(max_entries=4, show_spinner="Scoring the change of every tile…")
def _pair(_engine: Engine, root: str, before: str, after: str, finished: float) -> ScenePair:
    with _engine.searching() as res:
        return load_pair(res, before, after)


def loaded_pair(
    engine: Engine, ws: Workspace, before: str, after: str, finished: float
) -> ScenePair:
    """The aligned pair with its change scores, shared until it is aligned again.

    Raises:
        PairError: when the pair is no longer aligned.
    """
    return _pair(engine, str(ws.root), before, after, finished)


def query_key(query: Query) -> tuple:
    """What a result answers: the query with its image replaced by a digest."""
    image = query.get("image")
    digest = hashlib.sha256(image).hexdigest() if image else None
    return tuple(sorted({**query, "image": digest}.items()))


def run_change(engine: Engine, pair: ScenePair, query: Query) -> ChangeResult:
    """Answer a change query with the shared model.

    Raises:
        QueryError: for an overlong or unreadable query.
    """
    text = (query.get("text") or "").strip() or None
    change = ChangeQuery(
        text=None if query.get("image") else text,
        image=query.get("image"),
        image_label=query.get("name"),
        direction=query["direction"],
        k=int(query["k"]),
        min_change=float(query["min_change"]) or None,
    )
    with engine.searching() as res:
        return change_search(res, pair, change)


def describe(result: ChangeResult) -> str:
    """One line naming what was asked (not escaped)."""
    if result.kind == "change":
        return "the biggest changes"
    what = result.query.get("text") and f"“{result.query['text']}”"
    what = what or f"example image {result.query.get('image')}"
    return f"{'new' if result.query.get('direction') == 'new' else 'gone'}: {what}"


@st.cache_data(max_entries=2048, show_spinner=False)
def _earlier_thumbnail(
    before_catalog: str, after_catalog: str, mtimes: tuple[int, int], window: tuple, size: int
) -> bytes:
    earlier = read_catalog(before_catalog)
    reader = AlignedTileReader.from_catalogs(
        earlier, read_catalog(after_catalog), catalog_scene(earlier)
    )
    with reader:
        picture = Image.fromarray(reader.read(window))
    picture.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=85)
    return out.getvalue()


def earlier_thumbnail(
    ws: Workspace, before: str, after: str, window: tuple[int, int, int, int]
) -> bytes | None:
    """JPEG of the earlier date on a tile of the later scene, or None when unreadable.

    None too when the earlier scene's file is not the one ingested (``images.thumbnail_note``).
    """
    b, a = ws.scene(before).catalog, ws.scene(after).catalog
    manifest = ws.scene(before).read_manifest()
    try:
        check_unchanged(Path(manifest.source or ""), manifest.source_stamp)
        mtimes = (b.stat().st_mtime_ns, a.stat().st_mtime_ns)
        return _earlier_thumbnail(str(b), str(a), mtimes, tuple(window), THUMB_SIDE)
    except (OSError, TilesError):
        return None


@st.cache_data(max_entries=16, show_spinner="Drawing the change heat map…")
def _heat(
    _pair: ScenePair, before: str, after: str, finished: float
) -> tuple[str, tuple[float, float, float, float]]:
    with tempfile.TemporaryDirectory() as folder:
        png = Path(folder) / "change.png"
        bounds = write_heat_png(change_heat(_pair), png)
        with Image.open(png) as image:
            return webp_data_url(image.convert("RGBA"), OVERLAY_SIDE), bounds


def heat_overlay(pair: ScenePair, finished: float) -> tuple[str, tuple[float, float, float, float]]:
    """The change heat map as a small data URL and its lon/lat bounds."""
    return _heat(pair, pair.before, pair.after, finished)
