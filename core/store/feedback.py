"""Analysts' marks (relevant / not relevant) and captions, kept in the workspace.

``FeedbackStore`` is the provider interface; ``SQLiteFeedback`` keeps records in SQLite in
WAL mode, so several browser sessions and a fine-tuning job can read and write at once.
The schema carries a version and migrations (``core.store.feedback_schema``), and a
repeated mark (same query, scene and tile) updates the earlier one instead of adding a
duplicate. Each mark keeps its tile's
footprint, so it can follow the ground when tiles change (``core.store.reattach``), and who
made it. Every mark passes ``core.store.mark_rules`` before it is stored; an image query
keeps its picture as the model read it (``core.store.query_images``), never the dropped file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

from typing_extensions import override

from core.errors import FeedbackError
from core.store.feedback_schema import BUSY_TIMEOUT_S, open_schema
from core.store.mark import Mark
from core.store.mark_rules import check_mark, json_fields, usable_marks
from core.store.workspace import Workspace, check_free_space


class FeedbackStore(Protocol):
    """What the app, the CLI and fine-tuning need from a feedback backend."""

    def mark(self, mark: Mark) -> Mark:
        """Insert or update the mark for (query, scene, tile, kind of label)."""

    def delete(self, mark_id: int) -> None:
        """Remove one mark."""

    def marks(self, query: str | None = None, scene: str | None = None) -> list[Mark]:
        """Marks, newest first, optionally filtered."""

    def import_jsonl(self, lines: Iterable[str]) -> int:
        """Merge exported marks; returns how many were read."""


def image_sha256(data: bytes) -> str:
    """Identity of an image query: the SHA-256 of the file as dropped (its marks' query)."""
    return hashlib.sha256(data).hexdigest()


class SQLiteFeedback(FeedbackStore):
    """SQLite implementation of ``FeedbackStore``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            open_schema(db)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        try:
            yield db
        finally:
            db.close()

    @property
    def schema_version(self) -> int:
        """Number of migrations applied."""
        with self._connect() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    @override
    def mark(self, mark: Mark) -> Mark:
        """Insert or update the mark for (query, scene, tile, kind of label).

        Raises:
            FeedbackError: naming the first field out of type or bounds (nothing is stored).
        """
        check_mark(mark)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            stored = _upsert(db, mark)
            db.execute("COMMIT")
        return stored

    def move(self, mark: Mark, scene: str, tile_id: int, query: str | None = None) -> None:
        """Re-attach a stored mark to another tile (and, for a tile query, its new name).

        When the tile already holds the same judgement for the same query, the newer of
        the two is kept, as a repeated mark would.
        """
        if mark.id is None:
            raise FeedbackError("only a stored mark can be moved")
        query = mark.query if query is None else query
        kind = "caption" if mark.label == "caption" else "judgement"
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            clash = db.execute(
                "SELECT id, created FROM marks WHERE query_kind=? AND query=? AND scene=? AND "
                "tile_id=? AND (CASE WHEN label='caption' THEN 'caption' ELSE 'judgement' END)=?"
                " AND id<>?",
                (mark.query_kind, query, scene, int(tile_id), kind, mark.id),
            ).fetchone()
            if clash is not None and clash[1] > mark.created:
                db.execute("DELETE FROM marks WHERE id=?", (mark.id,))
            else:
                if clash is not None:
                    db.execute("DELETE FROM marks WHERE id=?", (clash[0],))
                db.execute(
                    "UPDATE marks SET scene=?, tile_id=?, query=? WHERE id=?",
                    (scene, int(tile_id), query, mark.id),
                )
            db.execute("COMMIT")

    def set_footprint(self, mark_id: int, footprint: str) -> None:
        """Record the footprint of a mark made before footprints were kept."""
        with self._connect() as db:
            db.execute("UPDATE marks SET footprint=? WHERE id=?", (footprint, mark_id))

    @override
    def delete(self, mark_id: int) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM marks WHERE id=?", (mark_id,))

    @override
    def marks(self, query: str | None = None, scene: str | None = None) -> list[Mark]:
        sql, args = "SELECT * FROM marks WHERE 1=1", []
        if query is not None:
            sql, args = sql + " AND query=?", [*args, query]
        if scene is not None:
            sql, args = sql + " AND scene=?", [*args, scene]
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(sql + " ORDER BY created DESC, id DESC", args).fetchall()
        return [Mark(**dict(row)) for row in rows]

    def stamp(self) -> tuple[int, int, float]:
        """(count, largest id, newest time) of the marks: changes whenever marks do."""
        with self._connect() as db:
            row = db.execute("SELECT COUNT(*), MAX(id), MAX(created) FROM marks").fetchone()
        return int(row[0]), int(row[1] or 0), float(row[2] or 0.0)

    def counts(self) -> list[dict[str, object]]:
        """Marks per (query, scene) and label, for the fine-tuning page."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT query_kind, query, scene, "
                "SUM(label='relevant'), SUM(label='irrelevant'), SUM(label='caption') "
                "FROM marks GROUP BY query_kind, query, scene ORDER BY query, scene"
            ).fetchall()
        keys = ("query_kind", "query", "scene", "relevant", "irrelevant", "captions")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def store_image(self, digest: str, png: bytes) -> None:
        """Keep the picture of image query ``digest`` (``query_png``: the model's square).

        Raises:
            DiskSpaceError: when it would leave less free disk than ``SCENESEEK_MIN_FREE_GB``
                (nothing is stored).
        """
        check_free_space(Workspace(self.path.parent), len(png), "keeping the example image")
        with self._connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO query_images (sha256, data, created) VALUES (?, ?, ?)",
                (digest, png, time.time()),
            )

    def image(self, digest: str) -> bytes | None:
        """The stored bytes of an image query."""
        with self._connect() as db:
            row = db.execute("SELECT data FROM query_images WHERE sha256=?", (digest,)).fetchone()
        return None if row is None else bytes(row[0])

    def export_jsonl(self, skipped: Callable[[Mark, str], None] | None = None) -> Iterator[str]:
        """One JSON object per mark, oldest first; every line imports again.

        A stored mark that fails ``check_mark`` (stored by an older version, or by hand) is
        left out and handed to ``skipped`` with the reason.
        """
        good, bad = usable_marks(reversed(self.marks()))
        for mark, reason in bad:
            if skipped is not None:
                skipped(mark, reason)
        for mark in good:
            yield json.dumps({k: v for k, v in mark.to_dict().items() if k != "id"})

    @override
    def import_jsonl(self, lines: Iterable[str], author: str = "") -> int:
        """Merge exported marks, all or nothing: every line is checked before any is stored.

        All are then stored in one transaction. ``author`` is recorded on the marks that
        name nobody.

        Raises:
            FeedbackError: naming the first line that is not a valid mark, and why.
        """
        marks = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                marks.append(_imported(line, author))
            except FeedbackError as exc:
                raise FeedbackError(f"line {number}: {exc}") from exc
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                for mark in marks:
                    _upsert(db, mark)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return len(marks)


