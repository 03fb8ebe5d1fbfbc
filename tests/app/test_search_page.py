"""Search page through Streamlit's AppTest, on a workspace holding one small scene."""

from __future__ import annotations

import csv
import io
import json
import re
from functools import partial

import numpy as np
import pytest
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from app import resources
from core.search.similar import query_share
from core.store.feedback import SQLiteFeedback, image_sha256
from core.store.query_images import load_query_image
from core.store.workspace import Workspace
from tests.app.conftest import open_page
from tests.core.test_query_images import PNG_BOUND, photo

TIMEOUT = 120


search_page = partial(open_page, "views/search.py", TIMEOUT)


def ask(at: AppTest, text: str) -> AppTest:
    at.text_input(key="query_text").input(text)
    at.button[0].click()  # the form's Search button
    at.run()
    assert not at.exception, at.exception
    return at


def summary(at: AppTest) -> str:
    """The heading saying what the results on screen are for."""
    return next(h.value for h in at.html if "ss-summary" in h.value)


def errors(at: AppTest) -> str:
    """Every error's text, with Markdown escapes removed."""
    return re.sub(r"\\(.)", r"\1", "\n".join(str(e.value) for e in at.error))


def png(value: int) -> bytes:
    picture = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), value, np.uint8)).save(picture, format="PNG")
    return picture.getvalue()


def test_no_scene_yet(env: Workspace) -> None:
    at = search_page()
    assert "No scene is ready to search yet" in at.info[0].value


def test_empty_query_shows_why(ready_env: Workspace) -> None:
    at = ask(search_page(), "   ")
    assert "the query is empty" in at.error[0].value
    assert at.session_state["result"] is None


def test_an_overlong_paste_stays_in_the_box_and_keeps_the_results(ready_env: Workspace) -> None:
    at = ask(search_page(), "a road between trees")
    result = at.session_state["result"]
    pasted = "a long road between green trees and fields " * 14  # about 600 characters
    ask(at, pasted)
    assert at.text_input(key="query_text").value == pasted  # not dropped, not cut
    length = len(" ".join(pasted.split()))
    assert f"{length} characters long, {length - 500} over the limit of 500" in errors(at)
    assert at.session_state["result"] is result  # not searched, nothing wiped
    assert "a road between trees" in summary(at) and len(at.image) == 10
    ask(at, "")
    assert "the query is empty" in errors(at) and at.session_state["result"] is result
    assert at.session_state["query"]["text"] == "a road between trees"  # marks go there
    ask(at, "a road")
    assert not at.error and "a road" in summary(at)


def test_text_query_renders_hits(ready_env: Workspace) -> None:
    at = ask(search_page(), "a road between trees")
    result = at.session_state["result"]
    assert len(result.hits) == 10
    assert len(at.image) == 10  # the gallery's thumbnails
    summary = [h.value for h in at.html if "ss-summary" in h.value]
    assert "10 hits" in summary[0] and "a road between trees" in summary[0]
    assert at.session_state["search_error"] == ""


def test_user_text_is_escaped(ready_env: Workspace) -> None:
    at = ask(search_page(), "<img src=x onerror=alert(1)> field")
    bodies = " ".join(h.value for h in at.html)
    assert "<img src=x" not in bodies and "&lt;img src=x" in bodies


def test_relevant_button_stores_a_mark(ready_env: Workspace) -> None:
    at = ask(search_page(), "a road between trees")
    hit = at.session_state["result"].hits[0]
    at.button(key=f"relevant-{hit.scene}:{hit.tile_id}").click().run()
    (mark,) = SQLiteFeedback(ready_env.feedback_db).marks()
    assert (mark.query_kind, mark.query, mark.label) == ("text", "a road between trees", "relevant")
    assert (mark.scene, mark.tile_id) == (hit.scene, hit.tile_id)
    assert at.session_state["marks"] == {f"{hit.scene}:{hit.tile_id}": "relevant"}
    again = ask(search_page(), "a road between trees")  # a new session sees the stored mark
    assert again.session_state["marks"] == {f"{hit.scene}:{hit.tile_id}": "relevant"}


def test_refine_and_find_similar(ready_env: Workspace) -> None:
    at = ask(search_page(), "a road between trees")
    first, second = at.session_state["result"].hits[:2]
    at.button(key=f"irrelevant-{first.scene}:{first.tile_id}").click().run()
    at.button(key=f"relevant-{second.scene}:{second.tile_id}").click().run()
    refine = next(b for b in at.button if b.label.startswith("Refine with marks"))
    refine.click().run()
    assert at.session_state["refined"] is True
    assert at.session_state["result"].query["refined"] == {"relevant": 1, "irrelevant": 1}
    at.button(key=f"similar-{second.scene}:{second.tile_id}").click().run()
    result = at.session_state["result"]
    assert result.query == {"tile": f"{second.scene}:{second.tile_id}"}
    # Neither the tile (most similar to itself) nor the tiles covering half of it come back.
    assert second.tile_id not in [h.tile_id for h in result.hits]
    assert all(query_share(h.window, second.window) < 0.5 for h in result.hits)
    assert [h.rank for h in result.hits] == list(range(1, len(result.hits) + 1))
    assert len(result.hits) == 10 or f"{len(result.hits)} hits, not 10" in at.info[0].value


