"""Search page: describe or show what to find, see it on the map, judge, refine, export."""

from __future__ import annotations

import html

import streamlit as st
from streamlit_folium import st_folium

from app import area, auth, export, images, querying, state
from app import map as mapping
from app.frame import model_missing
from app.heat import heat_overlays
from app.resources import Engine, workspace
from app.resources import engine as shared_engine
from app.text import breakable, md, plural
from core import Filters, Hit, Label, SceneManifest, SceneSeekError, SearchResult
from tiles import TilesError

IMAGE_TYPES = ["png", "jpg", "jpeg", "tif", "tiff"]
MAX_IMAGE_MB = 50  # an example picture, not a scene
MAX_K = 50

ws = workspace()


def _example_key() -> str:
    return f"{state.EXAMPLE}-{st.session_state[state.EXAMPLE_NONCE]}"


def _empty_box() -> None:
    """The next results are for a picture: the text box must not name an older query."""
    st.session_state[state.TEXT] = ""
    state.keep(state.TEXT)


def _on_text() -> None:
    state.keep(state.TEXT)
    st.session_state[state.ASKED] = querying.text_query(st.session_state[state.TEXT])


def _on_image() -> None:
    upload = st.session_state.get(_example_key())
    if upload is not None:
        st.session_state[state.ASKED] = querying.image_query(upload.getvalue(), upload.name)
        st.session_state[state.EXAMPLE_NONCE] += 1  # the heading shows the picture instead
        _empty_box()


def _on_similar(hit: Hit) -> None:
    st.session_state[state.ASKED] = querying.tile_query(hit.scene, hit.tile_id)
    _empty_box()


def _zoom(target: tuple[str, str]) -> None:
    st.session_state[state.FOCUS] = target
    st.session_state[state.REFIT] += 1


def _on_focus(hit: Hit) -> None:
    _zoom(("hit", querying.hit_key(hit)))


def _on_scene(name: str) -> None:
    _zoom(("scene", name))


def _on_mark(hit: Hit, label: Label) -> None:
    result: SearchResult = st.session_state[state.RESULT]
    try:
        author = auth.require("mark").name
        querying.record_mark(ws, st.session_state[state.QUERY], hit, label, result.model, author)
    except SceneSeekError as exc:
        st.session_state[state.ERROR] = str(exc)
        return
    st.session_state[state.MARKS][querying.hit_key(hit)] = label


def _on_refine(engine: Engine, f: Filters) -> None:
    try:
        st.session_state[state.RESULT] = querying.refine_result(
            engine, st.session_state[state.RESULT], st.session_state[state.MARKS], f
        )
        st.session_state[state.REFINED] = True
        st.session_state[state.FOCUS] = None
        st.session_state[state.RESULT_ID] += 1
    except SceneSeekError as exc:
        st.session_state[state.ERROR] = str(exc)


def _keep_known(key: str, options: list) -> None:
    """Drop filter values that no longer exist (a scene deleted since)."""
    st.session_state[key] = [v for v in st.session_state[key] if v in options]
    state.keep(key)


def _answer(engine: Engine, f: Filters) -> None:
    """Answer a new query, or the current one when the filters changed since its answer.

    A query that fails leaves the results, their query and their marks as they were: only
    the error is added, so a typo never costs the analyst what is on screen.
    """
    asked = st.session_state[state.ASKED]
    st.session_state[state.ASKED] = None
    query = asked or st.session_state[state.QUERY]
    if query is None:
        return
    key = (querying.feedback_key(query), f)
    if asked is None and st.session_state[state.RESULT_KEY] == key:
        return
    try:
        query = querying.model_sized(engine, query)
        result = querying.run_query(engine, query, f)
        marks = querying.load_marks(ws, query)
    except SceneSeekError as exc:
        st.session_state[state.ERROR] = str(exc)
        if asked is None:
            st.session_state[state.RESULT_KEY] = key  # not retried on every rerun
        return
    st.session_state.update(
        {
            state.QUERY: query,
            state.RESULT: result,
            state.RESULT_KEY: key,
            state.MARKS: marks,
            state.REFINED: False,
            state.FOCUS: None,
            state.ERROR: "",
            state.RESULT_ID: st.session_state[state.RESULT_ID] + 1,
        }
    )


