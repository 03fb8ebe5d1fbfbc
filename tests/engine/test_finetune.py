"""Fine-tuning on marks: the split, what the page is told, the promotion guard, end to end."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.finetune_check import SCENE, Judge, analyst_marks, ingest_mosaic
from bench.mosaic import make_ucm_mosaic, ucm_class
from core.errors import FinetuneError
from core.learn.finetune.config import FinetuneCfg
from core.learn.finetune.features import CachedTexts, encode_texts
from core.learn.finetune.guard import generic_queries, guard_violations, overlaps
from core.learn.finetune.loop import finetune
from core.learn.finetune.marks import readiness, split_feedback
from core.model.checkpoint import file_sha256, load_checkpoint
from core.model.loading import load_model
from core.model.reference_captions import REFERENCE_CAPTIONS
from core.model.versions import ModelRegistry, ModelVersion
from core.search.ranking import Filters, search_text
from core.search.scenes import SearchResources
from core.store.feedback import Mark, SQLiteFeedback
from core.store.reattach import tile_footprint
from core.store.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]


def marks_of(query, relevant, irrelevant=0, scene="s"):
    labels = ["relevant"] * relevant + ["irrelevant"] * irrelevant
    return [Mark("text", query, scene, t, label, id=t) for t, label in enumerate(labels)]


def version(heldout=((0.4, 0.4),), overlap=1.0, base=None):
    """A version with hand-made before/after numbers."""
    before = {"heldout_p10": {f"q{i}": b for i, (b, _) in enumerate(heldout)}}
    after = {"heldout_p10": {f"q{i}": a for i, (_, a) in enumerate(heldout)}}
    if base:
        before["base_mR"], after["base_mR"] = {"rsicd": base[0]}, {"rsicd": base[1]}
    metrics = {"before": before, "after": after}
    if overlap is not None:
        metrics |= {"top10_overlap": {"a port": overlap}, "top10_overlap_mean": overlap}
    return ModelVersion(1, "v1.safetensors", "0" * 64, 0, metrics=metrics)


def test_ucm_class_from_file_number():
    assert ucm_class("1.jpg") == "agricultural"
    assert ucm_class("2100.jpg") == "tennis court"
    assert ucm_class("201.jpg") == "baseball diamond"


def test_split_feedback_uses_text_marks_and_captions():
    marks = marks_of("tennis court", 6, 6) + [
        Mark("image", "abc", "s", 50, "relevant"),
        Mark("tile", "s:1", "s", 51, "caption", caption="a pool"),
    ]
    split = split_feedback(marks, holdout_fraction=0.25)
    texts = {p.text for p in split.train_pairs}
    assert texts == {"tennis court", "a pool"}
    held = sum(len(v) for v in split.heldout.values())
    trained = len([p for p in split.train_pairs if p.text == "tennis court"]) + sum(
        map(len, split.train_negatives.values())
    )
    assert held + trained == 12 and held == 2  # a quarter of each label, rounded down
    assert split_feedback(marks, 0.25).heldout == split.heldout


def test_the_first_relevant_marks_of_a_query_always_train():
    assert len(split_feedback(marks_of("q", 2), 0.5).train_pairs) == 2
    split = split_feedback(marks_of("q", 4), 0.5)
    assert len(split.train_pairs) == 2 and sum(split.heldout["q"].values()) == 2
    assert len(split_feedback(marks_of("q", 10, 10), 0.25).heldout["q"]) == 4


def test_readiness_says_what_is_missing():
    empty = readiness([], 0.25, 2)
    assert not empty.ready and empty.missing.startswith("2 more relevant marks on a text query")
    one = readiness(marks_of("storage tanks", 1, 3), 0.25, 2)
    assert not one.ready and one.missing.startswith("1 more relevant mark for 'storage tanks'")
    (q,) = one.queries
    assert (q.relevant, q.irrelevant, q.train_relevant, q.heldout_irrelevant) == (1, 3, 1, 0)
    many = readiness(marks_of("storage tanks", 10, 10), 0.25, 2)
    assert many.ready and many.missing == "" and many.train_pairs == 8 and many.heldout == 4


def test_generic_queries_leave_out_what_is_trained():
    split = split_feedback(marks_of("a port", 2) + marks_of("a road", 0, 3), 0.25)
    generic = generic_queries(split, ["a port", "a road", REFERENCE_CAPTIONS[0]])
    assert "a road" in generic and "a port" not in generic
    assert generic[: len(REFERENCE_CAPTIONS)] == list(REFERENCE_CAPTIONS)
    assert len(set(generic)) == len(generic)


def test_top10_overlap():
    before = {"q": [["s", t] for t in range(10)]}
    assert overlaps(before, {"q": [["s", t] for t in range(2, 12)]}) == {"q": 0.8}


def test_guard_on_held_out_precision_and_top10_overlap():
    assert guard_violations(version(heldout=[(0.4, 0.3)])) == []
    (reason,) = guard_violations(version(heldout=[(0.4, 0.2)]))
    assert "held-out precision@10 of 'q0' fell 0.20" in reason
    assert guard_violations(version(overlap=0.8)) == []
    (reason,) = guard_violations(version(overlap=0.7))
    assert "kept 0.70 of their top 10" in reason and "'a port'" in reason
    assert guard_violations(version(overlap=0.7), top10_overlap=0.5) == []


def test_guard_limits_are_settings(monkeypatch):
    monkeypatch.setenv("SCENESEEK_GUARD_HELDOUT_DROP", "0.3")
    monkeypatch.setenv("SCENESEEK_GUARD_TOP10_OVERLAP", "0.9")
    assert guard_violations(version(heldout=[(0.4, 0.2)], overlap=0.95)) == []
    assert len(guard_violations(version(overlap=0.85))) == 1


def test_guard_on_the_papers_metric_when_it_was_measured():
    assert guard_violations(version(overlap=None, base=(20.0, 19.0))) == []
    (reason,) = guard_violations(version(overlap=None, base=(20.0, 15.0)))
    assert "more than the 2-point guard" in reason


def test_too_few_marks_is_a_clear_error(model_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("SCENESEEK_MODEL", str(model_checkpoint))
    with pytest.raises(FinetuneError, match="needs 2 more relevant marks"):
        finetune(Workspace(tmp_path), FinetuneCfg(steps=1))


LOOK_ALIKES = ("harbor", "beach", "river", "parking lot", "storage tanks", "mobile home park")


def run_cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "core", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_fine_tune_and_promote_with_no_datasets(model_checkpoint, data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("SCENESEEK_MODEL", str(model_checkpoint))
    ws = Workspace(tmp_path / "ws")
    mosaic = make_ucm_mosaic(
        tmp_path / "mosaic.tif", data_root=data_root, classes=LOOK_ALIKES, columns=12
    )
    labels = ingest_mosaic(ws, mosaic)
    judge = Judge(ws, labels)
    base, _ = load_checkpoint(model_checkpoint)
    relevant, wrong = analyst_marks(judge, base, "marina", "harbor", 20)
    marked = set(relevant) | set(wrong)
    before = {c: judge.p10(base, c, c, marked) for c in LOOK_ALIKES}
    before["marina"] = judge.p10(base, "marina", "harbor", marked)

    # the marks come from another workspace, where the scene has another name: they find
    # their tiles here by footprint
    elsewhere = SQLiteFeedback(tmp_path / "elsewhere.sqlite")
    for tile, label in [(t, "relevant") for t in relevant] + [(t, "irrelevant") for t in wrong]:
        footprint = tile_footprint(ws, SCENE, tile)
        elsewhere.mark(Mark("text", "marina", "their-mosaic", tile, label, footprint=footprint))
    exported = tmp_path / "marks.jsonl"
    exported.write_text("".join(line + "\n" for line in elsewhere.export_jsonl()))
    env = {
        **os.environ,
        "SCENESEEK_DATA": str(tmp_path / "empty"),
        "SCENESEEK_MODEL": str(model_checkpoint),
    }
    (tmp_path / "empty").mkdir()
    imported = run_cli("feedback", "import", exported, "--workspace", ws.root, env=env)
    assert imported.returncode == 0, imported.stderr
    assert "20 marks moved to the tile that covers their ground" in imported.stdout
    assert {(m.scene, m.tile_id) for m in SQLiteFeedback(ws.feedback_db).marks()} == {
        (SCENE, t) for t in marked
    }

    scene = ws.scene(SCENE)
    paths = [scene.embeddings / "visual.npy", scene.embeddings / "gate.npy"]
    paths += [scene.visual_index, scene.text_index]
    files = [p.read_bytes() for p in paths]
    tuned = run_cli("finetune", "--workspace", ws.root, "--promote", env=env)
    assert tuned.returncode == 0, tuned.stderr
    assert f"shared as they are (nothing recomputed): {SCENE}" in tuned.stdout

    registry = ModelRegistry(ws)
    assert registry.active().version == 1 and registry.active().parent == 0
    assert registry.active().data["adapters"] == ["marina"]
    assert [p.read_bytes() for p in paths] == files  # adapters only: every scene file shared
    loaded = load_model(ws, device="cpu")
    resources = SearchResources.load(ws, loaded.model, loaded.tag, loaded.device)
    assert set(resources.scenes) == {SCENE} and not resources.stale
    assert search_text(resources, "marina", Filters(k=10)).model == registry.active().tag

    after = {c: judge.p10(loaded.model, c, c, marked) for c in LOOK_ALIKES}
    after["marina"] = judge.p10(loaded.model, "marina", "harbor", marked)
    assert after["marina"] >= before["marina"] + 0.2, (before, after)
    for query in LOOK_ALIKES:  # the target: no other query down by more than 0.1
        assert after[query] >= before[query] - 0.1 - 1e-9, (query, before, after)
    assert file_sha256(registry.get(0).path) == file_sha256(model_checkpoint)


def test_cached_text_prefix_gives_the_same_vectors(model_checkpoint):
    model, _ = load_checkpoint(model_checkpoint)
    texts = ["a marina", "many white storage tanks next to a long road", "a"]
    cached = CachedTexts(model)
    cached(texts[:1])
    with torch.no_grad():
        torch.testing.assert_close(cached(texts), encode_texts(model, texts), atol=1e-5, rtol=1e-4)
