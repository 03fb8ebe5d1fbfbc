"""Change page: two dates of one place; what changed most, or what is new or gone."""

from __future__ import annotations

import html

import streamlit as st
from streamlit_folium import st_folium

from app import auth, changes, export, images, querying, state
from app import map as mapping
from app.fragments import signed_in_fragment
from app.frame import model_missing
from app.job_panel import jobs_view
from app.resources import Engine, workspace
from app.resources import engine as shared_engine
from app.text import md, plural
from core import ChangeHit, ChangeResult, ScenePair, SceneSeekError, scene_date, suggest_pairs
from tiles import TilesError

IMAGE_TYPES = ["png", "jpg", "jpeg", "tif", "tiff"]
MAX_IMAGE_MB = 50
MAX_K = 50
MIN_CHANGE = {"all tiles": 0.0, "changed (z ≥ 1)": 1.0, "z ≥ 2": 2.0, "z ≥ 3": 3.0}
HEAT_OPACITY = 0.7
MAX_SUGGESTED = 3
POLL_S = 2.0  # how often the alignment's progress is redrawn

ws = workspace()


@signed_in_fragment(run_every=POLL_S)
def _aligning(before: str, after: str) -> None:
    """Start the pair's alignment job, show its progress, and redraw the page once it is done."""
    jobs = changes.align_jobs(ws, before, after)
    if jobs and jobs[0].status == "done":
        st.rerun()
    if not any(j.active for j in jobs):
        if auth.can("align_pair"):
            st.button(
                "Compare these dates",
                type="primary",
                icon=":material/compare:",
                on_click=_start_align,
                args=(before, after),
            )
        else:
            st.caption("An editor compares these dates once; then everyone can search them.")
    jobs_view(ws, jobs)


def _start_align(before: str, after: str) -> None:
    try:
        user = auth.require("align_pair")
        changes.start_align(ws, before, after, owner=user.name)
    except SceneSeekError as exc:
        st.error(md(str(exc)))


def _label(name: str) -> str:
    day = scene_date(name)
    return f"{name} ({day})" if day else name


def _pick_defaults(names: list[str], suggested: list[tuple[str, str, float]]) -> None:
    """Start from the best overlapping pair; keep the analyst's picks while they exist."""
    before, after = suggested[0][:2] if suggested else (names[0], names[-1])
    if st.session_state[state.CHANGE_BEFORE] not in names:
        st.session_state[state.CHANGE_BEFORE] = before
    if st.session_state[state.CHANGE_AFTER] not in names:
        st.session_state[state.CHANGE_AFTER] = after


def _query() -> changes.Query:
    upload = st.session_state.get(state.CHANGE_EXAMPLE)
    return {
        "text": st.session_state[state.CHANGE_TEXT],
        "image": upload.getvalue() if upload is not None else None,
        "name": upload.name if upload is not None else None,
        "direction": st.session_state[state.CHANGE_DIRECTION],
        "k": st.session_state[state.CHANGE_K],
        "min_change": MIN_CHANGE[st.session_state[state.CHANGE_MIN]],
    }


def _answer(engine: Engine, pair: ScenePair, finished: float) -> None:
    query = _query()
    key = (pair.before, pair.after, finished, changes.query_key(query))
    if st.session_state[state.CHANGE_RESULT_KEY] == key:
        return
    st.session_state[state.CHANGE_RESULT_KEY] = key
    try:
        st.session_state[state.CHANGE_RESULT] = changes.run_change(engine, pair, query)
        st.session_state[state.CHANGE_ERROR] = ""
    except SceneSeekError as exc:
        st.session_state[state.CHANGE_RESULT] = None
        st.session_state[state.CHANGE_ERROR] = str(exc)


def _card(
    hit: ChangeHit, before: bytes | None, after: bytes | None, notes: tuple[str, str], count: int
) -> None:
    colour = mapping.rank_colour(hit.rank, count)
    scores = (
        f"<br>{hit.before_score:.3f} → {hit.after_score:.3f}"
        if hit.before_score is not None and hit.after_score is not None
        else ""
    )
    with st.container(border=True):
        earlier, later, info = st.columns([1, 1, 0.9], gap="small")
        pictures = ((earlier, before, "earlier", notes[0]), (later, after, "later", notes[1]))
        for column, jpeg, caption, note in pictures:
            if jpeg:
                column.image(jpeg, caption=caption, width="stretch")
            else:
                column.caption(f"{caption}: {note}")
        info.html(
            f"<div class='ss-card'><span class='rank' style='background:{colour}'>{hit.rank}</span>"
            f"<b>{hit.score:.3f}</b><div class='meta'>change z {hit.change:.1f}{scores}<br>"
            f"tile {hit.tile_id} · {hit.scale} px</div></div>"
        )


