"""Every ``st.session_state`` key the app uses, with its default, in one place.

Pages read and write these names only; ``init`` runs at the top of every script run so a
key always exists before a widget or callback touches it, on whichever page.
"""

from __future__ import annotations

import copy
from typing import Any

import streamlit as st

# Sign-in (app.auth)
SESSION = "session_token"  # the signed session token of the person signed in, or None
COOKIE_WRITE = "cookie_write"  # a token for the browser's cookie, "" to clear it, None: nothing
SIGNIN_NAME = "signin_name"  # sign-in form widgets
SIGNIN_PASSWORD = "signin_password"
SIGNIN_ERROR = "signin_error"  # why the last sign-in was refused
# Search page
QUERY = "query"  # the query RESULT answers: {"kind": "text"|"image"|"tile", ...} or None
ASKED = "asked_query"  # a new query to answer on this run (QUERY only once it succeeds)
RESULT = "result"  # core.search.results.SearchResult on screen, or None
RESULT_KEY = "result_key"  # (query, filters) the result answers; a change reruns the search
RESULT_ID = "result_id"  # bumped for every new result: the gallery and the map start afresh
REFINED = "refined"  # True when RESULT was re-ranked with the analyst's marks
MARKS = "marks"  # {"SCENE:TILE": "relevant" | "irrelevant"} for the current query
FOCUS = "focus"  # what the map fits: None (the hits), ("hit", "SCENE:TILE") or ("scene", NAME)
REFIT = "refit"  # bumped by every zoom button, so zooming to the same place again re-fits
ERROR = "search_error"  # message of the last failed query, shown above the map
TEXT = "query_text"  # text input widget
EXAMPLE = "example_image"  # example-image drop zone, keyed "example_image-N" (widget-owned)
EXAMPLE_NONCE = "example_nonce"  # bumped to empty the drop zone once its image is taken
SCENES = "filter_scenes"  # scene filter widget
SCALES = "filter_scales"  # tile-size filter widget
K = "filter_k"  # number-of-hits widget
HEAT = "show_heat"  # heat-map toggle
OSM = "show_osm"  # OpenStreetMap base layer toggle
AREA = "search_area"  # core AreaOfInterest the search is limited to, or None (everywhere)
AREA_NONCE = "area_nonce"  # bumped for every new or cleared area: a fresh map and uploader
AREA_UPLOAD = "area_upload"  # GeoJSON drop zone, keyed "area_upload-N" (widget-owned)
KEPT = "kept_widgets"  # {widget key: last value the analyst gave it}, see keep()
# Library page
UPLOAD_NONCE = "upload_nonce"  # bumped to clear the upload drop zone (key "scene-upload-N")
UPLOAD_NAME = "upload_name"  # scene name for the upload (blank: from the file name)
UPLOAD_ERROR = "upload_error"  # (file_id, message) of a refused upload, kept while it is there
IMPORT_CHOICE = "import_choice"  # file picked from the import folder listing
IMPORT_PATH = "import_path"  # or a path typed by the analyst (must stay inside the folder)
IMPORT_ERROR = "import_error"  # (path, message) of a refused import, kept while it is chosen
REMOTE_URL = "remote_url"  # COG or STAC item URL typed by an editor
REMOTE_ASSET = "remote_asset"  # the STAC item's asset key (blank: the URL is a COG)
REMOTE_ERROR = "remote_error"  # (url, message) of a refused URL, kept while it is typed
TILE_SIZES = "tile_sizes"  # tiling options shared by both ways of adding a scene
OVERLAP = "tile_overlap"
MIN_VALID = "tile_min_valid"
NOTICE = "library_notice"  # (level, message, until) shown for a while after an action
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
IMAGE_TOWER = "finetune_image_tower"  # also fine-tune the image tower (promotion re-embeds)
REVIEW_QUERY = "review_query"  # which query's marks are reviewed
CAPTION_HIT = "caption_hit"  # hit of the last search to caption
CAPTION_SCENE = "caption_scene"  # or any tile: its scene
CAPTION_TILE = "caption_tile"  # and tile id

DEFAULTS: dict[str, Any] = {
    SESSION: None,
    COOKIE_WRITE: None,
    SIGNIN_NAME: "",
    SIGNIN_PASSWORD: "",
    SIGNIN_ERROR: "",
    QUERY: None,
    ASKED: None,
    RESULT: None,
    RESULT_KEY: None,
    RESULT_ID: 0,
    REFINED: False,
    MARKS: {},
    FOCUS: None,
    REFIT: 0,
    ERROR: "",
    TEXT: "",
    EXAMPLE_NONCE: 0,
    SCENES: [],
    SCALES: [],
    K: 10,
    HEAT: False,
    OSM: False,
    AREA: None,
    AREA_NONCE: 0,
    UPLOAD_NONCE: 0,
    UPLOAD_NAME: "",
    UPLOAD_ERROR: None,
    IMPORT_CHOICE: None,
    IMPORT_PATH: "",
    IMPORT_ERROR: None,
    REMOTE_URL: "",
    REMOTE_ASSET: "",
    REMOTE_ERROR: None,
    TILE_SIZES: [256, 512, 1024],
    OVERLAP: 0.5,
    MIN_VALID: 0.5,
    NOTICE: None,
    KEPT: {},
    IMAGE_TOWER: False,
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


def keep(key: str) -> None:
    """Remember a widget's value under ``KEPT`` (an ``on_change`` callback, or after a change).

    In a real browser the assignment in ``init`` is not enough: after a visit to the Library
    (whose fragment refreshes every 2 s) Streamlit hands the Search widgets back at their
    defaults. ``KEPT`` is a plain key it never touches.
    """
    st.session_state[KEPT][key] = st.session_state[key]


def restore(*keys: str) -> None:
    """Give widgets their remembered values back; call before they are drawn."""
    for key in keys:
        if key in st.session_state[KEPT]:
            st.session_state[key] = st.session_state[KEPT][key]
