"""Hostile marks: an import checks every line before storing any; bad stored rows never break
exports or re-attachment."""

import json
import sqlite3

import pytest

from core.cli.main import main
from core.errors import FeedbackError
from core.store.feedback import Mark, SQLiteFeedback
from core.store.reattach import reconcile
from core.store.workspace import Workspace

SQUARE = "POLYGON ((0 0, 0.001 0, 0.001 0.001, 0 0.001, 0 0))"
GOOD = {"query_kind": "text", "query": "a road", "scene": "naip", "label": "relevant"}


def line(**fields) -> str:
    return json.dumps({**GOOD, "tile_id": 1, **fields})


def good_lines(n: int = 4) -> list[str]:
    return [line(tile_id=tile, footprint=SQUARE) for tile in range(n)]


HOSTILE = {
    "scene escapes the workspace": (line(scene="../../etc"), "scene '../../etc' is not"),
    "scene with a slash": (line(scene="a/b"), "is not a scene name"),
    "footprint GEOS cannot parse": (
        line(footprint="POLYGON ((nan 0, 1 1"),
        "cannot be read as WKT",
    ),
    "self-crossing footprint": (
        line(footprint="POLYGON ((0 0, 1 1, 1 0, 0 1, 0 0))"),
        "not a valid polygon",
    ),
    "NaN coordinates": (line(footprint="POLYGON ((0 0, nan 0, 1 1, 0 0))"), "finite"),
    "off the globe": (line(footprint="POLYGON ((0 0, 500 0, 500 1, 0 0))"), "longitudes"),
    "a point, not a polygon": (line(footprint="POINT (1 2)"), "must be a polygon"),
    "two thousand vertices": (
        line(footprint="POLYGON ((" + ", ".join(["0 0", "0 1"] * 1000) + ", 0 0))"),
        "vertices",
    ),
    "footprint not text": (line(footprint=[1, 2]), "footprint must be text"),
    "tile id as text": (line(tile_id="3"), "tile_id must be an integer"),
    "tile id true": (line(tile_id=True), "tile_id must be an integer"),
    "negative tile id": (line(tile_id=-1), "tile_id must be between"),
    "huge tile id": (line(tile_id=2**70), "tile_id must be between"),
    "query of 10,000 characters": (line(query="a" * 10_000), "query has 10,000 characters"),
    "query with a new line": (line(query="a\nroad"), "single spaces"),
    "query not text": (line(query={"$gt": ""}), "query must be text"),
    "unknown query kind": (line(query_kind="sql"), "query_kind must be one of"),
    "image query not a hash": (line(query_kind="image", query="x"), "SHA-256"),
    "tile query out of the workspace": (line(query_kind="tile", query="../x:3"), "not a scene"),
    "unknown label": (line(label="maybe"), "label must be one of"),
    "caption of 10,000 characters": (
        line(label="caption", caption="b" * 10_000),
        "caption has 10,000",
    ),
    "NaN time": (
        '{"query_kind": "text", "query": "q", "scene": "s", "tile_id": 1, '
        '"label": "relevant", "created": NaN}',
        "created must be between",
    ),
    "author of 10,000 characters": (line(author="c" * 10_000), "author has 10,000"),
    "unknown field": (line(evil=1), "unexpected keyword argument 'evil'"),
    "not an object": ("[1, 2]", "not a mark"),
    "nested 100,000 deep": ("[" * 100_000, "not JSON"),
    "a line of a megabyte": (line(caption="d" * 1_000_000), "longer than 100,000 characters"),
}


@pytest.mark.parametrize("bad,message", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_line_names_itself_and_nothing_is_stored(tmp_path, bad, message):
    store = SQLiteFeedback(tmp_path / "f.sqlite")
    with pytest.raises(FeedbackError) as refused:
        store.import_jsonl([*good_lines(), bad, line(tile_id=99)])
    assert str(refused.value).startswith("line 5: ") and message in str(refused.value)
    assert store.marks() == []


def test_an_import_that_fails_while_writing_stores_nothing(tmp_path):
    store = SQLiteFeedback(tmp_path / "f.sqlite")
    db = sqlite3.connect(store.path)
    db.execute(  # the disk or the database refusing the fifth write
        "CREATE TRIGGER refuse BEFORE INSERT ON marks WHEN NEW.tile_id = 4 "
        "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
    )
    db.close()
    with pytest.raises(sqlite3.DatabaseError):
        store.import_jsonl(good_lines(6))
    assert store.marks() == []


def feedback_cli(ws: Workspace, capsys, *args: str) -> tuple[int, str, str]:
    """``python -m core feedback ARGS``: exit status, stdout, stderr."""
    status = main(["feedback", *args, "--workspace", str(ws.root)])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_cli_import_of_a_hostile_file_is_one_line_and_stores_nothing(tmp_path, capsys):
    ws = Workspace(tmp_path / "ws")
    hostile = tmp_path / "marks.jsonl"
    hostile.write_text("\n".join([*good_lines(), line(footprint="POLYGON ((nan 0, 1 1")]) + "\n")
    status, _, err = feedback_cli(ws, capsys, "import", str(hostile))
    assert status == 2, err
    assert err.startswith("error: line 5: footprint cannot be read as WKT")
    assert len(err.strip().splitlines()) == 1
    assert SQLiteFeedback(ws.feedback_db).marks() == []


def store_bad_rows(store: SQLiteFeedback) -> None:
    """Rows an older version let an import store: they pass no check today."""
    db = sqlite3.connect(store.path)
    db.executemany(
        "INSERT INTO marks (query_kind, query, scene, tile_id, label, created, footprint)"
        " VALUES ('text', 'a road', ?, ?, 'relevant', 1.0, ?)",
        [("../../etc", 7, ""), ("naip", 8, "POLYGON ((nan 0, 1 1")],
    )
    db.commit()
    db.close()


def test_exports_leave_out_bad_stored_rows_with_a_warning_each(tmp_path, capsys):
    ws = Workspace(tmp_path / "ws")
    store = SQLiteFeedback(ws.feedback_db)
    store.mark(Mark("text", "a road", "naip", 1, "relevant", footprint=SQUARE))
    store_bad_rows(store)
    lines = feedback_cli(ws, capsys, "export")
    geojson = feedback_cli(ws, capsys, "export", "--format", "geojson")
    for status, _, err in (lines, geojson):
        assert status == 0, err
        warnings = err.strip().splitlines()
        assert [w.split(" left out: ")[0] for w in warnings] == [
            "warning: mark 2",
            "warning: mark 3",
        ], err
        assert "not a scene name" in warnings[0] and "cannot be read as WKT" in warnings[1]
    (exported,) = lines[1].splitlines()
    assert json.loads(exported)["tile_id"] == 1
    assert SQLiteFeedback(tmp_path / "copy.sqlite").import_jsonl([exported]) == 1
    (feature,) = json.loads(geojson[1])["features"]
    assert feature["properties"]["tile_id"] == 1


def test_re_attachment_lists_bad_stored_rows_and_goes_on(tmp_path):
    ws = Workspace(tmp_path / "ws")
    store = SQLiteFeedback(ws.feedback_db)
    good = store.mark(Mark("text", "a road", "naip", 1, "relevant", footprint=SQUARE))
    store_bad_rows(store)
    report = reconcile(ws, store)
    reasons = {u.mark.tile_id: u.reason for u in report.unattached}
    assert reasons[7].startswith("not a valid mark: scene '../../etc'")
    assert reasons[8].startswith("not a valid mark: footprint cannot be read as WKT")
    assert "IoU" in reasons[good.tile_id]  # checked as usual: no scene holds its ground
