"""One bad stored mark never breaks the Fine-tune page: it is listed, with why, and left out."""

from __future__ import annotations

import json

from app import finetuning
from core.store.feedback import Mark, SQLiteFeedback
from core.store.workspace import Workspace
from tests.app.conftest import SMALL_NAME
from tests.app.test_finetune_page import finetune_page, texts
from tests.core.test_mark_rules import store_bad_rows


def test_bad_stored_marks_are_listed_and_left_out(ready_env: Workspace) -> None:
    store = SQLiteFeedback(ready_env.feedback_db)
    store.mark(Mark("text", "a road", SMALL_NAME, 3, "relevant"))
    store.mark(Mark("text", "a road", SMALL_NAME, 4, "relevant"))
    store_bad_rows(store)  # scene '../../etc', and a footprint GEOS cannot parse
    at = finetune_page()
    assert not at.exception, at.exception
    assert not at.error
    assert "2 marks cannot be re-attached" in texts(at)
    lost = at.dataframe[1].value  # after the counts
    assert sorted(lost["tile"]) == ["../../etc:7", f"{SMALL_NAME}:8"]
    assert all(why.startswith("not a valid mark: ") for why in lost["why"])
    assert "2 relevant marks and captions train" in texts(at)  # the good ones still count
    features = json.loads(finetuning.marks_geojson_bytes(ready_env))["features"]
    assert [f["properties"]["tile_id"] for f in features] == [3, 4]
