"""Every ``st.session_state`` key the app uses, with its default, in one place.

Pages read and write these names only; ``init`` runs at the top of every script run so a
key always exists before a widget or callback touches it, on whichever page.
"""

from __future__ import annotations

import copy
from typing import Any

import streamlit as st

# Search page
QUERY = "query"  # the query to answer: {"kind": "text"|"image"|"tile", ...} or None
RESULT = "result"  # core.search.results.SearchResult on screen, or None
RESULT_KEY = "result_key"  # (query, filters) the result answers; a change reruns the search
REFINED = "refined"  # True when RESULT was re-ranked with the analyst's marks
MARKS = "marks"  # {"SCENE:TILE": "relevant" | "irrelevant"} for the current query
FOCUS = "focus"  # "SCENE:TILE" of the hit the map is zoomed to, or None (fit the hits)
ERROR = "search_error"  # message of the last failed query, shown above the map
TEXT = "query_text"  # text input widget
EXAMPLE = "example_image"  # example-image drop zone (widget-owned: no default can be set)
SCENES = "filter_scenes"  # scene filter widget
SCALES = "filter_scales"  # tile-size filter widget
K = "filter_k"  # number-of-hits widget
HEAT = "show_heat"  # heat-map toggle
OSM = "show_osm"  # OpenStreetMap base layer toggle
# Library page
UPLOAD_NONCE = "upload_nonce"  # bumped to clear the upload drop zone (key "scene-upload-N")
UPLOAD_NAME = "upload_name"  # scene name for the upload (blank: from the file name)
IMPORT_CHOICE = "import_choice"  # file picked from the import folder listing
IMPORT_PATH = "import_path"  # or a path typed by the analyst (must stay inside the folder)
TILE_SIZES = "tile_sizes"  # tiling options shared by both ways of adding a scene
OVERLAP = "tile_overlap"
MIN_VALID = "tile_min_valid"
FAST_INGEST = "fast_ingest"  # share the first backbone stage between overlapping tiles
NOTICE = "library_notice"  # (level, message) shown once after an action
# Change page
CHANGE_BEFORE = "change_before"  # earlier scene picker
CHANGE_AFTER = "change_after"  # later scene picker (hits use its tiles)
CHANGE_TEXT = "change_text"  # what appeared or went; empty: the biggest changes
CHANGE_EXAMPLE = "change_example"  # example-image drop zone (widget-owned: no default)
CHANGE_DIRECTION = "change_direction"  # "new" or "gone"
CHANGE_K = "change_k"  # number of hits
CHANGE_MIN = "change_min"  # only tiles whose change score reaches this (0: all tiles)
CHANGE_HEAT = "change_heat"  # change heat-map toggle
CHANGE_OPACITY = "change_opacity"  # opacity of the later date over the earlier one
CHANGE_RESULT = "change_result"  # core ChangeResult on screen, or None
CHANGE_RESULT_KEY = "change_result_key"  # what CHANGE_RESULT answers; a change reruns it
CHANGE_ERROR = "change_error"  # message of the last failed change query
# Fine-tune page (widget-owned: their defaults come from core.FinetuneCfg)
STEPS = "finetune_steps"  # training steps
GUARD = "promote_guard"  # the promotion guard, in mR points
REVIEW_QUERY = "review_query"  # which query's marks are reviewed
CAPTION_HIT = "caption_hit"  # hit of the last search to caption
CAPTION_SCENE = "caption_scene"  # or any tile: its scene
CAPTION_TILE = "caption_tile"  # and tile id

DEFAULTS: dict[str, Any] = {
    QUERY: None,
    RESULT: None,
    RESULT_KEY: None,
    REFINED: False,
    MARKS: {},
    FOCUS: None,
    ERROR: "",
    TEXT: "",
    SCENES: [],
    SCALES: [],
    K: 10,
    HEAT: False,
    OSM: False,
    UPLOAD_NONCE: 0,
    UPLOAD_NAME: "",
    IMPORT_CHOICE: None,
    IMPORT_PATH: "",
    TILE_SIZES: [256, 512, 1024],
    OVERLAP: 0.5,
    MIN_VALID: 0.5,
    FAST_INGEST: False,
    NOTICE: None,
    CHANGE_BEFORE: None,
    CHANGE_AFTER: None,
    CHANGE_TEXT: "",
    CHANGE_DIRECTION: "new",
    CHANGE_K: 10,
    CHANGE_MIN: 0.0,
    CHANGE_HEAT: True,
    CHANGE_OPACITY: 1.0,
    CHANGE_RESULT: None,
    CHANGE_RESULT_KEY: None,
    CHANGE_ERROR: "",
}


def init() -> None:
    """Give every missing key its default (copied, so sessions never share a list).

    Existing keys are assigned again: Streamlit forgets a widget's value on a run where the
    widget is not drawn (another page is open), and an explicit assignment keeps it.
    """
    for key, value in DEFAULTS.items():
        st.session_state[key] = (
            st.session_state[key] if key in st.session_state else copy.deepcopy(value)
        )