def test_a_small_scene_says_why_fewer_hits_come_back(ready_env: Workspace) -> None:
    at = search_page()
    at.slider(key="filter_k").set_value(50).run()
    ask(at, "a road between trees")
    found = len(at.session_state["result"].hits)
    assert found < 50 and f"{found} hits" in summary(at)
    notice = re.sub(r"\\(.)", r"\1", at.info[0].value)
    assert notice == (
        f"{found} hits, not 50: the scenes searched hold 60 tiles, "
        f"and only {found} places that do not overlap one another."
    )


def test_the_heading_and_the_box_agree_with_the_results(ready_env: Workspace) -> None:
    at = ask(search_page(), "a road between trees")
    assert at.text_input(key="query_text").value == "a road between trees"
    hit = at.session_state["result"].hits[1]
    at.button(key=f"similar-{hit.scene}:{hit.tile_id}").click().run()
    assert at.text_input(key="query_text").value == ""  # the old text no longer applies
    assert f"tiles like {hit.scene} #{hit.tile_id}" in summary(at)
    assert len(at.image) == len(at.session_state["result"].hits) + 1  # the query tile too
    at.file_uploader[0].upload("example.png", png(120), "image/png").run()
    assert "example image example.png" in summary(at) and len(at.image) == 11
    assert at.session_state["example_nonce"] == 1  # the drop zone is empty again
    ask(at, "a road between trees")
    assert "a road between trees" in summary(at) and len(at.image) == 10


def test_exports_carry_the_query_and_the_marks(
    ready_env: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: dict[str, bytes] = {}
    load = MemoryMediaFileStorage.load_and_get_id

    def keep(self, data, mimetype, kind, filename=None):  # noqa: ANN001, ANN202
        served[filename] = data
        return load(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", keep)
    at = ask(search_page(), "a road between trees")
    first, second = at.session_state["result"].hits[:2]
    at.button(key=f"relevant-{first.scene}:{first.tile_id}").click().run()
    at.button(key=f"irrelevant-{second.scene}:{second.tile_id}").click().run()
    collection = json.loads(served["sceneseek-a-road-between-trees.geojson"])
    props = [f["properties"] for f in collection["features"]]
    assert [p["mark"] for p in props[:3]] == ["relevant", "irrelevant", None]
    assert {p["query"] for p in props} == {"a road between trees"}
    rows = list(csv.DictReader(io.StringIO(served["sceneseek-a-road-between-trees.csv"].decode())))
    assert [r["mark"] for r in rows[:3]] == ["relevant", "irrelevant", ""]
    assert rows[0]["query_kind"] == "text" and rows[0]["tile_id"] == str(first.tile_id)


def test_image_query_marks_keep_a_small_image_that_re_runs_to_the_same_vector(
    ready_env: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped = photo()  # 4000 x 3000, several megabytes
    at = search_page()
    at.file_uploader[0].upload("photo.jpg", dropped, "image/jpeg")
    at.run()
    result = at.session_state["result"]
    assert result.kind == "image" and len(result.hits) == 10
    hit = result.hits[0]
    at.button(key=f"relevant-{hit.scene}:{hit.tile_id}").click().run()
    store = SQLiteFeedback(ready_env.feedback_db)
    (mark,) = store.marks()
    assert mark.query_kind == "image" and mark.query == image_sha256(dropped)
    kept = store.image(mark.query)
    assert len(kept) <= PNG_BOUND < len(dropped)
    engine = resources.engine()
    with engine.searching() as res:
        original = res.encode_pixels(load_query_image(dropped, engine.image_size))
        again = res.encode_pixels(load_query_image(kept, engine.image_size))
    np.testing.assert_allclose(np.asarray(again), np.asarray(original), rtol=0, atol=1e-6)

    monkeypatch.setenv("SCENESEEK_MIN_FREE_GB", "1e9")  # a floor no disk has
    other = png(30)
    at.file_uploader[0].upload("other.png", other, "image/png").run()
    hit = at.session_state["result"].hits[0]
    at.button(key=f"relevant-{hit.scene}:{hit.tile_id}").click().run()
    assert not at.exception, at.exception
    assert "keeping the example image needs" in errors(at) and "SCENESEEK_MIN_FREE_GB" in errors(at)
    assert store.marks() == [mark] and store.image(image_sha256(other)) is None


def test_filters_rerun_the_query_and_exports_match(ready_env: Workspace) -> None:
    at = ask(search_page(), "a road between trees")
    at.slider(key="filter_k").set_value(3).run()
    at.multiselect(key="filter_scales").set_value([128]).run()
    result = at.session_state["result"]
    assert len(result.hits) <= 3 and {h.scale for h in result.hits} == {128}
    assert {d.label for d in at.download_button} == {"GeoJSON", "CSV"}
    at.slider(key="filter_k").set_value(1).run()
    assert "<b>1 hit</b> for" in summary(at)


def test_heat_map_toggle(ready_env: Workspace) -> None:
    at = ask(search_page(), "a road between trees")
    at.toggle(key="show_heat").set_value(True).run()
    assert not at.exception, at.exception
    assert not at.error
    at.file_uploader[0].upload("example.png", png(60), "image/png").run()  # visual heat
    assert not at.exception, at.exception
    assert not at.error


def test_query_and_filters_survive_a_visit_to_the_library(ready_env: Workspace) -> None:
    at = ask(search_page(), "a road between trees")
    at.slider(key="filter_k").set_value(4).run()
    result = at.session_state["result"]
    at.switch_page("views/library.py").run()
    at.switch_page("views/search.py").run()
    assert at.text_input(key="query_text").value == "a road between trees"
    assert at.slider(key="filter_k").value == 4
    assert at.session_state["result"] is result  # not searched again
