"""Fine-tune page: review marks, write captions, train a new version, promote or roll back."""

from __future__ import annotations

from functools import partial

import streamlit as st

from app import auth, finetuning, images, model_versions, notices, state
from app.errors import AppError
from app.fragments import signed_in_fragment
from app.frame import model_missing
from app.job_panel import jobs_view
from app.resources import workspace
from app.text import agree, md, name_cell, plural
from core import (
    FinetuneCfg,
    Hit,
    Job,
    ModelRegistry,
    ModelVersion,
    Readiness,
    SceneSeekError,
    list_jobs,
)

POLL_S = 2.0
JOB_KINDS = ("finetune", "refresh", "reindex")  # the jobs this page starts or follows
REVIEW_LIMIT = 100
SWITCH = {  # button key prefix: label and help
    "promote": ("Promote", "Make this version active if it passes the guard"),
    "rollback": ("Roll back", "Return to this version"),
}

ws = workspace()
defaults = FinetuneCfg()


def _read_registry() -> tuple[list[ModelVersion], ModelVersion]:
    registry = ModelRegistry(ws)
    return registry.versions(), registry.active()


def _seen(versions: list[ModelVersion], active: ModelVersion) -> tuple[tuple[int, ...], int]:
    """What the page draws from the registry: version numbers and the active one."""
    return tuple(v.version for v in versions), active.version


def _start(jobs: list[Job]) -> None:
    cfg = FinetuneCfg(
        steps=int(st.session_state[state.STEPS]),
        image_tower=bool(st.session_state[state.IMAGE_TOWER]),
    )
    try:
        user = auth.require("finetune")
        finetuning.start_finetune(ws, cfg, jobs, owner=user.name)
    except (AppError, SceneSeekError) as exc:
        st.error(md(str(exc)))


def _what_trains(ready: Readiness, unattached: int) -> str:
    """One line: how the marks are used."""
    pairs, held, negatives = ready.train_pairs, ready.heldout, ready.train_negatives
    text = (
        f"{plural(pairs, 'relevant mark or caption', 'relevant marks and captions')} "
        f"{agree(pairs, 'trains', 'train')}, with {plural(negatives, 'not-relevant mark')}; "
        f"{plural(held, 'mark')} {agree(held, 'is', 'are')} held out to check the result "
        "(a query's first relevant marks always train). Each trained "
        "query or caption gets its own adapter: queries unlike it rank as before."
    )
    if ready.textless:
        text += (
            f" {plural(ready.textless, 'mark')} on image or tile queries "
            f"{agree(ready.textless, 'trains', 'train')} nothing (no text)."
        )
    if unattached:
        text += (
            f" {plural(unattached, 'mark')} no tile covers any more "
            f"{agree(unattached, 'is', 'are')} left out (see Marks)."
        )
    return text


@signed_in_fragment(run_every=POLL_S)
def _training(seen: tuple[tuple[int, ...], int]) -> None:
    """Fine-tune button and live jobs; redraws the whole page when the registry changes."""
    if _seen(*_read_registry()) != seen:
        st.rerun()  # a fine-tune finished, or another session switched the model
    jobs = list_jobs(ws)
    plan = finetuning.plan(ws, defaults)
    ready = plan.readiness
    running = any(j.kind == "finetune" and j.active for j in jobs)
    if not auth.can("finetune"):
        jobs_view(ws, [j for j in jobs if j.kind in JOB_KINDS])
        return
    st.caption(md(_what_trains(ready, len(plan.unattached))))
    if not ready.ready:
        st.info(
            md(f"To start, fine-tuning needs {ready.missing}."),
            icon=":material/info:",
        )
        st.caption(
            "Mark hits of a text query on the Search page, or write captions below. "
            "Nothing else is needed: no dataset, only this workspace."
        )
    else:
        steps, tower, go = st.columns([1, 2, 2], vertical_alignment="bottom")
        steps.number_input("Steps", 10, 5000, defaults.steps, step=10, key=state.STEPS)
        tower.checkbox(
            "Also fine-tune the image tower",
            key=state.IMAGE_TOWER,
            help="Slower, and the new version no longer reuses the stored vectors",
        )
        go.button(
            "Fine-tune",
            key="finetune",
            type="primary",
            icon=":material/model_training:",
            disabled=running,
            help="Train a new version from the active one on the marks; it is not promoted",
            on_click=_start,
            args=(jobs,),
        )
        if st.session_state[state.IMAGE_TOWER]:
            st.warning(md(finetuning.image_tower_estimate(ws).capitalize() + "."))
    jobs_view(ws, [j for j in list_jobs(ws) if j.kind in JOB_KINDS])


