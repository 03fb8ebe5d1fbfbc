"""Fine-tune page through Streamlit's AppTest: marks, captions, the model registry."""

from __future__ import annotations

import json
import re
from functools import partial

import pytest
import torch
from streamlit.testing.v1 import AppTest

from app import finetuning, resources
from core.jobs import cancel, list_jobs
from core.model.checkpoint import load_checkpoint, save_checkpoint
from core.model.shipped import shipped_scores
from core.model.versions import ModelRegistry
from core.store.feedback import Mark, SQLiteFeedback
from core.store.workspace import Workspace
from tests.app.conftest import SMALL_NAME, finished, open_page

TIMEOUT = 60


finetune_page = partial(open_page, "views/finetune.py", TIMEOUT)


def texts(at: AppTest) -> str:
    """Every alert's and caption's text, with Markdown escapes removed."""
    parts = [str(e.value) for e in (*at.error, *at.success, *at.info, *at.warning, *at.caption)]
    return re.sub(r"\\(.)", r"\1", "\n".join(parts))


def metrics(rsicd_after: float, kept: float = 0.9) -> dict:
    """Hand-made before/after numbers: RSICD mR goes from 20 to ``rsicd_after``."""
    return {
        "before": {"heldout_p10": {"a pool": 0.2}, "base_mR": {"rsicd": 20.0, "ucm": 40.0}},
        "after": {"heldout_p10": {"a pool": 0.5}, "base_mR": {"rsicd": rsicd_after, "ucm": 40.5}},
        "top10_overlap": {"a road": kept},
        "top10_overlap_mean": kept,
    }


def register(ws: Workspace, rsicd_after: float, kept: float = 0.9, moved: str = "attention") -> int:
    """A second version: version 0 with one module's weights moved, and hand-made metrics."""
    registry = ModelRegistry(ws)
    model, _ = load_checkpoint(registry.get(0).path)
    with torch.no_grad():
        for p in getattr(model, moved).parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = save_checkpoint(model, ws.root / f"{moved}.safetensors")
    return registry.register(path, parent=0, metrics=metrics(rsicd_after, kept)).version


def test_empty_state_offers_no_button_and_says_what_is_missing(env: Workspace) -> None:
    at = finetune_page()
    assert at.title[0].value == "Fine-tune"
    assert not [b for b in at.button if b.key == "finetune"]  # cannot start: not offered
    assert "fine-tuning needs 2 more relevant marks on a text query" in texts(at)
    assert "No marks yet" in texts(at)
    assert not at.dataframe  # no counts, and no fine-tuned version to compare
    assert list_jobs(env) == []


def test_counts_review_and_delete(ready_env: Workspace) -> None:
    store = SQLiteFeedback(ready_env.feedback_db)
    kept = store.mark(Mark("text", "a <b>pool</b>", SMALL_NAME, 3, "relevant"))
    gone = store.mark(Mark("text", "a <b>pool</b>", SMALL_NAME, 4, "irrelevant"))
    store.mark(Mark("text", "a road", SMALL_NAME, 5, "relevant"))
    at = finetune_page()
    counts = at.dataframe[0].value
    assert list(counts["query"]) == ["a <b>pool</b>", "a road"]
    assert list(counts["relevant"]) == [1, 1] and list(counts["irrelevant"]) == [1, 0]
    assert not at.button(key="finetune").disabled  # two relevant marks are enough to start
    cells = [c.value for c in at.text]
    assert "not relevant" in cells and "irrelevant" not in cells  # as the Search page says it
    assert "2 relevant marks and captions train, with 1 not-relevant mark;" in texts(at)
    assert all(m.footprint for m in store.marks())  # filled in from the catalog
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


def test_held_out_marks_are_explained(ready_env: Workspace) -> None:
    store = SQLiteFeedback(ready_env.feedback_db)
    store.mark(Mark("text", "storage tanks", SMALL_NAME, 1, "relevant"))
    for tile in range(10, 14):
        store.mark(Mark("text", "storage tanks", SMALL_NAME, tile, "irrelevant"))
    at = finetune_page()
    assert not [b for b in at.button if b.key == "finetune"]
    assert "needs 1 more relevant mark for 'storage tanks'" in texts(at)
    assert (
        "1 relevant mark or caption trains, with 3 not-relevant marks; 1 mark is held out"
        in texts(at)
    )