def _summary(engine: Engine, catalogue: querying.Catalogue, result: SearchResult) -> None:
    """What the results on screen are for, in one place: the words, or the picture."""
    query = st.session_state[state.QUERY]
    marks = st.session_state[state.MARKS]
    ms = sum(result.timings_ms.values())
    refined = (
        f" · refined with {plural(len(marks), 'mark')}" if st.session_state[state.REFINED] else ""
    )
    limited = st.session_state[state.AREA]
    inside = f" inside {limited.describe()}" if limited else ""
    picture = querying.query_picture(engine, catalogue.manifests, query)
    if picture:
        st.image(picture, width=44)
    st.html(
        f"<div class='ss-summary'><b>{plural(len(result.hits), 'hit')}</b> for "
        f"{html.escape(querying.describe(query))}{html.escape(inside)}"
        f"<span class='muted'> · {ms:.0f} ms{html.escape(refined)}</span></div>",
        width="stretch",  # a long query wraps here instead of pushing the buttons down
    )


def _zoom_menu(catalogue: querying.Catalogue) -> None:
    with st.popover("Zoom to scene", icon=":material/zoom_out_map:"):
        for name in catalogue.scenes:
            st.button(name, key=f"zoom-{name}", on_click=_on_scene, args=(name,), width="stretch")


def _actions(engine: Engine, result: SearchResult, f: Filters) -> None:
    marks = st.session_state[state.MARKS]
    st.button(
        f"Refine with marks ({len(marks)})",
        icon=":material/tune:",
        disabled=not marks,
        on_click=_on_refine,
        args=(engine, f),
        help="Re-rank instantly: towards the relevant hits, away from the others",
    )
    export.download_buttons(result, marks)


def _map(
    engine: Engine,
    catalogue: querying.Catalogue,
    result: SearchResult | None,
    thumbs: dict[str, bytes | None],
) -> None:
    scenes = [
        mapping.Overlay(
            images.overlay_url(ws.scene(name).quicklook),
            manifest.quicklook_bounds,
            name,
        )
        for name, manifest in catalogue.manifests.items()
        if ws.scene(name).quicklook.is_file() and manifest.quicklook_bounds
    ]
    hits = result.hits if result else []
    boxes = {o.name: o.bounds for o in scenes}
    box = mapping.fit_box(
        hits, st.session_state[state.FOCUS], boxes, st.session_state[state.SCENES]
    )
    view = f"{st.session_state[state.RESULT_ID]}-{st.session_state[state.REFIT]}-{box}"
    heat = (
        heat_overlays(engine, result, catalogue.manifests, st.session_state[state.AREA])
        if result and st.session_state[state.HEAT]
        else []
    )
    layer = mapping.hits_layer(
        hits,
        {key: images.data_url(jpeg) if jpeg else None for key, jpeg in thumbs.items()},
        st.session_state[state.MARKS],
        heat,
        mapping.FitBounds(box, view) if box else None,
    )
    area.add_outline(layer, st.session_state[state.AREA])
    fmap = mapping.base_map(scenes, st.session_state[state.OSM])
    area.LocalDraw().add_to(fmap)
    st_folium(
        fmap,
        key=area.map_key(),
        height=mapping.MAP_HEIGHT,
        use_container_width=True,
        returned_objects=["all_drawings"],  # a finished drawing, not every pan or click
        feature_group_to_add=layer,
        on_change=area.on_drawn,
    )


def _card(hit: Hit, thumb: bytes | None, note: str, count: int) -> None:
    key = querying.hit_key(hit)
    mark = st.session_state[state.MARKS].get(key)
    colour = mapping.rank_colour(hit.rank, count)
    mark_html = (
        f"<div class='mark {mark}'>{'✓ relevant' if mark == 'relevant' else '✗ not relevant'}</div>"
        if mark
        else ""
    )
    with st.container(border=True):
        picture, info = st.columns([1, 1.15], gap="small")
        if thumb:
            picture.image(thumb, width="stretch")
        else:
            picture.caption(note)
        info.html(
            f"<div class='ss-card'><span class='rank' style='background:{colour}'>{hit.rank}</span>"
            f"<b>{hit.score:.3f}</b><div class='meta'>{breakable(hit.scene)}<br>"
            f"tile {hit.tile_id} · {hit.scale} px</div>{mark_html}</div>"
        )
        actions = (
            ("relevant", ":material/thumb_up:", "Relevant", _on_mark, (hit, "relevant")),
            ("irrelevant", ":material/thumb_down:", "Not relevant", _on_mark, (hit, "irrelevant")),
            ("similar", ":material/image_search:", "Find similar places", _on_similar, (hit,)),
            ("focus", ":material/my_location:", "Zoom the map to this hit", _on_focus, (hit,)),
        )
        with info.container(horizontal=True, gap="small"):
            for name, icon, tip, callback, args in actions:
                st.button(
                    "",
                    key=f"{name}-{key}",
                    icon=icon,
                    help=tip,
                    type="primary" if mark == name else "secondary",
                    on_click=callback,
                    args=args,
                )