def _switch(version: int) -> None:
    try:
        user = auth.require("switch_model")
        outcome = model_versions.switch_model(ws, version, owner=user.name)
    except SceneSeekError as exc:
        notices.notify("error", str(exc))
        return
    notices.notify("success", outcome.message)


def _versions_table(versions: list[ModelVersion], active: ModelVersion) -> None:
    rows = model_versions.version_rows(versions, active)
    datasets = sorted({name for row in rows for name in row.base_mr})
    widths = [1.6, 0.8, 0.8, 1, 1.6, *([1] * len(datasets)), 1, 1, 1.5, 1.2]
    header = ["Version", "Parent", "Pairs", "Negatives", "Scenes"]
    header += [f"{name.upper()} mR" for name in datasets]
    header += ["Held-out P@10", "Top 10 kept", "Created", ""]
    for column, title in zip(st.columns(widths), header, strict=True):
        column.caption(title)
    for row in rows:
        cells = st.columns(widths, vertical_alignment="center")
        values = [row.label, row.parent, row.pairs, row.negatives, row.scenes]
        values += [row.base_mr.get(name, "not measured") for name in datasets]
        values += [row.heldout, row.kept, row.created]
        for cell, value in zip(cells[:-1], values, strict=True):
            cell.text(value)
        with cells[-1]:
            if row.active:
                st.badge("active", icon=":material/check:", color="green")
                continue
            if not auth.can("switch_model"):
                continue
            name = "promote" if row.newer else "rollback"
            label, tip = SWITCH[name]
            chosen = next(v for v in versions if v.version == row.version)
            st.button(
                label,
                key=f"{name}-{row.version}",
                on_click=_switch,
                args=(row.version,),
                help=f"{tip}; it {finetuning.reembed_note(ws, chosen)}",
            )


def _comparisons(versions: list[ModelVersion]) -> None:
    trained = [v for v in reversed(versions) if v.metrics]
    for number, version in enumerate(trained):
        with st.expander(f"{version.label}: before and after", expanded=number == 0):
            st.dataframe(
                model_versions.comparison(version),
                hide_index=True,
                column_config={
                    "measure": "Measure",
                    "before": st.column_config.NumberColumn(
                        f"Before (v{version.parent})", format="%.3f"
                    ),
                    "after": st.column_config.NumberColumn(
                        f"After (v{version.version})", format="%.3f"
                    ),
                    "change": st.column_config.NumberColumn("Change", format="%+.3f"),
                    "meaning": "What it means",
                },
            )
            st.caption(md(f"Promoting it {finetuning.reembed_note(ws, version)}."))


def _counts() -> None:
    rows = finetuning.count_rows(ws)
    if not rows:
        st.info("No marks yet. Judge hits on the Search page, or write captions below.")
        return
    st.dataframe(
        rows,
        hide_index=True,
        column_config={
            "query_kind": "Kind",
            "query": "Query",
            "scene": "Scene",
            "relevant": "Relevant",
            "irrelevant": "Not relevant",
            "captions": "Captions",
        },
    )
    st.download_button(
        "All marks as GeoJSON",
        partial(finetuning.marks_geojson_bytes, ws),
        file_name="sceneseek-marks.geojson",
        mime="application/geo+json",
        icon=":material/download:",
        key="export-marks",
        on_click="ignore",
        help="Every mark on its tile footprint, for review in a GIS; a mark whose scene or tile "
        "is gone has no geometry and says why",
    )


def _unattached() -> None:
    lost = finetuning.plan(ws, defaults).unattached
    if not lost:
        return
    st.warning(
        md(
            f"{plural(len(lost), 'mark')} cannot be re-attached: no tile covers "
            f"{agree(len(lost), 'its', 'their')} ground now (the scene was re-tiled or removed, "
            f"or {agree(len(lost), 'it', 'they')} came from another workspace). "
            f"{agree(len(lost), 'It is', 'They are')} kept, but fine-tuning leaves "
            f"{agree(len(lost), 'it', 'them')} out."
        )
    )
    st.dataframe(
        [
            {
                "query": finetuning.query_label(u.mark.query_kind, u.mark.query),
                "mark": u.mark.label,
                "tile": f"{u.mark.scene}:{u.mark.tile_id}",
                "why": u.reason,
            }
            for u in lost
        ],
        hide_index=True,
    )