def test_marks_no_tile_covers_are_listed(ready_env: Workspace) -> None:
    store = SQLiteFeedback(ready_env.feedback_db)
    far = "POLYGON ((0 0, 0.001 0, 0.001 0.001, 0 0.001, 0 0))"
    store.mark(Mark("text", "a road", "elsewhere", 1, "relevant", footprint=far))
    at = finetune_page()
    assert "1 mark cannot be re-attached: no tile covers its ground now" in texts(at)
    lost = at.dataframe[1].value  # after the counts
    assert list(lost["tile"]) == ["elsewhere:1"] and "IoU" in lost["why"][0]


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
    assert mark.footprint.startswith("POLYGON")


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
        "generic queries: top 10 kept",
        "RSICD test mR",
        "UCM test mR",
    ]
    at.button(key=f"promote-{version}").click().run()
    assert "promotion refused" in texts(at) and "more than the 2-point guard" in texts(at)
    assert ModelRegistry(env).active().version == 0


def test_promotion_refused_when_generic_queries_move(env: Workspace) -> None:
    version = register(env, rsicd_after=20.0, kept=0.5)
    at = finetune_page()
    comparison = at.dataframe[0].value
    assert "generic queries: top 10 kept" in list(comparison["measure"])
    assert all(comparison["meaning"])  # every number explains itself
    at.button(key=f"promote-{version}").click().run()
    assert "kept 0.50 of their top 10" in texts(at)
    assert ModelRegistry(env).active().version == 0


def test_a_new_image_tower_says_promotion_re_embeds(ready_env: Workspace) -> None:
    register(ready_env, rsicd_after=20.0, moved="mvsa")
    at = finetune_page()
    assert "Promoting it re-embeds 1 scene, about" in texts(at)


def test_promote_recomputes_gates_only_and_rollback(ready_env: Workspace) -> None:
    version = register(ready_env, rsicd_after=19.0)  # within the guard
    embeddings = ready_env.scene(SMALL_NAME).embeddings
    visual, gate = (embeddings / "visual.npy").read_bytes(), (embeddings / "gate.npy").read_bytes()
    at = finetune_page()
    assert "Promoting it reuses every scene's stored vectors" in texts(at)
    at.button(key=f"promote-{version}").click().run()
    try:
        assert ModelRegistry(ready_env).active().version == version
        assert f"v{version}" in texts(at) and "Bringing 1 scene to it started" in texts(at)
        assert not any("in the background" in s.value for s in at.success)  # true after it ends
        sidebar = " ".join(h.value for h in at.sidebar.html)
        assert f"v{version} (" in sidebar  # the whole app already reads the new version
        assert resources.engine().version.version == version  # searches load it on next use
        (job,) = list_jobs(ready_env)
        assert job.kind == "refresh"
        assert finished(ready_env, job.id).result["refreshed"] == [SMALL_NAME]
        assert (embeddings / "visual.npy").read_bytes() == visual
        assert (embeddings / "gate.npy").read_bytes() != gate
        manifest = ready_env.scene(SMALL_NAME).read_manifest()
        assert manifest.model == ModelRegistry(ready_env).active().tag
        at.button(key="rollback-0").click().run()
        assert ModelRegistry(ready_env).active().version == 0
        assert len([j for j in list_jobs(ready_env) if j.kind == "refresh"]) == 2
    finally:
        for job in list_jobs(ready_env):
            cancel(ready_env, job.id)


@pytest.mark.slow
def test_fine_tunes_with_no_datasets_installed(ready_env: Workspace, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SCENESEEK_DATA", str(tmp_path / "no-datasets"))  # an empty folder
    (tmp_path / "no-datasets").mkdir()
    store = SQLiteFeedback(ready_env.feedback_db)
    for tile in (2, 9, 17, 30):
        store.mark(Mark("text", "dense trees", SMALL_NAME, tile, "relevant"))
    for tile in (5, 40, 41):
        store.mark(Mark("text", "dense trees", SMALL_NAME, tile, "irrelevant"))
    at = finetune_page()
    assert (
        "3 relevant marks and captions train, with 3 not-relevant marks; 1 mark is held out"
        in texts(at)
    )
    at.number_input(key="finetune_steps").set_value(10).run()
    at.button(key="finetune").click().run()
    try:
        (job,) = list_jobs(ready_env)
        done = finished(ready_env, job.id)
        assert done.status == "done", done.error
        at.run()
        comparison = at.dataframe[0].value
        assert list(comparison["measure"]) == [
            "held-out precision@10 · dense trees",
            "generic queries: top 10 kept",
        ]
        assert all(comparison["meaning"])
        assert [r for r in model_versions_rows(at) if r.startswith("v1 (")]
    finally:
        for job in list_jobs(ready_env):
            cancel(ready_env, job.id)


def model_versions_rows(at: AppTest) -> list[str]:
    """The version labels drawn in the registry table."""
    return [t.value for t in at.text if re.match(r"^v\d+ \(", str(t.value))]


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