def _gallery(
    result: SearchResult, thumbs: dict[str, bytes | None], manifests: dict[str, SceneManifest]
) -> None:
    """The hit cards; a new result gets a new scroll box, so it starts at the top."""
    scroll = f"gallery-{st.session_state[state.RESULT_ID]}"
    with (
        st.container(border=False, key="gallery"),
        st.container(height=mapping.MAP_HEIGHT, border=False, key=scroll),
    ):
        for hit in result.hits:
            thumb = thumbs.get(querying.hit_key(hit))
            note = "" if thumb else images.thumbnail_note(manifests.get(hit.scene))
            _card(hit, thumb, note, len(result.hits))


st.title("Search")
try:
    engine = shared_engine()
except SceneSeekError as exc:
    model_missing(exc)
    st.stop()
catalogue = querying.catalogue(engine)
if catalogue.stale:
    were = "was" if len(catalogue.stale) == 1 else "were"
    st.warning(
        f"{plural(len(catalogue.stale), 'scene')} {were} indexed with another model version "
        "and left out; re-index in the Library."
    )
if not catalogue.scenes:
    st.info("No scene is ready to search yet. Add one in the Library.")
    st.page_link("views/library.py", label="Go to the Library", icon=":material/photo_library:")
    st.stop()

state.restore(state.TEXT, state.SCENES, state.SCALES, state.K, state.HEAT, state.OSM)
text_col, image_col = st.columns([3, 2], gap="large")
with text_col, st.form("text-query", border=False):
    box, go = st.columns([5, 1], vertical_alignment="bottom")
    box.text_input(  # no max_chars: the browser would drop a longer paste without a word
        "Describe what to find",
        key=state.TEXT,
        placeholder="e.g. a baseball field next to a parking lot",
    )
    go.form_submit_button("Search", type="primary", on_click=_on_text, width="stretch")
with image_col:
    st.file_uploader(
        "…or drop an example image",
        type=IMAGE_TYPES,
        key=_example_key(),
        on_change=_on_image,
        max_upload_size=MAX_IMAGE_MB,
    )

_keep_known(state.SCENES, catalogue.scenes)
_keep_known(state.SCALES, catalogue.scales)
scene_col, scale_col, k_col, toggle_col = st.columns([3, 2, 2, 1.6], gap="medium")
scene_col.multiselect(
    "Scenes",
    catalogue.scenes,
    key=state.SCENES,
    placeholder="All scenes",
    on_change=state.keep,
    args=(state.SCENES,),
)
scale_col.multiselect(
    "Tile sizes (px)",
    catalogue.scales,
    key=state.SCALES,
    placeholder="All",
    on_change=state.keep,
    args=(state.SCALES,),
)
k_col.slider("Hits", 1, MAX_K, key=state.K, on_change=state.keep, args=(state.K,))
with toggle_col:
    st.toggle(
        "Heat map",
        key=state.HEAT,
        help="Where the query fits each scene best",
        on_change=state.keep,
        args=(state.HEAT,),
    )
    st.toggle(
        "OpenStreetMap",
        key=state.OSM,
        help="Needs internet; scene images work offline",
        on_change=state.keep,
        args=(state.OSM,),
    )

filters = querying.filters(
    st.session_state[state.SCENES],
    st.session_state[state.SCALES],
    st.session_state[state.K],
    st.session_state[state.AREA],
)
_answer(engine, filters)

if st.session_state[state.ERROR]:
    st.error(md(st.session_state[state.ERROR]))
result: SearchResult | None = st.session_state[state.RESULT]
if result is not None and result.partial:
    st.warning(md(result.partial_note))
hit_thumbs = images.hit_thumbnails(catalogue.manifests, result.hits) if result else {}
with st.container(horizontal=True, vertical_alignment="center"):
    if result is not None:
        _summary(engine, catalogue, result)
    else:
        st.space("stretch")
    _zoom_menu(catalogue)
    area.controls()
    if result is not None:
        _actions(engine, result, filters)
map_col, gallery_col = st.columns([3, 2], gap="medium")
with map_col:
    try:
        _map(engine, catalogue, result, hit_thumbs)
    except (SceneSeekError, TilesError) as exc:
        st.error(f"The map could not be drawn: {md(str(exc))}")
with gallery_col:
    if result is None:
        st.info("Type a description and press Enter, or drop an example image.")
    elif not result.hits:
        st.info(md(result.notice) if result.notice else "No tile matches these filters.")
    else:
        if result.notice:
            st.info(md(result.notice))
        _gallery(result, hit_thumbs, catalogue.manifests)
