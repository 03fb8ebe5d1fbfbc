"""Fine-tuning on marks: it helps the marked query on unmarked tiles, and the registry is safe."""

import pytest

from bench.finetune_check import run_check
from bench.mosaic import make_ucm_mosaic, ucm_class
from core.errors import FinetuneError
from core.learn.finetune.config import FinetuneCfg
from core.learn.finetune.guard import guard_violations, promote
from core.learn.finetune.loop import finetune
from core.learn.finetune.marks import split_feedback
from core.model.checkpoint import file_sha256
from core.model.versions import ModelRegistry
from core.store.feedback import Mark, SQLiteFeedback
from core.store.workspace import Workspace


def test_ucm_class_from_file_number():
    assert ucm_class("1.jpg") == "agricultural"
    assert ucm_class("2100.jpg") == "tennis court"
    assert ucm_class("201.jpg") == "baseball diamond"


def test_split_feedback_uses_text_marks_and_captions():
    marks = [
        Mark("text", "tennis court", "s", t, "relevant" if t < 6 else "irrelevant", id=t)
        for t in range(12)
    ] + [
        Mark("image", "abc", "s", 50, "relevant"),
        Mark("tile", "s:1", "s", 51, "caption", caption="a pool"),
    ]
    split = split_feedback(marks, holdout_fraction=0.25)
    texts = {p.text for p in split.train_pairs}
    assert texts <= {"tennis court", "a pool"} and "a pool" in texts
    held = sum(len(v) for v in split.heldout.values())
    trained = len([p for p in split.train_pairs if p.text == "tennis court"]) + sum(
        map(len, split.train_negatives.values())
    )
    assert held + trained == 12 and 0 < held < 12
    assert split_feedback(marks, 0.25).heldout == split.heldout


def test_too_few_marks_is_a_clear_error(model_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("SCENESEEK_MODEL", str(model_checkpoint))
    with pytest.raises(FinetuneError, match="at least"):
        finetune(Workspace(tmp_path), FinetuneCfg(steps=1))


@pytest.mark.slow
def test_marks_improve_the_query_and_the_registry_is_safe(model_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("SCENESEEK_MODEL", str(model_checkpoint))
    ws = Workspace(tmp_path / "ws")
    mosaic = make_ucm_mosaic(tmp_path / "ucm_mosaic.tif")
    shipped = file_sha256(model_checkpoint)
    cfg = FinetuneCfg(steps=40, eval_images=60, replay_images=192)
    result = run_check(ws, mosaic, cfg)
    assert result.marked_relevant + result.marked_irrelevant == 20
    assert result.p10_after > result.p10_before, result
    version = result.version
    assert version.version == 1 and version.parent == 0
    registry = ModelRegistry(ws)
    assert registry.active().version == 0
    if guard_violations(version, cfg.guard_points):
        with pytest.raises(FinetuneError, match="promotion refused"):
            promote(ws, 1)
    else:
        assert promote(ws, 1).version == 1 and registry.active().version == 1
    assert promote(ws, 0).version == 0 and registry.active().version == 0
    assert file_sha256(registry.get(0).path) == shipped
    assert len(SQLiteFeedback(ws.feedback_db).marks()) == 20
