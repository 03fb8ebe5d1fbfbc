"""Feedback store: upserts, concurrency, migrations, JSON-lines round trip, query images."""

import io
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from core.errors import DiskSpaceError, FeedbackError
from core.store.feedback import Mark, SQLiteFeedback, image_sha256
from core.store.feedback_schema import MIGRATIONS
from core.store.query_images import load_query_image, query_png
from tests.app.conftest import ROOT
from tests.core.test_query_images import PNG_BOUND, photo


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
    store.store_image("ab" * 32, b"\x89PNG fake")
    assert store.image("ab" * 32) == b"\x89PNG fake"


def old_store(path, images: dict[str, bytes]):
    """A store as version 3 left it: whole dropped files under their hash, marks on them."""
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:3]:
        db.executescript(script)
    db.execute("PRAGMA user_version = 3")
    for digest, data in images.items():
        db.execute("INSERT INTO query_images VALUES (?, ?, 1.0)", (digest, data))
        db.execute(
            "INSERT INTO marks (query_kind, query, scene, tile_id, label, created)"
            " VALUES ('image', ?, 'naip', 3, 'relevant', 1.0)",
            (digest,),
        )
    db.commit()
    db.close()


def test_an_old_store_s_query_images_shrink_once_to_the_model_s_square(tmp_path):
    path = tmp_path / "f.sqlite"
    dropped, broken = photo(), b"\xff\xd8 not a JPEG any more"
    digest = image_sha256(dropped)
    old_store(path, {digest: dropped, image_sha256(broken): broken})
    assert path.stat().st_size > len(dropped)
    store = SQLiteFeedback(path)
    assert store.schema_version == len(MIGRATIONS)
    kept = store.image(digest)
    assert len(kept) <= PNG_BOUND and kept == query_png(dropped, 256)
    assert np.array_equal(load_query_image(kept, 256), load_query_image(dropped, 256))
    assert store.image(image_sha256(broken)) == broken  # unreadable: kept as it was
    assert path.stat().st_size < 2 * PNG_BOUND  # the freed pages went back to the disk
    assert [m.query for m in store.marks()].count(digest) == 1  # marks still find it
    db = sqlite3.connect(path)
    db.execute("UPDATE query_images SET data=? WHERE sha256=?", (dropped, digest))
    db.commit()
    db.close()
    assert SQLiteFeedback(path).image(digest) == dropped  # migrated once, not at every open


def test_an_image_is_not_kept_below_the_free_disk_floor(tmp_path, monkeypatch):
    store = SQLiteFeedback(tmp_path / "f.sqlite")
    picture = io.BytesIO()
    Image.new("RGB", (256, 256), (1, 2, 3)).save(picture, format="PNG")
    monkeypatch.setenv("SCENESEEK_MIN_FREE_GB", "1e9")  # a floor no disk has
    with pytest.raises(DiskSpaceError, match="keeping the example image needs .* SCENESEEK_MIN"):
        store.store_image("cd" * 32, picture.getvalue())
    assert store.image("cd" * 32) is None


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


OPEN_AT = """
import sys, time
from core.store.feedback import Mark, SQLiteFeedback
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # all open at the same instant
SQLiteFeedback(sys.argv[1]).mark(Mark("text", "q", "s", int(sys.argv[3]), "relevant"))
"""


def test_first_opens_of_a_new_store_by_four_processes_all_succeed(tmp_path):
    for attempt in range(3):  # before the fix about half of such openers failed
        path = tmp_path / f"f{attempt}.sqlite"
        at = str(time.time() + 1.5)
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN_AT, str(path), at, str(tile)],
                cwd=ROOT,
                stderr=subprocess.PIPE,
                text=True,
            )
            for tile in range(4)
        ]
        errors = [run.communicate(timeout=60)[1] for run in runs]
        assert [run.returncode for run in runs] == [0] * 4, errors
        assert sorted(m.tile_id for m in SQLiteFeedback(path).marks()) == [0, 1, 2, 3]


def test_marks_record_their_author(tmp_path):
    store = SQLiteFeedback(tmp_path / "f.sqlite")
    store.mark(Mark("text", "q", "s", 1, "relevant", author="alice"))
    (stored,) = store.marks()
    assert stored.author == "alice"
    copy = SQLiteFeedback(tmp_path / "g.sqlite")
    copy.import_jsonl(store.export_jsonl())
    assert copy.marks()[0].author == "alice"


def test_cli_feedback_errors_are_one_line(tmp_path):
    ws = tmp_path / "ws"
    SQLiteFeedback(ws / "feedback.sqlite")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("[1, 2]\n")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    cases = [
        (["import", str(tmp_path / "missing.jsonl")], "error: cannot read"),
        (["import", str(bad)], "error: line 1: not a mark"),
        (["import", str(binary)], "error: cannot read"),
        (["export", "--out", str(tmp_path / "nope" / "out.jsonl")], "error: cannot write"),
    ]
    for args, message in cases:
        out = subprocess.run(
            [sys.executable, "-m", "core", "feedback", *args, "--workspace", str(ws)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 2 and out.stderr.startswith(message), (args, out.stderr)
        assert "Traceback" not in out.stderr
    for workspace in ("/proc/nope", str(tmp_path / "typo")):
        out = subprocess.run(
            [sys.executable, "-m", "core", "feedback", "list", "--workspace", workspace],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 2 and out.stderr.startswith("error: no workspace"), out.stderr
    assert not (tmp_path / "typo").exists()


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