def _imported(line: str, author: str) -> Mark:
    """One exported line as a checked mark; ``author`` fills in a missing one."""
    data = json_fields(line)
    data.pop("id", None)
    data["author"] = data.get("author") or author
    try:
        mark = Mark(**data)
    except TypeError as exc:
        raise FeedbackError(f"not a mark ({exc})") from exc
    check_mark(mark)
    return mark


def _upsert(db: sqlite3.Connection, mark: Mark) -> Mark:
    """Store a checked mark inside the caller's transaction, replacing the same judgement."""
    created = mark.created or time.time()
    kind = "caption" if mark.label == "caption" else "judgement"
    db.execute(
        "DELETE FROM marks WHERE query_kind=? AND query=? AND scene=? AND tile_id=? AND "
        "(CASE WHEN label='caption' THEN 'caption' ELSE 'judgement' END)=?",
        (mark.query_kind, mark.query, mark.scene, int(mark.tile_id), kind),
    )
    cursor = db.execute(
        "INSERT INTO marks (query_kind, query, scene, tile_id, label, caption, model,"
        " created, footprint, author) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            mark.query_kind,
            mark.query,
            mark.scene,
            int(mark.tile_id),
            mark.label,
            mark.caption.strip(),
            mark.model,
            created,
            mark.footprint,
            mark.author,
        ),
    )
    return Mark(**{**asdict(mark), "created": created, "id": cursor.lastrowid})
