"""Fine-tuning on marks: the split, what the page is told, the promotion guard, end to end."""

import pytest

from bench.mosaic import ucm_class
from core.errors import FinetuneError
from core.learn.finetune.config import FinetuneCfg
from core.learn.finetune.guard import generic_queries, guard_violations, overlaps
from core.learn.finetune.loop import finetune
from core.learn.finetune.marks import readiness, split_feedback
from core.model.reference_captions import REFERENCE_CAPTIONS
from core.model.versions import ModelVersion
from core.store.feedback import Mark
from core.store.workspace import Workspace


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
