"""SceneManifest reads what older engines wrote and keeps what it does not know."""

import json

from core.store.manifest import MANIFEST_FORMAT, SceneManifest

OLD = {
    "name": "berkeley",
    "fingerprint": {"source": "/data/berkeley.tif", "tiling": {"sizes": [256]}},
    "scene": {"width": 1361, "height": 827},
    "status": "ready",
    "n_tiles": 77,
    "quicklook_bounds": [37.8, -122.3, 37.9, -122.2],
    "model": "abc123",
    "ingest_seconds": 12.5,
    "embed_tiles_per_second": 7.1,
    "finished": 1700000000.0,
    "added_by_a_newer_engine": {"x": 1},
}


def test_a_manifest_written_before_the_type_reads_and_round_trips(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(OLD))
    manifest = SceneManifest.load(path)
    assert manifest.ready and manifest.n_tiles == 77 and manifest.model == "abc123"
    assert manifest.source == "/data/berkeley.tif"
    assert manifest.quicklook_bounds == (37.8, -122.3, 37.9, -122.2)
    assert manifest.extra == {"added_by_a_newer_engine": {"x": 1}}
    manifest.save(path)
    again = json.loads(path.read_text())
    assert again == {**OLD, "format": MANIFEST_FORMAT}


def test_a_missing_manifest_is_empty_and_not_ready(tmp_path):
    manifest = SceneManifest.load(tmp_path / "nope.json")
    assert not manifest.ready and manifest.status == "" and manifest.source is None


def test_unset_fields_are_left_out_as_before(tmp_path):
    path = tmp_path / "m.json"
    SceneManifest("s", {"source": "a.tif"}, status="tiling").save(path)
    assert json.loads(path.read_text()) == {
        "name": "s",
        "fingerprint": {"source": "a.tif"},
        "scene": {},
        "status": "tiling",
        "model": "",
        "format": MANIFEST_FORMAT,
    }
