"""Search page through Streamlit's AppTest, on a workspace holding one small scene."""

from __future__ import annotations

import io
from functools import partial

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from core.store.feedback import SQLiteFeedback, image_sha256
from core.store.workspace import Workspace
from tests.app.conftest import open_page

TIMEOUT = 120


search_page = partial(open_page, "views/search.py", TIMEOUT)


def ask(at: AppTest, text: str) -> AppTest:
    at.text_input(key="query_text").input(text)
    at.button[0].click()  # the form's Search button
    at.run()
    assert not at.exception, at.exception
    return at


def test_no_scene_yet(env: Workspace) -> None:
    at = search_page()
    assert "No scene is ready to search yet" in at.info[0].value


def test_empty_query_shows_why(ready_env: Workspace) -> None:
    at = ask(search_page(), "   ")
    assert "the query is empty" in at.error[0].value
    assert at.session_state["result"] is None


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
    assert result.hits[0].tile_id == second.tile_id  # a tile is most similar to itself


def test_image_query_marks_keep_the_image(ready_env: Workspace) -> None:
    picture = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(picture, format="PNG")
    data = picture.getvalue()
    at = search_page()
    at.file_uploader[0].upload("example.png", data, "image/png")
    at.run()
    result = at.session_state["result"]
    assert result.kind == "image" and len(result.hits) == 10
    hit = result.hits[0]
    at.button(key=f"relevant-{hit.scene}:{hit.tile_id}").click().run()
    store = SQLiteFeedback(ready_env.feedback_db)
    (mark,) = store.marks()
    assert mark.query_kind == "image" and mark.query == image_sha256(data)
    assert store.image(mark.query) == data


def test_filters_rerun_the_query_and_exports_match(ready_env: Workspace) -> None:
    at = ask(search_page(), "a road between trees")
    at.slider(key="filter_k").set_value(3).run()
    at.multiselect(key="filter_scales").set_value([128]).run()
    result = at.session_state["result"]
    assert len(result.hits) <= 3 and {h.scale for h in result.hits} == {128}
    assert {d.label for d in at.download_button} == {"GeoJSON", "CSV"}


def test_heat_map_toggle(ready_env: Workspace) -> None:
    at = ask(search_page(), "a road between trees")
    at.toggle(key="show_heat").set_value(True).run()
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
