"""The fine-tune page's service calls on the marks: review them, write captions, train.

Captions are stored as marks of the tile query (``feedback_key`` of ``tile_query``), the
same key "find similar" uses, so a caption and a judgement of one tile live side by side.
"""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import streamlit as st

from app import images, querying
from app.errors import AppError
from app.text import plural
from core import (
    FinetuneCfg,
    FinetunePlan,
    Job,
    Mark,
    ModelVersion,
    SQLiteFeedback,
    Workspace,
    embed_seconds,
    finetune_plan,
    marks_geojson,
    promotion_cost,
    scenes_to_refresh,
    start_job,
    tile_footprint,
)
from tiles import WINDOW_FIELDS, read_catalog

CAPTION_THUMB_SIDE = 256
LABEL_WORDS = {"relevant": "relevant", "irrelevant": "not relevant"}  # the stored label in words


def feedback(ws: Workspace) -> SQLiteFeedback:
    """The workspace's feedback store."""
    return SQLiteFeedback(ws.feedback_db)


def query_label(kind: str, query: str) -> str:
    """A stored query in words: image queries are known by their hash only."""
    return f"example image {query[:8]}" if kind == "image" else query


def mark_words(mark: Mark) -> str:
    """A mark as the analyst made it: ``relevant``, ``not relevant`` or the caption."""
    return f"caption: {mark.caption}" if mark.label == "caption" else LABEL_WORDS[mark.label]


def marks_geojson_bytes(ws: Workspace) -> bytes:
    """Every mark on its tile footprint, oldest first (GeoJSON, as ``feedback export``)."""
    collection = marks_geojson(ws, reversed(feedback(ws).marks()))
    return json.dumps(collection, indent=1).encode("utf-8")


def count_rows(ws: Workspace) -> list[dict[str, object]]:
    """Marks and captions per query and scene, the query in words."""
    return [
        {**row, "query": query_label(str(row["query_kind"]), str(row["query"]))}
        for row in feedback(ws).counts()
    ]


def marked_queries(ws: Workspace) -> dict[str, str]:
    """Every query that has marks: its stored form and its words (to filter the review)."""
    return {
        str(row["query"]): query_label(str(row["query_kind"]), str(row["query"]))
        for row in feedback(ws).counts()
    }


@st.cache_data(max_entries=8, show_spinner=False)
def _plan(root: str, stamp: tuple, holdout_fraction: float, min_relevant: int) -> FinetunePlan:
    return finetune_plan(Workspace(root), holdout_fraction, min_relevant)


def plan(ws: Workspace, cfg: FinetuneCfg) -> FinetunePlan:
    """What the marks give fine-tuning now, as it will count them (after re-attachment).

    Cached until a mark or a scene changes, since the page redraws it every few seconds.
    """
    scenes = tuple((n, ws.scene(n).read_manifest().finished) for n in ws.scene_names())
    stamp = (feedback(ws).stamp(), scenes)
    return _plan(str(ws.root), stamp, cfg.holdout_fraction, cfg.min_relevant)


def reembed_note(ws: Workspace, version: ModelVersion) -> str:
    """What promoting ``version`` costs, in words."""
    stale, seconds = promotion_cost(ws, version)
    if not stale and not scenes_to_refresh(ws, version):
        return (
            "reuses every scene's stored vectors, gates and text indexes as they are "
            "(it differs only in its query adapters)"
        )
    if not stale:
        return "reuses every scene's stored vectors: only gates and text indexes are recomputed"
    took = f"about {_minutes(seconds)}" if seconds is not None else "as long as ingesting took"
    return f"re-embeds {plural(len(stale), 'scene')}, {took}, since its image tower differs"


def image_tower_estimate(ws: Workspace) -> str:
    """How long re-embedding every scene would take, from the recorded embedding rates."""
    seconds = embed_seconds(ws, ws.scene_names())
    if seconds is None:
        return "promotion will then re-embed every scene"
    return f"promotion will then re-embed every scene: about {_minutes(seconds)}"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def start_finetune(ws: Workspace, cfg: FinetuneCfg, jobs: list[Job], owner: str = "") -> Job:
    """Fine-tune the active model in the background; the result is a new, inactive version.

    Raises:
        AppError: while another fine-tuning job is running.
        JobError: when the job process cannot be started.
    """
    busy = next((j for j in jobs if j.kind == "finetune" and j.active), None)
    if busy is not None:
        raise AppError(f"fine-tuning job {busy.id} is still {busy.status}; wait or cancel it")
    return start_job(ws, "finetune", {"cfg": asdict(cfg)}, owner=owner)


@st.cache_data(max_entries=16, show_spinner=False)
def _windows(catalog: str, mtime_ns: int) -> np.ndarray:
    return read_catalog(catalog)[list(WINDOW_FIELDS)].to_numpy(np.int64)


def _scene_windows(ws: Workspace, scene: str) -> np.ndarray:
    catalog = ws.existing_scene(scene).catalog
    return _windows(str(catalog), catalog.stat().st_mtime_ns)


def tile_count(ws: Workspace, scene: str) -> int:
    """Tiles of an ingested scene (ids run from 0).

    Raises:
        SceneNotFoundError: if the scene is missing or not ready.
    """
    return len(_scene_windows(ws, scene))


def tile_thumbnail(ws: Workspace, scene: str, tile_id: int) -> bytes | None:
    """JPEG of one tile as the model saw it, or None when the source file is gone.

    Raises:
        SceneNotFoundError: if the scene is missing or not ready.
    """
    window = tuple(int(v) for v in _scene_windows(ws, scene)[tile_id])
    manifest = ws.scene(scene).read_manifest()
    return images.thumbnail(manifest, window, CAPTION_THUMB_SIDE)


def _caption_query(scene: str, tile_id: int) -> tuple[str, str]:
    return querying.feedback_key(querying.tile_query(scene, tile_id))


def tile_caption(ws: Workspace, scene: str, tile_id: int) -> str:
    """The caption stored for a tile, or ``""``."""
    kind, query = _caption_query(scene, tile_id)
    marks = feedback(ws).marks(query=query, scene=scene)
    return next((m.caption for m in marks if m.query_kind == kind and m.label == "caption"), "")


def save_caption(ws: Workspace, scene: str, tile_id: int, text: str, author: str = "") -> Mark:
    """Store (or replace) the caption of a tile: a training pair for fine-tuning.

    Raises:
        FeedbackError: when the caption is empty.
    """
    kind, query = _caption_query(scene, tile_id)
    footprint = tile_footprint(ws, scene, tile_id)
    return feedback(ws).mark(
        Mark(
            kind,
            query,
            scene=scene,
            tile_id=int(tile_id),
            label="caption",
            caption=text,
            footprint=footprint,
            author=author,
        )
    )
