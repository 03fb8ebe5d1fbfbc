"""Fine-tune page through Streamlit's AppTest: marks, captions, the model registry."""

from __future__ import annotations

import json
import re
import time
from functools import partial
from pathlib import Path

from streamlit.testing.v1 import AppTest

from app import finetuning, resources
from core.jobs import cancel, get_job, list_jobs
from core.model.shipped import shipped_scores
from core.model.versions import ModelRegistry
from core.store.feedback import Mark, SQLiteFeedback
from core.store.workspace import Workspace
from tests.app.conftest import SMALL_NAME, open_page

TIMEOUT = 60


finetune_page = partial(open_page, "views/finetune.py", TIMEOUT)


def texts(at: AppTest) -> str:
    """Every alert's and caption's text, with Markdown escapes removed."""
    parts = [str(e.value) for e in (*at.error, *at.success, *at.info, *at.warning, *at.caption)]
    return re.sub(r"\\(.)", r"\1", "\n".join(parts))


def metrics(rsicd_after: float) -> dict:
    """Hand-made before/after numbers: RSICD mR goes from 20 to ``rsicd_after``."""
    return {
        "before": {"heldout_p10": {"a pool": 0.2}, "base_mR": {"rsicd": 20.0, "ucm": 40.0}},
        "after": {"heldout_p10": {"a pool": 0.5}, "base_mR": {"rsicd": rsicd_after, "ucm": 40.5}},
    }


def register(ws: Workspace, rsicd_after: float) -> int:
    """A second version: a copy of version 0's checkpoint with hand-made metrics."""
    registry = ModelRegistry(ws)
    base = Path(registry.get(0).path)
    return registry.register(base, parent=0, metrics=metrics(rsicd_after)).version


def test_empty_state_disables_fine_tuning(env: Workspace) -> None:
    at = finetune_page()
    assert at.title[0].value == "Fine-tune"
    assert at.button(key="finetune").disabled
    assert "needs at least 2 relevant marks" in texts(at)
    assert "No marks yet" in texts(at)
    assert not at.dataframe  # no counts, and no fine-tuned version to compare
    assert list_jobs(env) == []


def test_counts_review_and_delete(env: Workspace) -> None:
    store = SQLiteFeedback(env.feedback_db)
    kept = store.mark(Mark("text", "a <b>pool</b>", "naip", 3, "relevant"))
    gone = store.mark(Mark("text", "a <b>pool</b>", "naip", 4, "irrelevant"))
    store.mark(Mark("text", "a road", "naip", 5, "relevant"))
    at = finetune_page()
    counts = at.dataframe[0].value
    assert list(counts["query"]) == ["a <b>pool</b>", "a road"]
    assert list(counts["relevant"]) == [1, 1] and list(counts["irrelevant"]) == [1, 0]
    assert not at.button(key="finetune").disabled  # two relevant marks are enough to start
    cells = [c.value for c in at.text]
    assert "not relevant" in cells and "irrelevant" not in cells  # as the Search page says it
    at.button(key=f"delete-mark-{gone.id}").click().run()
    assert [m.id for m in store.marks(query="a <b>pool</b>")] == [kept.id]
    assert list(at.dataframe[0].value["irrelevant"]) == [0, 0]


def test_marks_export_as_geojson_on_their_footprints(ready_env: Workspace) -> None:
    store = SQLiteFeedback(ready_env.feedback_db)
    store.mark(Mark("text", "a road", SMALL_NAME, 3, "relevant"))
    store.mark(Mark("text", "a road", "deleted-scene", 1, "irrelevant"))
    at = finetune_page()
    assert at.get("download_button")[0].label == "All marks as GeoJSON"
    on_map, gone = json.loads(finetuning.marks_geojson_bytes(ready_env))["features"]
    assert on_map["geometry"]["type"] == "Polygon" and on_map["properties"]["label"] == "relevant"
    assert gone["geometry"] is None and "no longer in the workspace" in gone["properties"]["reason"]


def test_caption_editor_stores_a_caption(ready_env: Workspace) -> None:
    at = finetune_page()
    assert at.selectbox(key="caption_scene").value == SMALL_NAME
    at.number_input(key="caption_tile").set_value(7).run()
    assert len(at.image) == 1  # the tile's thumbnail
    at.text_area(key=f"caption-{SMALL_NAME}-7").input("a road between trees")
    at.button(key="save-caption").click().run()
    assert not at.exception, at.exception
    assert "Caption saved" in texts(at)
    (mark,) = SQLiteFeedback(ready_env.feedback_db).marks()
    assert (mark.query_kind, mark.query, mark.label) == ("tile", f"{SMALL_NAME}:7", "caption")
    assert (mark.scene, mark.tile_id, mark.caption) == (SMALL_NAME, 7, "a road between trees")


def test_promotion_refused_by_the_guard(env: Workspace) -> None:
    version = register(env, rsicd_after=15.0)  # a 5-point drop
    at = finetune_page()
    cells = [c.value for c in at.text]
    shipped = shipped_scores(ModelRegistry(env).get(0).sha256)  # v0's model card, if shipped
    v0 = [f"{shipped['rsicd']:.2f}", f"{shipped['ucm']:.2f}"] if shipped else ["not measured"] * 2
    assert {"15.00", "40.50", *v0} <= set(cells)  # v1 measured after training, v0 before
    comparison = at.dataframe[0].value
    assert list(comparison["measure"]) == [
        "held-out precision@10 · a pool",
        "RSICD test mR",
        "UCM test mR",
    ]
    at.button(key=f"promote-{version}").click().run()
    assert "promotion refused" in texts(at) and "more than the 2-point guard" in texts(at)
    assert ModelRegistry(env).active().version == 0


def test_promote_reindexes_and_rollback(ready_env: Workspace) -> None:
    version = register(ready_env, rsicd_after=19.0)  # within the guard
    at = finetune_page()
    at.button(key=f"promote-{version}").click().run()
    try:
        assert ModelRegistry(ready_env).active().version == version
        assert f"v{version}" in texts(at) and "Re-embedding of 1 scene with it started" in texts(at)
        assert not any("in the background" in s.value for s in at.success)  # true after it ends
        sidebar = " ".join(h.value for h in at.sidebar.html)
        assert f"v{version} (" in sidebar  # the whole app already reads the new version
        assert resources.engine().version.version == version  # searches load it on next use
        (job,) = list_jobs(ready_env)
        assert job.kind == "reindex" and job.params["name"] == SMALL_NAME
        cancel(ready_env, job.id)
        deadline = time.time() + 60
        while get_job(ready_env, job.id).active and time.time() < deadline:
            time.sleep(0.2)
        at.run()
        assert "Re-indexing naip: cancelled" in texts(at)  # the jobs panel says how it went
        at.button(key="rollback-0").click().run()
        assert ModelRegistry(ready_env).active().version == 0
        assert len([j for j in list_jobs(ready_env) if j.kind == "reindex"]) == 2
    finally:
        for job in list_jobs(ready_env):
            cancel(ready_env, job.id)


def test_caption_a_hit_of_the_last_search(ready_env: Workspace) -> None:
    at = finetune_page()
    at.switch_page("views/search.py").run()
    at.text_input(key="query_text").input("a road between trees")
    at.button[0].click().run()
    hit = at.session_state["result"].hits[2]
    at.switch_page("views/finetune.py").run()
    at.selectbox(key="caption_hit").select(hit).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="caption_scene").value == hit.scene
    assert at.number_input(key="caption_tile").value == hit.tile_id
