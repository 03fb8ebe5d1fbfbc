"""The feedback store's schema: its versions, and the migrations that bring a file up to date.

``SQLiteFeedback`` opens every file through ``open_schema``: a new workspace is created, an
older one migrated, in one ``BEGIN IMMEDIATE`` transaction, so an interrupted migration
leaves the file as it was and several first openers never migrate twice.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from core.store.query_images import SHIPPED_INPUT_SIDE, query_png

log = logging.getLogger(__name__)
BUSY_TIMEOUT_S = 30.0


def _shrink_query_images(db: sqlite3.Connection) -> None:
    """Migration 4: images kept before it are whole dropped files (up to 50 MB each).

    Each becomes the PNG of the square the shipped architectures read, which decodes to the
    pixels the original search used; its key (the dropped file's SHA-256, the marks' query)
    stays. A file that no longer decodes is kept as it is, with a warning in the log.
    """
    digests = [row[0] for row in db.execute("SELECT sha256 FROM query_images")]
    for digest in digests:
        (data,) = db.execute("SELECT data FROM query_images WHERE sha256=?", (digest,)).fetchone()
        try:
            png = query_png(bytes(data), SHIPPED_INPUT_SIDE)
        except Exception as exc:  # any decoder's failure: one old picture must not lock the store
            log.warning("query image %s kept as it was: %s", digest, exc)
            continue
        db.execute("UPDATE query_images SET data=? WHERE sha256=?", (png, digest))


MIGRATIONS: list[str | Callable[[sqlite3.Connection], None]] = [
    """
    CREATE TABLE marks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        query_kind TEXT NOT NULL,
        query TEXT NOT NULL,
        scene TEXT NOT NULL,
        tile_id INTEGER NOT NULL,
        label TEXT NOT NULL CHECK (label IN ('relevant', 'irrelevant', 'caption')),
        caption TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL
    );
    CREATE UNIQUE INDEX marks_unique ON marks (query_kind, query, scene, tile_id,
        CASE WHEN label = 'caption' THEN 'caption' ELSE 'judgement' END);
    CREATE INDEX marks_scene ON marks (scene);
    """,
    """
    CREATE TABLE query_images (
        sha256 TEXT PRIMARY KEY,
        data BLOB NOT NULL,
        created REAL NOT NULL
    );
    """,
    # 3: each mark's tile footprint (re-attached after re-tiling) and who made it
    """
    ALTER TABLE marks ADD COLUMN footprint TEXT NOT NULL DEFAULT '';
    ALTER TABLE marks ADD COLUMN author TEXT NOT NULL DEFAULT '';
    """,
    _shrink_query_images,
]
SHRUNK_IMAGES = MIGRATIONS.index(_shrink_query_images) + 1  # the version that shrinks them


def _statements(script: str) -> list[str]:
    """A migration script as single statements (``executescript`` would commit midway)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s]


def _migrate(db: sqlite3.Connection) -> int:
    """Apply missing migrations in one ``BEGIN IMMEDIATE`` transaction.

    Returns the version found under the lock. The version is read again after taking the
    write lock: several processes opening a new workspace at once all see version 0, but
    only the first migrates; the others wait for it (busy timeout) and find nothing to do.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        for script in MIGRATIONS[version:]:
            if callable(script):
                script(db)
                continue
            for statement in _statements(script):
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return version


def _give_back_space(db: sqlite3.Connection) -> None:
    """Return the pages freed by shrunk query images to the disk.

    Best effort: it needs room for a copy of the store, and later writes reuse the pages.
    """
    try:
        db.execute("VACUUM")
    except sqlite3.OperationalError as exc:
        log.warning("feedback store not compacted after shrinking its query images: %s", exc)


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL once (it is stored in the file); retry while another opener holds it."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def open_schema(db: sqlite3.Connection) -> None:
    """Bring the file to the current schema, compact it after shrinking images, use WAL."""
    if db.execute("PRAGMA user_version").fetchone()[0] < len(MIGRATIONS):
        if 0 < _migrate(db) < SHRUNK_IMAGES:
            _give_back_space(db)
    _use_wal(db)