def _map(pair: ScenePair, finished: float, result: ChangeResult | None) -> None:
    manifests = {name: ws.scene(name).read_manifest() for name in (pair.before, pair.after)}
    overlays = [
        mapping.Overlay(
            images.overlay_url(ws.scene(name).quicklook),
            manifests[name].quicklook_bounds,
            name,
            st.session_state[state.CHANGE_OPACITY] if name == pair.after else 1.0,
        )
        for name in (pair.before, pair.after)
        if ws.scene(name).quicklook.is_file() and manifests[name].quicklook_bounds
    ]
    if st.session_state[state.CHANGE_HEAT]:
        url, bounds = changes.heat_overlay(pair, finished)
        overlays.append(mapping.Overlay(url, bounds, "change", HEAT_OPACITY))
    hits = result.hits if result else []
    thumbs = images.hit_thumbnails(manifests, hits)
    layer = mapping.hits_layer(
        hits, {k: images.data_url(v) if v else None for k, v in thumbs.items()}, {}, overlays
    )
    box = mapping.hits_view(hits, None) or mapping.union(o.bounds for o in overlays)
    center, zoom = mapping.view(box) if box else (None, None)
    st_folium(
        mapping.base_map([], st.session_state[state.OSM]),
        key="change-map",
        height=mapping.MAP_HEIGHT,
        use_container_width=True,
        returned_objects=[],
        feature_group_to_add=layer,
        center=center,
        zoom=zoom,
    )


def _gallery(pair: ScenePair, result: ChangeResult) -> None:
    manifests = {name: ws.scene(name).read_manifest() for name in (pair.before, pair.after)}
    later = images.hit_thumbnails({pair.after: manifests[pair.after]}, result.hits)
    notes = (
        images.thumbnail_note(manifests[pair.before]),
        images.thumbnail_note(manifests[pair.after]),
    )
    with st.container(height=mapping.MAP_HEIGHT, border=False, key="gallery"):
        for hit in result.hits:
            earlier = changes.earlier_thumbnail(ws, pair.before, pair.after, hit.window)
            _card(hit, earlier, later.get(querying.hit_key(hit)), notes, len(result.hits))


st.title("Change")
try:
    engine = shared_engine()
except SceneSeekError as exc:
    model_missing(exc)
    st.stop()
names = querying.catalogue(engine).scenes
if len(names) < 2:
    st.info("Change search compares two scenes of the same place: add both dates in the Library.")
    st.stop()
suggested = suggest_pairs(ws)
_pick_defaults(names, suggested)
before_col, after_col, option_col = st.columns([3, 3, 2], gap="medium")
before_col.selectbox("Earlier date", names, key=state.CHANGE_BEFORE, format_func=_label)
after_col.selectbox("Later date", names, key=state.CHANGE_AFTER, format_func=_label)
with option_col:
    st.toggle("Change heat map", key=state.CHANGE_HEAT, help="How much each place changed")
    st.toggle("OpenStreetMap", key=state.OSM, help="Needs internet; scene images work offline")
if suggested:
    st.caption(
        "Scenes that overlap: "
        + md(", ".join(f"{a} → {b} ({share:.0%})" for a, b, share in suggested[:MAX_SUGGESTED]))
    )
before, after = st.session_state[state.CHANGE_BEFORE], st.session_state[state.CHANGE_AFTER]
try:
    finished = changes.pair_finished(ws, before, after, engine.resources.scene_key)
except SceneSeekError as exc:
    st.warning(md(str(exc)))
    st.stop()
if finished is None:
    tiles = ws.scene(after).read_manifest().n_tiles or 0
    st.info(
        f"The earlier scene is read on the later scene's {plural(tiles, 'tile')} and embedded "
        "once; the pair is then kept in the workspace."
    )
    _aligning(before, after)
    st.stop()
pair = changes.loaded_pair(engine, ws, before, after, finished)

text_col, image_col = st.columns([3, 2], gap="large")
with text_col:
    st.text_input(
        "What appeared or went (empty: the biggest changes)",
        key=state.CHANGE_TEXT,
        max_chars=500,
        placeholder="e.g. storage tanks",
    )
    st.radio(
        "Direction",
        ["new", "gone"],
        key=state.CHANGE_DIRECTION,
        horizontal=True,
        format_func=lambda d: {"new": "new (later minus earlier)", "gone": "gone"}[d],
    )
with image_col:
    st.file_uploader(
        "…or drop an example image",
        type=IMAGE_TYPES,
        key=state.CHANGE_EXAMPLE,
        max_upload_size=MAX_IMAGE_MB,
    )
k_col, min_col, opacity_col = st.columns(3, gap="medium")
k_col.slider("Hits", 1, MAX_K, key=state.CHANGE_K)
min_col.select_slider("Only tiles that changed", list(MIN_CHANGE), key=state.CHANGE_MIN)
opacity_col.slider("Later date over the earlier", 0.0, 1.0, key=state.CHANGE_OPACITY, step=0.05)
_answer(engine, pair, finished)

if st.session_state[state.CHANGE_ERROR]:
    st.error(md(st.session_state[state.CHANGE_ERROR]))
result: ChangeResult | None = st.session_state[state.CHANGE_RESULT]
if result is not None:
    with st.container(horizontal=True, vertical_alignment="center"):
        st.html(
            f"<div class='ss-summary'><b>{plural(len(result.hits), 'hit')}</b> for "
            f"{html.escape(changes.describe(result))}<span class='muted'> · "
            f"{html.escape(before)} → {html.escape(after)}</span></div>",
            width="content",
        )
        st.space("stretch")
        export.download_buttons(result, {})
map_col, gallery_col = st.columns([3, 2], gap="medium")
with map_col:
    try:
        _map(pair, finished, result)
    except (SceneSeekError, TilesError) as exc:
        st.error(f"The map could not be drawn: {md(str(exc))}")
with gallery_col:
    if result is None or not result.hits:
        st.info("No tile matches these settings.")
    else:
        _gallery(pair, result)