def _delete(mark_id: int) -> None:
    try:
        auth.require("delete_mark")
    except SceneSeekError as exc:
        notices.notify("error", str(exc))
        return
    finetuning.feedback(ws).delete(mark_id)


def _review() -> None:
    labels = finetuning.marked_queries(ws)
    if not labels:
        return
    chosen = st.selectbox(
        "Review the marks of",
        sorted(labels),
        index=None,
        format_func=labels.get,
        key=state.REVIEW_QUERY,
        placeholder="All queries",
    )
    marks = finetuning.feedback(ws).marks(query=chosen)
    if len(marks) > REVIEW_LIMIT:
        st.caption(f"The newest {REVIEW_LIMIT} of {len(marks)} marks; pick a query to see others.")
    widths = [3, 1.6, 0.7, 2.6, 0.6]
    for column, title in zip(
        st.columns(widths), ["Query", "Scene", "Tile", "Mark", ""], strict=True
    ):
        column.caption(title)
    for mark in marks[:REVIEW_LIMIT]:
        cells = st.columns(widths, vertical_alignment="center")
        cells[0].text(finetuning.query_label(mark.query_kind, mark.query))
        cells[1].html(name_cell(mark.scene))
        cells[2].text(str(mark.tile_id))
        cells[3].text(finetuning.mark_words(mark))
        if not auth.can("delete_mark"):
            continue
        cells[4].button(
            "",
            key=f"delete-mark-{mark.id}",
            icon=":material/delete:",
            help="Delete this mark",
            on_click=_delete,
            args=(mark.id,),
        )


def _from_hit(names: list[str]) -> None:
    hit: Hit | None = st.session_state[state.CAPTION_HIT]
    if hit is not None and hit.scene in names:
        st.session_state[state.CAPTION_SCENE] = hit.scene
        st.session_state[state.CAPTION_TILE] = hit.tile_id


def _caption_editor() -> None:
    if not auth.can("caption"):
        st.caption("Editors write captions for tiles here.")
        return
    names = ws.scene_names()
    if not names:
        st.info("Captions are written for tiles of ingested scenes: add one in the Library.")
        return
    result = st.session_state[state.RESULT]
    if result is not None and result.hits:
        st.selectbox(
            "Caption a hit of your last search",
            result.hits,
            index=None,
            format_func=lambda h: f"#{h.rank} · {h.scene} tile {h.tile_id}",
            key=state.CAPTION_HIT,
            on_change=_from_hit,
            args=(names,),
            placeholder="Choose a hit, or a scene and tile below",
        )
    scene_col, tile_col = st.columns(2)
    scene = scene_col.selectbox("Scene", names, key=state.CAPTION_SCENE)
    count = finetuning.tile_count(ws, scene)
    if st.session_state.get(state.CAPTION_TILE, 0) >= count:
        st.session_state[state.CAPTION_TILE] = 0
    tile = int(tile_col.number_input("Tile", 0, count - 1, step=1, key=state.CAPTION_TILE))
    picture, editor = st.columns([1, 2], gap="medium")
    thumb = finetuning.tile_thumbnail(ws, scene, tile)
    if thumb:
        picture.image(thumb, width="stretch")
    else:
        picture.caption(images.thumbnail_note(ws.scene(scene).read_manifest()))
    with editor.form("caption-form", border=False):
        text = st.text_area(
            "Caption",
            finetuning.tile_caption(ws, scene, tile),
            max_chars=500,
            key=f"caption-{scene}-{tile}",
            placeholder="e.g. a baseball field next to a parking lot",
        )
        if st.form_submit_button("Save caption", key="save-caption", icon=":material/save:"):
            try:
                user = auth.require("caption")
                finetuning.save_caption(ws, scene, tile, text, author=user.name)
                st.success(md(f"Caption saved for {scene} tile {tile}."))
            except SceneSeekError as exc:
                st.error(md(str(exc)))


st.title("Fine-tune")
st.caption(
    "Teach the model from your marks: train a new version in the background, compare it "
    "with its parent, then promote it (or roll back). Only this workspace is needed, and "
    "promotion reuses the stored vectors. Version 0, the shipped model, is kept."
)
try:
    all_versions, active_model = _read_registry()
except SceneSeekError as exc:
    model_missing(exc)
    st.stop()

_training(_seen(all_versions, active_model))

st.subheader("Model versions")
notices.show()
st.caption(md(model_versions.guard_text()))
_versions_table(all_versions, active_model)
_comparisons(all_versions)

st.subheader("Marks")
_counts()
_unattached()
_review()

st.subheader("Captions")
_caption_editor()
