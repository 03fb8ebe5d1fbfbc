"""The search page's service calls: run a query, refine it, and record the analyst's marks.

A query is a small dict kept in session state (``{"kind": "text", "text": ...}``,
``{"kind": "image", "image": bytes, "name": ..., "sha256": ...}`` or ``{"kind": "tile",
"scene": ..., "tile_id": ...}``), so reruns and filter changes can answer it again. An
example image is answered as ``model_sized`` makes it: the dropped file is not kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app import images
from app.resources import Engine
from core import (
    AreaOfInterest,
    Filters,
    Hit,
    Label,
    Mark,
    SceneManifest,
    SearchResult,
    SQLiteFeedback,
    TileRef,
    Workspace,
    image_sha256,
    load_query_image,
    query_png,
    refine,
    search_image,
    search_similar,
    search_text,
)

Query = dict[str, Any]


def text_query(text: str) -> Query:
    """A description typed by the analyst."""
    return {"kind": "text", "text": text}


def image_query(data: bytes, name: str) -> Query:
    """An example image dropped by the analyst; its marks are filed under the file's hash."""
    return {"kind": "image", "image": data, "name": name, "sha256": image_sha256(data)}


def model_sized(engine: Engine, query: Query) -> Query:
    """The query with an example image replaced by the model's input square, as PNG.

    The search, the image a mark keeps and any later re-run then read the very same pixels,
    and the session holds a few hundred kilobytes instead of the dropped file.

    Raises:
        QueryError: for an unreadable or too large image.
    """
    if query["kind"] != "image":
        return query
    return {**query, "image": query_png(query["image"], engine.image_size)}


def tile_query(scene: str, tile_id: int) -> Query:
    """An indexed tile ("find similar"), answered without itself and the tiles covering it."""
    return {"kind": "tile", "scene": scene, "tile_id": int(tile_id)}


def feedback_key(query: Query) -> tuple[str, str]:
    """``(query_kind, query)`` under which marks for this query are stored."""
    if query["kind"] == "text":
        return "text", " ".join(query["text"].split())
    if query["kind"] == "image":
        return "image", query["sha256"]
    return "tile", str(TileRef(query["scene"], query["tile_id"]))


def describe(query: Query) -> str:
    """One line naming the query, for headings and captions (not escaped)."""
    if query["kind"] == "text":
        return f"“{' '.join(query['text'].split())}”"
    if query["kind"] == "image":
        return f"example image {query['name']}"
    return f"tiles like {query['scene']} #{query['tile_id']}"


def filters(
    scenes: list[str], scales: list[int], k: int, area: AreaOfInterest | None = None
) -> Filters:
    """Engine filters from the page's widgets and area of interest."""
    return Filters(scenes=tuple(scenes), scales=tuple(int(s) for s in scales), k=int(k), area=area)


def run_query(engine: Engine, query: Query, f: Filters) -> SearchResult:
    """Answer a query with the shared model and indexes.

    An example image is decoded (size checked first), and the area of interest's tiles are
    found, before taking the engine's lock, so neither holds up other people's searches.

    Raises:
        QueryError: for an empty, unreadable or too large query.
        SceneNotFoundError: when no scene is ready.
    """
    if query["kind"] == "image":
        pixels = load_query_image(query["image"], engine.image_size)
        with engine.searching(f) as res:
            return search_image(res, pixels, f, label=query["name"])
    with engine.searching(f) as res:
        if query["kind"] == "text":
            return search_text(res, query["text"], f)
        return search_similar(res, query["scene"], query["tile_id"], f)


def refine_result(
    engine: Engine, previous: SearchResult, marks: dict[str, str], f: Filters
) -> SearchResult:
    """Re-rank with the marks (instant Rocchio update, no training).

    Raises:
        QueryError: when there is no mark.
    """
    relevant = [_tile_ref(key) for key, label in marks.items() if label == "relevant"]
    irrelevant = [_tile_ref(key) for key, label in marks.items() if label == "irrelevant"]
    with engine.searching(f) as res:
        return refine(res, previous, relevant, irrelevant, f)


@dataclass(frozen=True)
class Catalogue:
    """What can be searched right now."""

    scenes: list[str]
    scales: list[int]
    stale: dict[str, str]
    manifests: dict[str, SceneManifest]


def catalogue(engine: Engine) -> Catalogue:
    """Ready scenes (with manifests), their tile sizes, and scenes needing re-indexing."""
    with engine.searching() as res:
        ready = res.ready
        return Catalogue(sorted(ready), res.scales(), dict(res.stale), dict(ready))


def query_picture(
    engine: Engine, manifests: dict[str, SceneManifest], query: Query
) -> bytes | None:
    """What an image or tile query looks like (a small JPEG); None for text or if unreadable."""
    if query["kind"] == "image":
        return images.example_thumbnail(query["image"])
    if query["kind"] != "tile" or query["scene"] not in manifests:
        return None
    with engine.searching() as res:
        window = res.tile_window(query["scene"], query["tile_id"])
    if window is None:
        return None
    return images.thumbnail(manifests[query["scene"]], window, images.QUERY_THUMB_SIDE)


def hit_key(hit: Hit) -> str:
    """``SCENE:TILE`` key of a hit in the marks dict."""
    return str(TileRef.of(hit))


def _tile_ref(key: str) -> tuple[str, int]:
    ref = TileRef.parse(key)
    return ref.scene, ref.tile_id


def load_marks(ws: Workspace, query: Query) -> dict[str, str]:
    """Marks already stored for this query (by anyone), so they show on every visit."""
    kind, text = feedback_key(query)
    store = SQLiteFeedback(ws.feedback_db)
    return {
        str(TileRef.of(m)): m.label
        for m in reversed(store.marks(query=text))
        if m.query_kind == kind and m.label != "caption"
    }


def record_mark(
    ws: Workspace, query: Query, hit: Hit, label: Label, model: str, author: str = ""
) -> Mark:
    """Store one relevant / not-relevant judgement of the query as answered (``model_sized``).

    An image query keeps its picture first, so a disk-space refusal stores nothing.

    Raises:
        DiskSpaceError: when the picture would leave less free disk than the floor.
        FeedbackError: when the mark is not valid.
    """
    store = SQLiteFeedback(ws.feedback_db)
    kind, text = feedback_key(query)
    if query["kind"] == "image":
        store.store_image(text, query["image"])
    footprint = hit.geometry.wkt  # lets the mark follow its ground if the scene is re-tiled
    return store.mark(
        Mark(
            kind,
            text,
            hit.scene,
            hit.tile_id,
            label,
            model=model,
            footprint=footprint,
            author=author,
        )
    )
