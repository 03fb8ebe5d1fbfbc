"""Feedback store: upserts, concurrency, migrations, JSON-lines round trip."""

import sqlite3
import threading

import pytest

from core.errors import FeedbackError
from core.store.feedback import MIGRATIONS, Mark, SQLiteFeedback


def mark(tile=1, label="relevant", query="a port", **kw):
    return Mark(query_kind="text", query=query, scene="berkeley", tile_id=tile, label=label, **kw)


def test_repeated_mark_updates_instead_of_duplicating(tmp_path):
    store = SQLiteFeedback(tmp_path / "f.sqlite")
    store.mark(mark(label="relevant"))
    store.mark(mark(label="irrelevant"))
    marks = store.marks()
    assert len(marks) == 1 and marks[0].label == "irrelevant"


def test_caption_and_judgement_coexist(tmp_path):
    store = SQLiteFeedback(tmp_path / "f.sqlite")
    store.mark(mark(label="relevant"))
    store.mark(mark(label="caption", caption="two tennis courts beside a car park"))
    assert sorted(m.label for m in store.marks()) == ["caption", "relevant"]
    assert store.counts() == [
        {
            "query_kind": "text",
            "query": "a port",
            "scene": "berkeley",
            "relevant": 1,
            "irrelevant": 0,
            "captions": 1,
        }
    ]


def test_marks_survive_reopen_and_wal_mode(tmp_path):
    path = tmp_path / "f.sqlite"
    SQLiteFeedback(path).mark(mark())
    again = SQLiteFeedback(path)
    assert len(again.marks()) == 1
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert again.schema_version == len(MIGRATIONS)


def test_migrates_an_older_schema(tmp_path):
    path = tmp_path / "f.sqlite"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0] + "PRAGMA user_version = 1;")
    db.close()
    store = SQLiteFeedback(path)
    assert store.schema_version == len(MIGRATIONS)
    assert store.image(store.store_image(b"\x89PNG fake")) == b"\x89PNG fake"


def test_concurrent_writers(tmp_path):
    path = tmp_path / "f.sqlite"
    SQLiteFeedback(path)

    def write(offset):
        store = SQLiteFeedback(path)
        for i in range(40):
            store.mark(mark(tile=offset + i))

    threads = [threading.Thread(target=write, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(SQLiteFeedback(path).marks()) == 160


def test_export_import_round_trip(tmp_path):
    a = SQLiteFeedback(tmp_path / "a.sqlite")
    a.mark(mark(tile=1))
    a.mark(mark(tile=2, label="irrelevant"))
    lines = list(a.export_jsonl())
    b = SQLiteFeedback(tmp_path / "b.sqlite")
    assert b.import_jsonl(lines) == 2
    assert {(m.tile_id, m.label) for m in b.marks()} == {(1, "relevant"), (2, "irrelevant")}


def test_bad_marks_and_lines_are_refused(tmp_path):
    store = SQLiteFeedback(tmp_path / "f.sqlite")
    with pytest.raises(FeedbackError):
        store.mark(mark(label="maybe"))
    with pytest.raises(FeedbackError):
        store.mark(mark(label="caption", caption="  "))
    with pytest.raises(FeedbackError, match="line 2"):
        store.import_jsonl(
            [
                '{"query_kind": "text", "query": "q", "scene": "s", "tile_id": 1, "label": "relevant"}',
                "{oops",
            ]
        )


def test_footprint_and_author_round_trip_and_older_exports_still_import(tmp_path):
    a = SQLiteFeedback(tmp_path / "a.sqlite")
    a.mark(mark(footprint="POLYGON ((0 0, 1 0, 1 1, 0 1, 0 0))", author="ana"))
    b = SQLiteFeedback(tmp_path / "b.sqlite")
    b.import_jsonl(a.export_jsonl())
    (m,) = b.marks()
    assert m.footprint.startswith("POLYGON") and m.author == "ana"
    old = '{"query_kind": "text", "query": "q", "scene": "s", "tile_id": 1, "label": "relevant"}'
    assert b.import_jsonl([old]) == 1


def test_a_moved_mark_keeps_the_newer_judgement_of_its_new_tile(tmp_path):
    store = SQLiteFeedback(tmp_path / "f.sqlite")
    older = store.mark(mark(tile=1, label="relevant", created=100.0))
    store.mark(mark(tile=2, label="irrelevant", created=200.0))
    store.move(older, "berkeley", 2)
    assert [(m.tile_id, m.label) for m in store.marks()] == [(2, "irrelevant")]
    newer = store.mark(mark(tile=3, label="relevant", created=300.0))
    store.move(newer, "berkeley", 2)
    assert [(m.tile_id, m.label) for m in store.marks()] == [(2, "relevant")]
