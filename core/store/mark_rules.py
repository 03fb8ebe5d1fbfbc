"""What a mark may hold, checked before it is stored and again when a stored one is used.

An imported JSON-lines file is hostile until checked: a scene name becomes a path, a
footprint is parsed by GEOS and searched against every tile, and any text ends up on the
Fine-tune page. Every field is checked here, so an import refuses the whole file at its
first bad line, and a bad row already stored (written by an older version, or by hand) is
left out of exports and fine-tuning with its reason instead of breaking them for everyone.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from shapely.errors import ShapelyError
from shapely.geometry import Polygon

from core.errors import FeedbackError
from core.store.workspace import NAME_PATTERN

if TYPE_CHECKING:
    from core.store.mark import Mark

LABELS = ("relevant", "irrelevant", "caption")
QUERY_KINDS = ("text", "image", "tile")
MAX_TEXT_CHARS = 500  # a text query or a caption
MAX_NAME_CHARS = 200  # a model tag or an author
MAX_TILE_ID = 2**31 - 1
MAX_FOOTPRINT_CHARS = 64_000
MAX_FOOTPRINT_VERTICES = 1_000  # a tile's outline has 33 (8 points per edge)
MAX_LINE_CHARS = 100_000
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TILE_REF = re.compile(r"(?P<scene>.+):(?P<tile>[0-9]+)")


def _text(mark: Mark, name: str, limit: int) -> str:
    value = getattr(mark, name)
    if not isinstance(value, str):
        raise FeedbackError(f"{name} must be text, got {type(value).__name__}")
    if len(value) > limit:
        raise FeedbackError(f"{name} has {len(value):,} characters, more than {limit:,}")
    return value


def _scene_name(name: str, what: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise FeedbackError(
            f"{what} {name[:120]!r} is not a scene name (letters, digits, '.', '_' or '-', "
            "at most 100)"
        )


def _query(mark: Mark) -> None:
    if mark.query_kind not in QUERY_KINDS:
        raise FeedbackError(f"query_kind must be one of {QUERY_KINDS}, got {mark.query_kind!r}")
    query = _text(mark, "query", MAX_TEXT_CHARS)
    if mark.query_kind == "text" and (not query.strip() or " ".join(query.split()) != query):
        raise FeedbackError("a text query must be words separated by single spaces")
    if mark.query_kind == "image" and not _SHA256.fullmatch(query):
        raise FeedbackError("an image query is the image's SHA-256 (64 hex digits)")
    if mark.query_kind == "tile":
        ref = _TILE_REF.fullmatch(query)
        if ref is None:
            raise FeedbackError("a tile query is SCENE:TILE_ID, e.g. berkeley:42")
        _scene_name(ref["scene"], "the query's scene")


def _number(value: Any, name: str, low: float, high: float, integer: bool) -> None:
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        wanted = "an integer" if integer else "a number"
        raise FeedbackError(f"{name} must be {wanted}, got {type(value).__name__}")
    if not (math.isfinite(value) and low <= value <= high):
        raise FeedbackError(f"{name} must be between {low:g} and {high:g}, got {value!r}")


def _footprint(wkt: str) -> None:
    """An empty string, or one valid lon/lat polygon of bounded size."""
    if not wkt:
        return
    if len(wkt) > MAX_FOOTPRINT_CHARS:
        raise FeedbackError(f"footprint has more than {MAX_FOOTPRINT_CHARS:,} characters")
    try:
        with np.errstate(invalid="ignore"):  # NaN coordinates: refused below, not warned about
            geometry = shapely.from_wkt(wkt)
    except (ShapelyError, ValueError) as exc:
        raise FeedbackError(
            f"footprint cannot be read as WKT ({str(exc).splitlines()[0]})"
        ) from exc
    if not isinstance(geometry, Polygon) or geometry.is_empty:
        raise FeedbackError(f"footprint must be a polygon, got {geometry.geom_type}")
    points = shapely.get_coordinates(geometry)
    if len(points) > MAX_FOOTPRINT_VERTICES:
        raise FeedbackError(
            f"footprint has {len(points):,} vertices, more than {MAX_FOOTPRINT_VERTICES:,}"
        )
    inside = np.isfinite(points).all() and (np.abs(points) <= (180, 90)).all()
    if not inside:
        raise FeedbackError("footprint coordinates must be finite longitudes and latitudes")
    if not geometry.is_valid:
        raise FeedbackError(
            f"footprint is not a valid polygon ({shapely.is_valid_reason(geometry)})"
        )


def check_mark(mark: Mark) -> None:
    """Refuse a mark with any field out of type or bounds.

    Raises:
        FeedbackError: naming the first bad field.
    """
    _query(mark)
    _scene_name(_text(mark, "scene", MAX_TEXT_CHARS), "scene")
    _number(mark.tile_id, "tile_id", 0, MAX_TILE_ID, integer=True)
    if mark.label not in LABELS:
        raise FeedbackError(f"label must be one of {LABELS}, got {str(mark.label)[:40]!r}")
    caption = _text(mark, "caption", MAX_TEXT_CHARS)
    if mark.label == "caption" and not caption.strip():
        raise FeedbackError("a caption mark needs a non-empty caption")
    _text(mark, "model", MAX_NAME_CHARS)
    _text(mark, "author", MAX_NAME_CHARS)
    _number(mark.created, "created", 0, math.inf, integer=False)
    _footprint(_text(mark, "footprint", MAX_FOOTPRINT_CHARS))


def json_fields(line: str) -> dict[str, Any]:
    """The object on one exported JSON line, before its fields are checked.

    Raises:
        FeedbackError: when the line is too long, not JSON, or not an object.
    """
    if len(line) > MAX_LINE_CHARS:
        raise FeedbackError(f"longer than {MAX_LINE_CHARS:,} characters")
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise FeedbackError(f"not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise FeedbackError(f"not a mark (a JSON {type(data).__name__}, not an object)")
    return data


def usable_marks(marks: Iterable[Mark]) -> tuple[list[Mark], list[tuple[Mark, str]]]:
    """Stored marks that pass ``check_mark``, and the others with the reason."""
    good, bad = [], []
    for mark in marks:
        try:
            check_mark(mark)
        except FeedbackError as exc:
            bad.append((mark, str(exc)))
        else:
            good.append(mark)
    return good, bad
